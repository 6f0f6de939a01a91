//! HTTP/2 frames (RFC 9113 §4.1, §6): the 9-byte frame header and the payloads the parser
//! reads. Pure functions on byte slices: nothing here allocates or panics, whatever the bytes
//! claim; a payload that does not fit its type is an [`Error`], not a panic.

use crate::read::{be_u16, be_u24, be_u32};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Bytes in a frame header.
pub const HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE's initial value; larger frames need a setting (the probe insists
/// on this bound, the parser does not).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;

/// Frame flags (their meaning depends on the type).
pub mod flags {
    /// DATA, HEADERS: the sender's last frame on the stream.
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: an acknowledgement.
    pub const ACK: u8 = 0x1;
    /// HEADERS, PUSH_PROMISE, CONTINUATION: the header block ends here.
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS, PUSH_PROMISE: a pad length byte and padding.
    pub const PADDED: u8 = 0x8;
    /// HEADERS: a stream dependency and weight precede the fragment.
    pub const PRIORITY: u8 = 0x20;
}

/// Setting identifiers the parser uses (RFC 9113 §6.5.2).
pub mod setting {
    /// SETTINGS_HEADER_TABLE_SIZE: the most the sender's HPACK decoder will keep.
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    /// SETTINGS_ENABLE_PUSH: 0 or 1.
    pub const ENABLE_PUSH: u16 = 0x2;
    /// SETTINGS_INITIAL_WINDOW_SIZE: at most 2^31-1.
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    /// SETTINGS_MAX_FRAME_SIZE: 2^14 ..= 2^24-1.
    pub const MAX_FRAME_SIZE: u16 = 0x5;
}

/// A frame type; types this parser does not know are kept by number (and skipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameType {
    /// 0x0
    Data,
    /// 0x1
    Headers,
    /// 0x2
    Priority,
    /// 0x3
    RstStream,
    /// 0x4
    Settings,
    /// 0x5
    PushPromise,
    /// 0x6
    Ping,
    /// 0x7
    Goaway,
    /// 0x8
    WindowUpdate,
    /// 0x9
    Continuation,
    /// Anything else (extensions: ALTSVC, ORIGIN, PRIORITY_UPDATE, ...).
    Unknown(u8),
}

impl From<u8> for FrameType {
    fn from(t: u8) -> Self {
        match t {
            0 => FrameType::Data,
            1 => FrameType::Headers,
            2 => FrameType::Priority,
            3 => FrameType::RstStream,
            4 => FrameType::Settings,
            5 => FrameType::PushPromise,
            6 => FrameType::Ping,
            7 => FrameType::Goaway,
            8 => FrameType::WindowUpdate,
            9 => FrameType::Continuation,
            n => FrameType::Unknown(n),
        }
    }
}

impl From<FrameType> for u8 {
    fn from(t: FrameType) -> u8 {
        match t {
            FrameType::Data => 0,
            FrameType::Headers => 1,
            FrameType::Priority => 2,
            FrameType::RstStream => 3,
            FrameType::Settings => 4,
            FrameType::PushPromise => 5,
            FrameType::Ping => 6,
            FrameType::Goaway => 7,
            FrameType::WindowUpdate => 8,
            FrameType::Continuation => 9,
            FrameType::Unknown(n) => n,
        }
    }
}

/// A frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length (24 bits).
    pub len: u32,
    /// Type.
    pub ty: FrameType,
    /// Flags.
    pub flags: u8,
    /// Stream identifier (31 bits; the reserved bit is dropped).
    pub stream: u32,
}

impl FrameHeader {
    /// Parses the first [`HEADER_LEN`] bytes; `None` when there are fewer.
    pub fn parse(b: &[u8]) -> Option<FrameHeader> {
        let h = b.get(..HEADER_LEN)?;
        Some(FrameHeader {
            len: be_u24(h, 0)?,
            ty: FrameType::from(h[3]),
            flags: h[4],
            stream: be_u32(h, 5)? & 0x7fff_ffff,
        })
    }

