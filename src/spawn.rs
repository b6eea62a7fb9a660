//! Starting component processes.
