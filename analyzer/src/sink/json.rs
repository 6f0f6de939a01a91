//! A minimal streaming JSON writer: exchanges are written field by field, without building
//! an intermediate document per record.

/// Builds JSON text into a byte buffer (UTF-8: everything written is a `&str`, bytes checked
/// to be UTF-8, or ASCII made here).
#[derive(Debug, Default)]
pub struct Json {
    buf: Vec<u8>,
    need_comma: Vec<bool>,
    after_key: bool,
    /// The last second [`Json::time`] wrote, and its `YYYY-MM-DDTHH:MM:SS` (an exchange's
    /// five times are mostly in one second: the calendar arithmetic is done once for them).
    second: Option<(u64, [u8; 19])>,
}

impl Json {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer that appends to `buf` (what it holds stays; it must be UTF-8 for
    /// [`Json::as_str`] to show it).
    pub fn with_buf(buf: Vec<u8>) -> Self {
        Json {
            buf,
            ..Self::default()
        }
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        // Only UTF-8 is ever written (see the type's comment).
        let text = std::str::from_utf8(&self.buf);
        debug_assert!(text.is_ok());
        text.unwrap_or_default()
    }

    /// The buffer, with everything written.
    pub fn into_buf(self) -> Vec<u8> {
        self.buf
    }

    /// Ends a top-level value with a newline (JSON lines); the next value starts a new one.
    pub fn newline(&mut self) {
        debug_assert!(self.need_comma.is_empty() && !self.after_key);
        self.buf.push(b'\n');
    }

    /// Clears the buffer for the next record.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.need_comma.clear();
        self.after_key = false;
    }

    #[inline]
    fn before_value(&mut self) {
        if self.after_key {
            self.after_key = false;
            return;
        }
        if let Some(n) = self.need_comma.last_mut() {
            if *n {
                self.buf.push(b',');
            }
            *n = true;
        }
    }