    /// The header's bytes (`len` is cut to 24 bits).
    pub fn emit(&self) -> [u8; HEADER_LEN] {
        let l = self.len.to_be_bytes();
        let s = self.stream.to_be_bytes();
        [
            l[1],
            l[2],
            l[3],
            u8::from(self.ty),
            self.flags,
            s[0],
            s[1],
            s[2],
            s[3],
        ]
    }

    /// Whether a flag is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Whether the stream identifier suits the type (RFC 9113 §6: connection-level frames on
    /// stream 0, stream frames elsewhere; WINDOW_UPDATE and unknown types on either).
    pub fn stream_ok(&self) -> bool {
        match self.ty {
            FrameType::Settings | FrameType::Ping | FrameType::Goaway => self.stream == 0,
            FrameType::WindowUpdate | FrameType::Unknown(_) => true,
            _ => self.stream != 0,
        }
    }

    /// Whether this header looks like one a real implementation sends: a known type, a
    /// length within the default maximum that fits the type, the right kind of stream id and
    /// only flags the type defines. Used to detect HTTP/2 without the preface.
    pub fn plausible(&self) -> bool {
        let allowed = match self.ty {
            FrameType::Data => flags::END_STREAM | flags::PADDED,
            FrameType::Headers => {
                flags::END_STREAM | flags::END_HEADERS | flags::PADDED | flags::PRIORITY
            }
            FrameType::PushPromise => flags::END_HEADERS | flags::PADDED,
            FrameType::Continuation => flags::END_HEADERS,
            FrameType::Settings | FrameType::Ping => flags::ACK,
            FrameType::Unknown(_) => return false,
            _ => 0,
        };
        let len_ok = match self.ty {
            FrameType::Priority => self.len == 5,
            FrameType::RstStream | FrameType::WindowUpdate => self.len == 4,
            FrameType::Ping => self.len == 8,
            FrameType::Goaway => self.len >= 8,
            FrameType::Settings if self.has(flags::ACK) => self.len == 0,
            FrameType::Settings => self.len.is_multiple_of(6),
            _ => true,
        };
        self.flags & !allowed == 0
            && len_ok
            && self.len <= DEFAULT_MAX_FRAME_SIZE
            && self.stream_ok()
    }
}

/// What is wrong with a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The length does not fit the type (RST_STREAM not 4, SETTINGS not a multiple of 6, ...).
    BadLength,
    /// The pad length is longer than the payload.
    BadPadding,
    /// A setting with a value it may not have.
    BadSetting,
}

impl Error {
    /// The anomaly's name.
    pub fn weird(self) -> &'static str {
        match self {
            Error::BadLength => "http2_bad_frame_length",
            Error::BadPadding => "http2_bad_padding",
            Error::BadSetting => "http2_bad_setting",
        }
    }
}

/// The payload of a padded frame without its pad length byte and padding.
pub fn unpad<'a>(h: &FrameHeader, p: &'a [u8]) -> Result<&'a [u8], Error> {
    if !h.has(flags::PADDED) {
        return Ok(p);
    }
    let (&pad, rest) = p.split_first().ok_or(Error::BadPadding)?;
    let keep = rest
        .len()
        .checked_sub(usize::from(pad))
        .ok_or(Error::BadPadding)?;
    Ok(&rest[..keep])
}

/// A HEADERS payload's header block fragment (padding and priority removed).
pub fn headers_fragment<'a>(h: &FrameHeader, p: &'a [u8]) -> Result<&'a [u8], Error> {
    let p = unpad(h, p)?;
    if h.has(flags::PRIORITY) {
        p.get(5..).ok_or(Error::BadLength)
    } else {
        Ok(p)
    }
}

