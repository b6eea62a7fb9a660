//! The ConfigServer messages (seed 002) with their JSON and protobuf encodings.
//!
//! Field numbers. The seed gives field names and their order, not numbers; these
//! follow the rule "data messages: in the seed's order from 1; request envelopes:
//! `request_id` = 1 then the parameters from 2 in the seed's order; response
//! envelopes: `response_id` = 1, `code` = 2 (string), `message` = 3, payload = 4".
//!
//! | message | fields |
//! |---|---|
//! | AgentGroupTag | name=1, value=2 |
//! | AgentGroup | group_name=1, description=2, tags=3 (repeated AgentGroupTag) |
//! | Config | config_name=1, agent_type=2, description=3, content=4 |
//! | Agent | agent_id=1, agent_type=2, ip=3, version=4, running_status=5, startup_time=6, latest_heartbeat_time=7, tags=8 (map), running_details=9 (map) |
//! | ConfigUpdateInfo | config_name=1, update_status=2 (SAME=0, NEW=1, DELETED=2, MODIFIED=3), config_version=3, content=4 |
//! | RunningStatistics | cpu=1 (float), memory=2, extras=100 (map) |
//! | CreateAgentGroupRequest, UpdateAgentGroupRequest | request_id=1, agent_group=2 |
//! | DeleteAgentGroupRequest, GetAgentGroupRequest, GetAppliedConfigsForAgentGroupRequest, ListAgentsRequest | request_id=1, group_name=2 |
//! | ListAgentGroupsRequest, ListConfigsRequest | request_id=1 |
//! | CreateConfigRequest, UpdateConfigRequest | request_id=1, config_detail=2 |
//! | DeleteConfigRequest, GetConfigRequest, GetAppliedAgentGroupsRequest | request_id=1, config_name=2 |
//! | ApplyConfigToAgentGroupRequest, RemoveConfigFromAgentGroupRequest | request_id=1, group_name=2, config_name=3 |
//! | HeartBeatRequest | request_id=1, agent_id=2, agent_type=3, agent_version=4, ip=5, tags=6 (map), running_status=7, startup_time=8 |
//! | RunningStatisticsRequest | request_id=1, agent_id=2, running_details=3 (RunningStatistics) |
//! | AlarmRequest | request_id=1, agent_id=2, type=3, detail=4 |
//! | GetConfigListRequest | request_id=1, agent_id=2, config_versions=3 (map string→int64) |
//! | every response | response_id=1, code=2, message=3 |
//! | GetAgentGroupResponse | + agent_group=4 |
//! | ListAgentGroupsResponse | + agent_groups=4 (repeated) |
//! | GetConfigResponse | + config_detail=4 |
//! | ListConfigsResponse | + config_details=4 (repeated) |
//! | GetAppliedConfigsForAgentGroupResponse | + config_names=4 (repeated string) |
//! | GetAppliedAgentGroupsResponse | + agent_group_names=4 (repeated string) |
//! | ListAgentsResponse | + agents=4 (repeated Agent) |
//! | GetConfigListResponse | + config_update_infos=4 (repeated ConfigUpdateInfo) |
//!
//! Maps are repeated entry messages (key=1, value=2). JSON uses the same field
//! names; enums are their names (`"update_status":"MODIFIED"`); int64 values
//! are written as numbers and read from numbers or decimal strings (protojson
//! writes them as strings). Unknown fields are skipped in both encodings.
//!
//! Use: the server decodes with [`Request::decode`] / [`Request::from_json`] and
//! answers with [`Response`]; an agent builds a [`Request`] (for example with
//! `agent_id`, `tags`, … set and the rest `Default`), sends
//! `req.encode(Api::HeartBeat)` with `Content-Type: application/x-protobuf`
//! to `Api::HeartBeat.path()`, and reads the answer with
//! `Response::decode(&body, Api::HeartBeat.payload())`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub use super::proto::DecodeError;
use super::proto::{self, Reader, Writer};
use crate::api::json as out_json;

/// A message with both encodings.
pub trait Message: Sized {
    /// Protobuf encoding.
    fn encode(&self) -> Vec<u8>;
    /// Protobuf decoding; unknown fields are skipped.
    fn decode(buf: &[u8]) -> Result<Self, DecodeError>;
    /// JSON encoding (the seed's field names), appended to `out` as
    /// serde_json writes the `Value` [`Message::to_json`] gives: keys in
    /// order, no spaces.
    fn write_json(&self, out: &mut Vec<u8>);
    /// JSON encoding as a value.
    fn to_json(&self) -> Value {
        let mut out = Vec::new();
        self.write_json(&mut out);
        // Own output: always valid JSON.
        serde_json::from_slice(&out).unwrap_or(Value::Null)
    }
    /// JSON decoding; `at` names the value in errors (e.g. `agent_group`).
    fn from_json(v: &Value, at: &str) -> Result<Self, DecodeError>;
}

/// `AgentGroupTag`: a tag an agent group matches on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentGroupTag {
    /// Tag name.
    pub name: String,
    /// Tag value.
    pub value: String,
}

/// `AgentGroup`: a named set of tags; agents carrying any of them belong to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentGroup {
    /// Unique name.
    pub group_name: String,
    /// Free text.
    pub description: String,
    /// Tags matched against the agents' tags.
    pub tags: Vec<AgentGroupTag>,
}

/// `Config`: one configuration pushed to agents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Unique name.
    pub config_name: String,
    /// Agent type the config is for.
    pub agent_type: String,
    /// Free text.
    pub description: String,
    /// The configuration text (for tend agents: tend config syntax).
    pub content: String,
}

/// `Agent`: what the server knows of an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agent {
    /// Unique id.
    pub agent_id: String,
    /// Agent type.
    pub agent_type: String,
    /// Address it reported.
    pub ip: String,
    /// Agent version.
    pub version: String,
    /// Its reported status, or `offline` after 3 missed heartbeats.
    pub running_status: String,
    /// When it started (unix seconds).
    pub startup_time: i64,
    /// Its last heartbeat (unix seconds).
    pub latest_heartbeat_time: i64,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Its last `RunningStatistics` (`cpu`, `memory` and the extras).
    pub running_details: BTreeMap<String, String>,
}

/// `ConfigUpdateInfo.update_status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum UpdateStatus {
    /// The agent's version is current.
    #[default]
    Same,
    /// The agent does not have this config yet.
    New,
    /// The agent has a config the server no longer gives it.
    Deleted,
    /// The server has a newer version.
    Modified,
}

impl UpdateStatus {
    /// Name as used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            UpdateStatus::Same => "SAME",
            UpdateStatus::New => "NEW",
            UpdateStatus::Deleted => "DELETED",
            UpdateStatus::Modified => "MODIFIED",
        }
    }

    /// Protobuf enum number.
    pub fn number(self) -> i64 {
        match self {
            UpdateStatus::Same => 0,
            UpdateStatus::New => 1,
            UpdateStatus::Deleted => 2,
            UpdateStatus::Modified => 3,
        }
    }

    /// From the protobuf enum number.
    pub fn from_number(n: i64) -> Option<UpdateStatus> {
        [
            UpdateStatus::Same,
            UpdateStatus::New,
            UpdateStatus::Deleted,
            UpdateStatus::Modified,
        ]
        .into_iter()
        .find(|s| s.number() == n)
    }

    /// From the JSON name.
    pub fn from_name(name: &str) -> Option<UpdateStatus> {
        [
            UpdateStatus::Same,
            UpdateStatus::New,
            UpdateStatus::Deleted,
            UpdateStatus::Modified,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// `ConfigUpdateInfo`: one line of a `GetConfigList` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigUpdateInfo {
    /// Config name.
    pub config_name: String,
    /// What the agent should do with it.
    pub update_status: UpdateStatus,
    /// The server's version (not set for `DELETED`).
    pub config_version: i64,
    /// The content (set for `NEW` and `MODIFIED`).
    pub content: String,
}

/// `RunningStatistics`: an agent's resource usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunningStatistics {
    /// CPU usage.
    pub cpu: f32,
    /// Memory usage.
    pub memory: i64,
    /// Anything else.
    pub extras: BTreeMap<String, String>,
}

