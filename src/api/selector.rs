//! pies component selectors: JSON queries that pick rows of the table.
//!
//! Grammar (pies manual, "/programs"): `null` and `false` match nothing,
//! `true` matches everything, and objects `{"op": OP, "arg": ARG}` with
//! `component` (alias `tag`), `type`, `mode`, `active`, `status`, `not`,
//! `and`, `or`, plus `true`/`false`/`null` spelled as ops. A selector is
//! parsed once into a [`Selector`] and then evaluated per component, so a
//! malformed one is refused before anything is done.

use crate::config::Mode;
use crate::table::{Component, Kind, Status};
use serde_json::Value;
use std::fmt;

/// How deeply selectors may nest. Bounds the parser's recursion and the work
/// one request can cause; real selectors are two or three levels deep.
pub const MAX_DEPTH: usize = 64;

/// A parsed selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Matches nothing (`null`, `false`).
    Nothing,
    /// Matches everything (`true`).
    All,
    /// The component with this tag.
    Tag(String),
    /// Every row of this type.
    Type(Kind),
    /// Every row of this mode; `None` for a pies mode tend does not have
    /// (`inetd`, `accept`…), which matches nothing.
    Mode(Option<Mode>),
    /// Every active row.
    Active,
    /// Every row with this status.
    Status(Status),
    /// The negation.
    Not(Box<Selector>),
    /// All of these (an empty list matches everything).
    And(Vec<Selector>),
    /// Any of these (an empty list matches nothing).
    Or(Vec<Selector>),
}

/// Why a selector was refused; displays as `selector: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError(String);

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "selector: {}", self.0)
    }
}

impl std::error::Error for SelectorError {}

fn error<T>(message: impl Into<String>) -> Result<T, SelectorError> {
    Err(SelectorError(message.into()))
}

/// pies modes that tend does not implement: valid in a selector, matching nothing.
const FOREIGN_MODES: [&str; 5] = ["inetd", "nostartaccept", "accept", "pass", "pass_fd"];

impl Selector {
    /// Parse a selector from JSON text.
    pub fn parse(text: &[u8]) -> Result<Selector, SelectorError> {
        let value: Value = serde_json::from_slice(text).map_err(|e| {
            SelectorError(format!(
                "invalid JSON at line {} column {} ({})",
                e.line(),
                e.column(),
                reason_of(&e)
            ))
        })?;
        Selector::from_json(&value)
    }

    /// Build a selector from an already parsed JSON value.
    pub fn from_json(value: &Value) -> Result<Selector, SelectorError> {
        parse_value(value, 0)
    }

    /// The pies `/programs/TAG` shortcut: the *component* (not command) with this tag.
    pub fn tag_shortcut(tag: &str) -> Selector {
        Selector::And(vec![
            Selector::Type(Kind::Component),
            Selector::Tag(tag.to_string()),
        ])
    }

    /// Does this selector pick the component?
    pub fn matches(&self, c: &Component) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::All => true,
            Selector::Tag(tag) => c.tag() == tag,
            Selector::Type(kind) => c.kind == *kind,
            Selector::Mode(mode) => Some(c.mode()) == *mode,
            Selector::Active => c.active,
            Selector::Status(status) => c.status == *status,
            Selector::Not(inner) => !inner.matches(c),
            Selector::And(all) => all.iter().all(|s| s.matches(c)),
            Selector::Or(any) => any.iter().any(|s| s.matches(c)),
        }
    }
}

/// serde_json's message without its trailing " at line L column C".
fn reason_of(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(cut) => full.get(..cut).unwrap_or(&full).to_string(),
        None => full,
    }
}

