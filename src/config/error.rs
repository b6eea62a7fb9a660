//! Configuration errors: each one names file, line and column.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file it is in.
    pub file: PathBuf,
    /// 1-based line (0 when the problem is the file as a whole).
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong, and where useful what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// Sort `errors` the way a reader meets them: by file (in the order of
/// `files`; files not listed last), then line, then column. One function for
/// every loader, so the sort routine exists once in the binary.
pub(crate) fn sort_in_reading_order(errors: &mut [ConfigError], files: &[PathBuf]) {
    errors.sort_by_key(|e| {
        let f = files
            .iter()
            .position(|f| *f == e.file)
            .unwrap_or(usize::MAX);
        (f, e.line, e.col)
    });
}

/// Every problem found in one load: a parser reports all it can, not just the first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
