//! TLS on the wire, as pure functions over bytes: record headers, handshake message headers,
//! ClientHello (TLS and the SSLv2-compatible form), ServerHello, the named group of an ECDHE
//! ServerKeyExchange, certificate lists and alerts. Nothing here keeps state; nothing can
//! panic whatever the input (every read is checked, see [`crate::read`]).

use crate::read::{Reader, be_u16, be_u24};

/// Record content types.
pub mod content {
    /// ChangeCipherSpec.
    pub const CCS: u8 = 20;
    /// Alert.
    pub const ALERT: u8 = 21;
    /// Handshake.
    pub const HANDSHAKE: u8 = 22;
    /// Application data (in TLS 1.3 also every encrypted handshake message and alert).
    pub const APPLICATION_DATA: u8 = 23;
    /// Heartbeat (RFC 6520).
    pub const HEARTBEAT: u8 = 24;
}

/// Handshake message types.
pub mod hs {
    /// HelloRequest.
    pub const HELLO_REQUEST: u8 = 0;
    /// ClientHello.
    pub const CLIENT_HELLO: u8 = 1;
    /// ServerHello (and, with the magic random, HelloRetryRequest).
    pub const SERVER_HELLO: u8 = 2;
    /// HelloVerifyRequest (DTLS).
    pub const HELLO_VERIFY_REQUEST: u8 = 3;
    /// NewSessionTicket.
    pub const NEW_SESSION_TICKET: u8 = 4;
    /// EndOfEarlyData.
    pub const END_OF_EARLY_DATA: u8 = 5;
    /// HelloRetryRequest (TLS 1.3 drafts).
    pub const HELLO_RETRY_REQUEST: u8 = 6;
    /// EncryptedExtensions.
    pub const ENCRYPTED_EXTENSIONS: u8 = 8;
    /// Certificate.
    pub const CERTIFICATE: u8 = 11;
    /// ServerKeyExchange.
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
    /// CertificateRequest.
    pub const CERTIFICATE_REQUEST: u8 = 13;
    /// ServerHelloDone.
    pub const SERVER_HELLO_DONE: u8 = 14;
    /// CertificateVerify.
    pub const CERTIFICATE_VERIFY: u8 = 15;
    /// ClientKeyExchange.
    pub const CLIENT_KEY_EXCHANGE: u8 = 16;
    /// Finished.
    pub const FINISHED: u8 = 20;
    /// CertificateURL.
    pub const CERTIFICATE_URL: u8 = 21;
    /// CertificateStatus.
    pub const CERTIFICATE_STATUS: u8 = 22;
    /// SupplementalData.
    pub const SUPPLEMENTAL_DATA: u8 = 23;
    /// KeyUpdate.
    pub const KEY_UPDATE: u8 = 24;
    /// message_hash (TLS 1.3 transcript after a HelloRetryRequest).
    pub const MESSAGE_HASH: u8 = 254;
}

/// Extension types this module reads.
pub mod ext {
    /// server_name (SNI).
    pub const SERVER_NAME: u16 = 0;
    /// supported_groups (elliptic_curves).
    pub const SUPPORTED_GROUPS: u16 = 10;
    /// signature_algorithms.
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    /// application_layer_protocol_negotiation.
    pub const ALPN: u16 = 16;
    /// SessionTicket TLS.
    pub const SESSION_TICKET: u16 = 35;
    /// pre_shared_key.
    pub const PRE_SHARED_KEY: u16 = 41;
    /// supported_versions.
    pub const SUPPORTED_VERSIONS: u16 = 43;
    /// key_share (TLS 1.3; 40 in drafts before 23).
    pub const KEY_SHARE: u16 = 51;
    /// key_share in TLS 1.3 drafts up to 22.
    pub const KEY_SHARE_OLD: u16 = 40;
}

/// A ServerHello with this random is a HelloRetryRequest (RFC 8446 4.1.3).
pub const HRR_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

/// Bytes of a record header.
pub const RECORD_HEADER: usize = 5;
/// The longest record payload TLS allows (TLSCiphertext: 2^14 + 2048).
pub const MAX_RECORD: usize = (1 << 14) + 2048;
/// Names and protocols kept per extension (SNI names, ALPN protocols).
pub const MAX_NAMES: usize = 16;
/// Bytes kept of one name or protocol.
pub const MAX_NAME_LEN: usize = 255;

/// Why bytes are not TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A record header whose version is not SSLv3 … TLS 1.2 (Zeek's rule).
    BadRecordVersion,
    /// A content type outside 20..=30.
    BadContentType,
    /// A record longer than TLS allows.
    RecordTooLong,
    /// A hello that ends before its fields do, or whose lengths disagree.
    BadHello,
    /// An SSLv2 record that is not a ClientHello with a known version.
    BadSsl2,
}

