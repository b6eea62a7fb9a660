//! Configuration: the pies-style syntax, inittab files, and the validated model.
//!
//! Entry points: [`load`] reads a file (detecting inittab by name),
//! [`parse_str`] parses text already in memory (the fleet agent's configs, the
//! fuzzer). Both validate fully: unique tags, known prerequisites, no cycles.

mod error;
mod inittab;
mod lexer;
mod model;
mod parser;
mod syntax;
mod validate;
mod values;

pub use error::{ConfigError, ConfigErrors};
pub use model::*;

use std::path::Path;

/// A signal as tend writes it anywhere (`TERM`, `SIGTERM`, `term` or a
/// number 1–64); the error names what is wrong and suggests a name.
pub fn parse_signal(text: &str) -> Result<i32, String> {
    values::signal(text)
}

/// Which syntax a file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// tend's pies-style syntax.
    Pies,
    /// SysV or BusyBox `/etc/inittab`.
    Inittab,
}

impl Syntax {
    /// The syntax a file's name suggests: `inittab` for files named so.
    pub fn detect(path: &Path) -> Syntax {
        match path.file_name().and_then(|n| n.to_str()) {
            Some(n) if n == "inittab" || n.ends_with(".inittab") => Syntax::Inittab,
            _ => Syntax::Pies,
        }
    }
}

/// Read and validate a configuration file (and everything it includes).
pub fn load(path: &Path, syntax: Option<Syntax>) -> Result<Config, ConfigErrors> {
    let syntax = syntax.unwrap_or_else(|| Syntax::detect(path));
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            message: format!("cannot read: {e}"),
        }])
    })?;
    parse_str(&text, path, syntax)
}

/// Parse and validate configuration text; `file` names it in errors and is
/// the base for relative `include`s.
pub fn parse_str(text: &str, file: &Path, syntax: Syntax) -> Result<Config, ConfigErrors> {
    match syntax {
        Syntax::Pies => parser::parse(text, file),
        Syntax::Inittab => inittab::parse(text, file),
    }
}

/// Parse and validate pies-style text that came from elsewhere (a fleet
/// ConfigServer): like [`parse_str`] but `include` is refused without
/// touching the file system; `name` names the text in errors.
pub fn parse_untrusted(text: &str, name: &Path) -> Result<Config, ConfigErrors> {
    parser::parse_without_includes(text, name)
}