fn parse_value(value: &Value, depth: usize) -> Result<Selector, SelectorError> {
    if depth >= MAX_DEPTH {
        return error(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    match value {
        Value::Null | Value::Bool(false) => Ok(Selector::Nothing),
        Value::Bool(true) => Ok(Selector::All),
        Value::Object(map) => {
            let op = match map.get("op") {
                Some(Value::String(op)) => op.as_str(),
                Some(_) => return error("`op` must be a string"),
                None => return error("missing `op`"),
            };
            parse_op(op, map.get("arg"), depth)
        }
        other => error(format!(
            "expected an object, true, false or null, got {}",
            json_kind(other)
        )),
    }
}

fn parse_op(op: &str, arg: Option<&Value>, depth: usize) -> Result<Selector, SelectorError> {
    match op {
        "null" | "false" => Ok(Selector::Nothing),
        "true" => Ok(Selector::All),
        "active" => Ok(Selector::Active),
        "component" | "tag" => Ok(Selector::Tag(string_arg(op, arg, "a tag")?.to_string())),
        "type" => parse_type(string_arg(op, arg, "\"component\" or \"command\"")?),
        "mode" => parse_mode(string_arg(op, arg, "a mode name")?),
        "status" => parse_status(string_arg(op, arg, "a status name")?),
        "not" => match arg {
            Some(inner) => Ok(Selector::Not(Box::new(parse_value(inner, depth + 1)?))),
            None => error("`not` needs a selector in `arg`"),
        },
        "and" | "or" => {
            let Some(Value::Array(items)) = arg else {
                return error(format!("`{op}` needs an array in `arg`"));
            };
            let parts = items
                .iter()
                .map(|item| parse_value(item, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if op == "and" {
                Selector::And(parts)
            } else {
                Selector::Or(parts)
            })
        }
        other => error(format!("unknown op `{other}`")),
    }
}

fn string_arg<'v>(op: &str, arg: Option<&'v Value>, what: &str) -> Result<&'v str, SelectorError> {
    match arg {
        Some(Value::String(s)) => Ok(s),
        _ => error(format!("`{op}` needs {what} (a string) in `arg`")),
    }
}

fn parse_type(name: &str) -> Result<Selector, SelectorError> {
    match name {
        "component" => Ok(Selector::Type(Kind::Component)),
        "command" => Ok(Selector::Type(Kind::Command)),
        other => error(format!(
            "unknown type `{other}` (expected component or command)"
        )),
    }
}

fn parse_mode(name: &str) -> Result<Selector, SelectorError> {
    // pies calls the default mode `exec`; tend calls it `respawn`.
    let name = if name == "exec" { "respawn" } else { name };
    match Mode::from_name(name) {
        Some(mode) => Ok(Selector::Mode(Some(mode))),
        None if FOREIGN_MODES.contains(&name) => Ok(Selector::Mode(None)),
        None => error(format!("unknown mode `{name}`")),
    }
}

fn parse_status(name: &str) -> Result<Selector, SelectorError> {
    match Status::from_name(name) {
        Some(status) => Ok(Selector::Status(status)),
        None => error(format!(
            "unknown status `{name}` (expected stopped, running, listener, sleeping, stopping or finished)"
        )),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ComponentSpec;
    use crate::table::Origin;

    fn component(tag: &str, mode: Mode, status: Status, active: bool, kind: Kind) -> Component {
        let mut spec = ComponentSpec::new(tag, vec!["/bin/true".to_string()]);
        spec.mode = mode;
        let mut c = Component::new(spec, kind, Origin::Config);
        c.status = status;
        c.active = active;
        c
    }

    fn rows() -> Vec<Component> {
        vec![
            component("web", Mode::Respawn, Status::Running, true, Kind::Component),
            component("db", Mode::Respawn, Status::Sleeping, true, Kind::Component),
            component("init", Mode::Once, Status::Finished, true, Kind::Component),
            component(
                "off",
                Mode::Respawn,
                Status::Stopped,
                false,
                Kind::Component,
            ),
            component("hook", Mode::Once, Status::Running, true, Kind::Command),
        ]
    }

    fn select(text: &str) -> Vec<String> {
        let s = Selector::parse(text.as_bytes()).unwrap();
        rows()
            .iter()
            .filter(|c| s.matches(c))
            .map(|c| c.tag().to_string())
            .collect()
    }

    fn parse_error(text: &str) -> String {
        Selector::parse(text.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn literals() {
        assert!(select("null").is_empty());
        assert!(select("false").is_empty());
        assert_eq!(select("true").len(), 5);
        assert_eq!(select(r#"{"op":"true"}"#).len(), 5);
        assert!(select(r#"{"op":"false"}"#).is_empty());
        assert!(select(r#"{"op":"null"}"#).is_empty());
    }

    #[test]
    fn component_and_tag() {
        assert_eq!(select(r#"{"op":"component","arg":"db"}"#), ["db"]);
        assert_eq!(select(r#"{"op":"tag","arg":"hook"}"#), ["hook"]);
        assert!(select(r#"{"op":"component","arg":"nope"}"#).is_empty());
    }

    #[test]
    fn type_mode_status_active() {
        assert_eq!(select(r#"{"op":"type","arg":"command"}"#), ["hook"]);
        assert_eq!(select(r#"{"op":"type","arg":"component"}"#).len(), 4);
        assert_eq!(select(r#"{"op":"mode","arg":"once"}"#), ["init", "hook"]);
        assert_eq!(
            select(r#"{"op":"mode","arg":"exec"}"#),
            ["web", "db", "off"]
        );
        assert!(select(r#"{"op":"mode","arg":"inetd"}"#).is_empty());
        assert_eq!(select(r#"{"op":"status","arg":"sleeping"}"#), ["db"]);
        assert_eq!(select(r#"{"op":"active"}"#), ["web", "db", "init", "hook"]);
    }

    #[test]
    fn not_and_or() {
        assert_eq!(select(r#"{"op":"not","arg":{"op":"active"}}"#), ["off"]);
        assert_eq!(
            select(
                r#"{"op":"and","arg":[{"op":"type","arg":"component"},
                   {"op":"not","arg":{"op":"mode","arg":"inetd"}},
                   {"op":"status","arg":"running"}]}"#
            ),
            ["web"]
        );
        assert_eq!(
            select(r#"{"op":"or","arg":[{"op":"tag","arg":"db"},{"op":"tag","arg":"off"}]}"#),
            ["db", "off"]
        );
        assert_eq!(select(r#"{"op":"and","arg":[]}"#).len(), 5);
        assert!(select(r#"{"op":"or","arg":[]}"#).is_empty());
    }

    #[test]
    fn tag_shortcut_skips_commands() {
        let s = Selector::tag_shortcut("hook");
        assert!(!rows().iter().any(|c| s.matches(c)));
        let s = Selector::tag_shortcut("web");
        assert_eq!(rows().iter().filter(|c| s.matches(c)).count(), 1);
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(parse_error(r#"{"op":"foo"}"#), "selector: unknown op `foo`");
        assert_eq!(
            parse_error(r#"{"op":"and","arg":{}}"#),
            "selector: `and` needs an array in `arg`"
        );
        assert_eq!(
            parse_error(r#"{"op":"or"}"#),
            "selector: `or` needs an array in `arg`"
        );
        assert_eq!(parse_error(r#"{"arg":1}"#), "selector: missing `op`");
        assert_eq!(
            parse_error(r#"{"op":1}"#),
            "selector: `op` must be a string"
        );
        assert_eq!(
            parse_error(r#"{"op":"not"}"#),
            "selector: `not` needs a selector in `arg`"
        );
        assert!(parse_error(r#"{"op":"component"}"#).contains("`component` needs a tag"));
        assert!(parse_error(r#"{"op":"tag","arg":3}"#).contains("`tag` needs a tag"));
        assert!(parse_error(r#"{"op":"type","arg":"x"}"#).contains("unknown type `x`"));
        assert!(parse_error(r#"{"op":"type"}"#).contains("`type` needs"));
        assert!(parse_error(r#"{"op":"mode","arg":"x"}"#).contains("unknown mode `x`"));
        assert!(parse_error(r#"{"op":"mode"}"#).contains("`mode` needs"));
        assert!(parse_error(r#"{"op":"status","arg":"x"}"#).contains("unknown status `x`"));
        assert!(parse_error(r#"{"op":"status","arg":[]}"#).contains("`status` needs"));
        assert_eq!(
            parse_error("42"),
            "selector: expected an object, true, false or null, got a number"
        );
        assert!(parse_error(r#""web""#).contains("got a string"));
        assert!(parse_error("[]").contains("got an array"));
        // Errors deep inside are reported too.
        assert_eq!(
            parse_error(r#"{"op":"and","arg":[true,{"op":"not","arg":{"op":"bad"}}]}"#),
            "selector: unknown op `bad`"
        );
    }

    #[test]
    fn invalid_json_gives_the_position() {
        assert_eq!(
            parse_error(r#"{"op""#),
            "selector: invalid JSON at line 1 column 5 (EOF while parsing an object)"
        );
        assert!(parse_error("{\n  oops}").starts_with("selector: invalid JSON at line 2 column 3"));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut text = String::from("true");
        for _ in 0..MAX_DEPTH {
            text = format!(r#"{{"op":"not","arg":{text}}}"#);
        }
        assert!(parse_error(&text).contains("nested deeper than 64"));
        // One level less is fine.
        let mut text = String::from("true");
        for _ in 0..MAX_DEPTH - 1 {
            text = format!(r#"{{"op":"not","arg":{text}}}"#);
        }
        assert!(Selector::parse(text.as_bytes()).is_ok());
        // Far deeper than serde_json allows still fails cleanly.
        let deep = "[".repeat(100_000);
        assert!(parse_error(&deep).starts_with("selector: invalid JSON"));
    }
}
