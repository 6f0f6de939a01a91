//! DNS messages on the wire (RFC 1035 and the RFCs that added record types): the header,
//! names with compression, questions, and resource records rendered the way Zeek's `dns.log`
//! renders answers.
//!
//! Parsing is lenient and bounded: it returns what could be parsed and the first reason it
//! stopped ([`Message::error`]); anomalies that do not stop it are listed in
//! [`Message::weirds`]. Every read is bounds-checked against the message, every record's data
//! against its `RDLENGTH`, and names are capped at [`MAX_NAME`] wire bytes. Compression
//! pointers must point before the pointer itself, and a name followed through a pointer may
//! not read past that pointer, so every name ends after at most [`MAX_NAME`] bytes and
//! [`MAX_POINTERS`] jumps whatever the message says (loops are reported, never followed).
//! Nothing here allocates more than a small multiple of the message's size.

use crate::read::{be_u16, be_u32};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Fixed header length.
pub const HEADER_LEN: usize = 12;
/// Longest name on the wire, in bytes (RFC 1035 §2.3.4).
pub const MAX_NAME: usize = 255;
/// Compression pointers followed per name.
pub const MAX_POINTERS: usize = 64;
/// Questions per message beyond which the message is not analyzed further (Zeek's
/// `dns_max_queries`: much non-DNS traffic on port 53 fails here).
pub const MAX_QUESTIONS: u16 = 25;
/// Distinct non-fatal anomalies kept per message.
const MAX_WEIRDS: usize = 8;

/// Header field offsets.
mod field {
    use std::ops::Range;
    pub(super) const ID: Range<usize> = 0..2;
    pub(super) const FLAGS: Range<usize> = 2..4;
    pub(super) const QDCOUNT: Range<usize> = 4..6;
    pub(super) const ANCOUNT: Range<usize> = 6..8;
    pub(super) const NSCOUNT: Range<usize> = 8..10;
    pub(super) const ARCOUNT: Range<usize> = 10..12;
}

/// Record types the parser renders or names specially.
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const WKS: u16 = 11;
    pub const PTR: u16 = 12;
    pub const HINFO: u16 = 13;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const LOC: u16 = 29;
    pub const NBS: u16 = 32;
    pub const SRV: u16 = 33;
    pub const A6: u16 = 38;
    pub const OPT: u16 = 41;
    pub const DS: u16 = 43;
    pub const SSHFP: u16 = 44;
    pub const RRSIG: u16 = 46;
    pub const NSEC: u16 = 47;
    pub const DNSKEY: u16 = 48;
    pub const NSEC3: u16 = 50;
    pub const NSEC3PARAM: u16 = 51;
    pub const SVCB: u16 = 64;
    pub const HTTPS: u16 = 65;
    pub const SPF: u16 = 99;
    pub const TKEY: u16 = 249;
    pub const TSIG: u16 = 250;
    pub const CAA: u16 = 257;
    pub const BINDS: u16 = 65534;
}

/// The fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Transaction id.
    pub id: u16,
    /// A response (QR bit).
    pub qr: bool,
    /// Operation code (0 query, 4 notify, 5 update ...).
    pub opcode: u8,
    /// Authoritative answer.
    pub aa: bool,
    /// Truncated.
    pub tc: bool,
    /// Recursion desired.
    pub rd: bool,
    /// Recursion available.
    pub ra: bool,
    /// The three bits between RA and RCODE (Z, AD, CD), as Zeek's `Z` shows them.
    pub z: u8,
    /// Response code (the header's four bits; EDNS extended bits are not added).
    pub rcode: u8,
    /// Questions.
    pub qdcount: u16,
    /// Answer records.
    pub ancount: u16,
    /// Authority records.
    pub nscount: u16,
    /// Additional records.
    pub arcount: u16,
}

