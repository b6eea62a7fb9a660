//! SysV and BusyBox inittab files.
//!
//! Each line is `id:runlevels:action:process`; `#` starts a comment line.
//! The two flavours differ in the first field:
//!
//! - SysV: a unique id of 1–4 characters, used as the component tag.
//! - BusyBox: the terminal to run on (`tty2`, `ttyS0`, `/dev/console`, or
//!   empty for tend's own console), which becomes the component's
//!   stdin/stdout/stderr. BusyBox ignores the runlevels field.
//!
//! A file is read as BusyBox when no line gives runlevels or `initdefault`
//! (BusyBox has neither) and some line has an empty first field, a
//! terminal-looking one (`tty…`, `console`, `hvc…`, a path) or a
//! BusyBox-only action (`askfirst`, `restart`). Otherwise it is SysV.
//!
//! BusyBox tags: the terminal name (without `/dev/`, `/` turned into `-`), or
//! the action name when the terminal is empty; when several lines share that
//! name each gets `-1`, `-2`, … in file order (`::shutdown:` twice gives
//! `shutdown-1` and `shutdown-2`).
//!
//! The process runs through `/bin/sh -c` when it holds any of the shell
//! characters SysV init and BusyBox test for, else it is split into words.
//! A leading `-` (BusyBox: run as a login shell) is dropped from the argv:
//! the model has no separate argv[0], so the shell starts as a plain one.

use super::model::{ComponentSpec, Config, Location, Mode, Stdio};
use super::values::with_suggestion;
use super::{ConfigError, ConfigErrors, validate};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Characters that make SysV init and BusyBox hand the process to a shell.
const SHELL_CHARS: &[char] = &[
    '~', '`', '!', '$', '^', '&', '*', '(', ')', '=', '|', '\\', '{', '}', '[', ']', ';', '"',
    '\'', '<', '>', '?',
];

/// Actions and the mode they run in; `initdefault` makes no component.
const ACTIONS: &[(&str, Mode)] = &[
    ("sysinit", Mode::Sysinit),
    ("boot", Mode::Boot),
    ("bootwait", Mode::Bootwait),
    ("wait", Mode::Wait),
    ("once", Mode::Once),
    ("respawn", Mode::Respawn),
    ("askfirst", Mode::Askfirst),
    ("ctrlaltdel", Mode::Ctrlaltdel),
    ("shutdown", Mode::Shutdown),
    ("restart", Mode::Restart),
    ("powerfail", Mode::Powerfail),
    ("powerwait", Mode::Powerwait),
    ("powerokwait", Mode::Powerokwait),
    ("powerfailnow", Mode::Powerfailnow),
    ("ondemand", Mode::Ondemand),
    // `off`: parsed and kept, but disabled (it runs once if started by hand).
    ("off", Mode::Once),
];

/// SysV runlevel characters (`s`/`S` single user, `a`–`c` on-demand).
const RUNLEVEL_CHARS: &str = "0123456789sSabcABC";

/// One field of a line and its 1-based column.
#[derive(Debug, Clone, Copy)]
struct Field<'a> {
    text: &'a str,
    col: usize,
}

/// One `id:runlevels:action:process` line.
#[derive(Debug)]
struct Entry<'a> {
    line: usize,
    id: Field<'a>,
    runlevels: Field<'a>,
    action: Field<'a>,
    process: Field<'a>,
}

/// Parse an inittab.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let err = |line: usize, col: usize, message: String| ConfigError {
        file: file.to_path_buf(),
        line,
        col,
        message,
    };
    let mut entries = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim_end();
        if line.trim_start().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        match split_line(line, i + 1) {
            Ok(e) => entries.push(e),
            Err(n) => errors.push(err(
                i + 1,
                1,
                format!("expected 4 fields `id:runlevels:action:process`, found {n}"),
            )),
        }
    }
    let busybox = is_busybox(&entries);
    let mut config = Config {
        files: vec![file.to_path_buf()],
        inittab: true,
        ..Config::default()
    };
    let mut initdefault_line = None;
    let mut specs = Vec::new();
    let mut bases = Vec::new();
    for e in &entries {
        let problems = check_entry(e, busybox);
        let ok = problems.is_empty();
        errors.extend(problems.into_iter().map(|(col, m)| err(e.line, col, m)));
        if !ok {
            continue;
        }
        if e.action.text == "initdefault" {
            match initdefault_line {
                Some(first) => errors.push(err(
                    e.line,
                    e.action.col,
                    format!("`initdefault` is already given on line {first}"),
                )),
                None => {
                    initdefault_line = Some(e.line);
                    config.initdefault = e.runlevels.text.chars().next();
                }
            }
            continue;
        }
        specs.push(component(e, busybox, file));
        bases.push(busybox_base(e));
    }
    if busybox {
        assign_busybox_tags(&mut specs, &bases);
    }
    errors.extend(validate::components(&specs, &[]));
    config.components = specs;
    if errors.is_empty() {
        Ok(config)
    } else {
        // One file: by line, then column.
        super::error::sort_in_reading_order(&mut errors, &[]);
        Err(ConfigErrors(errors))
    }
}

/// Split on the first three `:` (the process may hold more); Err(fields found).
fn split_line(line: &str, number: usize) -> Result<Entry<'_>, usize> {
    let mut fields = Vec::with_capacity(4);
    let mut start = 0;
    for (i, c) in line.char_indices() {
        if fields.len() == 3 {
            break;
        }
        if c == ':' {
            fields.push(Field {
                text: line.get(start..i).unwrap_or(""),
                col: field_col(line, start),
            });
            start = i + 1;
        }
    }
    if fields.len() < 3 {
        return Err(fields.len() + 1);
    }
    fields.push(Field {
        text: line.get(start..).unwrap_or(""),
        col: field_col(line, start),
    });
    match fields.as_slice() {
        [id, runlevels, action, process] => Ok(Entry {
            line: number,
            id: *id,
            runlevels: *runlevels,
            action: *action,
            process: *process,
        }),
        _ => Err(fields.len()),
    }
}

