//! `tend agent`: pulls components from a fleet ConfigServer and applies them.

/// Run the agent with its arguments; returns the exit status.
pub fn main(_args: Vec<String>) -> i32 {
    eprintln!("tend agent: not implemented yet");
    2
}

/// The supervised agent child (stub).
pub fn component_spec(
    spec: &crate::config::AgentSpec,
    _config: &crate::config::Config,
    upstream: &std::path::Path,
    exe: &std::path::Path,
) -> crate::config::ComponentSpec {
    let mut c = crate::config::ComponentSpec::new(
        "agent",
        vec![
            exe.display().to_string(),
            "agent".into(),
            "--server".into(),
            spec.server.clone(),
            "--control".into(),
            format!("unix://{}", upstream.display()),
        ],
    );
    c.flags.precious = true;
    c
}
