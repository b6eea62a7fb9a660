//! Links tend with `src/hot.ld`, which places the functions tend runs while
//! it starts and idles together at the front of its code.
//!
//! Why: the kernel maps a program's pages 64 KiB (or a whole page-cache
//! folio) at a time around each fault, so startup code scattered over the
//! binary keeps all of it resident in an idle tend. Grouped, the idle daemon
//! keeps about 300 KiB of its 836 KiB of code mapped. The script only orders
//! sections (`INSERT BEFORE .text`), so GNU ld and lld both take it, and a
//! name it lists that no longer exists matches nothing. `make layout`
//! regenerates it.
//!
//! `TEND_LAYOUT=off` links without it, for a linker that takes no scripts
//! (mold).

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=src/hot.ld");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TEND_LAYOUT");
    let linux = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let wanted = env::var("TEND_LAYOUT").map_or(true, |v| v != "off");
    let Ok(dir) = env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    if linux && wanted {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/src/hot.ld");
    }
}
