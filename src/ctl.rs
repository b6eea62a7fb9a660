//! `tendctl`: the command-line client.

/// Run tendctl with its arguments (without the program name); returns the exit status.
pub fn main(_args: Vec<String>) -> i32 {
    eprintln!("tendctl: not implemented yet");
    2
}