// ---------------------------------------------------------------- JSON helpers

/// Append `key` (the raw bytes of `,"name":` or `{"name":`) and then `s`.
fn put_str(out: &mut Vec<u8>, key: &[u8], s: &str) {
    out.extend_from_slice(key);
    out_json::push_str(out, s);
}

/// Append `key` and then `n`.
fn put_int(out: &mut Vec<u8>, key: &[u8], n: i64) {
    out.extend_from_slice(key);
    out_json::push_int(out, n);
}

/// Append `key` and then `map` as an object (a `BTreeMap` is in key order).
fn put_string_map(out: &mut Vec<u8>, key: &[u8], map: &BTreeMap<String, String>) {
    out.extend_from_slice(key);
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out_json::push_str(out, k);
        out.push(b':');
        out_json::push_str(out, v);
    }
    out.push(b'}');
}

/// Append `items` as an array.
fn write_list<T: Message>(out: &mut Vec<u8>, items: &[T]) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item.write_json(out);
    }
    out.push(b']');
}

fn as_object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, DecodeError> {
    v.as_object()
        .ok_or_else(|| DecodeError::new(format!("{at}: expected a JSON object")))
}

fn child(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

fn j_string(o: &Map<String, Value>, key: &str, at: &str) -> Result<String, DecodeError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(DecodeError::new(format!(
            "{}: expected a string",
            child(at, key)
        ))),
    }
}

fn value_i64(v: &Value, at: &str) -> Result<i64, DecodeError> {
    let parsed = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| DecodeError::new(format!("{at}: expected a 64-bit integer")))
}

fn j_i64(o: &Map<String, Value>, key: &str, at: &str) -> Result<i64, DecodeError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => value_i64(v, &child(at, key)),
    }
}

fn j_f32(o: &Map<String, Value>, key: &str, at: &str) -> Result<f32, DecodeError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(0.0),
        Some(Value::Number(n)) => {
            let f = n.as_f64().ok_or_else(|| {
                DecodeError::new(format!("{}: expected a number", child(at, key)))
            })?;
            // 1e300 is valid JSON but becomes infinity as an f32.
            finite(f as f32, &child(at, key))
        }
        Some(_) => Err(DecodeError::new(format!(
            "{}: expected a number",
            child(at, key)
        ))),
    }
}

/// Refuse infinities and NaN: JSON cannot carry them (serde_json writes
/// `null`), so letting them in would make the protobuf and JSON encodings of
/// the same message disagree, and no statistic is meaningfully infinite.
fn finite(f: f32, field: &str) -> Result<f32, DecodeError> {
    if f.is_finite() {
        Ok(f)
    } else {
        Err(DecodeError::new(format!("{field}: not a finite number")))
    }
}

fn j_string_map(
    o: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<BTreeMap<String, String>, DecodeError> {
    let at = child(at, key);
    let mut out = BTreeMap::new();
    match o.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => {
                        return Err(DecodeError::new(format!("{at}.{k}: expected a string")));
                    }
                };
                out.insert(k.clone(), s);
            }
        }
        Some(_) => return Err(DecodeError::new(format!("{at}: expected an object"))),
    }
    Ok(out)
}

fn j_i64_map(
    o: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<BTreeMap<String, i64>, DecodeError> {
    let at = child(at, key);
    let mut out = BTreeMap::new();
    match o.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                out.insert(k.clone(), value_i64(v, &format!("{at}.{k}"))?);
            }
        }
        Some(_) => return Err(DecodeError::new(format!("{at}: expected an object"))),
    }
    Ok(out)
}

fn j_list<T: Message>(o: &Map<String, Value>, key: &str, at: &str) -> Result<Vec<T>, DecodeError> {
    let at = child(at, key);
    match o.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| T::from_json(v, &format!("{at}[{i}]")))
            .collect(),
        Some(_) => Err(DecodeError::new(format!("{at}: expected an array"))),
    }
}

fn j_string_list(o: &Map<String, Value>, key: &str, at: &str) -> Result<Vec<String>, DecodeError> {
    let at = child(at, key);
    match o.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| DecodeError::new(format!("{at}[{i}]: expected a string")))
            })
            .collect(),
        Some(_) => Err(DecodeError::new(format!("{at}: expected an array"))),
    }
}

fn j_message<T: Message>(
    o: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<T>, DecodeError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => T::from_json(v, &child(at, key)).map(Some),
    }
}

// ------------------------------------------------------------ data messages

impl Message for AgentGroupTag {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.string(1, &self.name);
        w.string(2, &self.value);
        w.finish()
    }

    fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut out = AgentGroupTag::default();
        let mut r = Reader::new(buf);
        while let Some((n, v)) = r.next_field()? {
            match n {
                1 => out.name = v.string("name")?,
                2 => out.value = v.string("value")?,
                _ => {}
            }
        }
        Ok(out)
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        put_str(out, b"{\"name\":", &self.name);
        put_str(out, b",\"value\":", &self.value);
        out.push(b'}');
    }

    fn from_json(v: &Value, at: &str) -> Result<Self, DecodeError> {
        let o = as_object(v, at)?;
        Ok(AgentGroupTag {
            name: j_string(o, "name", at)?,
            value: j_string(o, "value", at)?,
        })
    }
}

impl Message for AgentGroup {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.string(1, &self.group_name);
        w.string(2, &self.description);
        for t in &self.tags {
            w.message(3, &t.encode());
        }
        w.finish()
    }

    fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut out = AgentGroup::default();
        let mut r = Reader::new(buf);
        while let Some((n, v)) = r.next_field()? {
            match n {
                1 => out.group_name = v.string("group_name")?,
                2 => out.description = v.string("description")?,
                3 => out.tags.push(AgentGroupTag::decode(v.bytes("tags")?)?),
                _ => {}
            }
        }
        Ok(out)
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        put_str(out, b"{\"description\":", &self.description);
        put_str(out, b",\"group_name\":", &self.group_name);
        out.extend_from_slice(b",\"tags\":");
        write_list(out, &self.tags);
        out.push(b'}');
    }

    fn from_json(v: &Value, at: &str) -> Result<Self, DecodeError> {
        let o = as_object(v, at)?;
        Ok(AgentGroup {
            group_name: j_string(o, "group_name", at)?,
            description: j_string(o, "description", at)?,
            tags: j_list(o, "tags", at)?,
        })
    }
}

impl Message for Config {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.string(1, &self.config_name);
        w.string(2, &self.agent_type);
        w.string(3, &self.description);
        w.string(4, &self.content);
        w.finish()
    }

    fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut out = Config::default();
        let mut r = Reader::new(buf);
        while let Some((n, v)) = r.next_field()? {
            match n {
                1 => out.config_name = v.string("config_name")?,
                2 => out.agent_type = v.string("agent_type")?,
                3 => out.description = v.string("description")?,
                4 => out.content = v.string("content")?,
                _ => {}
            }
        }
        Ok(out)
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        put_str(out, b"{\"agent_type\":", &self.agent_type);
        put_str(out, b",\"config_name\":", &self.config_name);
        put_str(out, b",\"content\":", &self.content);
        put_str(out, b",\"description\":", &self.description);
        out.push(b'}');
    }

    fn from_json(v: &Value, at: &str) -> Result<Self, DecodeError> {
        let o = as_object(v, at)?;
        Ok(Config {
            config_name: j_string(o, "config_name", at)?,
            agent_type: j_string(o, "agent_type", at)?,
            description: j_string(o, "description", at)?,
            content: j_string(o, "content", at)?,
        })
    }
}

