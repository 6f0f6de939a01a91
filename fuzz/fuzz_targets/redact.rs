//! The redactor (juno-redact) on arbitrary input, cut into chunks where the input says:
//! it never panics, never changes a length, and never leaves the value of a configured
//! header intact on an HTTP/1 text connection, however the bytes are cut. Packets (with the
//! same bytes as TCP payload) go through the packet path too.
#![no_main]

use juno_redact::stream::Stream;
use juno_redact::{Counts, FILL, Policy, Redactor, linktype};
use libfuzzer_sys::fuzz_target;

/// The configured headers (default policy), lower case.
const SECRET: &[&[u8]] = &[b"authorization", b"proxy-authorization", b"cookie", b"set-cookie", b"x-api-key"];

fn run(chunks: &[&[u8]]) -> Vec<u8> {
    let p = Policy::default();
    let mut s = Stream::new();
    let mut c = Counts::default();
    let mut out = Vec::new();
    for ch in chunks {
        let mut b = ch.to_vec();
        s.feed(&mut b, &p, &mut c);
        assert_eq!(b.len(), ch.len(), "a chunk changed length");
        out.extend(b);
    }
    out
}

/// Every line of `orig` that is `<secret header>:<value>` must come out with its value (after
/// blanks, up to CR/LF) all `*`, provided nothing turned the connection into another
/// protocol (a `101` status line, an HTTP/2 preface line).
fn check_text(orig: &[u8], out: &[u8]) {
    let lines = orig.split(|&c| c == b'\n');
    if orig.split(|&c| c == b'\n').any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with(b"http/") || l.starts_with(b"pri ")
    }) {
        return;
    }
    let mut at = 0;
    for line in lines {
        let start = at;
        at += line.len() + 1;
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let name = line[..colon].to_ascii_lowercase();
        if !SECRET.contains(&name.as_slice()) {
            continue;
        }
        let mut v = colon + 1;
        while v < line.len() && (line[v] == b' ' || line[v] == b'\t') {
            v += 1;
        }
        let end = line[v..].iter().position(|&c| c == b'\r').map_or(line.len(), |e| v + e);
        let got = &out[start + v..start + end];
        assert!(
            got.iter().all(|&c| c == FILL),
            "value of {} left: {:?}",
            String::from_utf8_lossy(&name),
            String::from_utf8_lossy(got)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (cuts, body) = data.split_at(2);
    let a = usize::from(cuts[0]) % (body.len() + 1);
    let b = (a + usize::from(cuts[1])) % (body.len() + 1);
    let (a, b) = (a.min(b), a.max(b));
    let _ = run(&[&body[..a], &body[a..b], &body[b..]]);

    // The same bytes on an HTTP/1 request connection.
    let mut conv = b"GET / HTTP/1.1\r\n".to_vec();
    conv.extend(body.iter().map(|&c| if c == 0 { b'\n' } else { c }));
    let k = a.min(conv.len());
    let out = run(&[&conv[..k], &conv[k..]]);
    check_text(&conv, &out);

    // As TCP payload in two packets.
    let mut r = Redactor::new(Policy::default(), 16);
    for (seq, part) in [(1000u32, &body[..a]), (1000 + a as u32, &body[a..])] {
        let mut p = vec![0u8; 12];
        p.extend([0x08, 0x00, 0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        let total = (40 + part.len()) as u16;
        p[16..18].copy_from_slice(&total.to_be_bytes());
        p.extend([0x30, 0x39, 0, 80]);
        p.extend(seq.to_be_bytes());
        p.extend([0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        p.extend_from_slice(part);
        let n = p.len();
        r.packet(linktype::ETHERNET, 0, &mut p);
        assert_eq!(p.len(), n);
    }
});
