//! Fleet configuration (iLogtail ConfigServer protocol): the server and the agent.

pub mod agent;
pub mod server;