impl Message for Agent {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.string(1, &self.agent_id);
        w.string(2, &self.agent_type);
        w.string(3, &self.ip);
        w.string(4, &self.version);
        w.string(5, &self.running_status);
        w.int64(6, self.startup_time);
        w.int64(7, self.latest_heartbeat_time);
        w.string_map(8, &self.tags);
        w.string_map(9, &self.running_details);
        w.finish()
    }

    fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut out = Agent::default();
        let mut r = Reader::new(buf);
        while let Some((n, v)) = r.next_field()? {
            match n {
                1 => out.agent_id = v.string("agent_id")?,
                2 => out.agent_type = v.string("agent_type")?,
                3 => out.ip = v.string("ip")?,
                4 => out.version = v.string("version")?,
                5 => out.running_status = v.string("running_status")?,
                6 => out.startup_time = v.int64("startup_time")?,
                7 => out.latest_heartbeat_time = v.int64("latest_heartbeat_time")?,
                8 => proto::string_map_entry(v.bytes("tags")?, "tags", &mut out.tags)?,
                9 => proto::string_map_entry(
                    v.bytes("running_details")?,
                    "running_details",
                    &mut out.running_details,
                )?,
                _ => {}
            }
        }
        Ok(out)
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        put_str(out, b"{\"agent_id\":", &self.agent_id);
        put_str(out, b",\"agent_type\":", &self.agent_type);
        put_str(out, b",\"ip\":", &self.ip);
        put_int(
            out,
            b",\"latest_heartbeat_time\":",
            self.latest_heartbeat_time,
        );
        put_string_map(out, b",\"running_details\":", &self.running_details);
        put_str(out, b",\"running_status\":", &self.running_status);
        put_int(out, b",\"startup_time\":", self.startup_time);
        put_string_map(out, b",\"tags\":", &self.tags);
        put_str(out, b",\"version\":", &self.version);
        out.push(b'}');
    }

    fn from_json(v: &Value, at: &str) -> Result<Self, DecodeError> {
        let o = as_object(v, at)?;
        Ok(Agent {
            agent_id: j_string(o, "agent_id", at)?,
            agent_type: j_string(o, "agent_type", at)?,
            ip: j_string(o, "ip", at)?,
            version: j_string(o, "version", at)?,
            running_status: j_string(o, "running_status", at)?,
            startup_time: j_i64(o, "startup_time", at)?,
            latest_heartbeat_time: j_i64(o, "latest_heartbeat_time", at)?,
            tags: j_string_map(o, "tags", at)?,
            running_details: j_string_map(o, "running_details", at)?,
        })
    }
}

impl Message for ConfigUpdateInfo {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.string(1, &self.config_name);
        w.int64(2, self.update_status.number());
        w.int64(3, self.config_version);
        w.string(4, &self.content);
        w.finish()
    }

    fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut out = ConfigUpdateInfo::default();
        let mut r = Reader::new(buf);
        while let Some((n, v)) = r.next_field()? {
            match n {
                1 => out.config_name = v.string("config_name")?,
                2 => {
                    let n = v.int64("update_status")?;
                    out.update_status = UpdateStatus::from_number(n).ok_or_else(|| {
                        DecodeError::new(format!("update_status: unknown value {n}"))
                    })?;
                }
                3 => out.config_version = v.int64("config_version")?,
                4 => out.content = v.string("content")?,
                _ => {}
            }
        }
        Ok(out)
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        put_str(out, b"{\"config_name\":", &self.config_name);
        put_int(out, b",\"config_version\":", self.config_version);
        put_str(out, b",\"content\":", &self.content);
        put_str(out, b",\"update_status\":", self.update_status.name());
        out.push(b'}');
    }

    fn from_json(v: &Value, at: &str) -> Result<Self, DecodeError> {
        let o = as_object(v, at)?;
        let status_at = child(at, "update_status");
        let update_status = match o.get("update_status") {
            None | Some(Value::Null) => UpdateStatus::Same,
            Some(Value::String(s)) => UpdateStatus::from_name(s)
                .ok_or_else(|| DecodeError::new(format!("{status_at}: unknown value {s}")))?,
            Some(v) => {
                let n = value_i64(v, &status_at)?;
                UpdateStatus::from_number(n)
                    .ok_or_else(|| DecodeError::new(format!("{status_at}: unknown value {n}")))?
            }
        };
        Ok(ConfigUpdateInfo {
            config_name: j_string(o, "config_name", at)?,
            update_status,
            config_version: j_i64(o, "config_version", at)?,
            content: j_string(o, "content", at)?,
        })
    }
}

impl Message for RunningStatistics {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.float(1, self.cpu);
        w.int64(2, self.memory);
        w.string_map(100, &self.extras);
        w.finish()
    }

    fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut out = RunningStatistics::default();
        let mut r = Reader::new(buf);
        while let Some((n, v)) = r.next_field()? {
            match n {
                1 => out.cpu = finite(v.float("cpu")?, "cpu")?,
                2 => out.memory = v.int64("memory")?,
                100 => proto::string_map_entry(v.bytes("extras")?, "extras", &mut out.extras)?,
                _ => {}
            }
        }
        Ok(out)
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"cpu\":");
        // As a `Value` holds it: widened to f64, `null` when not finite.
        if serde_json::to_writer(&mut *out, &f64::from(self.cpu)).is_err() {
            out.extend_from_slice(b"null");
        }
        put_string_map(out, b",\"extras\":", &self.extras);
        put_int(out, b",\"memory\":", self.memory);
        out.push(b'}');
    }

    fn from_json(v: &Value, at: &str) -> Result<Self, DecodeError> {
        let o = as_object(v, at)?;
        Ok(RunningStatistics {
            cpu: j_f32(o, "cpu", at)?,
            memory: j_i64(o, "memory", at)?,
            extras: j_string_map(o, "extras", at)?,
        })
    }
}

// ---------------------------------------------------------------- the API

/// HTTP method of an API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
}

impl Method {
    /// The method's name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// One request parameter; its protobuf number is its index in
/// [`Api::params`] plus 2, its JSON name is [`Param::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// `agent_group` (AgentGroup).
    AgentGroup,
    /// `config_detail` (Config).
    ConfigDetail,
    /// `group_name` (string).
    GroupName,
    /// `config_name` (string).
    ConfigName,
    /// `agent_id` (string).
    AgentId,
    /// `agent_type` (string).
    AgentType,
    /// `agent_version` (string).
    AgentVersion,
    /// `ip` (string).
    Ip,
    /// `tags` (map<string, string>).
    Tags,
    /// `running_status` (string).
    RunningStatus,
    /// `startup_time` (int64).
    StartupTime,
    /// `running_details` (RunningStatistics).
    RunningDetails,
    /// `type` (string).
    AlarmType,
    /// `detail` (string).
    Detail,
    /// `config_versions` (map<string, int64>).
    ConfigVersions,
}

impl Param {
    /// The field name in JSON and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Param::AgentGroup => "agent_group",
            Param::ConfigDetail => "config_detail",
            Param::GroupName => "group_name",
            Param::ConfigName => "config_name",
            Param::AgentId => "agent_id",
            Param::AgentType => "agent_type",
            Param::AgentVersion => "agent_version",
            Param::Ip => "ip",
            Param::Tags => "tags",
            Param::RunningStatus => "running_status",
            Param::StartupTime => "startup_time",
            Param::RunningDetails => "running_details",
            Param::AlarmType => "type",
            Param::Detail => "detail",
            Param::ConfigVersions => "config_versions",
        }
    }
}