    /// `{`
    pub fn open(&mut self) {
        self.before_value();
        self.buf.push(b'{');
        self.need_comma.push(false);
    }
    /// `}`
    pub fn close(&mut self) {
        self.need_comma.pop();
        self.buf.push(b'}');
    }
    /// `[`
    pub fn open_list(&mut self) {
        self.before_value();
        self.buf.push(b'[');
        self.need_comma.push(false);
    }
    /// `]`
    pub fn close_list(&mut self) {
        self.need_comma.pop();
        self.buf.push(b']');
    }
    /// `"key":` inside an object; the next call writes its value.
    pub fn key(&mut self, k: &str) {
        self.before_value();
        if plain_short(k) {
            // Field names: short, and nothing in them to escape.
            self.buf.push(b'"');
            self.buf.extend_from_slice(k.as_bytes());
            self.buf.extend_from_slice(b"\":");
        } else {
            self.string_raw(k.as_bytes());
            self.buf.push(b':');
        }
        self.after_key = true;
    }
    /// `"name":` written as `quoted` holds it (whole, quotes and colon included): for the
    /// [`key!`] macro, whose names are literals checked when compiled (inlined, so that the
    /// copy of a literal is a few moves, not a call).
    #[inline(always)]
    pub fn key_quoted(&mut self, quoted: &'static str) {
        self.before_value();
        self.buf.extend_from_slice(quoted.as_bytes());
        self.after_key = true;
    }
    /// A string.
    pub fn str(&mut self, v: &str) {
        self.before_value();
        self.text(v.as_bytes());
    }
    /// Bytes as a string (invalid UTF-8 replaced by U+FFFD).
    pub fn bytes(&mut self, v: &[u8]) {
        self.before_value();
        if v.is_ascii() {
            // UTF-8 already (most values): no decoding.
            self.text(v);
        } else {
            self.text(String::from_utf8_lossy(v).as_bytes());
        }
    }
    /// UTF-8 text as a JSON string, copied whole when nothing in it needs escaping.
    #[inline]
    fn text(&mut self, v: &[u8]) {
        if super::plain_bytes(v, b'"') {
            self.buf.push(b'"');
            self.buf.extend_from_slice(v);
            self.buf.push(b'"');
        } else {
            self.string_raw(v);
        }
    }
    /// A number.
    pub fn u64(&mut self, v: u64) {
        self.integer(v);
    }
    /// A signed number.
    pub fn i64(&mut self, v: i64) {
        self.integer(v);
    }
    fn integer(&mut self, v: impl itoa::Integer) {
        self.before_value();
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }
    /// An address, as a string (`Display`'s text).
    pub fn ip(&mut self, v: std::net::IpAddr) {
        self.before_value();
        self.buf.push(b'"');
        match v {
            std::net::IpAddr::V4(a) => {
                crate::model::ipv4_text(a, |s| self.buf.extend_from_slice(s.as_bytes()));
            }
            std::net::IpAddr::V6(a) => {
                // Writing to a Vec cannot fail.
                use std::io::Write as _;
                let _ = write!(self.buf, "{a}");
            }
        }
        self.buf.push(b'"');
    }
    /// A finite number with up to 6 decimals (non-finite values are written as `null`).
    pub fn f64(&mut self, v: f64) {
        if v.is_finite() {
            self.before_value();
            let s = format!("{v:.6}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            self.buf
                .extend_from_slice(if s.is_empty() || s == "-" { "0" } else { s }.as_bytes());
        } else {
            self.null();
        }
    }
    /// A time as an RFC 3339 UTC string with nanoseconds (`2009-11-18T20:58:04.123456789Z`,
    /// what `humantime::format_rfc3339_nanos` writes), formatted in place.
    pub fn time(&mut self, ns: u64) {
        self.before_value();
        let secs = ns / 1_000_000_000;
        let second = match self.second {
            Some((s, text)) if s == secs => text,
            _ => {
                let text = date_time(secs);
                self.second = Some((secs, text));
                text
            }
        };
        // Quoted, in one copy (five times an exchange).
        let mut b = [b'"'; 32];
        b[1..31].copy_from_slice(&rfc3339_nanos(&second, ns));
        self.buf.extend_from_slice(&b);
    }
    /// A boolean.
    pub fn bool(&mut self, v: bool) {
        self.before_value();
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
    }
    /// `null`.
    pub fn null(&mut self) {
        self.before_value();
        self.buf.extend_from_slice(b"null");
    }

    /// `s` (UTF-8) as a JSON string, escaping what must be.
    fn string_raw(&mut self, s: &[u8]) {
        self.buf.push(b'"');
        let mut start = 0;
        for (i, &c) in s.iter().enumerate() {
            let esc = ESCAPE[usize::from(c)];
            if esc == 0 {
                continue;
            }
            self.buf.extend_from_slice(&s[start..i]);
            self.buf.push(b'\\');
            if esc == b'u' {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.buf.extend_from_slice(b"u00");
                self.buf.push(HEX[usize::from(c >> 4)]);
                self.buf.push(HEX[usize::from(c & 15)]);
            } else {
                self.buf.push(esc);
            }
            start = i + 1;
        }
        self.buf.extend_from_slice(&s[start..]);
        self.buf.push(b'"');
    }
}

/// `"name":` for a literal name: `key!(j, "uid")` is `j.key("uid")`, with the quotes and
/// colon joined to the name when compiled and the name checked then to need no escaping (an
/// exchange's line has some 30 keys: checking and copying each in three pieces was a fifth of
/// a JSON lines run's instructions on Redis).
macro_rules! key {
    ($j:expr, $k:literal) => {{
        const _: () = assert!(
            $crate::sink::json::plain_key($k),
            "a key that needs escaping"
        );
        $j.key_quoted(concat!("\"", $k, "\":"))
    }};
}
pub(crate) use key;

/// Whether a key needs no escaping ([`ESCAPE`]'s rule), when compiled.
pub const fn plain_key(k: &str) -> bool {
    let b = k.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if ESCAPES[b[i] as usize] != 0 {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `k` is at most 16 bytes long and holds no byte JSON escapes (two words:
/// [`super::plain_bytes`]).
#[inline]
fn plain_short(k: &str) -> bool {
    k.len() <= 16 && super::plain_bytes(k.as_bytes(), b'"')
}

/// How each byte is escaped in a JSON string: 0 not at all, `u` as `\u00XX`, else `\` and
/// that byte (a table instead of a `match` per byte: string escaping was 10% of a JSON lines
/// run). [`plain_key`] reads it when compiling.
const ESCAPES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = b'u';
        c += 1;
    }
    t[0x7f] = b'u';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t
};
static ESCAPE: [u8; 256] = ESCAPES;

/// Writes `ns` after the epoch as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (proleptic Gregorian,
/// UTC).
pub fn push_rfc3339_nanos(ns: u64, out: &mut String) {
    let b = rfc3339_nanos(&date_time(ns / 1_000_000_000), ns);
    // All ASCII digits and separators.
    out.push_str(std::str::from_utf8(&b).unwrap_or_default());
}

/// `ns` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, given its second's [`date_time`].
fn rfc3339_nanos(second: &[u8; 19], ns: u64) -> [u8; 30] {
    let mut b = [0u8; 30];
    b[..19].copy_from_slice(second);
    b[19] = b'.';
    digits(&mut b[20..29], ns % 1_000_000_000);
    b[29] = b'Z';
    b
}

/// `secs` after the epoch as `YYYY-MM-DDTHH:MM:SS` (the day is found from the day count with
/// the usual era arithmetic, no table; digits written directly: `write!` with padding was 8%
/// of a JSON lines run's CPU).
fn date_time(secs: u64) -> [u8; 19] {
    let days = secs / 86_400;
    let sod = secs % 86_400;
    // Days since 0000-03-01, in 400-year eras of 146,097 days.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let mut b = [0u8; 19];
    digits(&mut b[0..4], year);
    b[4] = b'-';
    digits(&mut b[5..7], month);
    b[7] = b'-';
    digits(&mut b[8..10], day);
    b[10] = b'T';
    digits(&mut b[11..13], sod / 3600);
    b[13] = b':';
    digits(&mut b[14..16], sod / 60 % 60);
    b[16] = b':';
    digits(&mut b[17..19], sod % 60);
    b
}

/// `v` in decimal, zero-padded to fill `out` (its lowest digits if it has more); two digits
/// at a time from a table.
fn digits(out: &mut [u8], mut v: u64) {
    let mut pairs = out.rchunks_exact_mut(2);
    for p in pairs.by_ref() {
        let i = usize::from((v % 100) as u8) * 2;
        p.copy_from_slice(&PAIRS[i..i + 2]);
        v /= 100;
    }
    if let [d] = pairs.into_remainder() {
        *d = b'0' + (v % 10) as u8;
    }
}

/// "00", "01", ... "99".
static PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_take_the_plain_path_only_when_nothing_needs_escaping() {
        // Every byte at every position of keys up to 17 bytes long; the key written either
        // way must be the escaped one.
        for c in 0u8..0x80 {
            for len in 1..=17 {
                for at in 0..len {
                    let mut k = vec![b'k'; len];
                    k[at] = c;
                    let k = String::from_utf8(k).expect("ASCII");
                    let plain = len <= 16 && ESCAPE[usize::from(c)] == 0;
                    assert_eq!(plain_short(&k), plain, "{k:?}");
                    // The compile-time check of `key!`'s names: the same bytes, any length.
                    assert_eq!(plain_key(&k), ESCAPE[usize::from(c)] == 0, "{k:?}");
                    let mut fast = Json::default();
                    fast.key(&k);
                    let mut slow = Json::default();
                    slow.string_raw(k.as_bytes());
                    slow.buf.push(b':');
                    assert_eq!(fast.buf, slow.buf, "{k:?}");
                }
            }
        }
        // Multi-byte characters need no escaping.
        assert!(plain_short("clé") && plain_short("") && !plain_short("a\u{7f}"));
        assert!(plain_key("clé") && plain_key("id.orig_h") && !plain_key("a\u{7f}"));
        let mut j = Json::new();
        j.open();
        key!(j, "id.orig_h");
        j.u64(1);
        key!(j, "b");
        j.null();
        j.close();
        assert_eq!(j.as_str(), r#"{"id.orig_h":1,"b":null}"#);
    }

    #[test]
    fn rfc3339_matches_humantime() {
        let mut cases = vec![
            0,
            1,
            999_999_999,
            1_000_000_000,
            951_782_400_000_000_000,   // 2000-02-29
            951_868_799_999_999_999,   // 2000-02-29T23:59:59.999999999
            1_258_577_884_844_956_123, // 2009-11-18
            4_107_542_400_000_000_000, // 2100-03-01
            u64::MAX,
        ];
        // A spread of days over the whole range, at odd times of day.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push(x);
        }
        for ns in cases {
            let mut s = String::new();
            push_rfc3339_nanos(ns, &mut s);
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns);
            assert_eq!(s, humantime::format_rfc3339_nanos(t).to_string(), "{ns}");
        }
    }

