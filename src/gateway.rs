//! `tend gateway`: serves an `inet://` listener by relaying to the UNIX control socket.

/// Run the gateway with its arguments; returns the exit status.
pub fn main(_args: Vec<String>) -> i32 {
    eprintln!("tend gateway: not implemented yet");
    2
}

/// The supervised gateway child for one `inet://` listener (stub).
pub fn component_spec(
    _control: &crate::config::Control,
    listen: &str,
    upstream: &std::path::Path,
    exe: &std::path::Path,
) -> crate::config::ComponentSpec {
    let mut spec = crate::config::ComponentSpec::new(
        "gateway",
        vec![
            exe.display().to_string(),
            "gateway".into(),
            "--listen".into(),
            listen.into(),
            "--upstream".into(),
            upstream.display().to_string(),
        ],
    );
    spec.flags.precious = true;
    spec
}
