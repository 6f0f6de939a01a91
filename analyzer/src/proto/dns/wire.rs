//! DNS messages on the wire (RFC 1035, RFC 2136 updates, and the RFCs that added record
//! types), read the way Zeek's DNS analyzer (`DNS.cc`) reads them, because `dns.log` is
//! what its scripts make of the events that reading raises: the header, the questions (or an
//! update's zone), and the answer section (an update's prerequisite and update sections),
//! each record turned into the reply text Zeek's `DNS::do_reply` receives.
//!
//! Zeek's reading has quirks that decide what it logs, and they are kept here on purpose
//! (`docs/dns.md`, "Messages", lists them): a record's data is read from a cursor over the
//! whole message, not over its RDLENGTH, so names advance by what they used and a WKS record
//! or an SRV record to port 137 advance by nothing; AAAA reads sixteen bytes whatever
//! RDLENGTH says; a zero RDLENGTH with bytes after it stops the message; update prerequisites
//! never consume their data. The authority and additional sections are not read for the log
//! (Zeek skips them); they are only walked to tell whether the message was cut short.
//!
//! Reading is bounded and cannot panic: every read checks the message's end, names are at
//! most [`NAME_BUF`] decoded bytes and follow at most [`MAX_POINTER_DEPTH`] compression
//! pointers, each of which must point before itself. It returns what was read and the first
//! reason it stopped ([`Message::error`]); anomalies that do not stop it are listed in
//! [`Message::weirds`]. Nothing here allocates more than a small multiple of the message.

use crate::model::Text;
use crate::read::be_u16;

/// Fixed header length.
pub const HEADER_LEN: usize = 12;
/// Decoded name buffer, dots included (Zeek's 512-byte name buffer); a label that does not
/// fit ends the name with an error. Names of 255 bytes or more are only noted.
pub const NAME_BUF: usize = 512;
/// Compression pointers followed in one chain (Zeek's `dns_max_compression_chain_depth`);
/// past it the name is what was read so far.
pub const MAX_POINTER_DEPTH: usize = 20;
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

/// Record types the parser reads or names specially.
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
    pub const NAPTR: u16 = 35;
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
    pub const ANY: u16 = 255;
    pub const CAA: u16 = 257;
    pub const BINDS: u16 = 65534;
}

/// Classes with a meaning in updates (RFC 2136).
mod class {
    pub(super) const NONE: u16 = 254;
    pub(super) const ANY: u16 = 255;
}

/// Opcodes.
pub mod opcode {
    /// Standard query.
    pub const QUERY: u8 = 0;
    /// Notify (RFC 1996).
    pub const NOTIFY: u8 = 4;
    /// Dynamic update (RFC 2136).
    pub const UPDATE: u8 = 5;
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
    /// Questions (an update's zone count).
    pub qdcount: u16,
    /// Answer records (an update's prerequisites).
    pub ancount: u16,
    /// Authority records (an update's updates).
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

/// Why reading stopped, or a non-fatal anomaly. Each has a weird name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than a header.
    ShortHeader,
    /// The message ends inside a name, question or record header.
    Truncated,
    /// A decoded name does not fit the name buffer ([`NAME_BUF`]).
    NameTooLong,
    /// A decoded name of 255 bytes or more (non-fatal).
    LongName,
    /// A label longer than 63 bytes (allowed towards the NetBIOS port).
    LabelTooLong,
    /// A compression pointer to itself or forward.
    BadPointer,
    /// More than [`MAX_POINTER_DEPTH`] pointers in a chain (non-fatal: the name is what was
    /// read so far).
    PointerChain,
    /// A record's RDLENGTH runs past the end of the message.
    RdataBeyondMessage,
    /// A record with RDLENGTH 0 while bytes follow it.
    ZeroRdlength,
    /// A record's data is malformed for its type (wrong length, a string past its data).
    BadRdata,
    /// A record's data is not as long as its `RDLENGTH` says (non-fatal).
    RdataLengthMismatch,
    /// A record type the parser does not know (non-fatal).
    UnknownType,
    /// More than [`MAX_QUESTIONS`] questions: not analyzed further.
    TooManyQuestions,
    /// An update whose zone count is not 1, or whose zone is not of type SOA.
    BadZone,
    /// An update prerequisite or update record Zeek rejects (non-fatal).
    BadUpdate,
}

