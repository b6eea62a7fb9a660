//! Configuration errors: each one names file, line and column.

use std::cmp::Ordering;
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
pub(crate) fn sort_in_reading_order(errors: &mut Vec<ConfigError>, files: &[PathBuf]) {
    let key = |e: &ConfigError| {
        let f = files
            .iter()
            .position(|f| *f == e.file)
            .unwrap_or(usize::MAX);
        (f, e.line, e.col)
    };
    sort_with(errors, &|a, b| key(a).cmp(&key(b)));
}

/// Stable sort of `items` by `cmp`.
///
/// Why not `sort_by`: every element type gets its own copy of the std sort
/// (some 4 KiB each); here only positions are sorted, by one copy.
pub(crate) fn sort_with<T>(items: &mut Vec<T>, cmp: &dyn Fn(&T, &T) -> Ordering) {
    let order = sorted_positions(items.len(), &|a, b| match (items.get(a), items.get(b)) {
        (Some(x), Some(y)) => cmp(x, y),
        _ => Ordering::Equal,
    });
    let mut slots: Vec<Option<T>> = std::mem::take(items).into_iter().map(Some).collect();
    items.extend(
        order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take)),
    );
}

/// `0..n` stably sorted by `cmp`.
fn sorted_positions(n: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| cmp(*a, *b));
    order
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

#[cfg(test)]
mod sort_tests {
    use super::*;

    #[test]
    fn sort_with_is_a_stable_sort() {
        let mut items: Vec<(u8, char)> = vec![(3, 'a'), (1, 'b'), (3, 'c'), (0, 'd'), (1, 'e')];
        let mut want = items.clone();
        want.sort_by_key(|x| x.0);
        sort_with(&mut items, &|a, b| a.0.cmp(&b.0));
        assert_eq!(items, want);
        let mut empty: Vec<u8> = Vec::new();
        sort_with(&mut empty, &|a, b| a.cmp(b));
        assert!(empty.is_empty());
    }
}
