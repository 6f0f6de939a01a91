//! What is redacted: rules that can be turned off, and the configurable lists of header and
//! URL parameter names. A policy describes itself in one line ([`Policy::describe`]), which the
//! recorder writes into every archive it redacts and the analyzer reads back
//! ([`Policy::parse`]).

use std::fmt;

/// A kind of secret. Each can be turned off on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// `Authorization` and `Proxy-Authorization` header values (HTTP/1, HTTP/2).
    HttpAuth,
    /// `Cookie` and `Set-Cookie` header values.
    HttpCookie,
    /// Values of the configurable header list ([`DEFAULT_HEADERS`] and additions).
    HttpHeaders,
    /// Values of the configurable URL parameter list ([`DEFAULT_PARAMS`] and additions) in
    /// request targets, `:path`, `Referer`, `Location`, `Content-Location`.
    UrlQuery,
    /// PostgreSQL PasswordMessage / SASL responses.
    Postgresql,
    /// MySQL authentication responses (handshake response, auth switch, change user).
    Mysql,
    /// Redis `AUTH`, `HELLO ... AUTH`, `MIGRATE ... AUTH/AUTH2`, `CONFIG SET requirepass`.
    Redis,
}

impl Rule {
    /// Every rule, in counter order.
    pub const ALL: [Rule; 7] = [
        Rule::HttpAuth,
        Rule::HttpCookie,
        Rule::HttpHeaders,
        Rule::UrlQuery,
        Rule::Postgresql,
        Rule::Mysql,
        Rule::Redis,
    ];

    /// The rule's name on command lines, in counters and in the archive.
    pub fn name(self) -> &'static str {
        match self {
            Rule::HttpAuth => "http-auth",
            Rule::HttpCookie => "http-cookie",
            Rule::HttpHeaders => "http-headers",
            Rule::UrlQuery => "url-query",
            Rule::Postgresql => "postgresql",
            Rule::Mysql => "mysql",
            Rule::Redis => "redis",
        }
    }

    /// The rule of a name.
    pub fn from_name(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == s)
    }

    /// Position in [`Rule::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Headers redacted by [`Rule::HttpHeaders`] unless the list is changed.
pub const DEFAULT_HEADERS: &[&str] = &[
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-access-token",
    "x-amz-security-token",
    "x-vault-token",
];

/// URL parameters redacted by [`Rule::UrlQuery`] unless the list is changed.
pub const DEFAULT_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth_token",
    "api_key",
    "apikey",
    "key",
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "signature",
    "sig",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
];

/// Names longer than this are never matched (and are refused in a policy).
pub(crate) const MAX_NAME: usize = 64;

/// A policy that cannot be built or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// A rule name that does not exist.
    UnknownRule(String),
    /// An empty name, a name longer than [`MAX_NAME`], or one with characters no header or
    /// parameter name has.
    BadName(String),
    /// A description that is not one [`Policy::describe`] writes.
    BadDescription(String),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::UnknownRule(r) => write!(
                f,
                "unknown redaction rule {r:?} (rules: {}, or all)",
                Rule::ALL.map(Rule::name).join(", ")
            ),
            PolicyError::BadName(n) => write!(
                f,
                "bad name {n:?}: 1 to {MAX_NAME} characters, no spaces, separators or controls"
            ),
            PolicyError::BadDescription(d) => write!(f, "not a redaction policy: {d:?}"),
        }
    }
}

impl std::error::Error for PolicyError {}

/// How a header field's value is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Left alone.
    Plain,
    /// Overwritten whole, counted under the rule.
    Secret(Rule),
    /// A URL: the values of listed parameters are overwritten.
    Url,
}

/// What to redact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    on: [bool; Rule::ALL.len()],
    headers: Vec<Vec<u8>>,
    params: Vec<Vec<u8>>,
    /// The header names [`Policy::header_class`] knows, by first byte and length.
    names: NameFilter,
}

