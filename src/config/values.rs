//! Scalar values of the configuration: durations, signals, limits, exit
//! codes, URLs, command lines. Each function takes the text as written and
//! returns the value or a message saying what was expected; the caller adds
//! the file and position.

use super::model::{ExitMatch, Limit, ListenUrl, Stdio};
use std::path::PathBuf;
use std::time::Duration;

/// `N` seconds, or `N` with a unit: `ms`, `s`, `m`, `h`, `d`.
pub(super) fn duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration `{}`: expected a number of seconds, optionally with a unit (500ms, 5s, 2m, 1h)",
            super::lexer::clip(text)
        )
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| too_large(text))?;
    let millis_per: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    let ms = n.checked_mul(millis_per).ok_or_else(|| too_large(text))?;
    Ok(Duration::from_millis(ms))
}

fn too_large(text: &str) -> String {
    format!("`{}` is too large", super::lexer::clip(text))
}

/// A non-negative count that fits in u32.
pub(super) fn count(text: &str) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "expected a non-negative number, found `{}`",
            super::lexer::clip(text)
        ));
    }
    text.parse().map_err(|_| too_large(text))
}

/// An octal file mode creation mask, `022` or `0027`.
pub(super) fn umask(text: &str) -> Result<u32, String> {
    let bad = || {
        format!(
            "invalid umask `{}`: expected octal digits such as 022",
            super::lexer::clip(text)
        )
    };
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(bad());
    }
    let v = u32::from_str_radix(text, 8).map_err(|_| bad())?;
    if v > 0o777 {
        return Err(bad());
    }
    Ok(v)
}

/// Signal names tend knows (without the `SIG` prefix).
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Highest signal number on Linux (SIGRTMAX).
const MAX_SIGNAL: i32 = 64;

/// A signal: `TERM`, `SIGUSR1`, `usr1` or a number 1–64.
pub(super) fn signal(text: &str) -> Result<i32, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<i32>() {
            Ok(n) if (1..=MAX_SIGNAL).contains(&n) => Ok(n),
            _ => Err(format!(
                "signal number `{}` is out of range 1-{MAX_SIGNAL}",
                super::lexer::clip(text)
            )),
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            let names: Vec<&str> = SIGNALS.iter().map(|(n, _)| *n).collect();
            with_suggestion(
                format!("unknown signal `{}`", super::lexer::clip(text)),
                name,
                &names,
            )
        })
}

/// `sysexits.h` names.
const SYSEXITS: &[(&str, i32)] = &[
    ("EX_OK", 0),
    ("EX_USAGE", 64),
    ("EX_DATAERR", 65),
    ("EX_NOINPUT", 66),
    ("EX_NOUSER", 67),
    ("EX_NOHOST", 68),
    ("EX_UNAVAILABLE", 69),
    ("EX_SOFTWARE", 70),
    ("EX_OSERR", 71),
    ("EX_OSFILE", 72),
    ("EX_CANTCREAT", 73),
    ("EX_IOERR", 74),
    ("EX_TEMPFAIL", 75),
    ("EX_PROTOCOL", 76),
    ("EX_NOPERM", 77),
    ("EX_CONFIG", 78),
];

/// One `return-code` match: an exit status 0–255, an `EX_*` name, or
/// `SIG*` meaning "killed by that signal".
pub(super) fn exit_match(text: &str) -> Result<ExitMatch, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<i32>() {
            Ok(n) if (0..=255).contains(&n) => Ok(ExitMatch::Code(n)),
            _ => Err(format!(
                "exit code `{}` is out of range 0-255",
                super::lexer::clip(text)
            )),
        };
    }
    let upper = text.to_ascii_uppercase();
    if upper.starts_with("SIG") {
        return signal(text).map(ExitMatch::Signal);
    }
    if let Some((_, n)) = SYSEXITS.iter().find(|(name, _)| *name == upper) {
        return Ok(ExitMatch::Code(*n));
    }
    let names: Vec<&str> = SYSEXITS.iter().map(|(n, _)| *n).collect();
    Err(with_suggestion(
        format!(
            "invalid exit code `{}`: expected a number, an EX_* name or a SIG* name",
            super::lexer::clip(text)
        ),
        &upper,
        &names,
    ))
}