/// A PUSH_PROMISE payload: the promised stream id and the header block fragment.
pub fn push_promise<'a>(h: &FrameHeader, p: &'a [u8]) -> Result<(u32, &'a [u8]), Error> {
    let p = unpad(h, p)?;
    let id = be_u32(p, 0).ok_or(Error::BadLength)? & 0x7fff_ffff;
    Ok((id, &p[4..]))
}

/// A SETTINGS payload's (identifier, value) pairs, checked against RFC 9113 §6.5.2.
pub fn settings(p: &[u8]) -> Result<impl Iterator<Item = (u16, u32)> + '_, Error> {
    if !p.len().is_multiple_of(6) {
        return Err(Error::BadLength);
    }
    let pairs = p
        .chunks_exact(6)
        .filter_map(|c| Some((be_u16(c, 0)?, be_u32(c, 2)?)));
    for (id, v) in pairs.clone() {
        let ok = match id {
            setting::ENABLE_PUSH => v <= 1,
            setting::INITIAL_WINDOW_SIZE => v <= 0x7fff_ffff,
            setting::MAX_FRAME_SIZE => (DEFAULT_MAX_FRAME_SIZE..=0xff_ffff).contains(&v),
            _ => true,
        };
        if !ok {
            return Err(Error::BadSetting);
        }
    }
    Ok(pairs)
}

/// A RST_STREAM payload: the error code.
pub fn rst_stream(p: &[u8]) -> Result<u32, Error> {
    if p.len() != 4 {
        return Err(Error::BadLength);
    }
    be_u32(p, 0).ok_or(Error::BadLength)
}

/// A GOAWAY payload: the last stream id the sender processed (or may process) and the error
/// code (debug data follows and is ignored).
pub fn goaway(p: &[u8]) -> Result<(u32, u32), Error> {
    match (be_u32(p, 0), be_u32(p, 4)) {
        (Some(last), Some(code)) => Ok((last & 0x7fff_ffff, code)),
        _ => Err(Error::BadLength),
    }
}

/// A WINDOW_UPDATE payload: the increment (0 is a protocol error, reported by the caller).
pub fn window_update(p: &[u8]) -> Result<u32, Error> {
    if p.len() != 4 {
        return Err(Error::BadLength);
    }
    be_u32(p, 0)
        .map(|v| v & 0x7fff_ffff)
        .ok_or(Error::BadLength)
}

