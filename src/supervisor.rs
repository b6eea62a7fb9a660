//! The main loop.
