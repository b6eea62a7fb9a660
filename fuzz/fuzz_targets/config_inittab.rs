//! The inittab (SysV/BusyBox) parser on arbitrary text. It reads no files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tend::config::{Syntax, parse_str};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_str(&text, Path::new("/etc/inittab"), Syntax::Inittab) {
        Ok(config) => {
            assert!(config.inittab);
            // Tags name components in URLs: unique and non-empty.
            let mut tags: Vec<&str> = config.components.iter().map(|c| c.tag.as_str()).collect();
            assert!(tags.iter().all(|t| !t.is_empty()));
            tags.sort_unstable();
            let n = tags.len();
            tags.dedup();
            assert_eq!(n, tags.len(), "duplicate tags in a valid inittab");
        }
        Err(errors) => {
            assert!(!errors.0.is_empty());
            let _ = errors.to_string();
        }
    }
});
