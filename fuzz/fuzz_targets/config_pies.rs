//! The pies-style configuration parser on arbitrary text.
//!
//! `include` reads files, so the fuzzer must not be able to name any file on
//! the host: reading `/dev/zero` or a FIFO would hang or exhaust memory, and
//! a real `/etc` file is not what we want to fuzz. Inputs that mention
//! `include` are only run when they cannot leave the sandbox directory: no
//! `/` (no absolute or nested path) and no `..`. Words in this syntax are
//! taken verbatim (no escapes), so the keyword can only appear literally.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tend::config::{Syntax, parse_str};

/// A directory with a few files an `include` may reach: a valid fragment, a
/// self-include, a broken one and a subdirectory of `.conf` files.
fn sandbox() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // One fixed directory (rewritten with the same files by every run)
        // rather than one per process left behind in /tmp.
        let dir = std::env::temp_dir().join("tend-fuzz-include");
        let sub = dir.join("sub");
        let files: [(PathBuf, &str); 4] = [
            (
                dir.join("a.conf"),
                "component a { command \"/bin/true\"; }\n",
            ),
            (dir.join("loop.conf"), "include loop.conf;\n"),
            (dir.join("bad.conf"), "component { mode nope; }\n"),
            (
                sub.join("10-b.conf"),
                "component b { command b; prerequisites a; }\n",
            ),
        ];
        let _ = std::fs::create_dir_all(&sub);
        for (path, text) in files {
            let _ = std::fs::write(path, text);
        }
        dir
    })
}

/// Can this text only include files inside the sandbox?
fn includes_stay_inside(text: &str) -> bool {
    !text.contains("include") || (!text.contains('/') && !text.contains(".."))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if !includes_stay_inside(&text) {
        return;
    }
    let file = sandbox().join("fuzz.conf");
    match parse_str(&text, &file, Syntax::Pies) {
        Ok(config) => {
            // A valid config's components have unique, non-empty tags.
            let mut tags: Vec<&str> = config.components.iter().map(|c| c.tag.as_str()).collect();
            assert!(tags.iter().all(|t| !t.is_empty()));
            tags.sort_unstable();
            let n = tags.len();
            tags.dedup();
            assert_eq!(n, tags.len(), "duplicate tags in a valid config");
            // Every prerequisite names a component of the config.
            for c in &config.components {
                for p in &c.prerequisites {
                    assert!(
                        tags.binary_search(&p.as_str()).is_ok(),
                        "unknown prerequisite {p}"
                    );
                }
            }
        }
        Err(errors) => {
            // Every error renders, and there is at least one.
            assert!(!errors.0.is_empty());
            let _ = errors.to_string();
        }
    }
});
