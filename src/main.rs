//! The `tend` binary: picks a personality from argv and runs it.
//!
//! `tendctl …` (by symlink) and `tend ctl …` are the client; `tend gateway …`
//! and `tend config-server …` are the helper processes tend supervises;
//! anything else is the daemon.

fn main() {
    // Lossy, not std::env::args(), which panics on bytes that are not
    // UTF-8: as PID 1 the arguments come from the kernel command line.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let invoked_as = args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_default();
    let code = if invoked_as == "tendctl" {
        tend::ctl::main(args[1..].to_vec())
    } else {
        match args.get(1).map(String::as_str) {
            Some("ctl") => tend::ctl::main(args[2..].to_vec()),
            Some("gateway") => tend::gateway::main(args[2..].to_vec()),
            Some("config-server") => tend::fleet::server::main(args[2..].to_vec()),
            Some("agent") => tend::fleet::agent::main(args[2..].to_vec()),
            _ => tend::cli::main(args),
        }
    };
    std::process::exit(code);
}
