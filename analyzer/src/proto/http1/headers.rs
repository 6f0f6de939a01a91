//! Header lines of a message or of a MIME part (and a chunked message's trailers):
//! assembling them (continuation lines appended; a line is complete when the next line that
//! does not continue it arrives, or the block ends), and interpreting each complete line the
//! way Zeek does — the entity's own framing headers (`HTTP_Entity::SubmitHeader`, MIME's
//! Content-Type), the connection's (`HTTP_Analyzer::HTTP_Header`: Connection, Upgrade), and
//! the request fields the log shows (`http_header` in Zeek's scripts), which belong to the
//! request as soon as their line is complete.

use super::inflate::Coding;
use super::wire::{
    Name, after_token, content_range_len, header_name, is_ws, parse_content_length,
    parse_content_type, split_header, value_token,
};
use super::{Http, MAX_HEADER_BYTES, MAX_HEADERS};
use crate::l7::Emitter;
use crate::model::{Dir, Text, Ts, Value};

/// A header line with its continuations grows to this at most (Zeek's
/// `MIME::max_header_bytes`); further continuations are dropped.
const MAX_HEADER_LINE: usize = 64 * 1024;
/// The largest header line buffer a connection keeps for reuse.
const SPARE_LINE_MAX: usize = 1024;

impl Http {
    /// A line of the headers of the entity at `level` of `dir`'s message; the empty line (or
    /// one starting with NUL) ends them.
    pub(super) fn header_line(
        &mut self,
        dir: Dir,
        level: usize,
        ts: Ts,
        line: &[u8],
        len: u64,
        out: &mut Emitter,
    ) {
        if len == 0 || line.first() == Some(&0) {
            self.finish_header(dir, level, out);
            let Some(m) = self.sides[dir.idx()].msg.as_mut() else {
                return;
            };
            m.ents[level].in_header = false;
            self.submit_all_headers(dir, level, ts, out);
            // A message/* entity's body is one part.
            if self.sides[dir.idx()]
                .msg
                .as_ref()
                .is_some_and(|m| m.ents.get(level).is_some_and(|e| !e.ended && e.message))
            {
                self.begin_child(dir, level, out);
            }
            return;
        }
        let Some(m) = self.sides[dir.idx()].msg.as_mut() else {
            return;
        };
        if level == 0 {
            m.header_count += 1;
            m.header_bytes += line.len();
            if m.header_count > MAX_HEADERS || m.header_bytes > MAX_HEADER_BYTES {
                self.give_up(out, "http_headers_too_large");
                return;
            }
        }
        let e = &mut m.ents[level];
        if is_ws(line[0]) {
            match &mut e.pending {
                Some(p) if p.len() >= MAX_HEADER_LINE => {
                    out.weird("exceeded_mime_max_header_bytes")
                }
                Some(p) => {
                    if level == 0 {
                        out.weird("HTTP_obsolete_line_folding");
                    }
                    p.extend_from_slice(line);
                }
                None => {
                    out.weird("HTTP_first_header_line_starts_with_whitespace");
                    let ws = line.iter().take_while(|&&c| is_ws(c)).count();
                    e.pending = Some(line[ws..].to_vec());
                }
            }
            return;
        }
        self.finish_header(dir, level, out);
        if let Some(m) = self.sides[dir.idx()].msg.as_mut() {
            let mut held = std::mem::take(&mut self.spare_line);
            held.extend_from_slice(line);
            m.ents[level].pending = Some(held);
        }
    }

    /// The header line in progress of the entity at `level` is complete.
    pub(super) fn finish_header(&mut self, dir: Dir, level: usize, out: &mut Emitter) {
        let Some(mut line) = self.sides[dir.idx()]
            .msg
            .as_mut()
            .and_then(|m| m.ents.get_mut(level))
            .and_then(|e| e.pending.take())
        else {
            return;
        };
        self.apply_header(dir, level, &line, out);
        // Kept for the next line unless a long (folded) header grew it.
        if line.capacity() <= SPARE_LINE_MAX {
            line.clear();
            self.spare_line = line;
        }
    }