impl Header {
    /// Parses the header; `None` if fewer than [`HEADER_LEN`] bytes.
    pub fn parse(b: &[u8]) -> Option<Header> {
        if b.len() < HEADER_LEN {
            return None;
        }
        let get = |r: std::ops::Range<usize>| be_u16(b, r.start);
        let flags = get(field::FLAGS)?;
        Some(Header {
            id: get(field::ID)?,
            qr: flags & 0x8000 != 0,
            opcode: ((flags >> 11) & 0xf) as u8,
            aa: flags & 0x0400 != 0,
            tc: flags & 0x0200 != 0,
            rd: flags & 0x0100 != 0,
            ra: flags & 0x0080 != 0,
            z: ((flags >> 4) & 0x7) as u8,
            rcode: (flags & 0xf) as u8,
            qdcount: get(field::QDCOUNT)?,
            ancount: get(field::ANCOUNT)?,
            nscount: get(field::NSCOUNT)?,
            arcount: get(field::ARCOUNT)?,
        })
    }
}

/// Why parsing stopped, or a non-fatal anomaly. Each has a weird name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than a header.
    ShortHeader,
    /// The message ends inside a name, question or record.
    Truncated,
    /// A name longer than [`MAX_NAME`] bytes.
    NameTooLong,
    /// A label type other than a length or a pointer (0x40, 0x80).
    BadLabelType,
    /// A compression pointer to itself, forward, or past where the pointing name was.
    BadPointer,
    /// More than [`MAX_POINTERS`] compression pointers in one name.
    TooManyPointers,
    /// A record's data runs past the end of the message.
    RdataBeyondMessage,
    /// A record's data is malformed for its type (wrong length, bad inner string).
    BadRdata,
    /// A record's data is not as long as its `RDLENGTH` says (non-fatal).
    RdataLengthMismatch,
    /// A record type the parser does not know (non-fatal).
    UnknownType,
    /// More than [`MAX_QUESTIONS`] questions: not analyzed further.
    TooManyQuestions,
}

impl Error {
    /// The weird name reported for it.
    pub fn weird(self) -> &'static str {
        match self {
            Error::ShortHeader => "dns_truncated_header",
            Error::Truncated => "dns_truncated_message",
            Error::NameTooLong => "dns_name_too_long",
            Error::BadLabelType => "dns_bad_label_type",
            Error::BadPointer => "dns_bad_compression_pointer",
            Error::TooManyPointers => "dns_compression_loop",
            Error::RdataBeyondMessage => "dns_rdlength_beyond_message",
            Error::BadRdata => "dns_bad_rdata",
            Error::RdataLengthMismatch => "dns_rdata_length_mismatch",
            Error::UnknownType => "dns_unknown_rr_type",
            Error::TooManyQuestions => "dns_too_many_questions",
        }
    }
}

/// Reads the name at `pos` into `out` (cleared first) as dotted text without the trailing
/// dot, ASCII-lowercased as Zeek logs names (the root is the empty string). Returns the
/// position after the name where it appears (after its first pointer, if any).
pub fn read_name(msg: &[u8], pos: usize, out: &mut Vec<u8>) -> Result<usize, Error> {
    out.clear();
    let mut p = pos;
    // Reads must stay below `limit`: the whole message, then the position of the last
    // pointer followed (a pointed-to name ends before the pointer that refers to it).
    let mut limit = msg.len();
    let mut after: Option<usize> = None;
    let mut pointers = 0;
    let mut wire_len = 1usize;
    let beyond = |jumped: bool| {
        if jumped {
            Error::BadPointer
        } else {
            Error::Truncated
        }
    };
    loop {
        let view = &msg[..limit];
        let len = *view.get(p).ok_or(beyond(after.is_some()))? as usize;
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(after.unwrap_or(p + 1)),
            0x00 => {
                let label = view
                    .get(p + 1..p + 1 + len)
                    .ok_or(beyond(after.is_some()))?;
                wire_len += len + 1;
                if wire_len > MAX_NAME {
                    return Err(Error::NameTooLong);
                }
                if !out.is_empty() {
                    out.push(b'.');
                }
                out.extend(label.iter().map(u8::to_ascii_lowercase));
                p += 1 + len;
            }
            0xc0 => {
                let ptr = be_u16(view, p).ok_or(beyond(after.is_some()))?;
                let target = usize::from(ptr & 0x3fff);
                if target >= p {
                    return Err(Error::BadPointer);
                }
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return Err(Error::TooManyPointers);
                }
                after.get_or_insert(p + 2);
                limit = p;
                p = target;
            }
            _ => return Err(Error::BadLabelType),
        }
    }
}

