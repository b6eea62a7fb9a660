//! `tend config-server`: the fleet ConfigServer.

/// Run the ConfigServer with its arguments; returns the exit status.
pub fn main(_args: Vec<String>) -> i32 {
    eprintln!("tend config-server: not implemented yet");
    2
}

/// The supervised ConfigServer child (stub).
pub fn component_spec(
    spec: &crate::config::ConfigServerSpec,
    exe: &std::path::Path,
) -> crate::config::ComponentSpec {
    let mut c = crate::config::ComponentSpec::new(
        "config-server",
        vec![
            exe.display().to_string(),
            "config-server".into(),
            "--listen".into(),
            spec.listen.clone(),
            "--store".into(),
            spec.store.display().to_string(),
        ],
    );
    c.flags.precious = true;
    c
}