/// Which payload a response carries in field 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// Nothing beyond code and message.
    None,
    /// `agent_group`.
    AgentGroup,
    /// `agent_groups`.
    AgentGroups,
    /// `config_detail`.
    Config,
    /// `config_details`.
    Configs,
    /// `config_names`.
    ConfigNames,
    /// `agent_group_names`.
    AgentGroupNames,
    /// `agents`.
    Agents,
    /// `config_update_infos`.
    ConfigUpdateInfos,
}

impl PayloadKind {
    /// The JSON field name of the payload.
    pub fn name(self) -> &'static str {
        match self {
            PayloadKind::None => "",
            PayloadKind::AgentGroup => "agent_group",
            PayloadKind::AgentGroups => "agent_groups",
            PayloadKind::Config => "config_detail",
            PayloadKind::Configs => "config_details",
            PayloadKind::ConfigNames => "config_names",
            PayloadKind::AgentGroupNames => "agent_group_names",
            PayloadKind::Agents => "agents",
            PayloadKind::ConfigUpdateInfos => "config_update_infos",
        }
    }
}

/// Every call of the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /User/CreateAgentGroup`
    CreateAgentGroup,
    /// `PUT /User/UpdateAgentGroup`
    UpdateAgentGroup,
    /// `DELETE /User/DeleteAgentGroup`
    DeleteAgentGroup,
    /// `GET /User/GetAgentGroup`
    GetAgentGroup,
    /// `GET /User/ListAgentGroups`
    ListAgentGroups,
    /// `POST /User/CreateConfig`
    CreateConfig,
    /// `PUT /User/UpdateConfig`
    UpdateConfig,
    /// `DELETE /User/DeleteConfig`
    DeleteConfig,
    /// `GET /User/GetConfig`
    GetConfig,
    /// `GET /User/ListConfigs`
    ListConfigs,
    /// `PUT /User/ApplyConfigToAgentGroup`
    ApplyConfigToAgentGroup,
    /// `DELETE /User/RemoveConfigFromAgentGroup`
    RemoveConfigFromAgentGroup,
    /// `GET /User/GetAppliedConfigsForAgentGroup`
    GetAppliedConfigsForAgentGroup,
    /// `GET /User/GetAppliedAgentGroups`
    GetAppliedAgentGroups,
    /// `GET /User/ListAgents`
    ListAgents,
    /// `POST /Agent/HeartBeat`
    HeartBeat,
    /// `POST /Agent/RunningStatistics`
    RunningStatistics,
    /// `POST /Agent/Alarm`
    Alarm,
    /// `POST /Agent/GetConfigList`
    GetConfigList,
}

impl Api {
    /// Every call, in the seed's order.
    pub const ALL: [Api; 19] = [
        Api::CreateAgentGroup,
        Api::UpdateAgentGroup,
        Api::DeleteAgentGroup,
        Api::GetAgentGroup,
        Api::ListAgentGroups,
        Api::CreateConfig,
        Api::UpdateConfig,
        Api::DeleteConfig,
        Api::GetConfig,
        Api::ListConfigs,
        Api::ApplyConfigToAgentGroup,
        Api::RemoveConfigFromAgentGroup,
        Api::GetAppliedConfigsForAgentGroup,
        Api::GetAppliedAgentGroups,
        Api::ListAgents,
        Api::HeartBeat,
        Api::RunningStatistics,
        Api::Alarm,
        Api::GetConfigList,
    ];

    /// The path, without a trailing slash (the server accepts both).
    pub fn path(self) -> &'static str {
        match self {
            Api::CreateAgentGroup => "/User/CreateAgentGroup",
            Api::UpdateAgentGroup => "/User/UpdateAgentGroup",
            Api::DeleteAgentGroup => "/User/DeleteAgentGroup",
            Api::GetAgentGroup => "/User/GetAgentGroup",
            Api::ListAgentGroups => "/User/ListAgentGroups",
            Api::CreateConfig => "/User/CreateConfig",
            Api::UpdateConfig => "/User/UpdateConfig",
            Api::DeleteConfig => "/User/DeleteConfig",
            Api::GetConfig => "/User/GetConfig",
            Api::ListConfigs => "/User/ListConfigs",
            Api::ApplyConfigToAgentGroup => "/User/ApplyConfigToAgentGroup",
            Api::RemoveConfigFromAgentGroup => "/User/RemoveConfigFromAgentGroup",
            Api::GetAppliedConfigsForAgentGroup => "/User/GetAppliedConfigsForAgentGroup",
            Api::GetAppliedAgentGroups => "/User/GetAppliedAgentGroups",
            Api::ListAgents => "/User/ListAgents",
            Api::HeartBeat => "/Agent/HeartBeat",
            Api::RunningStatistics => "/Agent/RunningStatistics",
            Api::Alarm => "/Agent/Alarm",
            Api::GetConfigList => "/Agent/GetConfigList",
        }
    }

    /// The call for a path (a trailing slash is ignored).
    pub fn from_path(path: &str) -> Option<Api> {
        let path = path.strip_suffix('/').unwrap_or(path);
        Api::ALL.into_iter().find(|a| a.path() == path)
    }

    /// The HTTP method the seed gives the call.
    pub fn method(self) -> Method {
        match self {
            Api::CreateAgentGroup | Api::CreateConfig => Method::Post,
            Api::UpdateAgentGroup | Api::UpdateConfig | Api::ApplyConfigToAgentGroup => Method::Put,
            Api::DeleteAgentGroup | Api::DeleteConfig | Api::RemoveConfigFromAgentGroup => {
                Method::Delete
            }
            Api::GetAgentGroup
            | Api::ListAgentGroups
            | Api::GetConfig
            | Api::ListConfigs
            | Api::GetAppliedConfigsForAgentGroup
            | Api::GetAppliedAgentGroups
            | Api::ListAgents => Method::Get,
            Api::HeartBeat | Api::RunningStatistics | Api::Alarm | Api::GetConfigList => {
                Method::Post
            }
        }
    }

    /// The request parameters in field order (field number = index + 2).
    pub fn params(self) -> &'static [Param] {
        match self {
            Api::CreateAgentGroup | Api::UpdateAgentGroup => &[Param::AgentGroup],
            Api::CreateConfig | Api::UpdateConfig => &[Param::ConfigDetail],
            Api::DeleteAgentGroup
            | Api::GetAgentGroup
            | Api::GetAppliedConfigsForAgentGroup
            | Api::ListAgents => &[Param::GroupName],
            Api::DeleteConfig | Api::GetConfig | Api::GetAppliedAgentGroups => &[Param::ConfigName],
            Api::ListAgentGroups | Api::ListConfigs => &[],
            Api::ApplyConfigToAgentGroup | Api::RemoveConfigFromAgentGroup => {
                &[Param::GroupName, Param::ConfigName]
            }
            Api::HeartBeat => &[
                Param::AgentId,
                Param::AgentType,
                Param::AgentVersion,
                Param::Ip,
                Param::Tags,
                Param::RunningStatus,
                Param::StartupTime,
            ],
            Api::RunningStatistics => &[Param::AgentId, Param::RunningDetails],
            Api::Alarm => &[Param::AgentId, Param::AlarmType, Param::Detail],
            Api::GetConfigList => &[Param::AgentId, Param::ConfigVersions],
        }
    }

    /// The parameters that must be present (non-empty for strings).
    ///
    /// Why not all the seed's "required" ones: protobuf cannot tell an unset
    /// map or int64 from an empty one, so only names and messages are checked.
    pub fn required(self) -> &'static [Param] {
        match self {
            Api::HeartBeat | Api::GetConfigList => &[Param::AgentId],
            Api::RunningStatistics => &[Param::AgentId, Param::RunningDetails],
            Api::Alarm => &[Param::AgentId, Param::AlarmType],
            other => other.params(),
        }
    }

    /// What the response carries.
    pub fn payload(self) -> PayloadKind {
        match self {
            Api::GetAgentGroup => PayloadKind::AgentGroup,
            Api::ListAgentGroups => PayloadKind::AgentGroups,
            Api::GetConfig => PayloadKind::Config,
            Api::ListConfigs => PayloadKind::Configs,
            Api::GetAppliedConfigsForAgentGroup => PayloadKind::ConfigNames,
            Api::GetAppliedAgentGroups => PayloadKind::AgentGroupNames,
            Api::ListAgents => PayloadKind::Agents,
            Api::GetConfigList => PayloadKind::ConfigUpdateInfos,
            _ => PayloadKind::None,
        }
    }
}

