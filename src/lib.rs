//! tend: a small process supervisor and init for Linux with a JSON HTTP control API.
//!
//! The binary is thin (`src/main.rs`); everything lives here so integration
//! tests, benches and fuzz targets can reach the pieces. Start reading at
//! [`supervisor`], the main loop, and `ARCHITECTURE.md`.

pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod ctl;
pub mod fleet;
pub mod gateway;
pub mod shared;
pub mod signals;
pub mod spawn;
pub mod supervisor;
pub mod table;

/// tend's version, from Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