impl Error {
    /// The weird name reported for it.
    pub fn weird(self) -> &'static str {
        match self {
            Error::ShortHeader => "dns_truncated_header",
            Error::Truncated => "dns_truncated_message",
            Error::NameTooLong => "dns_name_too_long",
            Error::LongName => "dns_name_over_255",
            Error::LabelTooLong => "dns_label_too_long",
            Error::BadPointer => "dns_bad_compression_pointer",
            Error::PointerChain => "dns_compression_chain_too_deep",
            Error::RdataBeyondMessage => "dns_rdlength_beyond_message",
            Error::ZeroRdlength => "dns_zero_rdlength",
            Error::BadRdata => "dns_bad_rdata",
            Error::RdataLengthMismatch => "dns_rdata_length_mismatch",
            Error::UnknownType => "dns_unknown_rr_type",
            Error::TooManyQuestions => "dns_too_many_questions",
            Error::BadZone => "dns_update_bad_zone",
            Error::BadUpdate => "dns_update_bad_record",
        }
    }
}

/// How a message is read, from its connection: NetBIOS name service (either port 137:
/// opcode 5 is not an update), and whether the responder's port is 137 (labels may exceed
/// 63 bytes; type 33 is NBSTAT, which is not read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ctx {
    /// Either port is 137.
    pub netbios: bool,
    /// The responder's port is 137.
    pub resp_137: bool,
}

/// Non-fatal anomalies of one message, distinct, at most a few.
#[derive(Debug, Default)]
struct Notes(Vec<Error>);

impl Notes {
    fn note(&mut self, e: Error) {
        if self.0.len() < MAX_WEIRDS && !self.0.contains(&e) {
            self.0.push(e);
        }
    }
}

/// A cursor over the whole message, with Zeek's reads: a short or long read past the end
/// yields 0 and does not move.
struct Cur<'a> {
    msg: &'a [u8],
    pos: usize,
    /// Where names are decoded (made once per message: every name of it reuses it).
    scratch: NameBuf,
}

impl<'a> Cur<'a> {
    fn new(msg: &'a [u8], pos: usize) -> Self {
        Cur {
            msg,
            pos,
            scratch: NameBuf::new(),
        }
    }
    fn left(&self) -> usize {
        self.msg.len().saturating_sub(self.pos)
    }
    fn byte(&mut self) -> u8 {
        match self.msg.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }
    fn short(&mut self) -> u16 {
        match be_u16(self.msg, self.pos) {
            Some(v) => {
                self.pos += 2;
                v
            }
            None => 0,
        }
    }
    fn long(&mut self) -> u32 {
        match crate::read::be_u32(self.msg, self.pos) {
            Some(v) => {
                self.pos += 4;
                v
            }
            None => 0,
        }
    }
    /// Skips `n` bytes, at most to the end (Zeek's `ExtractStream`).
    /// Skips a field of one length byte and that many bytes (nothing when none is left).
    fn skip_counted(&mut self) {
        let n = if self.left() > 0 {
            usize::from(self.byte())
        } else {
            0
        };
        self.skip(n);
    }

    fn skip(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.left());
        let s = &self.msg[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    /// Moves `n` bytes on without a bound (Zeek's `data += rdlength`); the caller has
    /// checked that they are in the message.
    fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.msg.len());
    }
    /// A name at the cursor (Zeek's `ExtractName`): decoded in the cursor's scratch buffer,
    /// then copied once into a [`Text`] (held in place when short; one allocation of its
    /// length when not).
    fn name(&mut self, ctx: Ctx, case: Case, notes: &mut Notes) -> Result<Text, Error> {
        Ok(Text::from_slice(self.step_over_name(ctx, case, notes)?))
    }
    /// Reads a name at the cursor into the scratch buffer, and returns it (a name that is only
    /// stepped over costs no allocation).
    fn step_over_name(&mut self, ctx: Ctx, case: Case, notes: &mut Notes) -> Result<&[u8], Error> {
        let Cur { msg, pos, scratch } = self;
        scratch.clear();
        let mut room = NAME_BUF;
        extract_name(
            msg,
            pos,
            msg.len(),
            scratch,
            &mut room,
            case,
            0,
            ctx.resp_137,
            notes,
        )?;
        Ok(scratch.as_slice())
    }
}

/// A name being decoded: on the stack, with room for the longest (`extract_name`'s room
/// check keeps a name below [`NAME_BUF`] bytes). Not a `SmallVec`: its general
/// `extend_from_slice` cost a DNS run 4% more instructions than this one's copy.
struct NameBuf {
    bytes: [u8; NAME_BUF],
    len: usize,
}