/// A request of any call: the union of every call's parameters.
/// [`Api::params`] says which ones a call carries on the wire.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// Echoed as `response_id`.
    pub request_id: String,
    /// `agent_group`.
    pub agent_group: Option<AgentGroup>,
    /// `config_detail`.
    pub config_detail: Option<Config>,
    /// `group_name`.
    pub group_name: String,
    /// `config_name`.
    pub config_name: String,
    /// `agent_id`.
    pub agent_id: String,
    /// `agent_type`.
    pub agent_type: String,
    /// `agent_version`.
    pub agent_version: String,
    /// `ip`.
    pub ip: String,
    /// `tags`.
    pub tags: BTreeMap<String, String>,
    /// `running_status`.
    pub running_status: String,
    /// `startup_time` (unix seconds).
    pub startup_time: i64,
    /// `running_details`.
    pub running_details: Option<RunningStatistics>,
    /// `type` of an alarm.
    pub alarm_type: String,
    /// `detail` of an alarm.
    pub detail: String,
    /// `config_versions`: config name to the version the agent has.
    pub config_versions: BTreeMap<String, i64>,
}

impl Request {
    /// Protobuf encoding for `api`.
    pub fn encode(&self, api: Api) -> Vec<u8> {
        let mut w = Writer::new();
        w.string(1, &self.request_id);
        for (i, p) in api.params().iter().enumerate() {
            // At most 7 parameters: the cast cannot truncate.
            self.encode_param(&mut w, i as u32 + 2, *p);
        }
        w.finish()
    }

    fn encode_param(&self, w: &mut Writer, n: u32, p: Param) {
        match p {
            Param::AgentGroup => {
                if let Some(g) = &self.agent_group {
                    w.message(n, &g.encode());
                }
            }
            Param::ConfigDetail => {
                if let Some(c) = &self.config_detail {
                    w.message(n, &c.encode());
                }
            }
            Param::RunningDetails => {
                if let Some(s) = &self.running_details {
                    w.message(n, &s.encode());
                }
            }
            Param::Tags => w.string_map(n, &self.tags),
            Param::ConfigVersions => w.int64_map(n, &self.config_versions),
            Param::StartupTime => w.int64(n, self.startup_time),
            other => w.string(n, self.string_param(other).unwrap_or_default()),
        }
    }

    fn string_param(&self, p: Param) -> Option<&str> {
        Some(match p {
            Param::GroupName => &self.group_name,
            Param::ConfigName => &self.config_name,
            Param::AgentId => &self.agent_id,
            Param::AgentType => &self.agent_type,
            Param::AgentVersion => &self.agent_version,
            Param::Ip => &self.ip,
            Param::RunningStatus => &self.running_status,
            Param::AlarmType => &self.alarm_type,
            Param::Detail => &self.detail,
            _ => return None,
        })
    }

    fn string_param_mut(&mut self, p: Param) -> Option<&mut String> {
        Some(match p {
            Param::GroupName => &mut self.group_name,
            Param::ConfigName => &mut self.config_name,
            Param::AgentId => &mut self.agent_id,
            Param::AgentType => &mut self.agent_type,
            Param::AgentVersion => &mut self.agent_version,
            Param::Ip => &mut self.ip,
            Param::RunningStatus => &mut self.running_status,
            Param::AlarmType => &mut self.alarm_type,
            Param::Detail => &mut self.detail,
            _ => return None,
        })
    }

    /// Protobuf decoding for `api`; unknown fields are skipped.
    pub fn decode(buf: &[u8], api: Api) -> Result<Request, DecodeError> {
        let mut out = Request::default();
        let mut r = Reader::new(buf);
        while let Some((n, v)) = r.next_field()? {
            if n == 1 {
                out.request_id = v.string("request_id")?;
                continue;
            }
            let param = (n as usize)
                .checked_sub(2)
                .and_then(|i| api.params().get(i));
            if let Some(p) = param {
                out.decode_param(*p, v)?;
            }
        }
        Ok(out)
    }

    fn decode_param(&mut self, p: Param, v: proto::Value<'_>) -> Result<(), DecodeError> {
        let name = p.name();
        match p {
            Param::AgentGroup => self.agent_group = Some(AgentGroup::decode(v.bytes(name)?)?),
            Param::ConfigDetail => self.config_detail = Some(Config::decode(v.bytes(name)?)?),
            Param::RunningDetails => {
                self.running_details = Some(RunningStatistics::decode(v.bytes(name)?)?)
            }
            Param::Tags => proto::string_map_entry(v.bytes(name)?, name, &mut self.tags)?,
            Param::ConfigVersions => {
                proto::int64_map_entry(v.bytes(name)?, name, &mut self.config_versions)?
            }
            Param::StartupTime => self.startup_time = v.int64(name)?,
            other => {
                let s = v.string(name)?;
                if let Some(slot) = self.string_param_mut(other) {
                    *slot = s;
                }
            }
        }
        Ok(())
    }

    /// JSON encoding for `api`.
    pub fn to_json(&self, api: Api) -> Value {
        // Own output: always valid JSON.
        serde_json::from_slice(&self.json_bytes(api)).unwrap_or(Value::Null)
    }

    /// JSON encoding for `api` as serde_json writes [`Request::to_json`]:
    /// keys in order, no spaces; `request_id` only when set, messages only
    /// when present.
    pub fn json_bytes(&self, api: Api) -> Vec<u8> {
        // `None` stands for `request_id`; sorted by name by insertion, as
        // the std sort would be a sizeable copy of its own in the binary.
        let mut keys: Vec<Option<Param>> = vec![None];
        for p in api.params() {
            let at = keys
                .iter()
                .position(|k| key_name(*k) > p.name())
                .unwrap_or(keys.len());
            keys.insert(at, Some(*p));
        }
        let mut out = vec![b'{'];
        for key in keys {
            let start = out.len();
            out.push(b',');
            out_json::push_str(&mut out, key_name(key));
            out.push(b':');
            let written = match key {
                None => self.write_string(&mut out, &self.request_id),
                Some(p) => self.write_param(&mut out, p),
            };
            if !written {
                out.truncate(start);
            }
        }
        // The first key's comma, if any, goes: `{,"a":1}` becomes `{"a":1}`.
        if out.get(1) == Some(&b',') {
            out.remove(1);
        }
        out.push(b'}');
        out
    }

    /// Append `s` unless it is empty (only `request_id` is left out when
    /// empty); whether something was written.
    fn write_string(&self, out: &mut Vec<u8>, s: &str) -> bool {
        if s.is_empty() {
            return false;
        }
        out_json::push_str(out, s);
        true
    }

