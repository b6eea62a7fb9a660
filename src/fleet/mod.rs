//! Fleet configuration (iLogtail ConfigServer protocol): the server and the agent.
//!
//! [`messages`] holds the protocol's messages with their JSON and protobuf
//! encodings (shared by both sides), [`proto`] the hand-written protobuf wire
//! codec under them, [`store`] the server's durable state.

pub mod agent;
pub mod messages;
pub mod proto;
pub mod server;
pub mod store;