impl NameBuf {
    fn new() -> Self {
        NameBuf {
            bytes: [0; NAME_BUF],
            len: 0,
        }
    }
    fn clear(&mut self) {
        self.len = 0;
    }
    fn len(&self) -> usize {
        self.len
    }
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
    /// Appends `label` and a dot; false (nothing appended) when they do not fit.
    fn push_label(&mut self, label: &[u8]) -> bool {
        let end = self.len + label.len();
        let Some(dst) = self.bytes.get_mut(self.len..end + 1) else {
            return false;
        };
        dst[..label.len()].copy_from_slice(label);
        dst[label.len()] = b'.';
        self.len = end + 1;
        true
    }
    /// Removes a trailing dot, if the name has one; whether it had.
    fn pop_dot(&mut self) -> bool {
        let dot = self.as_slice().last() == Some(&b'.');
        if dot {
            self.len -= 1;
        }
        dot
    }
    /// Lowercases bytes `start..end` (`end` cut to the name's length).
    fn lowercase(&mut self, start: usize, end: usize) {
        if let Some(s) = self.bytes.get_mut(start..end.min(self.len)) {
            s.make_ascii_lowercase();
        }
    }
}

/// What [`extract_name`] does with letters' case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    /// Labels read here as they are; a pointer's as Zeek reads them (lowercased).
    Keep,
    /// Lowercased, a pointer's labels too.
    Lower,
    /// Not at all: the name is only walked over, its text unused.
    Ignore,
}

/// Zeek's `ExtractName`: labels from `*pos` (reads stay below `end`), appended to `out`
/// with a dot after each, the last dot removed; a pointer continues at an earlier offset
/// (its name may not reach the pointer) and is always lowercased (unless `case` is
/// [`Case::Ignore`]); `*pos` ends after the terminating zero or the first pointer. Each
/// level lowercases only the labels it appended: a pointer's were by its own level.
#[allow(
    clippy::too_many_arguments,
    reason = "Zeek's recursion, state passed down"
)]
fn extract_name(
    msg: &[u8],
    pos: &mut usize,
    end: usize,
    out: &mut NameBuf,
    room: &mut usize,
    case: Case,
    depth: usize,
    long_labels: bool,
    notes: &mut Notes,
) -> Result<(), Error> {
    if depth > MAX_POINTER_DEPTH {
        notes.note(Error::PointerChain);
        return Ok(());
    }
    let start = out.len();
    // Where this level's own labels end (a pointer's follow).
    let mut own_end = None;
    loop {
        if *pos >= end {
            return Err(Error::Truncated);
        }
        let at = *pos;
        let l = usize::from(msg[at]);
        *pos += 1;
        if l == 0 {
            break;
        }
        if l & 0xc0 == 0xc0 {
            if *pos >= end {
                return Err(Error::Truncated);
            }
            let target = ((l & 0x3f) << 8) | usize::from(msg[*pos]);
            *pos += 1;
            if target >= at {
                return Err(Error::BadPointer);
            }
            let mut p = target;
            own_end = Some(out.len());
            let pointed = if case == Case::Ignore {
                Case::Ignore
            } else {
                Case::Lower
            };
            extract_name(
                msg,
                &mut p,
                at,
                out,
                room,
                pointed,
                depth + 1,
                long_labels,
                notes,
            )?;
            break;
        }
        if l > end - *pos {
            *pos = end;
            return Err(Error::Truncated);
        }
        if l > 63 && !long_labels {
            return Err(Error::LabelTooLong);
        }
        if l >= *room || !out.push_label(&msg[*pos..*pos + l]) {
            return Err(Error::NameTooLong);
        }
        *room -= l + 1;
        *pos += l;
    }
    let n = out.len() - start;
    if n >= 255 {
        notes.note(Error::LongName);
    }
    if n >= 2 && out.pop_dot() {
        *room += 1;
    }
    if case == Case::Lower {
        out.lowercase(start, own_end.unwrap_or(usize::MAX));
    }
    Ok(())
}

/// Reads the name at `pos` into `out` (cleared first) as Zeek logs names: dotted, without
/// the trailing dot (the root is empty), ASCII-lowercased. Returns the position after the
/// name where it appears (after its first pointer, if any).
pub fn read_name(msg: &[u8], pos: usize, out: &mut Vec<u8>) -> Result<usize, Error> {
    let mut c = Cur::new(msg, pos);
    let name = c.step_over_name(Ctx::default(), Case::Lower, &mut Notes::default())?;
    out.clear();
    out.extend_from_slice(name);
    Ok(c.pos)
}

/// A question, or an update's zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// Name (lowercased, no trailing dot).
    pub name: Text,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS (for mDNS the top bit is the unicast-response flag).
    pub qclass: u16,
}

/// The section a handled record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Answer section.
    Answer,
    /// An update's prerequisite section.
    Prerequisite,
    /// An update's update section.
    Update,
}

