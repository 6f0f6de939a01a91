//! Header lines: assembling them (obs-fold continuations joined, bounded by
//! [`MAX_HEADERS`] and [`MAX_HEADER_BYTES`]) and interpreting the few that the log reports or
//! that delimit the message. Trailers go through the same path.

use super::message::{Body, Kind, Msg};
use super::wire::{first_token_lower, is_ws, parse_content_length, split_header, trim_start};
use super::{Http, MAX_HEADER_BYTES, MAX_HEADERS, State};
use crate::l7::Emitter;
use crate::model::{Dir, Ts};

/// What a message's headers said, as far as the parser cares (the last of repeated headers
/// wins), and how much header it has buffered.
#[derive(Debug, Default)]
pub(super) struct Headers {
    pub(super) host: Option<Vec<u8>>,
    pub(super) user_agent: Option<Vec<u8>>,
    pub(super) referrer: Option<Vec<u8>>,
    pub(super) origin: Option<Vec<u8>>,
    pub(super) content_type: Option<Vec<u8>>,
    pub(super) content_length: Option<u64>,
    pub(super) bad_content_length: bool,
    pub(super) transfer_encoding: Option<Vec<u8>>,
    pub(super) content_encoding: Option<Vec<u8>>,
    pub(super) content_range: Option<Vec<u8>>,
    pub(super) connection: Option<Vec<u8>>,
    pub(super) upgrade: Option<Vec<u8>>,
    pub(super) http2_settings: Option<Vec<u8>>,
    pub(super) count: usize,
    pub(super) bytes: usize,
}

impl Http {
    /// A line of the headers (or trailers) of `dir`'s message; the empty line ends them.
    pub(super) fn header_line(&mut self, dir: Dir, ts: Ts, line: &[u8], out: &mut Emitter) {
        let di = dir.idx();
        let in_trailers = self.sides[di].state == State::Body(Body::Trailers);
        let Some(m) = self.sides[di].msg.as_mut() else {
            return;
        };
        m.last = ts;
        if line.is_empty() {
            if let Some(p) = m.pending.take() {
                apply_header(m, &p, out);
            }
            if !in_trailers {
                self.headers_done(dir, ts, out);
            }
            return;
        }
        m.h.count += 1;
        m.h.bytes += line.len();
        if m.h.count > MAX_HEADERS || m.h.bytes > MAX_HEADER_BYTES {
            self.give_up(out, "http_headers_too_large");
            return;
        }
        if is_ws(line[0]) {
            match &mut m.pending {
                Some(p) => {
                    out.weird("HTTP_obsolete_line_folding");
                    p.extend_from_slice(line);
                }
                None => m.pending = Some(trim_start(line).to_vec()),
            }
            return;
        }
        if let Some(p) = m.pending.take() {
            apply_header(m, &p, out);
        }
        m.pending = Some(line.to_vec());
    }
}

/// Applies one complete header line (continuations joined) to the message.
pub(super) fn apply_header(m: &mut Msg, line: &[u8], out: &mut Emitter) {
    let Some((name, value)) = split_header(line) else {
        out.weird("HTTP_bad_header");
        return;
    };
    let is_req = m.kind == Kind::Request;
    let lower = name.to_ascii_lowercase();
    match lower.as_slice() {
        b"host" if is_req => m.h.host = Some(value.to_vec()),
        b"user-agent" if is_req => m.h.user_agent = Some(value.to_vec()),
        b"referer" if is_req => m.h.referrer = Some(value.to_vec()),
        b"origin" if is_req => m.h.origin = Some(value.to_vec()),
        b"content-type" => m.h.content_type = Some(value.to_vec()),
        b"content-length" => {
            if value.is_empty() {
                return;
            }
            match parse_content_length(value) {
                Ok(n) => m.h.content_length = Some(n),
                Err(()) => {
                    out.weird("HTTP_bad_content_length");
                    if m.h.content_length.is_none() {
                        m.h.bad_content_length = true;
                    }
                }
            }
        }
        b"transfer-encoding" => {
            if value.contains(&b',') && first_token_lower(value) == b"chunked" {
                out.weird("HTTP_chunked_multi");
            }
            m.h.transfer_encoding = Some(value.to_vec());
        }
        b"content-encoding" => m.h.content_encoding = Some(value.to_vec()),
        b"content-range" => m.h.content_range = Some(value.to_vec()),
        b"connection" => m.h.connection = Some(value.to_vec()),
        b"upgrade" => m.h.upgrade = Some(value.to_vec()),
        b"http2-settings" if is_req => m.h.http2_settings = Some(value.to_vec()),
        _ => {}
    }
}
