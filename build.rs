//! Link options for the `tend` binary.
//!
//! `-z pack-relative-relocs` stores the binary's relative relocations
//! (vtables, string tables: tens of thousands of them in a PIE) as a compact
//! bitmap (DT_RELR) instead of 24-byte `Elf64_Rela` entries: about 34 KB off
//! the release binary, same position independence. The dynamic loader must
//! know DT_RELR (glibc 2.36+); the linker then records that requirement as a
//! symbol version, so an older glibc refuses the binary by name at start-up
//! rather than misbehaving. Linkers that do not know the option ignore it.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