    /// Applies one complete header line (continuations joined).
    fn apply_header(&mut self, dir: Dir, level: usize, line: &[u8], out: &mut Emitter) {
        let Some((name, value)) = split_header(line) else {
            out.weird("HTTP_bad_header");
            return;
        };
        let is_req = dir == Dir::ToServer;
        let name = header_name(name);
        // Only a few headers need their first token: found when asked for.
        let token = || value_token(value);
        let chunked_version = if self.request_ongoing {
            self.request_version
        } else {
            self.reply_version
        };
        let reply_code = self.reply_code;
        let Some(m) = self.sides[dir.idx()].msg.as_mut() else {
            return;
        };
        let e = &mut m.ents[level];
        match name {
            Name::ContentType => {
                if let Some(ct) = parse_content_type(value) {
                    if let Some(b) = ct.boundary {
                        e.boundary = Some(b);
                    }
                    e.multipart = ct.multipart && e.boundary.is_some();
                    e.message = ct.message;
                }
                if level == 0 {
                    m.content_type = Some(Text::from_slice(value));
                }
            }
            Name::ContentLength => {
                if e.chunked {
                    out.weird("HTTP_content_length_and_chunked");
                }
                match parse_content_length(value) {
                    None => {}
                    Some(Ok(n)) => {
                        let n = n as i64;
                        e.content_length = Some(n);
                        if let Some(r) = e.range {
                            if r != n {
                                out.weird("HTTP_range_not_matching_len");
                            }
                            if r > n {
                                e.content_length = Some(r);
                            }
                        }
                    }
                    Some(Err(())) => {
                        out.weird("HTTP_bad_content_length");
                        e.content_length = Some(0);
                    }
                }
            }
            Name::ContentRange if reply_code == 206 => {
                if let Some(r) = content_range_len(value) {
                    let r = r as i64;
                    e.range = Some(r);
                    match e.content_length {
                        Some(cl) if cl > 0 => {
                            if cl != r {
                                out.weird("HTTP_range_not_matching_len");
                            }
                            if r > cl {
                                e.content_length = Some(r);
                            }
                        }
                        _ => e.content_length = Some(r),
                    }
                }
            }
            Name::TransferEncoding
                if level == 0
                    && token().eq_ignore_ascii_case(b"chunked")
                    && chunked_version == (1, 1) =>
            {
                e.chunked = true;
                if !after_token(value).is_empty() {
                    out.weird("HTTP_chunked_multi");
                }
                if e.content_length.is_some() {
                    out.weird("HTTP_content_length_and_chunked");
                }
            }
            Name::TransferEncoding if level == 0 => {}
            Name::TransferEncoding => out.weird("HTTP_nested_transfer_encoding_header"),
            Name::ContentEncoding => {
                if token().eq_ignore_ascii_case(b"gzip") || token().eq_ignore_ascii_case(b"x-gzip")
                {
                    e.coding = Some(Coding::Gzip);
                }
                if token().eq_ignore_ascii_case(b"deflate") {
                    e.coding = Some(Coding::Deflate);
                }
            }
            Name::Upgrade if is_req && level == 0 => m.upgrade = Some(value.to_vec()),
            Name::Http2Settings if is_req && level == 0 => m.http2_settings = Some(value.to_vec()),
            _ => {}
        }
        // The connection's (a part's headers count too, as in Zeek).
        match (name, is_req) {
            (Name::Connection, true) if token().eq_ignore_ascii_case(b"keep-alive") => {
                self.keep_alive = true;
            }
            (Name::Connection, false) => {
                if token().eq_ignore_ascii_case(b"close") {
                    self.connection_close = true;
                } else if token().eq_ignore_ascii_case(b"upgrade") {
                    self.upgrade_connection = true;
                }
            }
            (Name::Upgrade, false) => self.upgrade_protocol = Some(token().to_vec()),
            _ => {}
        }
        // The request's record (Zeek's `http_header` handler).
        let field = match name {
            _ if !is_req => None,
            Name::Host => Some("host"),
            Name::UserAgent => Some("user_agent"),
            Name::Referer => Some("referrer"),
            Name::Origin => Some("origin"),
            _ => None,
        };
        if let Some(f) = field {
            let v = if f == "referrer" {
                Value::owned(crate::l7::shown_url(value.to_vec()))
            } else {
                Value::text(value)
            };
            if let Some(m) = self.sides[dir.idx()].msg.as_mut() {
                if m.fields.capacity() == 0 {
                    m.fields = out.fields();
                }
                m.fields.set(f, v.clone());
            }
            self.fresh.set(f, v);
        }
    }
}
