//! gRPC over HTTP/2 (the "gRPC over HTTP2" protocol description): which streams are gRPC,
//! service and method from `:path`, the length-prefixed message framing inside DATA, and
//! `grpc-status` / `grpc-message`.

use crate::read::be_u32;

/// Whether a content type is gRPC's: `application/grpc`, alone or followed by `+format`
/// (`application/grpc+proto`) or parameters.
pub fn is_grpc(content_type: &[u8]) -> bool {
    const T: &[u8] = b"application/grpc";
    content_type.len() >= T.len()
        && content_type[..T.len()].eq_ignore_ascii_case(T)
        && matches!(content_type.get(T.len()), None | Some(b'+' | b';' | b' '))
}

/// `/package.Service/Method` → (`package.Service`, `Method`).
pub fn split_path(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let p = path.strip_prefix(b"/")?;
    let slash = p.iter().position(|&c| c == b'/')?;
    let (svc, m) = (&p[..slash], &p[slash + 1..]);
    (!svc.is_empty() && !m.is_empty() && !m.contains(&b'/')).then_some((svc, m))
}

/// A `grpc-status` value: decimal digits only.
pub fn parse_status(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 10 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0')))
}

/// The name of a status code.
pub fn status_name(code: u64) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNRECOGNIZED",
    }
}

/// `grpc-message` is percent-encoded (any `%XX`); a `%` without two hex digits stays as is.
pub fn decode_message(v: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%'
            && i + 2 < v.len()
            && let (Some(a), Some(b)) = (hex(v[i + 1]), hex(v[i + 2]))
        {
            out.push(a << 4 | b);
            i += 3;
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    out
}

/// Counts the length-prefixed messages of one direction of a gRPC stream as DATA payload
/// arrives in pieces: a 1-byte compressed flag, a 4-byte big-endian length, the message.
/// Holds 5 bytes at most, whatever the lengths claim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Framing {
    prefix: [u8; 5],
    have: usize,
    /// Message bytes still to come in the current message.
    left: u64,
    /// Messages whose prefix was seen.
    pub messages: u64,
    /// Sum of their declared lengths.
    pub bytes: u64,
    /// Messages with the compressed flag set.
    pub compressed: u64,
    /// A gap or a bad flag byte lost the framing: the counts are a lower bound.
    pub lost: bool,
}

impl Framing {
    /// More DATA payload. A flag byte other than 0 or 1 loses the framing.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.lost {
            if self.left > 0 {
                let n = self.left.min(data.len() as u64);
                self.left -= n;
                data = &data[n as usize..];
                continue;
            }
            let take = crate::read::fill_header(&mut self.prefix, &mut self.have, 5, data);
            data = &data[take..];
            if self.have == 5 {
                self.have = 0;
                if self.prefix[0] > 1 {
                    self.lost = true;
                    return;
                }
                // The prefix holds five bytes: the length is always there.
                let len = be_u32(&self.prefix, 1).unwrap_or_default();
                self.messages += 1;
                self.bytes += u64::from(len);
                self.compressed += u64::from(self.prefix[0]);
                self.left = u64::from(len);
            }
        }
    }

    /// Payload bytes were lost: message boundaries are unknown from here on.
    pub fn gap(&mut self) {
        self.lost = true;
    }

    /// Whether the bytes so far end at a message boundary (a stream must end there).
    pub fn at_boundary(&self) -> bool {
        self.lost || (self.left == 0 && self.have == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_paths_statuses() {
        for (ct, want) in [
            (&b"application/grpc"[..], true),
            (b"application/grpc+proto", true),
            (b"Application/GRPC;charset=x", true),
            (b"application/grpc-web", false),
            (b"application/grpcx", false),
            (b"application/json", false),
        ] {
            assert_eq!(is_grpc(ct), want, "{}", String::from_utf8_lossy(ct));
        }
        assert_eq!(
            split_path(b"/juno.fixture.Echo/Unary"),
            Some((&b"juno.fixture.Echo"[..], &b"Unary"[..]))
        );
        assert_eq!(split_path(b"/a/b/c"), None);
        assert_eq!(split_path(b"//m"), None);
        assert_eq!(split_path(b"/svc/"), None);
        assert_eq!(split_path(b"svc/m"), None);
        assert_eq!(parse_status(b"14"), Some(14));
        assert_eq!(parse_status(b""), None);
        assert_eq!(parse_status(b"1x"), None);
        assert_eq!(parse_status(b"99999999999"), None);
        assert_eq!(status_name(5), "NOT_FOUND");
        assert_eq!(status_name(17), "UNRECOGNIZED");
        assert_eq!(
            decode_message(b"no such thing%3A 42%"),
            b"no such thing: 42%"
        );
        assert_eq!(decode_message(b"%zz%4"), b"%zz%4");
        assert_eq!(decode_message(b"caf%C3%A9"), "café".as_bytes());
    }

    #[test]
    fn framing_split_anywhere() {
        // Three messages: 3 bytes, 0 bytes, 300 bytes compressed.
        let mut wire = vec![
            0, 0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 0, 0, 1, 0, 0, 1, 0x2c,
        ];
        wire.extend([7u8; 300]);
        for cut in 0..wire.len() {
            for cut2 in cut..wire.len() {
                let mut f = Framing::default();
                f.feed(&wire[..cut]);
                f.feed(&wire[cut..cut2]);
                f.feed(&wire[cut2..]);
                assert_eq!((f.messages, f.bytes, f.compressed), (3, 303, 1));
                assert!(f.at_boundary());
            }
        }
        let mut f = Framing::default();
        f.feed(&wire[..10]);
        assert!(!f.at_boundary());
        assert_eq!(f.messages, 1);
    }

    #[test]
    fn framing_loss() {
        let mut f = Framing::default();
        f.feed(&[2, 0, 0, 0, 1, b'x']);
        assert!(f.lost && f.at_boundary());
        assert_eq!(f.messages, 0);
        let mut f = Framing::default();
        f.feed(&[0, 0xff, 0xff, 0xff, 0xff]);
        // A 4 GiB message claimed: counted, nothing buffered.
        assert_eq!((f.messages, f.bytes), (1, u64::from(u32::MAX)));
        f.gap();
        f.feed(&[0, 0, 0, 0, 1, b'y']);
        assert_eq!(f.messages, 1);
    }
}
