//! `tend config-server`: the fleet ConfigServer.

/// Run the ConfigServer with its arguments; returns the exit status.
pub fn main(_args: Vec<String>) -> i32 {
    eprintln!("tend config-server: not implemented yet");
    2
}
