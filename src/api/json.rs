//! Writing JSON values straight into a byte buffer, for the answers that
//! are built often and grow with the table (`GET /programs`): no
//! `serde_json::Value` tree, no allocation per field, no `fmt` machinery.
//! Strings are escaped exactly as serde_json escapes them and integers are
//! plain decimal like its, so the bytes match what a `Value` would give.

/// How each byte appears inside a JSON string: `0` as it is, `u` as
/// `\u00XX`, anything else as a backslash and that byte (serde_json's table).
const ESCAPE: [u8; 256] = escape_table();

const fn escape_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
}

/// Append `s` as a JSON string.
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.push(b'"');
    // Bytes from `plain` on are not copied yet. Only ASCII bytes are
    // escaped, so the output stays UTF-8.
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        // In bounds: the table has an entry for every u8.
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(bytes.get(plain..i).unwrap_or_default());
        out.push(b'\\');
        out.push(escape);
        if escape == b'u' {
            out.extend_from_slice(&[b'0', b'0', hex_digit(b >> 4), hex_digit(b & 0xf)]);
        }
        plain = i + 1;
    }
    out.extend_from_slice(bytes.get(plain..).unwrap_or_default());
    out.push(b'"');
}

/// Append an array of strings.
pub(crate) fn push_strs<'s>(out: &mut Vec<u8>, items: impl IntoIterator<Item = &'s str>) {
    out.push(b'[');
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_str(out, s);
    }
    out.push(b']');
}

/// Append a signed integer.
pub(crate) fn push_int(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_uint(out, n.unsigned_abs());
}

/// Append an unsigned integer.
pub(crate) fn push_uint(out: &mut Vec<u8>, mut n: u64) {
    // u64::MAX has 20 digits; they are made last first.
    let mut digits = [0u8; 20];
    let mut len = 0;
    for slot in digits.iter_mut().rev() {
        // `n % 10` is a single digit.
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 {
            break;
        }
    }
    let first = digits.len() - len;
    out.extend_from_slice(digits.get(first..).unwrap_or_default());
}

/// One JSON object being written. Keys must be added in serde_json's order
/// (its `Map` is sorted: byte order, upper case first), so the bytes are
/// what a `Value` would give.
pub(crate) struct Object {
    out: Vec<u8>,
}

impl Object {
    /// An empty object.
    pub(crate) fn new() -> Object {
        Object { out: vec![b'{'] }
    }

    /// Start the member `key`.
    fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(b',');
        }
        push_str(&mut self.out, key);
        self.out.push(b':');
    }

    /// Add a string member.
    pub(crate) fn str(mut self, key: &str, value: &str) -> Object {
        self.key(key);
        push_str(&mut self.out, value);
        self
    }

    /// Add a member whose value is already JSON (`true`, `[...]`, …).
    pub(crate) fn raw(mut self, key: &str, value: &[u8]) -> Object {
        self.key(key);
        self.out.extend_from_slice(value);
        self
    }

    /// The object's bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}

/// The lower-case hex digit of a nibble (serde_json writes `\u001f`).
fn hex_digit(nibble: u8) -> u8 {
    match nibble {
        0..=9 => b'0' + nibble,
        _ => b'a' + (nibble & 0xf) - 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_like_serde_json() {
        let mut samples: Vec<String> = (0u32..0x100)
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}b"))
            .collect();
        samples.extend(
            [
                "",
                "plain",
                "\"quoted\" \\ back\\slash",
                "tab\tnew\nline\r\u{8}\u{c}\u{0}\u{1f}\u{7f}",
                "é ü 日本 \u{2028} 🦀",
                "\\",
                "\"",
                "\u{1}",
            ]
            .map(String::from),
        );
        for s in &samples {
            let want = serde_json::to_string(s).unwrap();
            assert_eq!(written(|out| push_str(out, s)), want, "{s:?}");
        }
    }

    #[test]
    fn objects() {
        let o = Object::new()
            .raw("PID", b"7")
            .str("a", "x\"")
            .raw("b", b"true")
            .finish();
        assert_eq!(o, br#"{"PID":7,"a":"x\"","b":true}"#);
        assert_eq!(Object::new().finish(), b"{}");
    }

    #[test]
    fn arrays() {
        let list = written(|out| push_strs(out, ["a", "b\n"]));
        assert_eq!(list, r#"["a","b\n"]"#);
        assert_eq!(written(|out| push_strs(out, [])), "[]");
    }

    #[test]
    fn integers_match_serde_json() {
        for n in [
            0i64,
            1,
            -1,
            9,
            10,
            -10,
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(
                written(|out| push_int(out, n)),
                serde_json::json!(n).to_string()
            );
        }
        for n in [0u64, 7, 1_700_000_000, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(
                written(|out| push_uint(out, n)),
                serde_json::json!(n).to_string()
            );
        }
    }
}