    #[test]
    fn times_of_one_second_and_of_the_next_are_written_whole() {
        // Runs of instants in one second (the cached date and time), then a jump, a step
        // back, the same second again, and a second's last and next nanoseconds.
        let base = 1_258_577_884_000_000_000u64;
        let mut cases = vec![base, base + 1, base + 999_999_999, base + 1_000_000_000];
        cases.extend([
            base - 1,
            base,
            u64::MAX,
            0,
            86_399_999_999_999,
            86_400_000_000_000,
        ]);
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly within a few seconds of `base`, sometimes anywhere.
            cases.push(if x.is_multiple_of(4) {
                x
            } else {
                base + x % 3_000_000_000
            });
        }
        let mut j = Json::new();
        j.open_list();
        let mut want = String::from("[");
        for (i, ns) in cases.iter().enumerate() {
            j.time(*ns);
            if i > 0 {
                want.push(',');
            }
            want.push('"');
            push_rfc3339_nanos(*ns, &mut want);
            want.push('"');
        }
        j.close_list();
        want.push(']');
        assert_eq!(j.as_str(), want);
    }

    #[test]
    fn bytes_are_written_as_their_lossy_text() {
        // ASCII with and without escapes, UTF-8 with escapes, bytes that are not UTF-8 (cut
        // characters, lone continuation bytes), at every length up to 20.
        let pieces: [&[u8]; 8] = [
            b"plain",
            b"q\"b\\c",
            b"\x01\x1f\x7f\n",
            "é中😀".as_bytes(),
            b"\xff",
            b"\xe4\xb8",
            b"\x80x",
            b"",
        ];
        for a in pieces {
            for b in pieces {
                let v = [a, b, a].concat();
                for cut in 0..=v.len().min(20) {
                    let v = &v[..cut];
                    let mut fast = Json::new();
                    fast.bytes(v);
                    let mut slow = Json::new();
                    slow.str(&String::from_utf8_lossy(v));
                    assert_eq!(fast.as_str(), slow.as_str(), "{v:?}");
                    let back: String = serde_json::from_str(fast.as_str()).unwrap();
                    assert_eq!(back, String::from_utf8_lossy(v));
                }
            }
        }
    }

    #[test]
    fn nested_objects_and_escaping() {
        let mut j = Json::new();
        j.open();
        j.key("a");
        j.u64(1);
        j.key("b");
        j.open();
        j.key("c");
        j.str("x\"y\\z\n\u{1}");
        j.key("d");
        j.open_list();
        j.bool(true);
        j.null();
        j.close_list();
        j.close();
        j.key("e");
        j.bytes(b"\xff");
        j.close();
        let v: serde_json::Value = serde_json::from_str(j.as_str()).unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(v["b"]["c"], "x\"y\\z\n\u{1}");
        assert_eq!(v["b"]["d"][0], true);
        assert_eq!(v["e"], "\u{fffd}");
    }

    #[test]
    fn every_character_escapes_as_before_and_reads_back() {
        // The escapes this writer has always produced, written out per character.
        let expected = |c: char| -> String {
            match c {
                '"' => "\\\"".into(),
                '\\' => "\\\\".into(),
                '\n' => "\\n".into(),
                '\r' => "\\r".into(),
                '\t' => "\\t".into(),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => format!("\\u{:04x}", c as u32),
                c => c.to_string(),
            }
        };
        let mut all: Vec<char> = (0u32..0x800).filter_map(char::from_u32).collect();
        all.extend(['\u{fffd}', '\u{1f600}']);
        for c in &all {
            let s = format!("a{c}b{c}");
            let mut j = Json::new();
            j.str(&s);
            let want = format!("\"a{}b{}\"", expected(*c), expected(*c));
            assert_eq!(j.as_str(), want, "{:?}", c);
            let back: String = serde_json::from_str(j.as_str()).unwrap();
            assert_eq!(back, s);
        }
        let mut j = Json::new();
        j.open_list();
        for ip in [
            "10.0.0.1",
            "255.255.255.255",
            "::1",
            "2001:db8::8:800:200c:417a",
        ] {
            j.ip(ip.parse().unwrap());
        }
        j.i64(-42);
        j.u64(u64::MAX);
        j.close_list();
        assert_eq!(
            j.as_str(),
            "[\"10.0.0.1\",\"255.255.255.255\",\"::1\",\"2001:db8::8:800:200c:417a\",-42,18446744073709551615]"
        );
    }
}