/// A record Zeek's scripts handle (they call `DNS::do_reply` for it): its owner, its reply
/// text (empty for WKS and for TXT without strings: such a record sets the response's flags
/// but adds no answer) and its TTL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Owner name (lowercased, no trailing dot).
    pub owner: Text,
    /// The answer text as `dns.log` writes it (`add: ` prefixed in an update section).
    pub text: Text,
    /// TTL in seconds.
    pub ttl: u32,
    /// Where it came from.
    pub section: Section,
}

/// A parsed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The header.
    pub header: Header,
    /// The last question read (Zeek logs the last one of a multi-question message); never
    /// set for an update, whose zone is not a question.
    pub question: Option<Question>,
    /// Questions read.
    pub questions: u16,
    /// An update's zone.
    pub zone: Option<Question>,
    /// Handled records of the answer section (an update's prerequisites and updates), in
    /// order.
    pub replies: Vec<Reply>,
    /// Answer-section records read, handled or not.
    pub answer_records: u16,
    /// Why reading stopped before the end of the sections Zeek reads, if it did.
    pub error: Option<Error>,
    /// The message ends before the sections its header announces do (all of them, walked
    /// by their lengths): a capture's snapshot length or a lying count cut it.
    pub cut: bool,
    /// Non-fatal anomalies (distinct, at most a few).
    pub weirds: Vec<Error>,
}

impl Message {
    /// Reply texts that are answers (not empty), with their TTLs.
    pub fn answers(&self) -> impl Iterator<Item = (&[u8], u32)> {
        self.replies
            .iter()
            .filter(|r| !r.text.is_empty())
            .map(|r| (r.text.as_slice(), r.ttl))
    }
    /// [`Message::answers`], their texts moved out (left empty, so a second call yields none).
    pub fn take_answers(&mut self) -> impl Iterator<Item = (Text, u32)> {
        self.replies
            .iter_mut()
            .filter(|r| !r.text.is_empty())
            .map(|r| (std::mem::take(&mut r.text), r.ttl))
    }
}

/// Whether opcode `op` is one Zeek's scripts log (query, notify, update).
pub fn tracked(op: u8) -> bool {
    matches!(op, opcode::QUERY | opcode::NOTIFY | opcode::UPDATE)
}

/// Parses a message as Zeek's DNS analyzer does. Fails only when there is no whole header.
pub fn parse(msg: &[u8], ctx: Ctx) -> Result<Message, Error> {
    let header = Header::parse(msg).ok_or(Error::ShortHeader)?;
    let mut m = Message {
        header,
        question: None,
        questions: 0,
        zone: None,
        replies: Vec::new(),
        answer_records: 0,
        error: None,
        cut: false,
        weirds: Vec::new(),
    };
    let mut notes = Notes::default();
    let mut c = Cur::new(msg, HEADER_LEN);
    if let Err(e) = read_sections(&mut c, ctx, &mut m, &mut notes) {
        m.error = Some(e);
    }
    if m.error != Some(Error::TooManyQuestions) {
        c.pos = HEADER_LEN;
        m.cut = cut_short(&mut c, ctx, &header);
    }
    m.weirds = notes.0;
    Ok(m)
}

/// The sections Zeek reads.
fn read_sections(
    c: &mut Cur<'_>,
    ctx: Ctx,
    m: &mut Message,
    notes: &mut Notes,
) -> Result<(), Error> {
    let h = m.header;
    if h.qdcount > MAX_QUESTIONS {
        return Err(Error::TooManyQuestions);
    }
    let update = h.opcode == opcode::UPDATE && !ctx.netbios;
    if update {
        if h.qdcount != 1 {
            return Err(Error::BadZone);
        }
        let name = c.name(ctx, Case::Lower, notes)?;
        if c.left() < 4 {
            return Err(Error::Truncated);
        }
        let qtype = c.short();
        let qclass = c.short();
        m.zone = Some(Question {
            name,
            qtype,
            qclass,
        });
        if qtype != rtype::SOA {
            return Err(Error::BadZone);
        }
        for (n, s) in [
            (h.ancount, Section::Prerequisite),
            (h.nscount, Section::Update),
        ] {
            for _ in 0..n {
                record(c, ctx, m, s, qclass, notes)?;
            }
        }
        return Ok(());
    }
    for _ in 0..h.qdcount {
        let mut name = c.name(ctx, Case::Keep, notes)?;
        if c.left() < 4 {
            return Err(Error::Truncated);
        }
        name.make_ascii_lowercase();
        let qtype = c.short();
        let qclass = c.short();
        m.question = Some(Question {
            name,
            qtype,
            qclass,
        });
        m.questions += 1;
    }
    for _ in 0..h.ancount {
        record(c, ctx, m, Section::Answer, 0, notes)?;
    }
    Ok(())
}