    /// Append the value of `p`; false when it is an absent message.
    fn write_param(&self, out: &mut Vec<u8>, p: Param) -> bool {
        match p {
            Param::AgentGroup => match &self.agent_group {
                Some(g) => g.write_json(out),
                None => return false,
            },
            Param::ConfigDetail => match &self.config_detail {
                Some(c) => c.write_json(out),
                None => return false,
            },
            Param::RunningDetails => match &self.running_details {
                Some(s) => s.write_json(out),
                None => return false,
            },
            Param::Tags => put_string_map(out, b"", &self.tags),
            Param::ConfigVersions => {
                out.push(b'{');
                for (i, (k, v)) in self.config_versions.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out_json::push_str(out, k);
                    out.push(b':');
                    out_json::push_int(out, *v);
                }
                out.push(b'}');
            }
            Param::StartupTime => out_json::push_int(out, self.startup_time),
            other => out_json::push_str(out, self.string_param(other).unwrap_or_default()),
        }
        true
    }

    /// JSON decoding for `api`; unknown fields are ignored.
    pub fn from_json(v: &Value, api: Api) -> Result<Request, DecodeError> {
        let o = as_object(v, "request body")?;
        let mut out = Request {
            request_id: j_string(o, "request_id", "")?,
            ..Request::default()
        };
        for p in api.params() {
            let name = p.name();
            match p {
                Param::AgentGroup => out.agent_group = j_message(o, name, "")?,
                Param::ConfigDetail => out.config_detail = j_message(o, name, "")?,
                Param::RunningDetails => out.running_details = j_message(o, name, "")?,
                Param::Tags => out.tags = j_string_map(o, name, "")?,
                Param::ConfigVersions => out.config_versions = j_i64_map(o, name, "")?,
                Param::StartupTime => out.startup_time = j_i64(o, name, "")?,
                other => {
                    let s = j_string(o, name, "")?;
                    if let Some(slot) = out.string_param_mut(*other) {
                        *slot = s;
                    }
                }
            }
        }
        Ok(out)
    }

    /// The first required parameter of `api` that is missing or empty.
    pub fn missing(&self, api: Api) -> Option<Param> {
        api.required().iter().copied().find(|p| match p {
            Param::AgentGroup => self.agent_group.is_none(),
            Param::ConfigDetail => self.config_detail.is_none(),
            Param::RunningDetails => self.running_details.is_none(),
            Param::Tags | Param::ConfigVersions | Param::StartupTime => false,
            other => self.string_param(*other).is_none_or(str::is_empty),
        })
    }
}

/// The JSON name of a request key (`None`: `request_id`).
fn key_name(key: Option<Param>) -> &'static str {
    key.map_or("request_id", Param::name)
}

/// Response codes of the seed's table, with their HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// 200: success.
    Accept,
    /// 400: the agent group exists.
    AgentGroupAlreadyExist,
    /// 400: the config exists.
    ConfigAlreadyExist,
    /// 400: the agent exists.
    AgentAlreadyExist,
    /// 400: a parameter is not acceptable.
    InvalidParameter,
    /// 400: the request is malformed or misses a field.
    BadRequest,
    /// 404: no such agent group.
    AgentGroupNotExist,
    /// 404: no such config.
    ConfigNotExist,
    /// 404: no such agent.
    AgentNotExist,
    /// 500: the server failed (e.g. the store could not be written).
    InternalServerError,
    /// 500: the request was not received in time.
    RequestTimeout,
    /// 503: the server is at capacity.
    ServerBusy,
}

impl Code {
    const ALL: [Code; 12] = [
        Code::Accept,
        Code::AgentGroupAlreadyExist,
        Code::ConfigAlreadyExist,
        Code::AgentAlreadyExist,
        Code::InvalidParameter,
        Code::BadRequest,
        Code::AgentGroupNotExist,
        Code::ConfigNotExist,
        Code::AgentNotExist,
        Code::InternalServerError,
        Code::RequestTimeout,
        Code::ServerBusy,
    ];

    /// The code's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Code::Accept => "Accept",
            Code::AgentGroupAlreadyExist => "AgentGroupAlreadyExist",
            Code::ConfigAlreadyExist => "ConfigAlreadyExist",
            Code::AgentAlreadyExist => "AgentAlreadyExist",
            Code::InvalidParameter => "InvalidParameter",
            Code::BadRequest => "BadRequest",
            Code::AgentGroupNotExist => "AgentGroupNotExist",
            Code::ConfigNotExist => "ConfigNotExist",
            Code::AgentNotExist => "AgentNotExist",
            Code::InternalServerError => "InternalServerError",
            Code::RequestTimeout => "RequestTimeout",
            Code::ServerBusy => "ServerBusy",
        }
    }

    /// The code for a name.
    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The HTTP status the seed gives the code.
    pub fn http_status(self) -> u16 {
        match self {
            Code::Accept => 200,
            Code::AgentGroupAlreadyExist
            | Code::ConfigAlreadyExist
            | Code::AgentAlreadyExist
            | Code::InvalidParameter
            | Code::BadRequest => 400,
            Code::AgentGroupNotExist | Code::ConfigNotExist | Code::AgentNotExist => 404,
            Code::InternalServerError | Code::RequestTimeout => 500,
            Code::ServerBusy => 503,
        }
    }
}

/// A response payload (field 4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Payload {
    /// No payload.
    #[default]
    None,
    /// `agent_group`.
    AgentGroup(AgentGroup),
    /// `agent_groups`.
    AgentGroups(Vec<AgentGroup>),
    /// `config_detail`.
    Config(Config),
    /// `config_details`.
    Configs(Vec<Config>),
    /// `config_names`.
    ConfigNames(Vec<String>),
    /// `agent_group_names`.
    AgentGroupNames(Vec<String>),
    /// `agents`.
    Agents(Vec<Agent>),
    /// `config_update_infos`.
    ConfigUpdateInfos(Vec<ConfigUpdateInfo>),
}

impl Payload {
    /// Which kind it is.
    pub fn kind(&self) -> PayloadKind {
        match self {
            Payload::None => PayloadKind::None,
            Payload::AgentGroup(_) => PayloadKind::AgentGroup,
            Payload::AgentGroups(_) => PayloadKind::AgentGroups,
            Payload::Config(_) => PayloadKind::Config,
            Payload::Configs(_) => PayloadKind::Configs,
            Payload::ConfigNames(_) => PayloadKind::ConfigNames,
            Payload::AgentGroupNames(_) => PayloadKind::AgentGroupNames,
            Payload::Agents(_) => PayloadKind::Agents,
            Payload::ConfigUpdateInfos(_) => PayloadKind::ConfigUpdateInfos,
        }
    }

    fn empty(kind: PayloadKind) -> Payload {
        match kind {
            PayloadKind::None | PayloadKind::AgentGroup | PayloadKind::Config => Payload::None,
            PayloadKind::AgentGroups => Payload::AgentGroups(Vec::new()),
            PayloadKind::Configs => Payload::Configs(Vec::new()),
            PayloadKind::ConfigNames => Payload::ConfigNames(Vec::new()),
            PayloadKind::AgentGroupNames => Payload::AgentGroupNames(Vec::new()),
            PayloadKind::Agents => Payload::Agents(Vec::new()),
            PayloadKind::ConfigUpdateInfos => Payload::ConfigUpdateInfos(Vec::new()),
        }
    }

    fn encode(&self, w: &mut Writer) {
        match self {
            Payload::None => {}
            Payload::AgentGroup(g) => w.message(4, &g.encode()),
            Payload::Config(c) => w.message(4, &c.encode()),
            Payload::AgentGroups(l) => l.iter().for_each(|x| w.message(4, &x.encode())),
            Payload::Configs(l) => l.iter().for_each(|x| w.message(4, &x.encode())),
            Payload::Agents(l) => l.iter().for_each(|x| w.message(4, &x.encode())),
            Payload::ConfigUpdateInfos(l) => l.iter().for_each(|x| w.message(4, &x.encode())),
            Payload::ConfigNames(l) | Payload::AgentGroupNames(l) => {
                l.iter().for_each(|x| w.bytes(4, x.as_bytes()))
            }
        }
    }

