//! How the analyzer shows what was redacted: `[redacted]` instead of the filler bytes.

use std::borrow::Cow;

use crate::FILL;

/// What a redacted value is shown as.
pub const REDACTED: &str = "[redacted]";

/// Whether `v` is a redacted value: not empty, nothing but [`FILL`].
pub fn is_filled(v: &[u8]) -> bool {
    !v.is_empty() && v.iter().all(|&b| b == FILL)
}

/// `url` with every query or fragment parameter value made only of [`FILL`] shown as
/// [`REDACTED`] (`/a?token=*****&page=2` → `/a?token=[redacted]&page=2`).
pub fn mark_url(url: &str) -> Cow<'_, str> {
    let Some(q) = url.find(['?', '#']) else {
        return Cow::Borrowed(url);
    };
    if !url[q..].contains("=*") {
        return Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(url.len() + 16);
    out.push_str(&url[..q]);
    let mut rest = &url[q..];
    while let Some(c) = rest.chars().next() {
        // A separator, then a name=value pair up to the next separator.
        out.push(c);
        rest = &rest[c.len_utf8()..];
        let end = rest.find(['&', '#', '?']).unwrap_or(rest.len());
        let pair = &rest[..end];
        match pair.split_once('=') {
            Some((name, value)) if is_filled(value.as_bytes()) => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
        rest = &rest[end..];
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_filled_values_only() {
        let cases = [
            ("/a?token=*****&page=2", "/a?token=[redacted]&page=2"),
            ("/a?q=a*b&x=**", "/a?q=a*b&x=[redacted]"),
            ("/a/**?x=1", "/a/**?x=1"),
            ("/cb#access_token=***", "/cb#access_token=[redacted]"),
            ("/plain", "/plain"),
            ("/a?k=", "/a?k="),
            ("/é?k=**&z", "/é?k=[redacted]&z"),
        ];
        for (i, o) in cases {
            assert_eq!(mark_url(i), o);
        }
        assert!(is_filled(b"***"));
        assert!(!is_filled(b""));
        assert!(!is_filled(b"*a"));
    }
}
