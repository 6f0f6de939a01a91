//! TLS handshakes from packets, without keys: what the client offered and the server chose,
//! whether the handshake completed, the alerts in the clear, and a JA4 fingerprint of the
//! client — one exchange per connection (ClientHello as the request, ServerHello up to the
//! establishment as the response), written as Zeek writes `ssl.log`. Rules, sources and
//! limits: `docs/tls.md`.
//!
//! - Records are framed per direction ([`wire::RecordHeader`]); handshake messages are
//!   reassembled across records and segments, several per record; a message longer than
//!   [`MAX_HANDSHAKE`] is skipped, not buffered, and counted (`tls_handshake_message_too_long`)
//!   — but for a long Certificate message, whose certificates are hashed as they pass. Record payloads are never buffered except alerts and
//!   ChangeCipherSpec (at most [`wire::MAX_RECORD`] bytes).
//! - Encryption starts per direction as in Zeek's analyzer: at that side's
//!   ChangeCipherSpec unless the server chose TLS 1.3 (where it is compatibility padding),
//!   or at its first application-data record once the server chose a version above TLS 1.2
//!   (or none is known). Records after that are ciphertext: nothing is
//!   read from them, alerts included (they are counted as `encrypted_alerts`).
//! - **Established**, as Zeek's `ssl_established`: a ciphertext record arrives while both
//!   directions are encrypted. The row is written then (as Zeek logs at that moment and
//!   stops analyzing), or when the connection ends, or when the parser meets bytes that are
//!   not TLS (a weird names why) or a gap (Zeek stops at a content gap too).
//! - An SSLv2-compatible ClientHello (the first record of the client) is parsed: version,
//!   cipher kinds, session id.
//!
//! Files: [`wire`] (the format, pure functions), `ja4` (the fingerprint), `names` (Zeek's
//! names of ciphers, groups, alerts), `zeek` (`ssl.log` and the report summary), this file
//! (framing, reassembly, the handshake state and the [`Parser`]).

mod ja4;
mod names;
pub mod wire;
mod zeek;

use sha2::{Digest, Sha256};

use self::wire::{ClientHello, RecordHeader, ServerHello, content, hs};
use crate::l7::{Emitter, Event, MatchKey, Parser, ParserState, Probe, ProbeInput, Protocol};
use crate::model::{Dir, Fields, Transport, Ts, Value, text_of};

pub use self::ja4::ja4;
pub use self::zeek::ZEEK_LOG;

/// The longest handshake message kept for parsing; longer ones are skipped.
pub const MAX_HANDSHAKE: usize = 64 * 1024;
/// Letters of `ssl_history` kept: Zeek's `SSL::max_ssl_history_length`.
pub const MAX_HISTORY: usize = 100;
/// Plaintext alerts listed per connection (all count for `last_alert`).
pub const MAX_ALERTS: usize = 16;
/// Alerts read of one record: Zeek's `SSL::max_alerts_per_record`.
pub const MAX_ALERTS_PER_RECORD: usize = 10;
/// Certificates fingerprinted per chain.
pub const MAX_CERTS: usize = 16;

/// The registration. Ports are Zeek's `SSL::ssl_ports`; content decides.
pub static PROTOCOL: Protocol = Protocol {
    name: "tls",
    transports: &[Transport::Tcp],
    ports: &[443, 465, 563, 585, 614, 636, 989, 990, 992, 993, 995, 5223],
    probe,
    new_parser: |_| Box::new(Tls::default()),
    zeek: Some(&ZEEK_LOG),
    upgrade: None,
    summarize: zeek::summarize,
};