/// A question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// Name (lowercased, no trailing dot).
    pub name: Vec<u8>,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS (for mDNS the top bit is the unicast-response flag).
    pub qclass: u16,
}

/// A parsed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The header.
    pub header: Header,
    /// The last question parsed (Zeek logs the last one of a multi-question message).
    pub question: Option<Question>,
    /// Answer-section records rendered as Zeek renders them, in order (types Zeek does not
    /// render — OPT, TSIG, TKEY, HINFO, CAA, SVCB, HTTPS, WKS — are not here).
    pub answers: Vec<Vec<u8>>,
    /// TTL of each entry of `answers`, in seconds.
    pub ttls: Vec<u32>,
    /// Answer-section records parsed, rendered or not.
    pub answer_records: u16,
    /// Why parsing stopped before the end of the last section, if it did.
    pub error: Option<Error>,
    /// Non-fatal anomalies (distinct, at most a few).
    pub weirds: Vec<Error>,
}

impl Message {
    fn note(&mut self, e: Error) {
        if self.weirds.len() < MAX_WEIRDS && !self.weirds.contains(&e) {
            self.weirds.push(e);
        }
    }
}

/// Parses a message. `nbstat`: type 33 is NetBIOS NBSTAT, not SRV (port 137), and is not
/// rendered. Fails only when there is no whole header.
pub fn parse(msg: &[u8], nbstat: bool) -> Result<Message, Error> {
    let header = Header::parse(msg).ok_or(Error::ShortHeader)?;
    let mut m = Message {
        header,
        question: None,
        answers: Vec::new(),
        ttls: Vec::new(),
        answer_records: 0,
        error: None,
        weirds: Vec::new(),
    };
    if header.qdcount > MAX_QUESTIONS {
        m.error = Some(Error::TooManyQuestions);
        return Ok(m);
    }
    let mut pos = HEADER_LEN;
    let mut name = Vec::new();
    for _ in 0..header.qdcount {
        match question(msg, pos, &mut name) {
            Ok((q, next)) => {
                m.question = Some(q);
                pos = next;
            }
            Err(e) => {
                m.error = Some(e);
                return Ok(m);
            }
        }
    }
    let sections = [
        (header.ancount, true),
        (header.nscount, false),
        (header.arcount, false),
    ];
    let mut text = Vec::new();
    for (count, answer) in sections {
        for _ in 0..count {
            match record(msg, pos, &mut name, &mut text, nbstat, answer && header.qr) {
                Ok(r) => {
                    pos = r.next;
                    if let Some(w) = r.weird {
                        m.note(w);
                    }
                    if answer {
                        m.answer_records = m.answer_records.saturating_add(1);
                        if r.rendered {
                            m.answers.push(std::mem::take(&mut text));
                            m.ttls.push(r.ttl);
                        }
                    }
                }
                Err(e) => {
                    m.error = Some(e);
                    return Ok(m);
                }
            }
        }
    }
    Ok(m)
}

fn question(msg: &[u8], pos: usize, name: &mut Vec<u8>) -> Result<(Question, usize), Error> {
    let p = read_name(msg, pos, name)?;
    let qtype = be_u16(msg, p).ok_or(Error::Truncated)?;
    let qclass = be_u16(msg, p + 2).ok_or(Error::Truncated)?;
    Ok((
        Question {
            name: name.clone(),
            qtype,
            qclass,
        },
        p + 4,
    ))
}

struct Rec {
    next: usize,
    ttl: u32,
    rendered: bool,
    weird: Option<Error>,
}