impl Error {
    /// The weird reported for it.
    pub fn weird(self) -> &'static str {
        match self {
            Error::BadRecordVersion => "tls_invalid_record_version",
            Error::BadContentType => "tls_invalid_content_type",
            Error::RecordTooLong => "tls_record_too_long",
            Error::BadHello => "tls_malformed_hello",
            Error::BadSsl2 => "tls_invalid_sslv2_record",
        }
    }
}

/// GREASE values (RFC 8701): `0x?a?a` with both bytes equal.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// A TLS record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Content type.
    pub ctype: u8,
    /// Record-layer version.
    pub version: u16,
    /// Payload length.
    pub len: u16,
}

impl RecordHeader {
    /// Parses the 5-byte header at the start of `b` (`None`: fewer than 5 bytes). The version
    /// must be SSLv3 … TLS 1.2 and the content type 20..=30, as Zeek's analyzer requires.
    pub fn parse(b: &[u8]) -> Option<Result<RecordHeader, Error>> {
        let ctype = *b.first()?;
        let version = be_u16(b, 1)?;
        let len = be_u16(b, 3)?;
        Some(if !(0x0300..=0x0303).contains(&version) {
            Err(Error::BadRecordVersion)
        } else if !(20..=30).contains(&ctype) {
            Err(Error::BadContentType)
        } else if usize::from(len) > MAX_RECORD {
            Err(Error::RecordTooLong)
        } else {
            Ok(RecordHeader {
                ctype,
                version,
                len,
            })
        })
    }
}

/// Whether the first bytes of a client's stream are an SSLv2-compatible ClientHello (two-byte
/// header with the top bit set, message type 1, a version SSLv2 … TLS 1.2): at least 5 bytes.
pub fn is_ssl2_client_hello(b: &[u8]) -> bool {
    matches!(b, [h, _, 1, ..] if h & 0x80 != 0)
        && be_u16(b, 3).is_some_and(|v| v == 0x0002 || (0x0300..=0x0303).contains(&v))
}

/// The length of an SSLv2 record's body from its two-byte header.
pub fn ssl2_len(b: &[u8]) -> Option<usize> {
    be_u16(b, 0).map(|v| usize::from(v & 0x7fff))
}

/// What a ClientHello offers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// legacy_version (the highest version before TLS 1.3's supported_versions).
    pub version: u16,
    /// Session id (SSLv2: the session id field).
    pub session_id: Vec<u8>,
    /// Cipher suites in order, GREASE included (SSLv2 kinds are three bytes).
    pub ciphers: Vec<u32>,
    /// Extension types in order, GREASE included.
    pub extensions: Vec<u16>,
    /// SNI host names.
    pub server_names: Vec<Vec<u8>>,
    /// ALPN protocols offered.
    pub alpn: Vec<Vec<u8>>,
    /// supported_versions, in order.
    pub supported_versions: Vec<u16>,
    /// supported_groups, in order.
    pub groups: Vec<u16>,
    /// signature_algorithms, in order.
    pub sig_algs: Vec<u16>,
    /// Groups of the key shares sent.
    pub key_share: Vec<u16>,
    /// Length of the SessionTicket extension's data (0: asks for a ticket; more: resumes).
    pub session_ticket: Option<usize>,
    /// A pre_shared_key extension was sent.
    pub psk: bool,
    /// SSLv2-compatible form (no extensions possible).
    pub sslv2: bool,
}

