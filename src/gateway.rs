//! `tend gateway`: serves an `inet://` listener by relaying to the UNIX control socket.

/// Run the gateway with its arguments; returns the exit status.
pub fn main(_args: Vec<String>) -> i32 {
    eprintln!("tend gateway: not implemented yet");
    2
}