/// 1-based character column of byte offset `start`.
fn field_col(line: &str, start: usize) -> usize {
    line.get(..start).map(|s| s.chars().count()).unwrap_or(0) + 1
}

fn looks_like_tty(id: &str) -> bool {
    id.contains('/')
        || id == "console"
        || id.starts_with("tty")
        || id.starts_with("hvc")
        || id.starts_with("pts")
}

/// See the module documentation for the rule.
fn is_busybox(entries: &[Entry]) -> bool {
    let sysv = entries
        .iter()
        .any(|e| !e.runlevels.text.is_empty() || e.action.text == "initdefault");
    let busybox = entries.iter().any(|e| {
        e.id.text.is_empty()
            || looks_like_tty(e.id.text)
            || matches!(e.action.text, "askfirst" | "restart")
    });
    busybox && !sysv
}

/// Problems with one entry, as (column, message).
fn check_entry(e: &Entry, busybox: bool) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    if !busybox {
        let n = e.id.text.chars().count();
        if n == 0 {
            out.push((
                e.id.col,
                "empty id: SysV entries need an id of 1-4 characters".into(),
            ));
        } else if n > 4 {
            out.push((
                e.id.col,
                format!(
                    "id `{}` is longer than 4 characters",
                    super::lexer::clip(e.id.text)
                ),
            ));
        }
        if let Some(bad) = e
            .runlevels
            .text
            .chars()
            .find(|c| !RUNLEVEL_CHARS.contains(*c))
        {
            out.push((
                e.runlevels.col,
                format!("invalid runlevel `{bad}`: expected 0-9, a-c or S"),
            ));
        }
    }
    let action = e.action.text;
    if action == "initdefault" {
        if e.runlevels.text.is_empty() {
            out.push((e.runlevels.col, "`initdefault` needs a runlevel".into()));
        }
        return out;
    }
    if !ACTIONS.iter().any(|(a, _)| *a == action) {
        let mut names: Vec<&str> = ACTIONS.iter().map(|(a, _)| *a).collect();
        names.push("initdefault");
        out.push((
            e.action.col,
            with_suggestion(
                format!("unknown action `{}`", super::lexer::clip(action)),
                action,
                &names,
            ),
        ));
    }
    if e.process.text.trim().is_empty() {
        out.push((e.process.col, "empty process field".into()));
    }
    out
}

/// The component for a checked entry (tag still to be set for BusyBox).
fn component(e: &Entry, busybox: bool, file: &Path) -> ComponentSpec {
    let process = e.process.text.trim();
    let run = process.strip_prefix('-').unwrap_or(process).trim_start();
    let argv = if run.contains(SHELL_CHARS) {
        vec!["/bin/sh".to_string(), "-c".to_string(), run.to_string()]
    } else {
        run.split_whitespace().map(str::to_string).collect()
    };
    let argv = if e.action.text == "askfirst" {
        ask_first(argv)
    } else {
        argv
    };
    let mut spec = ComponentSpec::new(e.id.text, argv);
    spec.command = process.to_string();
    spec.mode = ACTIONS
        .iter()
        .find(|(a, _)| *a == e.action.text)
        .map(|(_, m)| *m)
        .unwrap_or(Mode::Once);
    spec.flags.disable = e.action.text == "off";
    spec.runlevels = e.runlevels.text.to_string();
    spec.origin = Location {
        file: file.to_path_buf(),
        line: e.line,
        col: 1,
    };
    if busybox && !e.id.text.is_empty() {
        let tty = if e.id.text.starts_with("/dev/") {
            PathBuf::from(e.id.text)
        } else {
            Path::new("/dev").join(e.id.text)
        };
        spec.stdin = Stdio::Tty(tty.clone());
        spec.stdout = Stdio::Tty(tty.clone());
        spec.stderr = Stdio::Tty(tty);
    }
    spec
}

/// BusyBox's `askfirst`: print its prompt on the terminal and wait for a
/// line (or end of input) before running the command. A shell does the
/// waiting, not tend's child setup: the main loop must not block on a
/// terminal nobody types on.
fn ask_first(argv: Vec<String>) -> Vec<String> {
    const PROMPT: &str =
        "printf '\\nPlease press Enter to activate this console. '; read -r _; exec \"$@\"";
    let mut out = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        PROMPT.to_string(),
        "askfirst".to_string(),
    ];
    out.extend(argv);
    out
}

/// The name a BusyBox line is known by before numbering: its terminal, or
/// its action when it has none.
fn busybox_base(e: &Entry) -> String {
    if e.id.text.is_empty() {
        return e.action.text.to_string();
    }
    let tty = e.id.text.strip_prefix("/dev/").unwrap_or(e.id.text);
    tty.replace('/', "-")
}

/// Derive unique tags (see the module documentation); `bases[i]` belongs to `specs[i]`.
fn assign_busybox_tags(specs: &mut [ComponentSpec], bases: &[String]) {
    let mut total: HashMap<&str, usize> = HashMap::new();
    for b in bases {
        *total.entry(b.as_str()).or_default() += 1;
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (spec, base) in specs.iter_mut().zip(bases) {
        if total.get(base.as_str()).copied().unwrap_or(0) > 1 {
            let n = seen.entry(base.as_str()).or_default();
            *n += 1;
            spec.tag = format!("{base}-{n}");
        } else {
            spec.tag = base.clone();
        }
    }
}

#[cfg(test)]
#[path = "inittab_tests.rs"]
mod tests;
