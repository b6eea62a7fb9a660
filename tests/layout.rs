//! The binary is linked with `src/hot.ld` (build.rs): the code tend runs at
//! startup sits in `.text.hot`, before the rest. A build that silently lost
//! the script would still work, only with ~550 KiB more resident memory, so
//! this looks at the linked binary itself.

use std::process::Command;

/// `(start, end)` of the section named `name`, from `readelf -SW`.
fn section(binary: &str, name: &str) -> Option<(u64, u64)> {
    let out = Command::new("readelf")
        .args(["-SW", binary])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|line| {
        // "  [17] .text.hot  PROGBITS  00000000000515a0 0505a0 050e58 00  AX ..."
        let line = line.split_once(']')?.1;
        let mut fields = line.split_whitespace();
        (fields.next()? == name).then_some(())?;
        let _kind = fields.next()?;
        let addr = u64::from_str_radix(fields.next()?, 16).ok()?;
        let _offset = fields.next()?;
        let size = u64::from_str_radix(fields.next()?, 16).ok()?;
        Some((addr, addr + size))
    })
}

/// The address of the symbol `name`, from `nm`.
fn symbol(binary: &str, name: &str) -> Option<u64> {
    let out = Command::new("nm").arg(binary).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let addr = fields.next()?;
        let _kind = fields.next()?;
        (fields.next()? == name).then(|| u64::from_str_radix(addr, 16).ok())?
    })
}

#[test]
fn startup_code_is_linked_first() {
    if std::env::var("TEND_LAYOUT").is_ok_and(|v| v == "off") {
        eprintln!("skipped: built with TEND_LAYOUT=off");
        return;
    }
    if Command::new("readelf").arg("--version").output().is_err() {
        eprintln!("skipped: needs readelf and nm (binutils)");
        return;
    }
    let binary = env!("CARGO_BIN_EXE_tend");
    let (hot_start, hot_end) = section(binary, ".text.hot").expect("a .text.hot section");
    let (text_start, _) = section(binary, ".text").expect("a .text section");
    assert!(hot_end <= text_start, ".text.hot must come before .text");
    assert!(
        hot_end - hot_start > 64 * 1024,
        "hot code is {} bytes",
        hot_end - hot_start
    );
    for name in ["main", "_start"] {
        let at = symbol(binary, name).unwrap_or_else(|| panic!("no symbol {name}"));
        assert!(
            (hot_start..hot_end).contains(&at),
            "{name} at {at:#x} is not in .text.hot"
        );
    }
}