/// Whether the message ends before the sections its header announces do: every question
/// and record walked by its length alone (names, fixed fields, RDLENGTH), whatever Zeek makes
/// of their contents.
fn cut_short(c: &mut Cur<'_>, ctx: Ctx, h: &Header) -> bool {
    let mut notes = Notes::default();
    let ran_out = |e: Error| matches!(e, Error::Truncated);
    for _ in 0..h.qdcount {
        match c.step_over_name(ctx, Case::Ignore, &mut notes).map(|_| ()) {
            Ok(_) if c.left() >= 4 => c.advance(4),
            Ok(_) => return true,
            Err(e) => return ran_out(e),
        }
    }
    let records = u32::from(h.ancount) + u32::from(h.nscount) + u32::from(h.arcount);
    for _ in 0..records {
        match c.step_over_name(ctx, Case::Ignore, &mut notes).map(|_| ()) {
            Ok(_) if c.left() >= 10 => c.advance(8),
            Ok(_) => return true,
            Err(e) => return ran_out(e),
        }
        let rdlen = usize::from(c.short());
        if rdlen > c.left() {
            return true;
        }
        c.advance(rdlen);
    }
    false
}

/// Zeek's character string: a length byte, then that many bytes within what is left of the
/// record (`rdlen`); `None` when none is left or the string runs past it.
fn char_string<'a>(c: &mut Cur<'a>, rdlen: &mut usize) -> Option<&'a [u8]> {
    if *rdlen == 0 {
        return None;
    }
    let n = usize::from(c.byte());
    *rdlen -= 1;
    if n > *rdlen {
        return None;
    }
    let msg: &'a [u8] = c.msg;
    let s = msg.get(c.pos..c.pos + n)?;
    c.pos += n;
    *rdlen -= n;
    Some(s)
}

/// Appends an IPv6 address as Zeek writes it: an IPv4-mapped address as IPv4, otherwise as
/// glibc's `inet_ntop` (which also writes an IPv4-compatible `::a.b.c.d` tail). Written in
/// place: an AAAA answer's text cost six allocations when made of `format!`ed pieces.
pub(super) fn push_ipv6_text(b: [u8; 16], out: &mut Text) {
    // Room for the longest text at once (eight words of four digits and seven colons):
    // grown digit by digit, an answer's text took a reallocation.
    out.reserve(39);
    let v4 = [b[12], b[13], b[14], b[15]];
    if b[..10].iter().all(|&x| x == 0) && b[10] == 0xff && b[11] == 0xff {
        push_ipv4_text(v4, out);
        return;
    }
    let mut words = [0u16; 8];
    for (w, pair) in words.iter_mut().zip(b.chunks_exact(2)) {
        *w = u16::from_be_bytes([pair[0], pair[1]]);
    }
    // glibc: the first longest run of zero words, if at least two long.
    let (mut best, mut best_len, mut cur, mut cur_len) = (0, 0, 0, 0);
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            if cur_len == 0 {
                cur = i;
            }
            cur_len += 1;
            if cur_len > best_len {
                best = cur;
                best_len = cur_len;
            }
        } else {
            cur_len = 0;
        }
    }
    if best == 0 && best_len == 6 {
        out.extend_from_slice(b"::");
        push_ipv4_text(v4, out);
        return;
    }
    let hex = |ws: &[u16], out: &mut Text| {
        for (i, &w) in ws.iter().enumerate() {
            if i > 0 {
                out.push(b':');
            }
            push_hex_u16(w, out);
        }
    };
    if best_len < 2 {
        hex(&words, out);
        return;
    }
    hex(&words[..best], out);
    out.extend_from_slice(b"::");
    hex(&words[best + best_len..], out);
}

/// Appends an IPv4 address in dotted decimal (as `Ipv4Addr`'s `Display`, without
/// `core::fmt`: address texts through `write!` were 3% of a DNS run's instructions).
pub(super) fn push_ipv4_text(a: [u8; 4], out: &mut Text) {
    // As the sinks write addresses (`model::ipv4_text`), into an array first: piece by
    // piece, a `Text`'s general append cost more than the digits.
    let mut text = [0u8; 15];
    let mut n = 0;
    crate::model::ipv4_text(a.into(), |s| {
        text[n..n + s.len()].copy_from_slice(s.as_bytes());
        n += s.len();
    });
    out.extend_from_slice(&text[..n]);
}

/// Appends `w` in lowercase hexadecimal without leading zeros (`{:x}`).
fn push_hex_u16(w: u16, out: &mut Text) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (16 - w.leading_zeros()).div_ceil(4).max(1);
    for d in (0..digits).rev() {
        out.push(HEX[usize::from((w >> (4 * d)) as u8 & 0xf)]);
    }
}

