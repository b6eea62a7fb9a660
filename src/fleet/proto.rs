//! A hand-written protobuf wire codec: just enough for the ConfigServer messages.
//!
//! Why by hand: the runtime dependencies are fixed, and the messages are small
//! and flat. The encoder writes proto3 style (fields at their default value are
//! left out). The decoder is a pull parser over a byte slice that never panics
//! and never allocates more than the input it was given: every length is
//! checked against what is left before it is used, so a huge announced length
//! is an error, not an allocation.

use std::collections::BTreeMap;
use std::fmt;

/// Wire type of a varint field (int64, enum, bool).
pub const WIRE_VARINT: u8 = 0;
/// Wire type of an 8-byte little-endian field (fixed64, double).
pub const WIRE_FIXED64: u8 = 1;
/// Wire type of a length-delimited field (string, bytes, message, map entry).
pub const WIRE_LEN: u8 = 2;
/// Wire type of a 4-byte little-endian field (fixed32, float).
pub const WIRE_FIXED32: u8 = 5;

/// Why a protobuf buffer could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// What is wrong, for the `message` of a `BadRequest` answer.
    pub message: String,
}

impl DecodeError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> DecodeError {
        DecodeError {
            message: message.into(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

/// One decoded field value, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: the payload bytes.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

impl<'a> Value<'a> {
    /// The value as a string; `field` names it in errors.
    pub fn string(self, field: &str) -> Result<String, DecodeError> {
        let bytes = self.bytes(field)?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| DecodeError::new(format!("field {field}: invalid UTF-8")))
    }

    /// The payload of a length-delimited value.
    pub fn bytes(self, field: &str) -> Result<&'a [u8], DecodeError> {
        match self {
            Value::Bytes(b) => Ok(b),
            _ => Err(wrong_type(field)),
        }
    }

    /// The value as an int64 (two's complement varint, as protobuf's `int64`).
    pub fn int64(self, field: &str) -> Result<i64, DecodeError> {
        match self {
            // Reinterpreting the bits is what protobuf int64 means.
            Value::Varint(v) => Ok(v as i64),
            _ => Err(wrong_type(field)),
        }
    }

    /// The value as a protobuf `float`.
    pub fn float(self, field: &str) -> Result<f32, DecodeError> {
        match self {
            Value::Fixed32(v) => Ok(f32::from_bits(v)),
            _ => Err(wrong_type(field)),
        }
    }
}

fn wrong_type(field: &str) -> DecodeError {
    DecodeError::new(format!("field {field}: wrong wire type"))
}

/// Pull parser over one message's bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over a whole message.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// The next `(field number, value)`, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, DecodeError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let wire = (key & 7) as u8;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(DecodeError::new(format!("invalid field number {number}")));
        }
        // Checked just above: fits in u32.
        let number = number as u32;
        let value = match wire {
            WIRE_VARINT => Value::Varint(self.varint()?),
            WIRE_FIXED64 => Value::Fixed64(u64::from_le_bytes(self.array::<8>()?)),
            WIRE_LEN => {
                let len = self.varint()?;
                Value::Bytes(self.take(len)?)
            }
            WIRE_FIXED32 => Value::Fixed32(u32::from_le_bytes(self.array::<4>()?)),
            other => {
                return Err(DecodeError::new(format!(
                    "unsupported wire type {other} for field {number}"
                )));
            }
        };
        Ok(Some((number, value)))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10u32 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(DecodeError::new("truncated varint"));
            };
            self.pos += 1;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte may only carry the top bit of a u64.
            if i == 9 && bits > 1 {
                return Err(DecodeError::new("varint overflows 64 bits"));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::new("varint longer than 10 bytes"))
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], DecodeError> {
        let left = self.buf.len() - self.pos;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= left)
            .ok_or_else(|| {
                DecodeError::new(format!("length {len} exceeds the {left} bytes left"))
            })?;
        let out = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

/// Decode one entry of a `map<string, V>`: key = field 1, value = field 2.
/// Fields may come in any order, repeat (last wins) or be missing (default).
pub fn map_entry<'a>(
    bytes: &'a [u8],
    field: &str,
) -> Result<(String, Option<Value<'a>>), DecodeError> {
    let mut key = String::new();
    let mut value = None;
    let mut r = Reader::new(bytes);
    while let Some((n, v)) = r.next_field()? {
        match n {
            1 => key = v.string(field)?,
            2 => value = Some(v),
            _ => {}
        }
    }
    Ok((key, value))
}

/// Decode one `map<string, string>` entry into `map`.
pub fn string_map_entry(
    bytes: &[u8],
    field: &str,
    map: &mut BTreeMap<String, String>,
) -> Result<(), DecodeError> {
    let (key, value) = map_entry(bytes, field)?;
    let value = match value {
        Some(v) => v.string(field)?,
        None => String::new(),
    };
    map.insert(key, value);
    Ok(())
}

/// Decode one `map<string, int64>` entry into `map`.
pub fn int64_map_entry(
    bytes: &[u8],
    field: &str,
    map: &mut BTreeMap<String, i64>,
) -> Result<(), DecodeError> {
    let (key, value) = map_entry(bytes, field)?;
    let value = match value {
        Some(v) => v.int64(field)?,
        None => 0,
    };
    map.insert(key, value);
    Ok(())
}