/// Syslog priority names.
const PRIORITIES: &[(&str, i32)] = &[
    ("emerg", libc::LOG_EMERG),
    ("alert", libc::LOG_ALERT),
    ("crit", libc::LOG_CRIT),
    ("err", libc::LOG_ERR),
    ("error", libc::LOG_ERR),
    ("warning", libc::LOG_WARNING),
    ("warn", libc::LOG_WARNING),
    ("notice", libc::LOG_NOTICE),
    ("info", libc::LOG_INFO),
    ("debug", libc::LOG_DEBUG),
];

/// A syslog priority name (`err`, `info`, …; case-insensitive, `LOG_` optional).
pub(super) fn syslog_priority(text: &str) -> Result<i32, String> {
    let lower = text.to_ascii_lowercase();
    let name = lower.strip_prefix("log_").unwrap_or(&lower);
    PRIORITIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
        .ok_or_else(|| {
            let names: Vec<&str> = PRIORITIES.iter().map(|(n, _)| *n).collect();
            with_suggestion(
                format!("unknown syslog priority `{}`", super::lexer::clip(text)),
                name,
                &names,
            )
        })
}

/// The `stdin|stdout|stderr` forms: `file PATH`, `tty PATH`, `syslog PRIO`,
/// `inherit`, `null`. `words` are the statement's arguments.
pub(super) fn stdio(words: &[&str]) -> Result<Stdio, String> {
    match words {
        ["inherit"] => Ok(Stdio::Inherit),
        ["null"] => Ok(Stdio::Null),
        ["file", path] if !path.is_empty() => Ok(Stdio::File(PathBuf::from(path))),
        ["tty", path] if !path.is_empty() => Ok(Stdio::Tty(PathBuf::from(path))),
        ["syslog", prio] => syslog_priority(prio).map(Stdio::Syslog),
        [kind, ..] if !matches!(*kind, "inherit" | "null" | "file" | "tty" | "syslog") => {
            Err(with_suggestion(
                format!(
                    "unknown destination `{}`: expected file PATH, syslog PRIORITY, tty PATH, inherit or null",
                    super::lexer::clip(kind)
                ),
                kind,
                &["file", "syslog", "tty", "inherit", "null"],
            ))
        }
        _ => Err("expected file PATH, syslog PRIORITY, tty PATH, inherit or null".to_string()),
    }
}

/// Resource letters of a `limits` string. Values are given to setrlimit as
/// written (bytes, seconds or counts; a K/M/G suffix multiplies by 1024s),
/// unlike pies, which counts sizes in KiB and CPU time in minutes:
/// `a`=AS, `c`=CORE, `d`=DATA, `f`=FSIZE, `n`=NOFILE, `s`=STACK, `t`=CPU,
/// `u`=NPROC, `m`=RSS, `l`=MEMLOCK; upper or lower case.
fn rlimit_resource(letter: char) -> Option<i32> {
    // The RLIMIT_* constants are small non-negative numbers whose C type
    // differs between glibc and musl; `as i32` is lossless for them.
    let r = match letter.to_ascii_lowercase() {
        'a' => libc::RLIMIT_AS,
        'c' => libc::RLIMIT_CORE,
        'd' => libc::RLIMIT_DATA,
        'f' => libc::RLIMIT_FSIZE,
        'n' => libc::RLIMIT_NOFILE,
        's' => libc::RLIMIT_STACK,
        't' => libc::RLIMIT_CPU,
        'u' => libc::RLIMIT_NPROC,
        'm' => libc::RLIMIT_RSS,
        'l' => libc::RLIMIT_MEMLOCK,
        _ => return None,
    };
    Some(r as i32)
}