    /// Add one field-4 element of `kind` to the payload.
    fn push(&mut self, kind: PayloadKind, v: proto::Value<'_>) -> Result<(), DecodeError> {
        let name = kind.name();
        match (kind, &mut *self) {
            (PayloadKind::AgentGroup, _) => {
                *self = Payload::AgentGroup(AgentGroup::decode(v.bytes(name)?)?)
            }
            (PayloadKind::Config, _) => *self = Payload::Config(Config::decode(v.bytes(name)?)?),
            (PayloadKind::AgentGroups, Payload::AgentGroups(l)) => {
                l.push(AgentGroup::decode(v.bytes(name)?)?)
            }
            (PayloadKind::Configs, Payload::Configs(l)) => l.push(Config::decode(v.bytes(name)?)?),
            (PayloadKind::Agents, Payload::Agents(l)) => l.push(Agent::decode(v.bytes(name)?)?),
            (PayloadKind::ConfigUpdateInfos, Payload::ConfigUpdateInfos(l)) => {
                l.push(ConfigUpdateInfo::decode(v.bytes(name)?)?)
            }
            (PayloadKind::ConfigNames, Payload::ConfigNames(l))
            | (PayloadKind::AgentGroupNames, Payload::AgentGroupNames(l)) => {
                l.push(v.string(name)?)
            }
            // No payload expected, or a kind/slot mismatch that `empty` rules out.
            _ => {}
        }
        Ok(())
    }

    /// Append the payload's value (nothing for `None`).
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Payload::None => {}
            Payload::AgentGroup(g) => g.write_json(out),
            Payload::Config(c) => c.write_json(out),
            Payload::AgentGroups(l) => write_list(out, l),
            Payload::Configs(l) => write_list(out, l),
            Payload::Agents(l) => write_list(out, l),
            Payload::ConfigUpdateInfos(l) => write_list(out, l),
            Payload::ConfigNames(l) | Payload::AgentGroupNames(l) => {
                out_json::push_strs(out, l.iter().map(String::as_str))
            }
        }
    }

    /// Append `"name":value`.
    fn put(&self, out: &mut Vec<u8>) {
        out_json::push_str(out, self.kind().name());
        out.push(b':');
        self.write_json(out);
    }

    fn from_json(o: &Map<String, Value>, kind: PayloadKind) -> Result<Payload, DecodeError> {
        let key = kind.name();
        Ok(match kind {
            PayloadKind::None => Payload::None,
            PayloadKind::AgentGroup => {
                j_message(o, key, "")?.map_or(Payload::None, Payload::AgentGroup)
            }
            PayloadKind::Config => j_message(o, key, "")?.map_or(Payload::None, Payload::Config),
            PayloadKind::AgentGroups => Payload::AgentGroups(j_list(o, key, "")?),
            PayloadKind::Configs => Payload::Configs(j_list(o, key, "")?),
            PayloadKind::Agents => Payload::Agents(j_list(o, key, "")?),
            PayloadKind::ConfigUpdateInfos => Payload::ConfigUpdateInfos(j_list(o, key, "")?),
            PayloadKind::ConfigNames => Payload::ConfigNames(j_string_list(o, key, "")?),
            PayloadKind::AgentGroupNames => Payload::AgentGroupNames(j_string_list(o, key, "")?),
        })
    }
}

/// A response of any call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The request's `request_id` (empty when none was sent).
    pub response_id: String,
    /// Outcome.
    pub code: Code,
    /// Human-readable detail.
    pub message: String,
    /// The call's result.
    pub payload: Payload,
}

impl Response {
    /// A response with no payload.
    pub fn new(code: Code, message: impl Into<String>) -> Response {
        Response {
            response_id: String::new(),
            code,
            message: message.into(),
            payload: Payload::None,
        }
    }

    /// Protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.string(1, &self.response_id);
        w.string(2, self.code.name());
        w.string(3, &self.message);
        self.payload.encode(&mut w);
        w.finish()
    }

    /// Protobuf decoding of a response whose payload is `kind`
    /// (see [`Api::payload`]).
    pub fn decode(buf: &[u8], kind: PayloadKind) -> Result<Response, DecodeError> {
        let mut out = Response::new(Code::Accept, "");
        out.payload = Payload::empty(kind);
        let mut code = String::new();
        let mut r = Reader::new(buf);
        while let Some((n, v)) = r.next_field()? {
            match n {
                1 => out.response_id = v.string("response_id")?,
                2 => code = v.string("code")?,
                3 => out.message = v.string("message")?,
                4 => out.payload.push(kind, v)?,
                _ => {}
            }
        }
        out.code = parse_code(&code)?;
        Ok(out)
    }

    /// JSON encoding: `response_id` only when set, then `code`, `message`
    /// and the payload under its field name.
    pub fn to_json(&self) -> Value {
        // Own output: always valid JSON.
        serde_json::from_slice(&self.json_bytes()).unwrap_or(Value::Null)
    }

    /// The JSON encoding as serde_json writes [`Response::to_json`]: keys
    /// in order, no spaces.
    pub fn json_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // The payload's name sorts before `code` (`agent_…`) or between
        // `code` and `message` (`config_…`).
        let name = self.payload.kind().name();
        let first = !name.is_empty() && name < "code";
        out.push(b'{');
        if first {
            self.payload.put(&mut out);
            out.push(b',');
        }
        put_str(&mut out, b"\"code\":", self.code.name());
        if !name.is_empty() && !first {
            out.push(b',');
            self.payload.put(&mut out);
        }
        put_str(&mut out, b",\"message\":", &self.message);
        if !self.response_id.is_empty() {
            put_str(&mut out, b",\"response_id\":", &self.response_id);
        }
        out.push(b'}');
        out
    }

    /// JSON decoding of a response whose payload is `kind`.
    pub fn from_json(v: &Value, kind: PayloadKind) -> Result<Response, DecodeError> {
        let o = as_object(v, "response body")?;
        Ok(Response {
            response_id: j_string(o, "response_id", "")?,
            code: parse_code(&j_string(o, "code", "")?)?,
            message: j_string(o, "message", "")?,
            payload: Payload::from_json(o, kind)?,
        })
    }
}