/// One record (Zeek's `ParseAnswer`): its header, the update rules, then its data by type.
/// A handled record is added to `m.replies`; `Err` stops the message.
fn record(
    c: &mut Cur<'_>,
    ctx: Ctx,
    m: &mut Message,
    section: Section,
    zclass: u16,
    notes: &mut Notes,
) -> Result<(), Error> {
    use std::io::Write as _;
    let mut owner = c.name(ctx, Case::Lower, notes)?;
    if c.left() < 4 {
        return Err(Error::Truncated);
    }
    let rt = c.short();
    let rclass = c.short();
    let ttl = c.long();
    let rdlen = usize::from(c.short());
    if rdlen > c.left() {
        return Err(Error::RdataBeyondMessage);
    }
    if section == Section::Answer {
        m.answer_records = m.answer_records.saturating_add(1);
    }
    let update = m.header.opcode == opcode::UPDATE && !ctx.netbios;
    // A record makes at most one reply, which takes the owner (no copy of it).
    let reply = |owner: &mut Text, text: Text, m: &mut Message| {
        let text = if section == Section::Update && !text.is_empty() && !text.starts_with(b"del:") {
            let mut t = Text::from_slice(b"add: ");
            t.extend_from_slice(&text);
            t
        } else {
            text
        };
        m.replies.push(Reply {
            owner: std::mem::take(owner),
            text,
            ttl,
            section,
        });
    };
    let name_of = |t: u16| -> String { type_name(t).into_owned() };
    if update {
        match section {
            Section::Update => {
                if rclass == class::ANY && ttl == 0 && rdlen == 0 {
                    let what = if rt == rtype::ANY {
                        let mut w = Text::from_slice(b"del: RRSet * ");
                        w.extend_from_slice(&owner);
                        w
                    } else {
                        Text::from_slice(format!("del: RRSet {}", name_of(rt)).as_bytes())
                    };
                    reply(&mut owner, what, m);
                    return Ok(());
                }
                if !((rclass == class::NONE && ttl == 0) || rclass == zclass) {
                    notes.note(Error::BadUpdate);
                    return Ok(());
                }
            }
            Section::Prerequisite => {
                if ttl != 0 {
                    notes.note(Error::BadUpdate);
                } else if ((rclass == class::ANY || rclass == class::NONE) && rdlen == 0)
                    || rclass == zclass
                {
                    let what: Vec<u8> = match (rclass, rt) {
                        (class::NONE, rtype::ANY) => [&b"pre: NameNotInUse "[..], &owner].concat(),
                        (class::ANY, rtype::ANY) => [&b"pre: NameInUse "[..], &owner].concat(),
                        (class::NONE, _) => {
                            [format!("pre: NoRRSet {} ", name_of(rt)).as_bytes(), &owner].concat()
                        }
                        _ => [
                            format!("pre: RRSetExists {} ", name_of(rt)).as_bytes(),
                            &owner,
                        ]
                        .concat(),
                    };
                    reply(&mut owner, Text::from_vec(what), m);
                } else {
                    notes.note(Error::BadUpdate);
                }
                // Zeek never reads a prerequisite's data.
                return Ok(());
            }
            Section::Answer => {}
        }
    }
    if rdlen == 0 && c.left() > 0 {
        if update {
            return Ok(());
        }
        return Err(Error::ZeroRdlength);
    }
    let start = c.pos;
    let mut text = Text::new();
    let mismatch = |c: &Cur<'_>, notes: &mut Notes| {
        if c.pos - start != rdlen {
            notes.note(Error::RdataLengthMismatch);
        }
    };
    match rt {
        rtype::A => {
            if rdlen != 4 {
                return Err(Error::BadRdata);
            }
            let a = c.long().to_be_bytes();
            if update {
                text.extend_from_slice(b"A ");
                text.extend_from_slice(&owner);
                text.push(b' ');
            }
            push_ipv4_text(a, &mut text);
            reply(&mut owner, text, m);
        }
        rtype::AAAA | rtype::A6 => {
            // Sixteen bytes whatever RDLENGTH says; past the end, zeros.
            let mut b = [0u8; 16];
            for w in b.chunks_mut(4) {
                w.copy_from_slice(&c.long().to_be_bytes());
            }
            if update {
                text.extend_from_slice(if rt == rtype::AAAA { b"AAAA " } else { b"A6 " });
                text.extend_from_slice(&owner);
                text.push(b' ');
            }
            push_ipv6_text(b, &mut text);
            reply(&mut owner, text, m);
        }
        rtype::NS | rtype::CNAME | rtype::PTR => {
            let name = c.name(ctx, Case::Lower, notes)?;
            mismatch(c, notes);
            reply(&mut owner, name, m);
        }
        rtype::SOA => {
            let mname = c.name(ctx, Case::Lower, notes)?;
            c.step_over_name(ctx, Case::Ignore, notes)?;
            if c.left() < 20 {
                return Err(Error::BadRdata);
            }
            c.advance(20);
            mismatch(c, notes);
            reply(&mut owner, mname, m);
        }
        // Handled with no text, and (Zeek) its data is not consumed.
        rtype::WKS => reply(&mut owner, Text::new(), m),
        rtype::MX => {
            c.short();
            let name = c.name(ctx, Case::Lower, notes)?;
            mismatch(c, notes);
            reply(&mut owner, name, m);
        }
        rtype::TXT | rtype::SPF => {
            let tag: &str = if rt == rtype::TXT { "TXT" } else { "SPF" };
            let mut left = rdlen;
            let mut first = true;
            while let Some(s) = char_string(c, &mut left) {
                if !first {
                    text.push(b' ');
                }
                first = false;
                let _ = write!(text, "{tag} {} ", s.len());
                text.extend_from_slice(s);
            }
            reply(&mut owner, text, m);
            if left != 0 {
                return Err(Error::BadRdata);
            }
        }
        // Not handled by Zeek's scripts (no event handler): skipped.
        rtype::HINFO | rtype::CAA | rtype::TKEY | rtype::NBS => c.advance(rdlen),
        rtype::SRV if ctx.resp_137 => {}
        rtype::SRV => {
            c.short();
            c.short();
            c.short();
            let name = c.name(ctx, Case::Lower, notes)?;
            mismatch(c, notes);
            reply(&mut owner, name, m);
        }
        rtype::NAPTR => {
            let order = c.short();
            let pref = c.short();
            let mut left = rdlen.saturating_sub(4);
            if c.left() == 0 || rdlen <= 4 {
                return Err(Error::BadRdata);
            }
            let flags = char_string(c, &mut left);
            let service = char_string(c, &mut left);
            let regexp = char_string(c, &mut left);
            let replacement = c.name(ctx, Case::Keep, notes);
            let (Some(flags), Some(service), Some(regexp), Ok(replacement)) =
                (flags, service, regexp, replacement)
            else {
                return Err(Error::BadRdata);
            };
            let _ = write!(text, "NAPTR {order} {pref} ");
            text.extend_from_slice(flags);
            text.push(b' ');
            text.extend_from_slice(service);
            text.push(b' ');
            text.extend_from_slice(regexp);
            if !replacement.is_empty() {
                if !regexp.is_empty() {
                    text.push(b' ');
                }
                text.extend_from_slice(&replacement);
            }
            reply(&mut owner, text, m);
        }
        rtype::OPT => {
            let mut left = rdlen;
            while left >= 4 {
                c.short();
                let olen = usize::from(c.short());
                left -= 4;
                if olen > left {
                    return Err(Error::BadRdata);
                }
                c.advance(olen);
                left -= olen;
            }
            if left != 0 {
                return Err(Error::BadRdata);
            }
        }
        rtype::TSIG => {
            c.step_over_name(ctx, Case::Ignore, notes)?;
            c.long();
            c.short();
            c.short();
            let n = usize::from(c.short());
            c.skip(n);
            c.short();
            c.short();
            let n = usize::from(c.short());
            c.skip(n);
        }
        rtype::RRSIG => {
            if c.left() < 18 {
                return Err(Error::BadRdata);
            }
            let covered = c.short();
            c.advance(16);
            let name_at = c.pos;
            let signer = c.name(ctx, Case::Lower, notes)?;
            let used = c.pos - name_at + 18;
            c.skip(rdlen.saturating_sub(used));
            let _ = write!(text, "RRSIG {covered} ");
            if signer.is_empty() {
                text.extend_from_slice(b"<Root>");
            } else {
                text.extend_from_slice(&signer);
            }
            reply(&mut owner, text, m);
        }
        rtype::DNSKEY => {
            if c.left() < 4 {
                return Err(Error::BadRdata);
            }
            c.short();
            let alg = c.short() & 0xff;
            c.skip(rdlen.saturating_sub(4));
            let _ = write!(text, "DNSKEY {alg}");
            reply(&mut owner, text, m);
        }
        rtype::NSEC => {
            let next = c.name(ctx, Case::Lower, notes)?;
            let mut maps = rdlen as isize - (c.pos - start) as isize;
            while maps > 0 && c.left() > 0 {
                let bmlen = usize::from(c.short() & 0xff);
                if bmlen == 0 {
                    break;
                }
                c.skip(bmlen);
                maps -= 2 + bmlen as isize;
            }
            text.extend_from_slice(b"NSEC ");
            text.extend_from_slice(&owner);
            text.push(b' ');
            text.extend_from_slice(&next);
            reply(&mut owner, text, m);
        }
        rtype::NSEC3 => {
            if c.left() < 6 {
                return Err(Error::BadRdata);
            }
            c.short();
            c.short();
            c.skip_counted();
            c.skip_counted();
            let mut maps = rdlen as isize - (c.pos - start) as isize;
            while maps > 0 && c.left() > 0 {
                let bmlen = usize::from(c.short() & 0xff);
                if bmlen == 0 {
                    break;
                }
                c.skip(bmlen);
                maps -= 2 + bmlen as isize;
            }
            reply(&mut owner, Text::from_slice(b"NSEC3"), m);
        }
        rtype::NSEC3PARAM => {
            if c.left() < 5 {
                return Err(Error::BadRdata);
            }
            c.short();
            c.short();
            c.skip_counted();
            reply(&mut owner, Text::from_slice(b"NSEC3PARAM"), m);
        }
        rtype::DS => {
            if c.left() < 4 {
                return Err(Error::BadRdata);
            }
            c.short();
            let ad = c.short();
            c.skip(rdlen.saturating_sub(4));
            let _ = write!(text, "DS {} {}", ad >> 8, ad & 0xff);
            reply(&mut owner, text, m);
        }
        rtype::BINDS => {
            if c.left() < 5 {
                return Err(Error::BadRdata);
            }
            c.long();
            c.byte();
            reply(&mut owner, Text::from_slice(b"BIND9 signing signal"), m);
        }
        rtype::SSHFP => {
            if c.left() < 2 {
                return Err(Error::BadRdata);
            }
            c.short();
            text.extend_from_slice(b"SSHFP: ");
            for b in c.skip(rdlen.saturating_sub(2)) {
                let _ = write!(text, "{b:02x}");
            }
            reply(&mut owner, text, m);
        }
        rtype::LOC => {
            if rdlen != 16 {
                return Err(Error::BadRdata);
            }
            let rd = c.skip(16);
            let _ = write!(text, "LOC:  {} {} {}", rd[1], rd[2], rd[3]);
            reply(&mut owner, text, m);
        }
        rtype::SVCB | rtype::HTTPS => {
            if rdlen < 3 {
                return Err(Error::BadRdata);
            }
            c.short();
            c.step_over_name(ctx, Case::Ignore, notes)?;
            let mut params = rdlen as isize - (c.pos - start) as isize;
            while params >= 4 {
                c.short();
                let mut vlen = c.short() as isize;
                params -= 4;
                if vlen > params {
                    vlen = params;
                }
                c.skip(vlen as usize);
                params -= vlen;
            }
        }
        other => {
            notes.note(Error::UnknownType);
            let _ = write!(text, "<unknown type={other}>");
            reply(&mut owner, text, m);
            c.advance(rdlen);
        }
    }
    Ok(())
}