/// One `limits` item such as `n1024`, `c0`, `a512M`, `cunlimited` or `c-`.
pub(super) fn limit(item: &str) -> Result<Limit, String> {
    let mut chars = item.chars();
    let letter = chars.next().ok_or_else(|| "empty limit".to_string())?;
    let resource = rlimit_resource(letter).ok_or_else(|| {
        format!(
            "unknown limit `{}`: expected one of a c d f l m n s t u followed by a number",
            super::lexer::clip(item)
        )
    })?;
    let rest = chars.as_str();
    let value = match rest {
        "unlimited" | "-" => u64::MAX,
        _ => limit_value(rest).ok_or_else(|| {
            format!(
                "invalid limit `{}`: expected a letter then a number (K/M/G allowed) or `unlimited`",
                super::lexer::clip(item)
            )
        })?,
    };
    Ok(Limit { resource, value })
}

fn limit_value(text: &str) -> Option<u64> {
    let (digits, mult) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (text.get(..i)?, 1u64 << 10),
        Some((i, 'M')) => (text.get(..i)?, 1u64 << 20),
        Some((i, 'g' | 'G')) => (text.get(..i)?, 1u64 << 30),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

/// A control listener: `unix:///path` or `inet://host:port`.
pub(super) fn listen_url(text: &str) -> Result<ListenUrl, String> {
    if let Some(path) = text.strip_prefix("unix://") {
        if !path.starts_with('/') {
            return Err(format!(
                "invalid socket `{}`: a unix URL needs an absolute path, as in unix:///run/tend.sock",
                super::lexer::clip(text)
            ));
        }
        return Ok(ListenUrl::Unix(PathBuf::from(path)));
    }
    if let Some(addr) = text.strip_prefix("inet://") {
        host_port(addr)
            .map_err(|why| format!("invalid socket `{}`: {why}", super::lexer::clip(text)))?;
        return Ok(ListenUrl::Inet(addr.to_string()));
    }
    Err(format!(
        "invalid socket `{}`: expected unix:///PATH or inet://HOST:PORT",
        super::lexer::clip(text)
    ))
}

/// Check `host:port` (host may be `[v6]`).
pub(super) fn host_port(addr: &str) -> Result<(), String> {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err("expected HOST:PORT".to_string());
    };
    if host.is_empty() {
        return Err("the host is empty".to_string());
    }
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err()
    {
        return Err(format!("invalid port `{}`", super::lexer::clip(port)));
    }
    Ok(())
}

/// An `allow`/`deny` entry: an IP address, optionally `/prefix`.
pub(super) fn address_pattern(text: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "invalid address `{}`: expected an IP address or CIDR such as 10.0.0.0/8",
            super::lexer::clip(text)
        )
    };
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
    if let Some(p) = prefix {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match p.parse::<u8>() {
            Ok(n) if n <= max && !p.starts_with('+') => {}
            _ => return Err(bad()),
        }
    }
    Ok(())
}

/// Split a command line into words with shell-like quoting: `'…'` literal,
/// `"…"` with `\"`, `\\`, `\$` and `` \` `` escapes, backslash outside quotes
/// escapes the next character. Nothing is expanded.
pub(super) fn split_command(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated `'` in command".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated `\"` in command".to_string()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated `\"` in command".to_string()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    cur.push(c);
                }
                None => return Err("command ends with a lone `\\`".to_string()),
            },
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if words.is_empty() {
        return Err("empty command".to_string());
    }
    Ok(words)
}

/// Edit distance counting insertions, deletions, substitutions and swaps of
/// neighbours (optimal string alignment), for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: two back is needed for swaps.
    let mut two: Vec<usize> = vec![0; b.len() + 1];
    let mut one: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (one[j - 1] + cost).min(one[j] + 1).min(row[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(two[j - 2] + 1);
            }
            row[j] = d;
        }
        std::mem::swap(&mut two, &mut one);
        std::mem::swap(&mut one, &mut row);
    }
    one[b.len()]
}