/// The name of an error code (RFC 9113 §7); unknown codes are `UNKNOWN`.
pub fn error_name(code: u32) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parse_and_emit() {
        // HEADERS, 13 bytes, END_STREAM|END_HEADERS, stream 3 with the reserved bit set.
        let b = [0x00, 0x00, 0x0d, 0x01, 0x05, 0x80, 0x00, 0x00, 0x03];
        let h = FrameHeader::parse(&b).unwrap();
        assert_eq!(
            h,
            FrameHeader {
                len: 13,
                ty: FrameType::Headers,
                flags: 5,
                stream: 3
            }
        );
        assert!(h.has(flags::END_STREAM) && h.has(flags::END_HEADERS));
        assert!(!h.has(flags::PADDED));
        // The reserved bit is not kept.
        assert_eq!(h.emit(), [0, 0, 0x0d, 1, 5, 0, 0, 0, 3]);
        assert_eq!(FrameHeader::parse(&b[..8]), None);
        let u = FrameHeader::parse(&[0xff, 0xff, 0xff, 0xab, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((u.len, u.ty), (0xff_ffff, FrameType::Unknown(0xab)));
        for t in 0..=255u8 {
            assert_eq!(u8::from(FrameType::from(t)), t);
        }
    }

    #[test]
    fn plausibility_per_type() {
        let h = |len, ty: u8, flags, stream| FrameHeader {
            len,
            ty: ty.into(),
            flags,
            stream,
        };
        let cases = [
            (h(18, 4, 0, 0), true),      // SETTINGS
            (h(0, 4, 1, 0), true),       // SETTINGS ACK
            (h(6, 4, 1, 0), false),      // ACK with payload
            (h(7, 4, 0, 0), false),      // not a multiple of 6
            (h(6, 4, 0, 1), false),      // on a stream
            (h(8, 6, 1, 0), true),       // PING ACK
            (h(4, 6, 0, 0), false),      // short PING
            (h(4, 8, 0, 0), true),       // connection WINDOW_UPDATE
            (h(4, 8, 0, 5), true),       // stream WINDOW_UPDATE
            (h(5, 2, 0, 3), true),       // PRIORITY
            (h(4, 3, 0, 0), false),      // RST_STREAM on stream 0
            (h(100, 1, 0x25, 1), true),  // HEADERS with END_STREAM|END_HEADERS|PRIORITY
            (h(100, 1, 0x40, 1), false), // undefined flag
            (h(16_385, 0, 0, 1), false), // over the default maximum
            (h(16, 7, 0, 0), true),      // GOAWAY
            (h(1, 0xa, 0, 0), false),    // unknown type
        ];
        for (i, (hd, want)) in cases.iter().enumerate() {
            assert_eq!(hd.plausible(), *want, "case {i}: {hd:?}");
        }
    }

    #[test]
    fn padding_and_priority() {
        let padded = FrameHeader {
            len: 0,
            ty: FrameType::Headers,
            flags: flags::PADDED | flags::PRIORITY,
            stream: 1,
        };
        // pad length 2, priority (5 bytes), fragment 0x82, padding.
        let p = [2, 0x80, 0, 0, 0, 15, 0x82, 0, 0];
        assert_eq!(headers_fragment(&padded, &p), Ok(&[0x82][..]));
        assert_eq!(
            headers_fragment(&padded, &[9, 1, 2]),
            Err(Error::BadPadding)
        );
        assert_eq!(headers_fragment(&padded, &[0, 1, 2]), Err(Error::BadLength));
        assert_eq!(unpad(&padded, &[]), Err(Error::BadPadding));
        let data = FrameHeader {
            ty: FrameType::Data,
            flags: flags::PADDED,
            ..padded
        };
        assert_eq!(unpad(&data, &[3, b'h', b'i', 0, 0, 0]), Ok(&b"hi"[..]));
        let pp = FrameHeader {
            ty: FrameType::PushPromise,
            flags: flags::END_HEADERS,
            ..padded
        };
        assert_eq!(
            push_promise(&pp, &[0x80, 0, 0, 2, 0x82, 0x86]),
            Ok((2, &[0x82, 0x86][..]))
        );
        assert_eq!(push_promise(&pp, &[0, 0, 2]), Err(Error::BadLength));
    }

    #[test]
    fn control_payloads() {
        let s: Vec<_> = settings(&[0, 1, 0, 0, 0x10, 0, 0, 3, 0, 0, 0, 100])
            .unwrap()
            .collect();
        assert_eq!(s, vec![(1, 4096), (3, 100)]);
        assert_eq!(settings(&[0, 1, 0]).err(), Some(Error::BadLength));
        assert_eq!(settings(&[0, 2, 0, 0, 0, 2]).err(), Some(Error::BadSetting));
        assert_eq!(
            settings(&[0, 5, 0, 0, 0x10, 0]).err(),
            Some(Error::BadSetting)
        );
        assert_eq!(rst_stream(&[0, 0, 0, 8]), Ok(8));
        assert_eq!(rst_stream(&[0, 0, 8]), Err(Error::BadLength));
        assert_eq!(goaway(&[0x80, 0, 0, 5, 0, 0, 0, 2, b'x']), Ok((5, 2)));
        assert_eq!(goaway(&[0, 0, 0, 5]), Err(Error::BadLength));
        assert_eq!(window_update(&[0x80, 0, 1, 0]), Ok(256));
        assert_eq!(window_update(&[0, 0, 1, 0, 0]), Err(Error::BadLength));
        assert_eq!(error_name(8), "CANCEL");
        assert_eq!(error_name(0x99), "UNKNOWN");
    }
}