/// Detection: the client's first bytes are a handshake record holding a ClientHello (or an
/// SSLv2-compatible ClientHello); failing a client side, the server's first bytes are a
/// handshake record holding a ServerHello.
pub fn probe(input: &ProbeInput<'_>) -> Probe {
    fn hello(b: &[u8], ty: u8) -> Probe {
        let want = [content::HANDSHAKE, 3];
        let n = b.len().min(2);
        if b.get(..n) != want.get(..n) {
            return Probe::No;
        }
        match (b.get(2), b.get(5)) {
            (Some(minor), _) if *minor > 3 => Probe::No,
            (_, Some(t)) if *t == ty => Probe::Yes,
            (_, Some(_)) => Probe::No,
            _ => Probe::NeedMore,
        }
    }
    let c = input.to_server;
    if !c.is_empty() {
        if c.len() >= 5 && wire::is_ssl2_client_hello(c) {
            return Probe::Yes;
        }
        if c[0] & 0x80 != 0 && c.len() < 5 {
            return Probe::NeedMore;
        }
        return hello(c, hs::CLIENT_HELLO);
    }
    if input.to_client.is_empty() {
        return Probe::NeedMore;
    }
    hello(input.to_client, hs::SERVER_HELLO)
}

/// What the bytes of the record being read are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Plaintext handshake: reassembled into messages.
    Handshake,
    /// Plaintext ChangeCipherSpec, alert or heartbeat: kept whole.
    Keep,
    /// The client's SSLv2-compatible ClientHello: kept whole.
    Ssl2Hello,
    /// Plaintext application data before encryption started (TLS ≤ 1.2).
    PlainData,
    /// Ciphertext: skipped.
    Cipher,
}

/// One direction's framing.
#[derive(Debug, Default)]
struct Side {
    /// Header bytes of the next record (up to 5).
    head: Vec<u8>,
    /// The record being read: its header, kind, and payload bytes still to come.
    cur: Option<(RecordHeader, Kind)>,
    left: usize,
    /// Payload of a kept record.
    payload: Vec<u8>,
    /// Handshake bytes, reassembled across records.
    hs: Vec<u8>,
    /// Bytes of an over-long handshake message still to skip.
    hs_skip: usize,
    /// An over-long Certificate message being skipped: its certificates hashed as they pass.
    certs: Option<CertStream>,
    /// When the first byte of the handshake message at the start of `hs` arrived.
    hs_ts: Option<Ts>,
    /// This side's records are ciphertext from now on.
    encrypted: bool,
    /// Records seen.
    records: u64,
}

/// The certificates of a Certificate message too long to keep, hashed as its bytes pass: the
/// list's 24-bit length, then each certificate's 24-bit length and DER bytes.
#[derive(Debug, Default)]
struct CertStream {
    /// Length bytes read so far (up to 3).
    head: Vec<u8>,
    /// The list's length was read.
    list_read: bool,
    /// The certificate being hashed and its bytes still to come.
    cur: Option<(Sha256, usize)>,
    fps: Vec<String>,
}

impl CertStream {
    fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            if let Some((h, left)) = &mut self.cur {
                let n = (*left).min(b.len());
                h.update(&b[..n]);
                *left -= n;
                b = &b[n..];
                if *left == 0
                    && let Some((h, _)) = self.cur.take()
                {
                    self.push(h);
                }
                continue;
            }
            let n = (3 - self.head.len()).min(b.len());
            self.head.extend_from_slice(&b[..n]);
            b = &b[n..];
            if let Some(len) = crate::read::be_u24(&self.head, 0) {
                self.head.clear();
                if !self.list_read {
                    self.list_read = true;
                } else if len == 0 {
                    self.push(Sha256::new());
                } else {
                    self.cur = Some((Sha256::new(), len as usize));
                }
            }
        }
    }

    fn push(&mut self, h: Sha256) {
        if self.fps.len() < MAX_CERTS {
            self.fps
                .push(h.finalize().iter().map(|b| format!("{b:02x}")).collect());
        }
    }
}