fn parse_code(name: &str) -> Result<Code, DecodeError> {
    Code::from_name(name).ok_or_else(|| DecodeError::new(format!("unknown response code {name:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full_request() -> Request {
        let mut tags = BTreeMap::new();
        tags.insert("env".to_string(), "prod".to_string());
        let mut versions = BTreeMap::new();
        versions.insert("a".to_string(), 3);
        versions.insert("b".to_string(), -1);
        Request {
            request_id: "r1".into(),
            agent_group: Some(AgentGroup {
                group_name: "g".into(),
                description: "d".into(),
                tags: vec![AgentGroupTag {
                    name: "env".into(),
                    value: "prod".into(),
                }],
            }),
            config_detail: Some(Config {
                config_name: "c".into(),
                agent_type: "tend".into(),
                description: "x".into(),
                content: "component a { command \"/bin/true\"; }".into(),
            }),
            group_name: "g".into(),
            config_name: "c".into(),
            agent_id: "agent-1".into(),
            agent_type: "tend".into(),
            agent_version: "0.1".into(),
            ip: "10.0.0.1".into(),
            tags,
            running_status: "running".into(),
            startup_time: 1_700_000_000,
            running_details: Some(RunningStatistics {
                cpu: 0.25,
                memory: 1 << 40,
                extras: BTreeMap::from([("k".to_string(), "v".to_string())]),
            }),
            alarm_type: "reload".into(),
            detail: "bad config".into(),
            config_versions: versions,
        }
    }

    /// The request reduced to the fields `api` carries.
    fn only(api: Api, full: &Request) -> Request {
        let json = full.to_json(api);
        Request::from_json(&json, api).unwrap()
    }

    #[test]
    fn every_request_round_trips_in_both_encodings() {
        let full = full_request();
        for api in Api::ALL {
            let want = only(api, &full);
            assert_eq!(want.request_id, "r1");
            let back = Request::decode(&want.encode(api), api).unwrap();
            assert_eq!(back, want, "{api:?} protobuf");
            let back = Request::from_json(&want.to_json(api), api).unwrap();
            assert_eq!(back, want, "{api:?} json");
            assert_eq!(want.missing(api), None, "{api:?}");
        }
    }

    #[test]
    fn heartbeat_wire_numbers_match_the_table() {
        let req = only(Api::HeartBeat, &full_request());
        let buf = req.encode(Api::HeartBeat);
        let mut r = Reader::new(&buf);
        let mut numbers = Vec::new();
        while let Some((n, _)) = r.next_field().unwrap() {
            numbers.push(n);
        }
        assert_eq!(numbers, vec![1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn missing_required_fields_are_named() {
        let req = Request::default();
        assert_eq!(req.missing(Api::CreateAgentGroup), Some(Param::AgentGroup));
        assert_eq!(req.missing(Api::GetConfig), Some(Param::ConfigName));
        assert_eq!(req.missing(Api::HeartBeat), Some(Param::AgentId));
        assert_eq!(req.missing(Api::ListConfigs), None);
    }

    #[test]
    fn every_payload_round_trips() {
        let g = full_request().agent_group.unwrap();
        let c = full_request().config_detail.unwrap();
        let agent = Agent {
            agent_id: "a".into(),
            agent_type: "tend".into(),
            ip: "1.2.3.4".into(),
            version: "1".into(),
            running_status: "offline".into(),
            startup_time: -5,
            latest_heartbeat_time: 99,
            tags: BTreeMap::from([("x".into(), "y".into())]),
            running_details: BTreeMap::from([("cpu".into(), "0.5".into())]),
        };
        let info = ConfigUpdateInfo {
            config_name: "c".into(),
            update_status: UpdateStatus::Modified,
            config_version: 4,
            content: "x".into(),
        };
        let payloads = [
            Payload::None,
            Payload::AgentGroup(g.clone()),
            Payload::AgentGroups(vec![g.clone(), AgentGroup::default()]),
            Payload::Config(c.clone()),
            Payload::Configs(vec![c]),
            Payload::ConfigNames(vec!["a".into(), "".into()]),
            Payload::AgentGroupNames(vec![]),
            Payload::Agents(vec![agent]),
            Payload::ConfigUpdateInfos(vec![info, ConfigUpdateInfo::default()]),
        ];
        for p in payloads {
            let resp = Response {
                response_id: "id".into(),
                code: Code::ConfigNotExist,
                message: "m".into(),
                payload: p.clone(),
            };
            let kind = p.kind();
            assert_eq!(Response::decode(&resp.encode(), kind).unwrap(), resp);
            assert_eq!(Response::from_json(&resp.to_json(), kind).unwrap(), resp);
            assert_canonical(resp.json_bytes());
            let anonymous = Response {
                response_id: String::new(),
                ..resp
            };
            assert_canonical(anonymous.json_bytes());
        }
    }

    /// `bytes` are what serde_json writes for the value they hold.
    fn assert_canonical(bytes: Vec<u8>) {
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            serde_json::to_string(&v).unwrap()
        );
    }

    /// How requests were encoded when a `Value` was built for them.
    fn old_request_json(r: &Request, api: Api) -> Value {
        let mut o = Map::new();
        if !r.request_id.is_empty() {
            o.insert("request_id".into(), Value::from(r.request_id.clone()));
        }
        for p in api.params() {
            let v = match p {
                Param::AgentGroup => r.agent_group.as_ref().map(Message::to_json),
                Param::ConfigDetail => r.config_detail.as_ref().map(Message::to_json),
                Param::RunningDetails => r.running_details.as_ref().map(Message::to_json),
                Param::Tags => Some(json!(r.tags)),
                Param::ConfigVersions => Some(json!(r.config_versions)),
                Param::StartupTime => Some(json!(r.startup_time)),
                other => r.string_param(*other).map(Value::from),
            };
            if let Some(v) = v {
                o.insert(p.name().into(), v);
            }
        }
        Value::Object(o)
    }

    #[test]
    fn request_json_is_what_a_value_gave() {
        let empty = Request::default();
        for api in Api::ALL {
            for r in [full_request(), empty.clone()] {
                let bytes = r.json_bytes(api);
                let old = serde_json::to_string(&old_request_json(&r, api)).unwrap();
                assert_eq!(String::from_utf8(bytes).unwrap(), old, "{api:?}");
            }
        }
    }

    #[test]
    fn json_is_what_a_value_gave() {
        let r = full_request();
        let g = r.agent_group.clone().unwrap();
        let stats = r.running_details.clone().unwrap();
        let agent = Agent {
            agent_id: "a\"\n".into(),
            tags: BTreeMap::from([("x".into(), "y".into()), ("a".into(), "é".into())]),
            running_details: BTreeMap::from([("cpu".into(), "0.5".into())]),
            startup_time: i64::MIN,
            ..Agent::default()
        };
        let info = ConfigUpdateInfo {
            update_status: UpdateStatus::New,
            config_version: 7,
            ..ConfigUpdateInfo::default()
        };
        let tags: Vec<Value> = g
            .tags
            .iter()
            .map(|t| json!({"name": t.name, "value": t.value}))
            .collect();
        let pairs = [
            (
                g.to_json(),
                json!({"group_name": g.group_name, "description": g.description, "tags": tags}),
            ),
            (
                agent.to_json(),
                json!({
                    "agent_id": agent.agent_id,
                    "agent_type": agent.agent_type,
                    "ip": agent.ip,
                    "version": agent.version,
                    "running_status": agent.running_status,
                    "startup_time": agent.startup_time,
                    "latest_heartbeat_time": agent.latest_heartbeat_time,
                    "tags": agent.tags,
                    "running_details": agent.running_details,
                }),
            ),
            (
                info.to_json(),
                json!({
                    "config_name": info.config_name,
                    "update_status": info.update_status.name(),
                    "config_version": info.config_version,
                    "content": info.content,
                }),
            ),
            (
                stats.to_json(),
                json!({"cpu": stats.cpu, "memory": stats.memory, "extras": stats.extras}),
            ),
        ];
        for (ours, value) in pairs {
            assert_eq!(ours, value);
        }
        let mut out = Vec::new();
        agent.write_json(&mut out);
        assert_canonical(out);
    }

    #[test]
    fn json_enum_names_and_int64_strings() {
        let info = ConfigUpdateInfo {
            config_name: "c".into(),
            update_status: UpdateStatus::Modified,
            config_version: 2,
            content: String::new(),
        };
        assert_eq!(info.to_json()["update_status"], "MODIFIED");
        let v = json!({"agent_id": "a", "config_versions": {"x": "12", "y": 3}});
        let req = Request::from_json(&v, Api::GetConfigList).unwrap();
        assert_eq!(req.config_versions["x"], 12);
        assert_eq!(req.config_versions["y"], 3);
        let bad = json!({"agent_id": 5});
        let err = Request::from_json(&bad, Api::HeartBeat).unwrap_err();
        assert!(err.message.contains("agent_id"), "{err}");
    }

    #[test]
    fn garbage_never_panics() {
        // A cheap deterministic fuzz: every prefix and a family of byte flips.
        let buf = full_request().encode(Api::HeartBeat);
        let mut seed: u32 = 1;
        for cut in 0..=buf.len() {
            for api in Api::ALL {
                let _ = Request::decode(&buf[..cut], api);
                let _ = Response::decode(&buf[..cut], api.payload());
            }
        }
        for _ in 0..2000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let mut b = buf.clone();
            let i = (seed as usize) % b.len();
            b[i] ^= (seed >> 16) as u8;
            for api in Api::ALL {
                let _ = Request::decode(&b, api);
                let _ = Response::decode(&b, api.payload());
            }
        }
    }
}
