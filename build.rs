//! Links tend with `src/hot.ld`, which places the functions tend runs while
//! it starts and idles together at the front of its code.
//!
//! Why: the kernel maps executable pages 64 KiB at a time around each fault,
//! so startup code scattered over the binary keeps all of it resident in an
//! idle tend. Grouped, the idle daemon keeps a few hundred KiB of its code
//! mapped instead of all of it. The script only orders sections (`INSERT
//! BEFORE .text`), so GNU ld and lld both take it, and a name it lists that no
//! longer exists matches nothing. `make layout` regenerates it.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=src/hot.ld");
    println!("cargo:rerun-if-changed=build.rs");
    let linux = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let Ok(dir) = env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    if linux {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/src/hot.ld");
    }
}