fn u16_list(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

fn keep_name(n: &[u8]) -> Vec<u8> {
    n[..n.len().min(MAX_NAME_LEN)].to_vec()
}

/// The protocols of an ALPN extension body.
fn alpn_list(b: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut r = Reader::new(b);
    let n = usize::from(r.be_u16()?);
    let mut l = Reader::new(r.take(n)?);
    let mut out = Vec::new();
    while !l.is_empty() {
        let len = usize::from(l.u8()?);
        let p = l.take(len)?;
        if out.len() < MAX_NAMES {
            out.push(keep_name(p));
        }
    }
    Some(out)
}

/// A vector of u16 with a `len_bytes`-byte length prefix.
fn prefixed_u16s(b: &[u8], len_bytes: usize) -> Option<Vec<u16>> {
    let mut r = Reader::new(b);
    let n = match len_bytes {
        1 => usize::from(r.u8()?),
        _ => usize::from(r.be_u16()?),
    };
    Some(u16_list(r.take(n)?))
}

/// Walks an extension block: `f(type, data)` per extension. `None` when the block's lengths
/// do not add up.
fn extensions(r: &mut Reader<'_>, mut f: impl FnMut(u16, &[u8])) -> Option<()> {
    if r.is_empty() {
        return Some(());
    }
    let n = usize::from(r.be_u16()?);
    let mut e = Reader::new(r.take(n)?);
    while !e.is_empty() {
        let ty = e.be_u16()?;
        let len = usize::from(e.be_u16()?);
        f(ty, e.take(len)?);
    }
    Some(())
}

impl ClientHello {
    /// Parses a ClientHello message body (after the 4-byte handshake header). Extensions
    /// whose contents are malformed are listed with what could be read, and named in
    /// `weirds`.
    pub fn parse(b: &[u8], weirds: &mut Vec<&'static str>) -> Result<ClientHello, Error> {
        Self::parse_opt(b, weirds).ok_or(Error::BadHello)
    }

    fn parse_opt(b: &[u8], weirds: &mut Vec<&'static str>) -> Option<ClientHello> {
        let mut r = Reader::new(b);
        let mut ch = ClientHello {
            version: r.be_u16()?,
            ..ClientHello::default()
        };
        r.skip(32)?;
        let sid = usize::from(r.u8()?);
        ch.session_id = r.take(sid)?.to_vec();
        let n = usize::from(r.be_u16()?);
        ch.ciphers = u16_list(r.take(n)?).into_iter().map(u32::from).collect();
        let n = usize::from(r.u8()?);
        r.skip(n)?;
        extensions(&mut r, |ty, data| {
            ch.extensions.push(ty);
            let ok = match ty {
                ext::SERVER_NAME => server_names(data).map(|n| ch.server_names = n),
                ext::ALPN => alpn_list(data).map(|l| ch.alpn = l),
                ext::SUPPORTED_VERSIONS => {
                    prefixed_u16s(data, 1).map(|v| ch.supported_versions = v)
                }
                ext::SUPPORTED_GROUPS => prefixed_u16s(data, 2).map(|v| ch.groups = v),
                ext::SIGNATURE_ALGORITHMS => prefixed_u16s(data, 2).map(|v| ch.sig_algs = v),
                ext::KEY_SHARE | ext::KEY_SHARE_OLD => {
                    client_key_shares(data).map(|v| ch.key_share = v)
                }
                ext::SESSION_TICKET => {
                    ch.session_ticket = Some(data.len());
                    Some(())
                }
                ext::PRE_SHARED_KEY => {
                    ch.psk = true;
                    Some(())
                }
                _ => Some(()),
            };
            if ok.is_none() {
                weirds.push("tls_malformed_extension");
            }
        })?;
        Some(ch)
    }

    /// Parses an SSLv2-compatible ClientHello record body (after the two-byte header: message
    /// type 1, version, the three lengths, cipher kinds, session id, challenge).
    pub fn parse_ssl2(b: &[u8]) -> Result<ClientHello, Error> {
        let f = || {
            let mut r = Reader::new(b);
            if r.u8()? != 1 {
                return None;
            }
            let version = r.be_u16()?;
            let cs = usize::from(r.be_u16()?);
            let sid = usize::from(r.be_u16()?);
            let chal = usize::from(r.be_u16()?);
            let ciphers = r
                .take(cs)?
                .chunks_exact(3)
                .map(|c| u32::from_be_bytes([0, c[0], c[1], c[2]]))
                .collect();
            let session_id = r.take(sid)?.to_vec();
            r.skip(chal)?;
            Some(ClientHello {
                version,
                session_id,
                ciphers,
                sslv2: true,
                ..ClientHello::default()
            })
        };
        f().ok_or(Error::BadSsl2)
    }
}

fn server_names(b: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut r = Reader::new(b);
    if r.is_empty() {
        // A server's empty SNI acknowledgement.
        return Some(Vec::new());
    }
    let n = usize::from(r.be_u16()?);
    let mut l = Reader::new(r.take(n)?);
    let mut out = Vec::new();
    while !l.is_empty() {
        let ty = l.u8()?;
        let len = usize::from(l.be_u16()?);
        let name = l.take(len)?;
        if ty == 0 && out.len() < MAX_NAMES {
            out.push(keep_name(name));
        }
    }
    Some(out)
}

fn client_key_shares(b: &[u8]) -> Option<Vec<u16>> {
    let mut r = Reader::new(b);
    let n = usize::from(r.be_u16()?);
    let mut l = Reader::new(r.take(n)?);
    let mut out = Vec::new();
    while !l.is_empty() {
        out.push(l.be_u16()?);
        let klen = usize::from(l.be_u16()?);
        l.skip(klen)?;
    }
    Some(out)
}

/// What a ServerHello (or HelloRetryRequest) chose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHello {
    /// legacy_version.
    pub version: u16,
    /// It is a HelloRetryRequest (the magic random).
    pub hrr: bool,
    /// Session id echoed or assigned.
    pub session_id: Vec<u8>,
    /// Cipher suite chosen.
    pub cipher: u16,
    /// Extension types in order.
    pub extensions: Vec<u16>,
    /// The version chosen through supported_versions (TLS 1.3).
    pub selected_version: Option<u16>,
    /// The ALPN protocol chosen.
    pub alpn: Option<Vec<u8>>,
    /// The key share's group (a HelloRetryRequest's: the group asked for).
    pub key_share: Option<u16>,
    /// The server accepted a pre-shared key.
    pub psk: bool,
}