/// NetBIOS first-level decoding of a name (`decode_netbios_name`): 32 letters `A`–`P` (any
/// case) make 16 bytes; the leading run of printable bytes (alphanumeric, punctuation, space,
/// or below 3) is kept, without the 16th (the suffix) and without trailing spaces and NULs.
/// `None` when the name is not such an encoding or decodes to nothing.
pub fn decode_netbios(name: &[u8]) -> Option<Vec<u8>> {
    if name.len() != 32 {
        return None;
    }
    let mut buf = Vec::with_capacity(16);
    let mut length = 0;
    for pair in name.chunks(2) {
        let (a, b) = (pair[0].to_ascii_uppercase(), pair[1].to_ascii_uppercase());
        if !(b'A'..=b'P').contains(&a) || !(b'A'..=b'P').contains(&b) {
            return None;
        }
        let c = ((a - b'A') << 4) + (b - b'A');
        buf.push(c);
        if c.is_ascii_alphanumeric() || c.is_ascii_punctuation() || c == b' ' || c < 3 {
            length += 1;
        } else {
            break;
        }
    }
    if length == 16 {
        length = 15;
    }
    while length > 0 && matches!(buf[length - 1], b' ' | 0) {
        length -= 1;
    }
    (length > 0).then(|| buf[..length].to_vec())
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

/// Zeek's name of a response code (`unassigned-N` for 11–15).
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

/// Zeek's name of an opcode (`opcode-N` when unnamed; NetBIOS's own names on port 137).
pub fn opcode_name(o: u8, netbios: bool) -> std::borrow::Cow<'static, str> {
    if netbios {
        return match o {
            0 => "netbios-query".into(),
            5 => "netbios-registration".into(),
            6 => "netbios-release".into(),
            7 => "netbios-wack".into(),
            8 => "netbios-refresh".into(),
            n => format!("netbios-opcode-{n}").into(),
        };
    }
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