/// Header names [`Policy::header_class`] does not treat as plain, by (lower-case) first byte
/// and length — what lets a reader leave most header lines without copying their names
/// (docs/benchmarks.md, the redactor's CPU). A hit still goes to `header_class`.
#[derive(Clone, PartialEq, Eq)]
struct NameFilter(Box<[u128; 256]>);

/// The names [`Policy::header_class`] knows whatever the lists say, and the rule of each: a
/// secret value ([`Rule::HttpAuth`], [`Rule::HttpCookie`]) or a URL ([`Rule::UrlQuery`]).
/// One table for both the classification and the [`NameFilter`] in front of it.
const BUILTIN_NAMES: [(&str, Rule); 8] = [
    ("authorization", Rule::HttpAuth),
    ("proxy-authorization", Rule::HttpAuth),
    ("cookie", Rule::HttpCookie),
    ("set-cookie", Rule::HttpCookie),
    (":path", Rule::UrlQuery),
    ("referer", Rule::UrlQuery),
    ("location", Rule::UrlQuery),
    ("content-location", Rule::UrlQuery),
];

impl NameFilter {
    fn new<'a>(names: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut f = NameFilter(Box::new([0; 256]));
        for n in BUILTIN_NAMES.iter().map(|(n, _)| n.as_bytes()).chain(names) {
            f.add(n);
        }
        f
    }

    fn add(&mut self, name: &[u8]) {
        if let Some(&b) = name.first()
            && name.len() < 128
        {
            self.0[usize::from(b.to_ascii_lowercase())] |= 1 << name.len();
        }
    }

    fn may_match(&self, first: u8, len: usize) -> bool {
        len < 128 && self.0[usize::from(first.to_ascii_lowercase())] & (1 << len) != 0
    }
}

impl fmt::Debug for NameFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NameFilter")
    }
}

impl Default for Policy {
    /// Every rule on, the default lists.
    fn default() -> Self {
        Policy {
            on: [true; Rule::ALL.len()],
            headers: DEFAULT_HEADERS
                .iter()
                .map(|h| h.as_bytes().to_vec())
                .collect(),
            params: DEFAULT_PARAMS
                .iter()
                .map(|h| h.as_bytes().to_vec())
                .collect(),
            names: NameFilter::new(DEFAULT_HEADERS.iter().map(|h| h.as_bytes())),
        }
    }
}

fn check_name(n: &str) -> Result<Vec<u8>, PolicyError> {
    let ok = !n.is_empty()
        && n.len() <= MAX_NAME
        && n.bytes().all(|b| {
            b.is_ascii_graphic() && !matches!(b, b':' | b'=' | b'&' | b',' | b';' | b'#' | b'?')
        });
    if ok {
        Ok(n.to_ascii_lowercase().into_bytes())
    } else {
        Err(PolicyError::BadName(n.to_string()))
    }
}

impl Policy {
    /// The default policy changed by command-line options: rules turned off (names, comma
    /// lists, or `all`), headers and URL parameters added.
    pub fn from_options<S: AsRef<str>>(
        off: &[S],
        headers: &[S],
        params: &[S],
    ) -> Result<Policy, PolicyError> {
        let mut p = Policy::default();
        for o in off {
            p.turn_off(o.as_ref().split(',').map(str::trim))?;
        }
        for h in headers {
            p.add_header(h.as_ref())?;
        }
        for q in params {
            p.add_param(q.as_ref())?;
        }
        Ok(p)
    }

    /// Nothing is redacted.
    pub fn off() -> Self {
        Policy {
            on: [false; Rule::ALL.len()],
            ..Policy::default()
        }
    }

    /// Whether every rule is off.
    pub fn is_off(&self) -> bool {
        self.on.iter().all(|o| !o)
    }

    /// Whether `r` is on.
    pub fn is_on(&self, r: Rule) -> bool {
        self.on[r.index()]
    }

    /// Turns `r` on or off.
    pub fn set(&mut self, r: Rule, on: bool) {
        self.on[r.index()] = on;
    }