impl ServerHello {
    /// Parses a ServerHello message body (after the 4-byte handshake header).
    pub fn parse(b: &[u8], weirds: &mut Vec<&'static str>) -> Result<ServerHello, Error> {
        Self::parse_opt(b, weirds).ok_or(Error::BadHello)
    }

    fn parse_opt(b: &[u8], weirds: &mut Vec<&'static str>) -> Option<ServerHello> {
        let mut r = Reader::new(b);
        let version = r.be_u16()?;
        let random = r.take(32)?;
        let mut sh = ServerHello {
            version,
            hrr: random == HRR_RANDOM,
            ..ServerHello::default()
        };
        // TLS 1.3 drafts before 22 have no session id nor compression.
        let draft_no_sid = version >> 8 == 0x7f && (version & 0xff) < 22;
        if !draft_no_sid {
            let sid = usize::from(r.u8()?);
            sh.session_id = r.take(sid)?.to_vec();
        }
        sh.cipher = r.be_u16()?;
        if !draft_no_sid {
            r.u8()?;
        }
        extensions(&mut r, |ty, data| {
            sh.extensions.push(ty);
            let ok = match ty {
                ext::SUPPORTED_VERSIONS => be_u16(data, 0).map(|v| sh.selected_version = Some(v)),
                ext::ALPN => alpn_list(data).map(|mut l| {
                    if !l.is_empty() {
                        sh.alpn = Some(l.swap_remove(0));
                    }
                }),
                ext::KEY_SHARE | ext::KEY_SHARE_OLD => {
                    be_u16(data, 0).map(|g| sh.key_share = Some(g))
                }
                ext::PRE_SHARED_KEY => {
                    sh.psk = true;
                    Some(())
                }
                _ => Some(()),
            };
            if ok.is_none() {
                weirds.push("tls_malformed_extension");
            }
        })?;
        Some(sh)
    }

    /// The version the server chose: supported_versions when present, else legacy_version.
    pub fn chosen_version(&self) -> u16 {
        self.selected_version.unwrap_or(self.version)
    }
}

/// The named group of an ECDHE ServerKeyExchange body (`curve_type` 3, named_curve).
pub fn ecdh_group(b: &[u8]) -> Option<u16> {
    (*b.first()? == 3).then(|| be_u16(b, 1)).flatten()
}

/// The certificates of a (TLS ≤ 1.2) Certificate message body: a 24-bit total length, then
/// each DER certificate with a 24-bit length. `None` when the lengths do not add up.
pub fn certificates(b: &[u8]) -> Option<Vec<&[u8]>> {
    let total = usize::try_from(be_u24(b, 0)?).ok()?;
    let list = b.get(3..3usize.checked_add(total)?)?;
    let mut r = Reader::new(list);
    let mut out = Vec::new();
    while !r.is_empty() {
        let n = usize::try_from(be_u24(r.peek_rest(), 0)?).ok()?;
        r.skip(3)?;
        out.push(r.take(n)?);
    }
    Some(out)
}

/// The (level, description) pairs of a plaintext alert record.
pub fn alerts(b: &[u8]) -> impl Iterator<Item = (u8, u8)> + '_ {
    b.chunks_exact(2).map(|c| (c[0], c[1]))
}

/// Zeek's name for a protocol version (`version_strings`, and its default for the rest).
pub fn version_name(v: u16) -> String {
    match v {
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv10".into(),
        0x0302 => "TLSv11".into(),
        0x0303 => "TLSv12".into(),
        0x0304 => "TLSv13".into(),
        0xfeff => "DTLSv10".into(),
        0xfefd => "DTLSv12".into(),
        0xfefc => "DTLSv13".into(),
        // Zeek's test for a TLS 1.3 draft divides by 0xFF, not 0x100; kept as it is.
        v if v / 0xff == 0x7f => format!("TLSv13-draft{}", v % 0x7f),
        v => format!("unknown-{v}"),
    }
}