/// The known name closest to `word`, if it is close enough to be a typo
/// (case is ignored).
pub(super) fn suggest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    // Long words are not typos of short keywords, and cost O(n·m) to compare.
    let len = word.chars().count();
    if len == 0 || len > 64 {
        return None;
    }
    let limit = (len / 3).max(1);
    let word = word.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&word, &k.to_ascii_lowercase()), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `message`, plus "; did you mean `x`?" when a known name is close.
pub(super) fn with_suggestion(message: String, word: &str, known: &[&str]) -> String {
    match suggest(word, known) {
        Some(s) => format!("{message}; did you mean `{s}`?"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        for bad in [
            "",
            "s",
            "5x",
            "-1",
            "1.5s",
            "5 s",
            "99999999999999999999999",
        ] {
            assert!(duration(bad).is_err(), "{bad}");
        }
        assert!(duration("18446744073709551615d").is_err());
    }

    #[test]
    fn counts_and_umask() {
        assert_eq!(count("10"), Ok(10));
        assert!(count("-1").is_err());
        assert!(count("+1").is_err());
        assert!(count("4294967296").is_err());
        assert_eq!(umask("022"), Ok(0o22));
        assert_eq!(umask("0777"), Ok(0o777));
        assert_eq!(umask("7"), Ok(7));
        for bad in ["", "8", "0o22", "1777", "00022", "abc"] {
            assert!(umask(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signals() {
        assert_eq!(signal("TERM"), Ok(libc::SIGTERM));
        assert_eq!(signal("SIGUSR1"), Ok(libc::SIGUSR1));
        assert_eq!(signal("usr2"), Ok(libc::SIGUSR2));
        assert_eq!(signal("9"), Ok(9));
        assert!(signal("0").is_err());
        assert!(signal("65").is_err());
        assert!(signal("99999999999999999999").is_err());
        assert_eq!(
            signal("TREM"),
            Err("unknown signal `TREM`; did you mean `TERM`?".to_string())
        );
    }

    #[test]
    fn exit_matches() {
        assert_eq!(exit_match("75"), Ok(ExitMatch::Code(75)));
        assert_eq!(exit_match("EX_USAGE"), Ok(ExitMatch::Code(64)));
        assert_eq!(exit_match("EX_CONFIG"), Ok(ExitMatch::Code(78)));
        assert_eq!(exit_match("SIGKILL"), Ok(ExitMatch::Signal(9)));
        assert!(exit_match("256").is_err());
        assert!(exit_match("SIGFOO").is_err());
        let e = exit_match("EX_USEAGE").unwrap_err();
        assert!(e.contains("did you mean `EX_USAGE`"), "{e}");
    }

    #[test]
    fn priorities_and_stdio() {
        assert_eq!(syslog_priority("err"), Ok(libc::LOG_ERR));
        assert_eq!(syslog_priority("error"), Ok(libc::LOG_ERR));
        assert_eq!(syslog_priority("LOG_WARNING"), Ok(libc::LOG_WARNING));
        assert_eq!(syslog_priority("warn"), Ok(libc::LOG_WARNING));
        assert_eq!(syslog_priority("emerg"), Ok(libc::LOG_EMERG));
        assert_eq!(syslog_priority("debug"), Ok(libc::LOG_DEBUG));
        assert!(syslog_priority("loud").is_err());
        assert_eq!(stdio(&["null"]), Ok(Stdio::Null));
        assert_eq!(stdio(&["inherit"]), Ok(Stdio::Inherit));
        assert_eq!(stdio(&["file", "/x"]), Ok(Stdio::File("/x".into())));
        assert_eq!(
            stdio(&["tty", "/dev/tty1"]),
            Ok(Stdio::Tty("/dev/tty1".into()))
        );
        assert_eq!(
            stdio(&["syslog", "info"]),
            Ok(Stdio::Syslog(libc::LOG_INFO))
        );
        assert!(stdio(&["file"]).is_err());
        assert!(stdio(&["null", "x"]).is_err());
        assert!(stdio(&[]).is_err());
        let e = stdio(&["fiel", "/x"]).unwrap_err();
        assert!(e.contains("did you mean `file`"), "{e}");
    }

    #[test]
    fn limits() {
        let n = libc::RLIMIT_NOFILE as i32;
        assert_eq!(
            limit("n1024"),
            Ok(Limit {
                resource: n,
                value: 1024
            })
        );
        assert_eq!(
            limit("N1024"),
            Ok(Limit {
                resource: n,
                value: 1024
            })
        );
        assert_eq!(
            limit("a2M"),
            Ok(Limit {
                resource: libc::RLIMIT_AS as i32,
                value: 2 << 20
            })
        );
        assert_eq!(
            limit("cunlimited"),
            Ok(Limit {
                resource: libc::RLIMIT_CORE as i32,
                value: u64::MAX
            })
        );
        assert_eq!(limit("c-").map(|l| l.value), Ok(u64::MAX));
        assert_eq!(limit("l1k").map(|l| l.value), Ok(1024));
        for bad in [
            "",
            "x5",
            "n",
            "nabc",
            "n-1",
            "n99999999999999999999",
            "a99999999999999999G",
        ] {
            assert!(limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_and_addresses() {
        assert_eq!(
            listen_url("unix:///run/t.sock"),
            Ok(ListenUrl::Unix("/run/t.sock".into()))
        );
        assert_eq!(
            listen_url("inet://127.0.0.1:24444"),
            Ok(ListenUrl::Inet("127.0.0.1:24444".into()))
        );
        assert_eq!(
            listen_url("inet://[::1]:80"),
            Ok(ListenUrl::Inet("[::1]:80".into()))
        );
        for bad in [
            "unix://rel",
            "inet://host",
            "inet://:80",
            "inet://h:99999",
            "http://x:1",
            "",
        ] {
            assert!(listen_url(bad).is_err(), "{bad}");
        }
        for good in ["10.0.0.1", "10.0.0.0/8", "::1", "fe80::/10"] {
            assert_eq!(address_pattern(good), Ok(()), "{good}");
        }
        for bad in ["10.0.0.0/33", "host", "1.2.3.4/", "::/129", "1.2.3.4/+8"] {
            assert!(address_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn command_splitting() {
        let s = |t: &str| split_command(t);
        assert_eq!(
            s("/bin/echo a  b"),
            Ok(vec!["/bin/echo".into(), "a".into(), "b".into()])
        );
        assert_eq!(
            s(r#"sh -c 'echo $HOME' "a \"b\" \$x" c\ d"#),
            Ok(vec![
                "sh".into(),
                "-c".into(),
                "echo $HOME".into(),
                "a \"b\" $x".into(),
                "c d".into()
            ])
        );
        assert_eq!(s("a '' b"), Ok(vec!["a".into(), "".into(), "b".into()]));
        assert_eq!(s(r#""x\n""#), Ok(vec!["x\\n".into()]));
        assert_eq!(s("").unwrap_err(), "empty command");
        assert_eq!(s("   ").unwrap_err(), "empty command");
        assert!(s("a 'b").is_err());
        assert!(s("a \"b").is_err());
        assert!(s("a \"b\\").is_err());
        assert!(s("a \\").is_err());
    }

    #[test]
    fn suggestions() {
        let known = ["command", "mode", "chdir", "stdout"];
        assert_eq!(suggest("comand", &known), Some("command"));
        assert_eq!(suggest("COMMAND", &known), Some("command"));
        assert_eq!(suggest("mod", &known), Some("mode"));
        assert_eq!(suggest("xyzzy", &known), None);
        assert_eq!(suggest(&"c".repeat(1000), &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("TREM", "TERM"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(suggest("db", &["a", "dbx"]), Some("dbx"));
        assert_eq!(suggest("db", &["a"]), None);
    }
}