/// Parses one record at `pos`; renders it into `text` when `render` and its type has a
/// rendering.
fn record(
    msg: &[u8],
    pos: usize,
    name: &mut Vec<u8>,
    text: &mut Vec<u8>,
    nbstat: bool,
    render: bool,
) -> Result<Rec, Error> {
    let p = read_name(msg, pos, name)?;
    let rt = be_u16(msg, p).ok_or(Error::Truncated)?;
    let ttl = be_u32(msg, p + 4).ok_or(Error::Truncated)?;
    let rdlen = usize::from(be_u16(msg, p + 8).ok_or(Error::Truncated)?);
    let start = p + 10;
    let end = start + rdlen;
    if end > msg.len() {
        return Err(Error::RdataBeyondMessage);
    }
    let mut rec = Rec {
        next: end,
        ttl,
        rendered: false,
        weird: None,
    };
    if !render {
        return Ok(rec);
    }
    text.clear();
    match rdata(msg, start, end, rt, name, text, nbstat) {
        Ok(Some(used)) => {
            rec.rendered = true;
            if used != end {
                rec.weird = Some(Error::RdataLengthMismatch);
            }
        }
        Ok(None) => {}
        Err(Error::UnknownType) => {
            rec.rendered = true;
            rec.weird = Some(Error::UnknownType);
        }
        Err(e) => return Err(e),
    }
    Ok(rec)
}

/// Renders record data in `msg[start..end]` into `text`. `Ok(Some(pos))`: rendered, `pos`
/// is where its data ended (for the length check); `Ok(None)`: a type Zeek does not put in
/// `answers`; `Err(UnknownType)`: rendered as `<unknown type=N>`.
fn rdata(
    msg: &[u8],
    start: usize,
    end: usize,
    rt: u16,
    owner: &[u8],
    text: &mut Vec<u8>,
    nbstat: bool,
) -> Result<Option<usize>, Error> {
    use std::io::Write as _;
    let rd = &msg[start..end];
    let mut name = Vec::new();
    // A name inside the data: it must start inside it (it may point anywhere before).
    let name_at = |at: usize, name: &mut Vec<u8>| -> Result<usize, Error> {
        if at >= end {
            return Err(Error::BadRdata);
        }
        read_name(msg, at, name)
    };
    let used = match rt {
        rtype::A => {
            let b: [u8; 4] = rd.try_into().map_err(|_| Error::BadRdata)?;
            let _ = write!(text, "{}", Ipv4Addr::from(b));
            end
        }
        rtype::AAAA | rtype::A6 => {
            let b: [u8; 16] = rd.try_into().map_err(|_| Error::BadRdata)?;
            let _ = write!(text, "{}", Ipv6Addr::from(b));
            end
        }
        rtype::NS | rtype::CNAME | rtype::PTR => {
            let p = name_at(start, &mut name)?;
            text.extend_from_slice(&name);
            p
        }
        rtype::SOA => {
            let p = name_at(start, &mut name)?;
            text.extend_from_slice(&name);
            let mut rname = Vec::new();
            let p = name_at(p, &mut rname)?;
            if p + 20 > end {
                return Err(Error::BadRdata);
            }
            p + 20
        }
        rtype::MX => {
            let p = name_at(start + 2, &mut name)?;
            text.extend_from_slice(&name);
            p
        }
        rtype::SRV if nbstat => return Ok(None),
        rtype::SRV => {
            let p = name_at(start + 6, &mut name)?;
            text.extend_from_slice(&name);
            p
        }
        rtype::TXT | rtype::SPF => {
            let tag: &[u8] = if rt == rtype::TXT { b"TXT" } else { b"SPF" };
            let mut p = 0;
            while p < rd.len() {
                let n = usize::from(rd[p]);
                let s = rd.get(p + 1..p + 1 + n).ok_or(Error::BadRdata)?;
                if p > 0 {
                    text.push(b' ');
                }
                text.extend_from_slice(tag);
                let _ = write!(text, " {n} ");
                text.extend_from_slice(s);
                p += 1 + n;
            }
            end
        }
        rtype::DS => {
            if rd.len() < 4 {
                return Err(Error::BadRdata);
            }
            let _ = write!(text, "DS {} {}", rd[2], rd[3]);
            end
        }
        rtype::RRSIG => {
            if rd.len() < 18 {
                return Err(Error::BadRdata);
            }
            let covered = be_u16(rd, 0).unwrap_or(0);
            name_at(start + 18, &mut name)?;
            let _ = write!(text, "RRSIG {covered} ");
            if name.is_empty() {
                text.extend_from_slice(b"<Root>");
            } else {
                text.extend_from_slice(&name);
            }
            end
        }
        rtype::DNSKEY => {
            if rd.len() < 4 {
                return Err(Error::BadRdata);
            }
            let _ = write!(text, "DNSKEY {}", rd[3]);
            end
        }
        rtype::NSEC => {
            name_at(start, &mut name)?;
            text.extend_from_slice(b"NSEC ");
            text.extend_from_slice(owner);
            text.push(b' ');
            text.extend_from_slice(&name);
            end
        }
        rtype::NSEC3 => {
            text.extend_from_slice(b"NSEC3");
            end
        }
        rtype::NSEC3PARAM => {
            text.extend_from_slice(b"NSEC3PARAM");
            end
        }
        rtype::SSHFP => {
            if rd.len() < 2 {
                return Err(Error::BadRdata);
            }
            text.extend_from_slice(b"SSHFP: ");
            for b in &rd[2..] {
                let _ = write!(text, "{b:02x}");
            }
            end
        }
        rtype::LOC => {
            if rd.len() < 16 {
                return Err(Error::BadRdata);
            }
            let _ = write!(text, "LOC:  {} {} {}", rd[1], rd[2], rd[3]);
            end
        }
        rtype::BINDS => {
            text.extend_from_slice(b"BIND9 signing signal");
            end
        }
        // Parsed by Zeek but not added to `answers`.
        rtype::WKS
        | rtype::HINFO
        | rtype::OPT
        | rtype::TSIG
        | rtype::TKEY
        | rtype::CAA
        | rtype::SVCB
        | rtype::HTTPS => return Ok(None),
        rtype::NBS if nbstat => return Ok(None),
        other => {
            let _ = write!(text, "<unknown type={other}>");
            return Err(Error::UnknownType);
        }
    };
    Ok(Some(used))
}

