//! The JA4 TLS client fingerprint (FoxIO's published JA4 specification, BSD-3-Clause), from
//! a parsed ClientHello: `t13d1516h2_8daaf6152771_e5627efa2ab1`.
//!
//! - `a`: transport (`t`: TCP; this analyzer sees no QUIC), the version (the highest
//!   supported_versions value when the extension is present, else legacy_version: `13`,
//!   `12`, `11`, `10`, `s3`, `s2`, `00` for anything else), `d` when SNI is present else `i`,
//!   the number of cipher suites and of extensions (two digits, at most 99), and the first and
//!   last characters of the first ALPN protocol (`00` without ALPN; a non-ASCII character
//!   becomes `9`, a missing last character `0`, as FoxIO's implementation does);
//! - `b`: the first 12 hex digits of the SHA-256 of the cipher suites as 4-digit hex, sorted,
//!   comma-separated;
//! - `c`: the same of the extensions, sorted, without SNI (0) and ALPN (16), then `_` and the
//!   signature algorithms in their order (without the `_` when there are none, as FoxIO's
//!   implementation does).
//!
//! GREASE values are left out everywhere. An empty list hashes to `000000000000`.

use sha2::{Digest, Sha256};

use super::wire::{ClientHello, ext, is_grease};

/// The first 12 hex digits of SHA-256 of `s`, or zeros for an empty `s`.
fn hash12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    let d = Sha256::digest(s.as_bytes());
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn version_code(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        _ => "00",
    }
}

fn alpn_chars(p: &[u8]) -> (char, char) {
    let nine = |c: char| if c.is_ascii() { c } else { '9' };
    let chars: Vec<char> = match std::str::from_utf8(p) {
        Ok(s) => s.chars().collect(),
        Err(_) => p.iter().map(|&b| char::from(b)).collect(),
    };
    match chars.as_slice() {
        [] => ('0', '0'),
        [one] => (nine(*one), '0'),
        [first, .., last] => (nine(*first), nine(*last)),
    }
}

/// The JA4 fingerprint of a ClientHello seen over TCP.
pub fn ja4(ch: &ClientHello) -> String {
    let version = if ch.extensions.contains(&ext::SUPPORTED_VERSIONS) {
        ch.supported_versions
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .max()
            .unwrap_or(0)
    } else {
        ch.version
    };
    let mut ciphers: Vec<String> = ch
        .ciphers
        .iter()
        .filter(|c| u16::try_from(**c).map_or(true, |c| !is_grease(c)))
        .map(|c| format!("{c:04x}"))
        .collect();
    let exts: Vec<u16> = ch
        .extensions
        .iter()
        .copied()
        .filter(|e| !is_grease(*e))
        .collect();
    let sni = if ch.extensions.contains(&ext::SERVER_NAME) {
        'd'
    } else {
        'i'
    };
    let (a0, a1) = ch.alpn.first().map_or(('0', '0'), |p| alpn_chars(p));
    let head = format!(
        "t{}{sni}{:02}{:02}{a0}{a1}",
        version_code(version),
        ciphers.len().min(99),
        exts.len().min(99),
    );
    ciphers.sort_unstable();
    let mut sorted: Vec<u16> = exts
        .into_iter()
        .filter(|e| *e != ext::SERVER_NAME && *e != ext::ALPN)
        .collect();
    sorted.sort_unstable();
    let mut c = sorted
        .iter()
        .map(|e| format!("{e:04x}"))
        .collect::<Vec<_>>()
        .join(",");
    let sigs: Vec<String> = ch
        .sig_algs
        .iter()
        .filter(|s| !is_grease(**s))
        .map(|s| format!("{s:04x}"))
        .collect();
    if !sigs.is_empty() {
        c.push('_');
        c.push_str(&sigs.join(","));
    }
    format!("{head}_{}_{}", hash12(&ciphers.join(",")), hash12(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of FoxIO's JA4 raw output for `tls12.pcap` (python/test/testdata
    /// in FoxIO-LLC/ja4): cipher and extension lists hash to the published parts.
    #[test]
    fn published_raw_lists_hash_to_the_published_parts() {
        assert_eq!(
            hash12(
                "002f,0035,009c,009d,1301,1302,1303,c009,c00a,c013,c014,c02b,c02c,c02f,c030,cca8,cca9"
            ),
            "5b57614c22b0"
        );
        assert_eq!(
            hash12(
                "0005,000a,000b,000d,0015,0017,001c,0022,0023,002b,002d,0033,ff01_0403,0503,0603,0804,0805,0806,0401,0501,0601,0203,0201"
            ),
            "3d5424432f57"
        );
        assert_eq!(hash12(""), "000000000000");
    }

    #[test]
    fn alpn_characters_follow_foxio() {
        assert_eq!(alpn_chars(b"h2"), ('h', '2'));
        assert_eq!(alpn_chars(b"http/1.1"), ('h', '1'));
        assert_eq!(alpn_chars(b"h"), ('h', '0'));
        assert_eq!(alpn_chars("é".as_bytes()), ('9', '0'));
        assert_eq!(alpn_chars(&[0xab, 0xcd]), ('9', '9'));
    }

    #[test]
    fn grease_and_sni_alpn_are_left_out() {
        let ch = ClientHello {
            version: 0x0303,
            ciphers: vec![0x0a0a, 0x1301, 0xc02b],
            extensions: vec![0x1a1a, 0, 16, 43, 13, 10],
            alpn: vec![b"h2".to_vec()],
            supported_versions: vec![0x2a2a, 0x0304, 0x0303],
            sig_algs: vec![0x0403, 0x0804],
            ..ClientHello::default()
        };
        let j = ja4(&ch);
        assert!(j.starts_with("t13d0205h2_"), "{j}");
        assert_eq!(&j[11..23], hash12("1301,c02b"));
        assert_eq!(&j[24..], hash12("000a,000d,002b_0403,0804"));
    }
}
