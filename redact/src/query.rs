//! URL parameters, one character at a time: after `?` (and after `#`: OAuth puts tokens in
//! fragments of `Location`), `name=value` pairs separated by `&`; the value of a listed name
//! is redacted. Names are compared as sent (not percent-decoded), case-insensitively.

use crate::policy::{MAX_NAME, Policy};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum St {
    /// Before `?` or `#`.
    #[default]
    Path,
    /// In a parameter name.
    Name,
    /// In a value (redacted or not).
    Value(bool),
}

/// The scanner's state: bounded (one name of at most [`MAX_NAME`] bytes).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Query {
    st: St,
    name: [u8; MAX_NAME],
    /// Length of the name so far; above [`MAX_NAME`]: too long to match.
    len: usize,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            st: St::Path,
            name: [0; MAX_NAME],
            len: 0,
        }
    }
}

/// What a character is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Left alone.
    Keep,
    /// Part of a secret value: overwrite it.
    Secret,
    /// The `=` after a listed name: a secret value starts after it.
    Starts,
}

impl Query {
    /// Starts a new URL.
    pub(crate) fn reset(&mut self) {
        self.st = St::Path;
        self.len = 0;
    }

    fn new_name(&mut self) {
        self.st = St::Name;
        self.len = 0;
    }

    /// Whether the URL is still in its path (before `?` or `#`): only those two characters
    /// change anything here.
    pub(crate) fn in_path(&self) -> bool {
        self.st == St::Path
    }

    /// Looks at the next character.
    pub(crate) fn byte(&mut self, c: u8, p: &Policy) -> Seen {
        match self.st {
            St::Path => {
                if c == b'?' || c == b'#' {
                    self.new_name();
                }
                Seen::Keep
            }
            St::Name => {
                match c {
                    b'=' => {
                        let secret = self.len <= MAX_NAME && p.param_secret(&self.name[..self.len]);
                        self.st = St::Value(secret);
                        if secret {
                            return Seen::Starts;
                        }
                    }
                    b'&' | b'#' | b'?' => self.new_name(),
                    _ => {
                        if self.len < MAX_NAME {
                            self.name[self.len] = c.to_ascii_lowercase();
                        }
                        self.len = (self.len + 1).min(MAX_NAME + 1);
                    }
                }
                Seen::Keep
            }
            St::Value(secret) => match c {
                b'&' | b'#' => {
                    self.new_name();
                    Seen::Keep
                }
                _ if secret => Seen::Secret,
                _ => Seen::Keep,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(s: &str) -> String {
        let p = Policy::default();
        let mut q = Query::default();
        s.bytes()
            .map(|c| match q.byte(c, &p) {
                Seen::Secret => '*',
                _ => c as char,
            })
            .collect()
    }

    #[test]
    fn listed_parameters_only() {
        let cases = [
            ("/a?token=abc&page=2", "/a?token=***&page=2"),
            ("/a?TOKEN=abc", "/a?TOKEN=***"),
            ("/a?tokens=abc&key=k#x", "/a?tokens=abc&key=*#x"),
            (
                "/cb#access_token=xyz&state=1",
                "/cb#access_token=***&state=1",
            ),
            ("/p/token=abc", "/p/token=abc"),
            ("/a?password=", "/a?password="),
            ("https://h/x?x=1&sig=aa%2Fbb", "https://h/x?x=1&sig=*******"),
        ];
        for (i, o) in cases {
            assert_eq!(scan(i), o, "{i}");
        }
    }
}