/// What the handshake told, as Zeek's `SSL::Info` keeps it, and the client's offer.
#[derive(Debug, Default)]
struct Info {
    client: Option<ClientHello>,
    ja4: Option<String>,
    ch_start: Option<Ts>,
    ch_end: Option<Ts>,
    sh_start: Option<Ts>,
    /// The latest plaintext message or record of the handshake.
    last_ts: Option<Ts>,
    server_name: Option<Vec<u8>>,
    session_id: Option<Vec<u8>>,
    ticket_empty_session: bool,
    cke_seen: bool,
    client_psk: bool,
    version: Option<u16>,
    cipher: Option<u16>,
    curve: Option<u16>,
    next_protocol: Option<Vec<u8>>,
    resumed: bool,
    hrr_seen: bool,
    last_alert: Option<u8>,
    alerts: Vec<Vec<u8>>,
    encrypted_alerts: u64,
    established: bool,
    history: String,
    server_certs: Option<Vec<String>>,
    client_certs: Vec<String>,
    /// The parse was cut (a gap, or bytes that are not TLS).
    cut: bool,
}

/// The TLS parser for one connection.
#[derive(Debug, Default)]
pub struct Tls {
    sides: [Side; 2],
    info: Info,
    logged: bool,
    ended: [bool; 2],
    state: Option<ParserState>,
}

fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Tls {
    fn history(&mut self, dir: Dir, c: char, out: &mut Emitter) {
        let h = &mut self.info.history;
        if h.len() >= MAX_HISTORY {
            return;
        }
        h.push(if dir == Dir::ToServer {
            c.to_ascii_uppercase()
        } else {
            c
        });
        if h.len() == MAX_HISTORY {
            out.weird("SSL_max_ssl_history_length_reached");
        }
    }

    /// The version the server chose is one of SSLv2 … TLS 1.2 (Zeek's test for whether
    /// application data before ChangeCipherSpec is plaintext).
    fn at_most_tls12(&self) -> bool {
        matches!(self.info.version, Some(0x0002 | 0x0300..=0x0303))
    }

    /// The server chose TLS 1.3 or one of its drafts (Zeek's `determine_tls13`).
    fn tls13(&self) -> bool {
        self.info
            .version
            .is_some_and(|v| v == 0x0304 || v / 0xff == 0x7f)
    }

    /// Bytes that are not TLS: the row is written and parsing stops.
    fn violation(&mut self, why: &'static str, ts: Ts, out: &mut Emitter) {
        out.weird(why);
        self.info.cut = true;
        self.log(ts, out);
        self.state = Some(ParserState::GaveUp);
    }

    fn start_record(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        let i = dir.idx();
        let head = std::mem::take(&mut self.sides[i].head);
        let first = self.sides[i].records == 0;
        self.sides[i].records += 1;
        if first && dir == Dir::ToServer && wire::is_ssl2_client_hello(&head) {
            let len = wire::ssl2_len(&head).unwrap_or(0);
            let Some(left) = len.checked_sub(3) else {
                return self.violation(wire::Error::BadSsl2.weird(), ts, out);
            };
            let s = &mut self.sides[i];
            s.payload = head.get(2..).unwrap_or_default().to_vec();
            s.left = left;
            s.cur = Some((
                RecordHeader {
                    ctype: 0,
                    version: 0x0002,
                    len: 0,
                },
                Kind::Ssl2Hello,
            ));
            self.info.ch_start = Some(ts);
            return self.check_done(dir, ts, out);
        }
        if first && dir == Dir::ToClient && head.first().is_some_and(|h| h & 0x80 != 0) {
            // An SSLv2 server (ServerHello: message type 4): the connection stays SSLv2,
            // which this parser does not follow further.
            if head.get(2) == Some(&4) {
                self.info.version = Some(0x0002);
                self.info.sh_start = Some(ts);
                self.history(dir, 's', out);
                return self.violation("tls_sslv2_server_not_followed", ts, out);
            }
            return self.violation(wire::Error::BadSsl2.weird(), ts, out);
        }
        let h = match RecordHeader::parse(&head) {
            Some(Ok(h)) => h,
            Some(Err(e)) => return self.violation(e.weird(), ts, out),
            None => return,
        };
        let enc = self.sides[i].encrypted;
        let kind = match h.ctype {
            _ if enc => Kind::Cipher,
            content::HANDSHAKE => Kind::Handshake,
            content::CCS | content::ALERT | content::HEARTBEAT => Kind::Keep,
            content::APPLICATION_DATA if self.at_most_tls12() => Kind::PlainData,
            content::APPLICATION_DATA => {
                // Zeek: application data when the version chosen is above TLS 1.2 (or not
                // known) means this side encrypts from now on.
                self.sides[i].encrypted = true;
                Kind::Cipher
            }
            _ => return self.violation("tls_unknown_content_type", ts, out),
        };
        let s = &mut self.sides[i];
        s.cur = Some((h, kind));
        s.left = usize::from(h.len);
        s.payload.clear();
        self.check_done(dir, ts, out);
    }

    fn check_done(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        let s = &mut self.sides[dir.idx()];
        if s.left == 0
            && let Some((h, kind)) = s.cur.take()
        {
            let payload = std::mem::take(&mut s.payload);
            self.record_done(dir, ts, h, kind, &payload, out);
        }
    }

    fn record_bytes(&mut self, dir: Dir, ts: Ts, kind: Kind, mut b: &[u8], out: &mut Emitter) {
        let s = &mut self.sides[dir.idx()];
        match kind {
            Kind::Keep | Kind::Ssl2Hello => s.payload.extend_from_slice(b),
            Kind::PlainData | Kind::Cipher => {}
            Kind::Handshake => {
                if s.hs_skip > 0 {
                    let n = s.hs_skip.min(b.len());
                    s.hs_skip -= n;
                    if let Some(c) = &mut s.certs {
                        c.feed(&b[..n]);
                    }
                    b = &b[n..];
                    if s.hs_skip == 0
                        && let Some(c) = s.certs.take()
                    {
                        self.add_certs(dir == Dir::ToServer, c.fps);
                    }
                }
                if b.is_empty() {
                    return;
                }
                let s = &mut self.sides[dir.idx()];
                if s.hs.is_empty() {
                    s.hs_ts = Some(ts);
                }
                s.hs.extend_from_slice(b);
                self.drain_handshake(dir, ts, out);
            }
        }
    }

    /// Handles every complete handshake message at the start of the direction's buffer.
    fn drain_handshake(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        let i = dir.idx();
        loop {
            let s = &mut self.sides[i];
            let (Some(&ty), Some(len)) = (s.hs.first(), crate::read::be_u24(&s.hs, 1)) else {
                return;
            };
            let len = len as usize;
            let start = s.hs_ts.unwrap_or(ts);
            if len > MAX_HANDSHAKE {
                // Not buffered: its letter is written, its bytes skipped — a certificate
                // chain's certificates hashed on the way.
                let have = s.hs.len().saturating_sub(4).min(len);
                s.hs_skip = len - have;
                if ty == hs::CERTIFICATE {
                    let mut c = CertStream::default();
                    c.feed(s.hs.get(4..4 + have).unwrap_or_default());
                    s.certs = Some(c);
                } else {
                    out.weird("tls_handshake_message_too_long");
                }
                let rest = s.hs.split_off((4 + have).min(s.hs.len()));
                s.hs = rest;
                s.hs_ts = None;
                let done = s.hs_skip == 0;
                self.message(dir, ty, None, start, ts, out);
                if done && let Some(c) = self.sides[i].certs.take() {
                    self.add_certs(dir == Dir::ToServer, c.fps);
                }
                if self.state.is_some() || !done {
                    return;
                }
                continue;
            }
            if s.hs.len() < 4 + len {
                return;
            }
            let body: Vec<u8> = s.hs[4..4 + len].to_vec();
            s.hs.drain(..4 + len);
            s.hs_ts = (!s.hs.is_empty()).then_some(ts);
            self.message(dir, ty, Some(&body), start, ts, out);
            if self.state.is_some() {
                return;
            }
        }
    }

    /// One handshake message (`body` is `None` when it was too long to keep).
    fn message(
        &mut self,
        dir: Dir,
        ty: u8,
        body: Option<&[u8]>,
        start: Ts,
        ts: Ts,
        out: &mut Emitter,
    ) {
        let client = dir == Dir::ToServer;
        self.info.last_ts = Some(ts);
        let mut weirds = Vec::new();
        match ty {
            hs::CLIENT_HELLO => {
                self.history(dir, 'c', out);
                if !client {
                    out.weird("tls_client_hello_from_server");
                    return;
                }
                match body.map(|b| ClientHello::parse(b, &mut weirds)) {
                    Some(Ok(ch)) => self.client_hello(ch, start, ts, out),
                    Some(Err(e)) => out.weird(e.weird()),
                    None => {}
                }
            }
            hs::SERVER_HELLO => {
                let parsed = body.map(|b| ServerHello::parse(b, &mut weirds));
                let hrr = matches!(&parsed, Some(Ok(sh)) if sh.hrr);
                self.history(dir, if hrr { 'j' } else { 's' }, out);
                if client {
                    out.weird("tls_server_hello_from_client");
                    return;
                }
                match parsed {
                    Some(Ok(sh)) => self.server_hello(sh, start),
                    Some(Err(e)) => out.weird(e.weird()),
                    None => {}
                }
            }
            hs::SERVER_KEY_EXCHANGE => {
                self.history(dir, 'k', out);
                let ecdhe = self
                    .info
                    .cipher
                    .and_then(|c| names::name(names::CIPHERS, u32::from(c)))
                    .is_some_and(|n| n.contains("_ECDHE_") || n.contains("_ECDH_anon_"));
                if ecdhe && let Some(g) = body.and_then(wire::ecdh_group) {
                    self.info.curve = Some(g);
                }
            }
            hs::CERTIFICATE => {
                self.history(dir, 'x', out);
                self.certificates(client, body, out);
            }
            hs::CLIENT_KEY_EXCHANGE => {
                self.history(dir, 'g', out);
                if client {
                    self.info.cke_seen = true;
                }
            }
            _ => {
                let c = match ty {
                    hs::HELLO_REQUEST => 'h',
                    hs::HELLO_VERIFY_REQUEST => 'v',
                    hs::NEW_SESSION_TICKET => 't',
                    hs::END_OF_EARLY_DATA => 'e',
                    hs::HELLO_RETRY_REQUEST => 'j',
                    hs::ENCRYPTED_EXTENSIONS => 'o',
                    hs::CERTIFICATE_REQUEST => 'r',
                    hs::SERVER_HELLO_DONE => 'n',
                    hs::CERTIFICATE_VERIFY => 'y',
                    hs::FINISHED => 'f',
                    hs::CERTIFICATE_URL => 'w',
                    hs::CERTIFICATE_STATUS => 'u',
                    hs::SUPPLEMENTAL_DATA => 'a',
                    hs::KEY_UPDATE => 'p',
                    hs::MESSAGE_HASH => 'm',
                    _ => 'z',
                };
                self.history(dir, c, out);
            }
        }
        for w in weirds {
            out.weird(w);
        }
    }

    fn client_hello(&mut self, ch: ClientHello, start: Ts, ts: Ts, out: &mut Emitter) {
        let info = &mut self.info;
        // Zeek's order: the extension events, then the hello's.
        if ch.session_ticket.is_some_and(|n| n > 0) {
            info.ticket_empty_session = true;
        }
        if ch.psk {
            info.client_psk = true;
        }
        let sid = &ch.session_id;
        let zeros32 = sid.len() == 32 && sid.iter().all(|b| *b == 0);
        if !sid.is_empty() && !zeros32 {
            info.session_id = Some(sid.clone());
            info.ticket_empty_session = false;
        }
        if let Some(n) = ch.server_names.first() {
            info.server_name = Some(n.clone());
            if ch.server_names.len() > 1 {
                out.weird("SSL_many_server_names");
            }
        }
        if ch.sslv2 {
            self.history(Dir::ToServer, 'c', out);
        }
        let info = &mut self.info;
        if info.client.is_none() {
            info.ja4 = (!ch.sslv2).then(|| ja4(&ch));
            info.client = Some(ch);
            info.ch_start.get_or_insert(start);
            info.ch_end = Some(ts);
        }
    }

    fn server_hello(&mut self, sh: ServerHello, start: Ts) {
        let info = &mut self.info;
        info.sh_start.get_or_insert(start);
        if let Some(v) = sh.selected_version {
            info.version = Some(v);
        } else if info.version.is_none() {
            info.version = Some(sh.version);
        }
        if let Some(g) = sh.key_share {
            info.curve = Some(g);
        }
        if let Some(p) = sh.alpn.clone() {
            info.next_protocol = Some(p);
        }
        if sh.psk && info.client_psk {
            info.resumed = true;
        }
        info.cipher = Some(sh.cipher);
        if sh.hrr {
            info.hrr_seen = true;
        }
        let v = info.version.unwrap_or(sh.version);
        if info.session_id.as_deref() == Some(sh.session_id.as_slice())
            && v / 0xff != 0x7f
            && v != 0x0304
        {
            info.resumed = true;
        }
    }

    fn certificates(&mut self, client: bool, body: Option<&[u8]>, out: &mut Emitter) {
        // TLS 1.3 certificates are encrypted; a plaintext one is TLS ≤ 1.2's format.
        let Some(certs) = body.and_then(wire::certificates) else {
            if body.is_some() {
                out.weird("tls_malformed_certificate");
            }
            return;
        };
        if certs.is_empty() {
            return;
        }
        let fps: Vec<String> = certs
            .iter()
            .take(MAX_CERTS)
            .map(|c| fingerprint(c))
            .collect();
        self.add_certs(client, fps);
    }

    fn add_certs(&mut self, client: bool, fps: Vec<String>) {
        if fps.is_empty() {
            return;
        }
        let info = &mut self.info;
        // Zeek starts both chains at the first certificate file of either side.
        let server = info.server_certs.get_or_insert_with(Vec::new);
        if client {
            info.client_certs.extend(fps);
        } else {
            server.extend(fps);
        }
    }

    fn record_done(
        &mut self,
        dir: Dir,
        ts: Ts,
        h: RecordHeader,
        kind: Kind,
        payload: &[u8],
        out: &mut Emitter,
    ) {
        let client = dir == Dir::ToServer;
        match kind {
            Kind::Handshake => {}
            Kind::Ssl2Hello => match ClientHello::parse_ssl2(payload) {
                Ok(ch) => self.client_hello(ch, self.info.ch_start.unwrap_or(ts), ts, out),
                Err(e) => self.violation(e.weird(), ts, out),
            },
            Kind::Keep => {
                self.info.last_ts = Some(ts);
                match h.ctype {
                    content::CCS => {
                        self.history(dir, 'i', out);
                        if client && self.info.ticket_empty_session && !self.info.cke_seen {
                            self.info.resumed = true;
                        }
                        // In TLS 1.3 ChangeCipherSpec is compatibility padding: Zeek
                        // leaves the side's state alone.
                        if !self.tls13() {
                            self.sides[dir.idx()].encrypted = true;
                        }
                    }
                    content::ALERT => {
                        // Zeek reads at most `SSL::max_alerts_per_record` (10) alerts of a
                        // record, one in TLS 1.3.
                        let max = if self.tls13() {
                            1
                        } else {
                            MAX_ALERTS_PER_RECORD
                        };
                        for (level, desc) in wire::alerts(payload).take(max) {
                            self.history(dir, 'l', out);
                            self.info.last_alert = Some(desc);
                            if self.info.alerts.len() < MAX_ALERTS {
                                let side = if client { "client" } else { "server" };
                                let level = match level {
                                    1 => "warning".to_string(),
                                    2 => "fatal".to_string(),
                                    l => format!("level-{l}"),
                                };
                                self.info.alerts.push(
                                    format!("{side} {level} {}", zeek::alert_name(desc))
                                        .into_bytes(),
                                );
                            }
                        }
                    }
                    _ => self.history(dir, 'b', out),
                }
            }
            Kind::PlainData => {
                if self.info.version.is_some() && !self.info.established {
                    out.weird("ssl_early_application_data");
                }
            }
            Kind::Cipher => {
                if h.ctype == content::ALERT {
                    self.info.encrypted_alerts += 1;
                }
                if self.sides.iter().all(|s| s.encrypted) && !self.info.established {
                    self.info.established = true;
                    self.info.last_ts = Some(ts);
                    // Zeek logs the connection here and stops analyzing it.
                    self.log(ts, out);
                    self.state = Some(ParserState::Finished);
                }
            }
        }
    }

    /// Writes the connection's row (once): the ClientHello as the request, the server's part
    /// as the response, the handshake's outcome on whichever came last.
    fn log(&mut self, ts: Ts, out: &mut Emitter) {
        if self.logged {
            return;
        }
        self.logged = true;
        let i = &self.info;
        if i.client.is_none() && i.sh_start.is_none() && i.history.is_empty() {
            return;
        }
        let key = MatchKey::Fifo;
        let mut req = Fields::default();
        if let Some(ch) = &i.client {
            req.set(
                "client_version",
                Value::text(wire::version_name(ch.version)),
            );
            if let Some(n) = &i.server_name {
                req.set("server_name", Value::text(n));
            }
            let list = |v: &[u16], name: fn(u16) -> String| {
                Value::List(
                    v.iter()
                        .filter(|x| !wire::is_grease(**x))
                        .map(|x| text_of(name(*x).into_bytes()))
                        .collect(),
                )
            };
            if !ch.alpn.is_empty() {
                req.set("alpn_offered", Value::list(&ch.alpn));
            }
            if !ch.supported_versions.is_empty() {
                req.set(
                    "supported_versions",
                    list(&ch.supported_versions, wire::version_name),
                );
            }
            if !ch.groups.is_empty() {
                req.set("supported_groups", list(&ch.groups, zeek::group_name));
            }
            if !ch.sig_algs.is_empty() {
                req.set(
                    "signature_algorithms",
                    Value::Counts(
                        ch.sig_algs
                            .iter()
                            .filter(|x| !wire::is_grease(**x))
                            .map(|x| u64::from(*x))
                            .collect(),
                    ),
                );
            }
            req.set(
                "ciphers_offered",
                Value::Counts(ch.ciphers.iter().map(|c| u64::from(*c)).collect()),
            );
            if !ch.session_id.is_empty() {
                req.set("session_id", Value::text(hex(&ch.session_id)));
            }
            if let Some(n) = ch.session_ticket {
                req.set("session_ticket_len", Value::U64(n as u64));
            }
            if ch.psk {
                req.set("psk_offered", Value::Bool(true));
            }
            if ch.sslv2 {
                req.set("sslv2_client_hello", Value::Bool(true));
            }
            if let Some(j) = &i.ja4 {
                req.set("ja4", Value::text(j));
            }
        }
        let mut res = Fields::default();
        if let Some(v) = i.version {
            res.set("version", Value::text(wire::version_name(v)));
        }
        if let Some(c) = i.cipher {
            res.set("cipher", Value::text(zeek::cipher_name(c)));
        }
        if let Some(g) = i.curve {
            res.set("curve", Value::text(zeek::group_name(g)));
        }
        if let Some(p) = &i.next_protocol {
            res.set("next_protocol", Value::text(p));
        }
        res.set("resumed", Value::Bool(i.resumed));
        if i.hrr_seen {
            res.set("hello_retry_request", Value::Bool(true));
        }
        if let Some(a) = i.last_alert {
            res.set("last_alert", Value::text(zeek::alert_name(a)));
        }
        if !i.alerts.is_empty() {
            res.set("alerts", Value::list(&i.alerts));
        }
        if i.encrypted_alerts > 0 {
            res.set("encrypted_alerts", Value::U64(i.encrypted_alerts));
        }
        res.set("established", Value::Bool(i.established));
        res.set("ssl_history", Value::text(&i.history));
        if let Some(s) = &i.server_certs {
            res.set("cert_chain_fps", Value::list(s));
            res.set("client_cert_chain_fps", Value::list(&i.client_certs));
        }
        let end = i.last_ts.unwrap_or(ts);
        let complete = !i.cut;
        match (i.ch_start, i.sh_start) {
            (Some(q), Some(r)) => {
                out.emit(Event::RequestStart {
                    ts: q,
                    key,
                    fields: req,
                });
                out.emit(Event::RequestEnd {
                    ts: i.ch_end.unwrap_or(q),
                    key,
                    fields: Fields::default(),
                    complete: i.client.is_some(),
                });
                out.emit(Event::ResponseStart {
                    ts: r.max(q),
                    key,
                    fields: Fields::default(),
                });
                out.emit(Event::ResponseEnd {
                    ts: end.max(r).max(q),
                    key,
                    fields: res,
                    complete,
                });
            }
            (Some(q), None) => {
                req.merge(res);
                out.emit(Event::RequestStart {
                    ts: q,
                    key,
                    fields: req,
                });
                out.emit(Event::RequestEnd {
                    ts: i.ch_end.unwrap_or(q),
                    key,
                    fields: Fields::default(),
                    complete: i.client.is_some() && complete,
                });
            }
            (None, r) => {
                let r = r.unwrap_or(end);
                out.emit(Event::ResponseStart {
                    ts: r,
                    key,
                    fields: Fields::default(),
                });
                out.emit(Event::ResponseEnd {
                    ts: end.max(r),
                    key,
                    fields: res,
                    complete,
                });
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Parser for Tls {
    fn data(&mut self, dir: Dir, ts: Ts, mut data: &[u8], out: &mut Emitter) {
        let i = dir.idx();
        while !data.is_empty() && self.state.is_none() {
            let s = &mut self.sides[i];
            match s.cur {
                None => {
                    let n = (wire::RECORD_HEADER - s.head.len()).min(data.len());
                    s.head.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if s.head.len() < wire::RECORD_HEADER {
                        return;
                    }
                    self.start_record(dir, ts, out);
                }
                Some((_, kind)) => {
                    let n = s.left.min(data.len());
                    let (chunk, rest) = data.split_at(n);
                    data = rest;
                    s.left -= n;
                    self.record_bytes(dir, ts, kind, chunk, out);
                    if self.state.is_none() {
                        self.check_done(dir, ts, out);
                    }
                }
            }
        }
    }

    fn gap(&mut self, _dir: Dir, ts: Ts, len: u64, out: &mut Emitter) {
        if self.state.is_some() || len == 0 {
            return;
        }
        // Zeek's analyzer stops at a content gap in either direction; so does this one.
        out.weird("tls_content_gap");
        self.info.cut = true;
        self.log(ts, out);
        self.state = Some(ParserState::GaveUp);
    }

    fn end(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        self.ended[dir.idx()] = true;
        if self.ended.iter().all(|e| *e) {
            self.log(ts, out);
        }
    }

    fn state(&self) -> ParserState {
        self.state.unwrap_or(ParserState::Active)
    }
}

#[cfg(test)]
mod tests;