/// Zeek's name of a QTYPE / record type (`query-N` when unnamed).
pub fn type_name(t: u16) -> std::borrow::Cow<'static, str> {
    let s = match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP-PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        56 => "NINFO",
        57 => "RKEY",
        58 => "TALINK",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "NID",
        105 => "L32",
        106 => "L64",
        107 => "LP",
        108 => "EUI48",
        109 => "EUI64",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "*",
        256 => "URI",
        257 => "CAA",
        32768 => "TA",
        32769 => "DLV",
        65281 => "WINS",
        65282 => "WINS-R",
        65422 => "XPF",
        65521 => "INTEGRITY",
        n => return format!("query-{n}").into(),
    };
    s.into()
}

/// Zeek's name of a QCLASS (`qclass-N` when unnamed).
pub fn class_name(c: u16) -> std::borrow::Cow<'static, str> {
    let s = match c {
        1 => "C_INTERNET",
        2 => "C_CSNET",
        3 => "C_CHAOS",
        4 => "C_HESIOD",
        254 => "C_NONE",
        255 => "C_ANY",
        n => return format!("qclass-{n}").into(),
    };
    s.into()
}

/// Zeek's name of a response code (`rcode-N` when unnamed).
pub fn rcode_name(r: u8) -> std::borrow::Cow<'static, str> {
    let s = match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSet",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        n => return format!("unassigned-{n}").into(),
    };
    s.into()
}

/// Zeek's name of an opcode (`opcode-N` when unnamed).
pub fn opcode_name(o: u8) -> std::borrow::Cow<'static, str> {
    let s = match o {
        0 => "query",
        1 => "iquery",
        2 => "server-status",
        4 => "notify",
        5 => "dynamic-update",
        6 => "dso",
        n => return format!("opcode-{n}").into(),
    };
    s.into()
}