    /// Turns off the rules named in `names` (`all` turns off everything).
    pub fn turn_off<'a>(
        &mut self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), PolicyError> {
        for n in names {
            if n == "all" {
                self.on = [false; Rule::ALL.len()];
            } else {
                let r = Rule::from_name(n).ok_or_else(|| PolicyError::UnknownRule(n.into()))?;
                self.set(r, false);
            }
        }
        Ok(())
    }

    /// Adds a header whose value [`Rule::HttpHeaders`] redacts (case-insensitive).
    pub fn add_header(&mut self, name: &str) -> Result<(), PolicyError> {
        let n = check_name(name)?;
        if !self.headers.contains(&n) {
            self.names.add(&n);
            self.headers.push(n);
        }
        Ok(())
    }

    /// Adds a URL parameter whose value [`Rule::UrlQuery`] redacts (case-insensitive).
    pub fn add_param(&mut self, name: &str) -> Result<(), PolicyError> {
        let n = check_name(name)?;
        if !self.params.contains(&n) {
            self.params.push(n);
        }
        Ok(())
    }

    /// The header list of [`Rule::HttpHeaders`] (lower case).
    pub fn headers(&self) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .map(|h| std::str::from_utf8(h).unwrap_or(""))
    }

    /// The parameter list of [`Rule::UrlQuery`] (lower case).
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.params
            .iter()
            .map(|h| std::str::from_utf8(h).unwrap_or(""))
    }

    /// One line that says what is redacted: `off`, or
    /// `rules=<rule>,...;headers=<name>,...;params=<name>,...;fill=*`.
    pub fn describe(&self) -> String {
        if self.is_off() {
            return "off".into();
        }
        let rules: Vec<&str> = Rule::ALL
            .iter()
            .filter(|r| self.is_on(**r))
            .map(|r| r.name())
            .collect();
        format!(
            "rules={};headers={};params={};fill={}",
            rules.join(","),
            self.headers().collect::<Vec<_>>().join(","),
            self.params().collect::<Vec<_>>().join(","),
            crate::FILL as char
        )
    }

    /// Reads what [`Policy::describe`] wrote.
    pub fn parse(desc: &str) -> Result<Policy, PolicyError> {
        if desc == "off" {
            return Ok(Policy::off());
        }
        let bad = || PolicyError::BadDescription(desc.to_string());
        let mut p = Policy::off();
        p.headers.clear();
        p.params.clear();
        p.names = NameFilter::new([]);
        let mut seen_rules = false;
        for part in desc.split(';') {
            let (k, v) = part.split_once('=').ok_or_else(bad)?;
            let items = v.split(',').filter(|s| !s.is_empty());
            match k {
                "rules" => {
                    seen_rules = true;
                    for r in items {
                        p.set(Rule::from_name(r).ok_or_else(bad)?, true);
                    }
                }
                "headers" => {
                    for h in items {
                        p.add_header(h).map_err(|_| bad())?;
                    }
                }
                "params" => {
                    for h in items {
                        p.add_param(h).map_err(|_| bad())?;
                    }
                }
                // Later versions may add keys: ignored.
                _ => {}
            }
        }
        if !seen_rules {
            return Err(bad());
        }
        Ok(p)
    }

    /// Whether a header name that starts with `first` (either case) and is `len` bytes long
    /// may be one [`Policy::header_class`] does not call plain (`false`: it surely is plain).
    pub(crate) fn may_name_header(&self, first: u8, len: usize) -> bool {
        self.names.may_match(first, len)
    }

    /// How a header whose lower-case name is `name` is treated.
    pub(crate) fn header_class(&self, name: &[u8]) -> Class {
        let secret = |r: Rule| {
            if self.is_on(r) {
                Class::Secret(r)
            } else {
                Class::Plain
            }
        };
        match BUILTIN_NAMES.iter().find(|(n, _)| n.as_bytes() == name) {
            Some((_, Rule::UrlQuery)) if self.is_on(Rule::UrlQuery) => Class::Url,
            Some((_, r)) if *r != Rule::UrlQuery => secret(*r),
            _ if self.is_on(Rule::HttpHeaders) && self.headers.iter().any(|h| h == name) => {
                Class::Secret(Rule::HttpHeaders)
            }
            _ => Class::Plain,
        }
    }

    /// Whether the value of the URL parameter `name` (lower case) is redacted.
    pub(crate) fn param_secret(&self, name: &[u8]) -> bool {
        self.is_on(Rule::UrlQuery) && self.params.iter().any(|p| p == name)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_filter_passes_every_name_header_class_knows() {
        let mut p = Policy::default();
        p.add_header("X-Custom-Secret").unwrap();
        let parsed = Policy::parse(&p.describe()).unwrap();
        let known = BUILTIN_NAMES
            .iter()
            .map(|(n, _)| n)
            .chain(DEFAULT_HEADERS)
            .chain(&["x-custom-secret"]);
        for pol in [&p, &parsed] {
            for n in known.clone() {
                assert_ne!(pol.header_class(n.as_bytes()), Class::Plain, "{n}");
                let upper = n.to_ascii_uppercase();
                assert!(pol.may_name_header(upper.as_bytes()[0], n.len()), "{n}");
            }
            // Common plain names are left without a look.
            for n in [
                "host",
                "user-agent",
                "server",
                "date",
                "content-type",
                "etag",
            ] {
                assert!(!pol.may_name_header(n.as_bytes()[0], n.len()), "{n}");
            }
        }
        // A name added after parsing is let through too.
        let mut q = parsed.clone();
        q.add_header("zz-token").unwrap();
        assert!(q.may_name_header(b'Z', 8));
        assert!(!parsed.may_name_header(b'z', 8));
    }

    #[test]
    fn describes_and_parses_back() {
        let mut p = Policy::default();
        p.add_header("X-Custom-Secret").unwrap();
        p.add_param("session").unwrap();
        p.turn_off(["mysql"]).unwrap();
        let d = p.describe();
        assert!(
            d.starts_with("rules=http-auth,http-cookie,http-headers,url-query,postgresql,redis;")
        );
        assert!(d.contains("x-custom-secret") && d.contains("session"));
        assert_eq!(Policy::parse(&d).unwrap(), p);
        assert_eq!(Policy::parse("off").unwrap(), Policy::off());
        assert_eq!(Policy::off().describe(), "off");
    }

    #[test]
    fn refuses_unknown_rules_and_bad_names() {
        let mut p = Policy::default();
        assert_eq!(
            p.turn_off(["cookies"]),
            Err(PolicyError::UnknownRule("cookies".into()))
        );
        assert!(p.add_header("x api").is_err());
        assert!(p.add_header("").is_err());
        assert!(p.add_param(&"a".repeat(65)).is_err());
        assert!(Policy::parse("rules=nope").is_err());
        assert!(Policy::parse("garbage").is_err());
        p.turn_off(["all"]).unwrap();
        assert!(p.is_off());
    }

    #[test]
    fn classes() {
        let mut p = Policy::default();
        assert_eq!(
            p.header_class(b"authorization"),
            Class::Secret(Rule::HttpAuth)
        );
        assert_eq!(
            p.header_class(b"set-cookie"),
            Class::Secret(Rule::HttpCookie)
        );
        assert_eq!(
            p.header_class(b"x-api-key"),
            Class::Secret(Rule::HttpHeaders)
        );
        assert_eq!(p.header_class(b":path"), Class::Url);
        assert_eq!(p.header_class(b"user-agent"), Class::Plain);
        p.turn_off(["http-cookie", "url-query"]).unwrap();
        assert_eq!(p.header_class(b"cookie"), Class::Plain);
        assert_eq!(p.header_class(b"referer"), Class::Plain);
        assert!(!p.param_secret(b"token"));
    }
}
