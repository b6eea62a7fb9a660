//! The pies-style configuration parser.

use super::{Config, ConfigErrors};
use std::path::Path;

/// Parse pies-style text.
pub fn parse(_text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    Ok(Config {
        files: vec![file.to_path_buf()],
        ..Config::default()
    })
}
