//! The daemon's command line.

/// Run the daemon; returns the exit status.
pub fn main(_args: Vec<String>) -> i32 {
    0
}
