//! `tend agent`: pulls components from a fleet ConfigServer and applies them.

/// Run the agent with its arguments; returns the exit status.
pub fn main(_args: Vec<String>) -> i32 {
    eprintln!("tend agent: not implemented yet");
    2
}