/// Builds one message's bytes.
#[derive(Debug, Clone, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty message.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    /// A length-delimited field, written even when empty (repeated elements).
    pub fn bytes(&mut self, field: u32, data: &[u8]) {
        self.key(field, WIRE_LEN);
        self.varint(data.len() as u64);
        self.buf.extend_from_slice(data);
    }

    /// A string field; left out when empty (proto3 default).
    pub fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    /// An int64 field; left out when zero.
    pub fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, WIRE_VARINT);
            // Two's complement bits, as protobuf int64 (not zigzag).
            self.varint(v as u64);
        }
    }

    /// A float field; left out when zero.
    pub fn float(&mut self, field: u32, v: f32) {
        if v != 0.0 {
            self.key(field, WIRE_FIXED32);
            self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }

    /// An embedded message, always written (presence matters for messages).
    pub fn message(&mut self, field: u32, encoded: &[u8]) {
        self.bytes(field, encoded);
    }

    /// A `map<string, string>` as repeated entries.
    pub fn string_map(&mut self, field: u32, map: &BTreeMap<String, String>) {
        for (k, v) in map {
            let mut e = Writer::new();
            e.string(1, k);
            e.string(2, v);
            self.bytes(field, &e.finish());
        }
    }

    /// A `map<string, int64>` as repeated entries.
    pub fn int64_map(&mut self, field: u32, map: &BTreeMap<String, i64>) {
        for (k, v) in map {
            let mut e = Writer::new();
            e.string(1, k);
            e.int64(2, *v);
            self.bytes(field, &e.finish());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(buf: &[u8]) -> Result<Vec<(u32, Value<'_>)>, DecodeError> {
        let mut r = Reader::new(buf);
        let mut out = Vec::new();
        while let Some(f) = r.next_field()? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn round_trip_every_wire_type() {
        let mut w = Writer::new();
        w.string(1, "héllo");
        w.int64(2, -5);
        w.int64(3, i64::MAX);
        w.float(4, 1.5);
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), "b".to_string());
        w.string_map(5, &m);
        let mut v = BTreeMap::new();
        v.insert("cfg".to_string(), 7i64);
        w.int64_map(6, &v);
        let buf = w.finish();
        let got = fields(&buf).unwrap();
        assert_eq!(got.len(), 6);
        assert_eq!(got[0].1.string("s").unwrap(), "héllo");
        assert_eq!(got[1].1.int64("i").unwrap(), -5);
        assert_eq!(got[2].1.int64("i").unwrap(), i64::MAX);
        assert_eq!(got[3].1.float("f").unwrap(), 1.5);
        let mut m2 = BTreeMap::new();
        string_map_entry(got[4].1.bytes("m").unwrap(), "m", &mut m2).unwrap();
        assert_eq!(m, m2);
        let mut v2 = BTreeMap::new();
        int64_map_entry(got[5].1.bytes("v").unwrap(), "v", &mut v2).unwrap();
        assert_eq!(v, v2);
    }

    #[test]
    fn negative_int64_is_ten_bytes_not_zigzag() {
        let mut w = Writer::new();
        w.int64(1, -1);
        let buf = w.finish();
        assert_eq!(buf.len(), 11);
        assert_eq!(buf[0], 0x08);
        assert_eq!(buf[10], 0x01);
    }

    #[test]
    fn defaults_are_left_out() {
        let mut w = Writer::new();
        w.string(1, "");
        w.int64(2, 0);
        w.float(3, 0.0);
        assert!(w.finish().is_empty());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut w = Writer::new();
        w.string(1, "abcdef");
        w.int64(2, -300);
        w.float(3, 2.0);
        let mut inner = Writer::new();
        inner.string(1, "x");
        w.message(4, &inner.finish());
        let buf = w.finish();
        for cut in 0..buf.len() {
            let r = fields(&buf[..cut]);
            // A cut on a field boundary is a valid shorter message.
            if let Ok(f) = r {
                assert!(f.len() < 4, "cut {cut} decoded all fields");
            }
        }
        assert_eq!(fields(&buf).unwrap().len(), 4);
        assert!(fields(&buf[..buf.len() - 1]).is_err());
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut w = Writer::new();
        w.string(99, "ignored");
        w.int64(1000, 12);
        w.float(77, 3.0);
        w.string(1, "kept");
        let mut buf = w.finish();
        // A fixed64 field too.
        buf.push((15 << 3) | 1);
        buf.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let got = fields(&buf).unwrap();
        let kept: Vec<_> = got.iter().filter(|(n, _)| *n == 1).collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].1.string("k").unwrap(), "kept");
        assert_eq!(got.last().unwrap().1, Value::Fixed64(0x0807060504030201));
    }

    #[test]
    fn huge_lengths_are_rejected_without_allocating() {
        // Field 1, length-delimited, length u64::MAX >> 1.
        let mut buf = vec![0x0a];
        buf.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        let err = fields(&buf).unwrap_err();
        assert!(err.message.contains("exceeds"), "{err}");
        // Length one more than what is left.
        assert!(fields(&[0x0a, 0x02, b'a']).is_err());
    }

    #[test]
    fn malformed_keys_and_varints() {
        // Field number 0.
        assert!(fields(&[0x00, 0x01]).is_err());
        // Group wire types are not supported.
        assert!(fields(&[0x0b]).is_err());
        assert!(fields(&[0x0c]).is_err());
        // Varint of 11 bytes.
        let mut buf = vec![0x08];
        buf.extend_from_slice(&[0x80; 10]);
        buf.push(0x00);
        assert!(fields(&buf).is_err());
        // Tenth byte overflowing 64 bits.
        let mut buf = vec![0x08];
        buf.extend_from_slice(&[0xff; 9]);
        buf.push(0x02);
        assert!(fields(&buf).is_err());
        // Invalid UTF-8 in a string.
        let got = fields(&[0x0a, 0x01, 0xff]).unwrap();
        assert!(got[0].1.string("s").is_err());
        // Wrong wire type for the expected kind.
        assert!(Value::Varint(1).string("s").is_err());
        assert!(Value::Bytes(b"x").int64("i").is_err());
    }
}
