//! Secrets never reach the archive: every payload byte — socket events' and kept packet
//! payload alike — goes through a [`juno_redact::Redactor`] on the encoder thread, before it
//! is encoded and compressed (the hook is in `output.rs`, `Encoder::add`). Secret values are
//! overwritten in place with `*`, lengths kept (docs/redaction.md).
//!
//! What the archive says about it: the file-info record of every file carries the policy
//! (`REDACTION`: `off`, or the rules and lists), every statistics record the counts per rule
//! (`redacted:<rule>`, `redacted_bytes`, ...), and what the redactor cost
//! (`redaction_ns`, with `redaction_input_bytes`: its CPU time per MB).
//!
//! Encryption at rest is set here too ([`RedactArgs::recipients`]); the writer thread
//! encrypts each whole file as one age stream (`output.rs`, `writer_loop`).

use std::time::Duration;

use anyhow::{Result, bail};
use juno_archive::{Counter, DataDirection, SocketEvent, SocketEventKind};
use juno_redact::{Policy, Redactor, Rule, linktype};

/// The recorder's redaction options (flattened into the record command line).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RedactArgs {
    /// Turn a redaction rule off (repeatable): http-auth, http-cookie, http-headers,
    /// url-query, postgresql, mysql, redis; `all` records every payload byte as it was sent
    /// (then the archive holds passwords, tokens and cookies).
    #[arg(long = "no-redact", value_name = "RULE")]
    pub no_redact: Vec<String>,
    /// Also redact the value of this HTTP header (repeatable; case-insensitive; added to
    /// X-Api-Key, Api-Key, X-Auth-Token, X-Access-Token, X-Amz-Security-Token, X-Vault-Token).
    #[arg(long = "redact-header", value_name = "NAME")]
    pub headers: Vec<String>,
    /// Also redact the value of this URL query parameter (repeatable; added to token, key,
    /// password, access_token, api_key, secret, signature, ...).
    #[arg(long = "redact-param", value_name = "NAME")]
    pub params: Vec<String>,
    /// Connection directions whose redaction state is kept at most (per vantage: sockets,
    /// packets); the oldest idle ones are dropped beyond it and counted.
    #[arg(long, default_value_t = 65_536)]
    pub redact_streams: usize,
    /// Encrypt every archive to this age X25519 recipient (`age1...`; repeatable: any of
    /// their identities can read it). Files are then named `...pcapng.zst.age`.
    #[arg(long = "encrypt-to", value_name = "RECIPIENT")]
    pub encrypt_to: Vec<String>,
    /// Encrypt to every recipient listed in this file (one `age1...` per line, `#` comments).
    #[arg(long = "encrypt-to-file", value_name = "PATH")]
    pub encrypt_to_file: Option<std::path::PathBuf>,
}

impl RedactArgs {
    /// The policy these options describe.
    pub fn policy(&self) -> Result<Policy> {
        if self.redact_streams == 0 {
            bail!("--redact-streams must be at least 1");
        }
        Policy::from_options(&self.no_redact, &self.headers, &self.params)
            .map_err(|e| anyhow::anyhow!("redaction options: {e}"))
    }
}

impl RedactArgs {
    /// The age recipients archives are encrypted to (none: not encrypted).
    pub fn recipients(&self) -> Result<Vec<age::x25519::Recipient>> {
        let mut all: Vec<String> = self.encrypt_to.clone();
        if let Some(p) = &self.encrypt_to_file {
            let text = std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("--encrypt-to-file {}: {e}", p.display()))?;
            all.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from),
            );
            if all.is_empty() {
                bail!("--encrypt-to-file {}: no recipient in it", p.display());
            }
        }
        all.iter()
            .map(|r| {
                r.parse::<age::x25519::Recipient>()
                    .map_err(|e| anyhow::anyhow!("not an age X25519 recipient: {r:?} ({e})"))
            })
            .collect()
    }
}

/// The encoder's redactor and what it cost.
#[derive(Debug)]
pub struct Redaction {
    r: Redactor,
    ns: u64,
}

/// TCP_CLOSE in the kernel's numbering: the socket is gone.
const TCP_CLOSE: u8 = 7;

impl Redaction {
    /// A redactor for `policy`, or `None` when every rule is off.
    pub fn new(policy: &Policy, max_streams: usize) -> Option<Self> {
        (!policy.is_off()).then(|| Redaction {
            r: Redactor::new(policy.clone(), max_streams),
            ns: 0,
        })
    }

    /// Redacts a captured packet (Ethernet, from the interface `ifindex`).
    pub fn packet(&mut self, ifindex: u32, data: &mut [u8]) {
        self.r.packet(linktype::ETHERNET, ifindex, data);
    }

    /// Adds the time spent redacting, measured by the caller around a run of
    /// [`Redaction::packet`] and [`Redaction::socket`] calls (two clock reads per event cost
    /// about a quarter of what redacting a small event does; per batch, nothing).
    pub fn spent(&mut self, t: Duration) {
        self.ns += t.as_nanos() as u64;
    }

    /// Redacts a socket event's payload; a socket's last state change drops its state.
    pub fn socket(&mut self, ev: &SocketEvent<'_>, payload: &mut [u8]) {
        match ev.kind {
            SocketEventKind::Data | SocketEventKind::TlsData => {
                let dir = match ev.direction {
                    DataDirection::Send => juno_redact::DIR_SEND,
                    DataDirection::Recv => juno_redact::DIR_RECV,
                    _ => return,
                };
                let stream = if ev.kind == SocketEventKind::TlsData {
                    juno_redact::tls_stream(ev.cookie)
                } else {
                    ev.cookie
                };
                self.r
                    .socket_data(stream, dir, ev.stream_offset, ev.orig_len, payload);
            }
            SocketEventKind::Close => self.closed(ev.cookie),
            SocketEventKind::StateChange if ev.new_state == TCP_CLOSE => self.closed(ev.cookie),
            _ => {}
        }
    }

    fn closed(&mut self, cookie: u64) {
        self.r.socket_closed(cookie);
        self.r.socket_closed(juno_redact::tls_stream(cookie));
    }

    /// The counts and the cost, as statistics counters (totals since the start).
    pub fn counters(&self) -> Vec<Counter> {
        let mut v: Vec<Counter> = self
            .r
            .counts()
            .counters()
            .into_iter()
            .map(|(name, value)| Counter {
                name,
                cpu: None,
                value,
            })
            .collect();
        v.push(Counter {
            name: "redaction_ns".into(),
            cpu: None,
            value: self.ns,
        });
        v
    }

    /// Values redacted so far, per rule.
    pub fn summary(&self) -> String {
        let c = self.r.counts();
        Rule::ALL
            .iter()
            .map(|r| format!("{} {}", r.name(), c.of(*r)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_the_policy() {
        let a = RedactArgs {
            no_redact: vec!["mysql,redis".into()],
            headers: vec!["X-Internal-Secret".into()],
            params: vec!["session".into()],
            redact_streams: 10,
            ..Default::default()
        };
        let p = a.policy().unwrap();
        assert!(!p.is_on(Rule::Mysql) && !p.is_on(Rule::Redis) && p.is_on(Rule::HttpAuth));
        assert!(p.describe().contains("x-internal-secret"));
        assert!(p.describe().contains("session"));
        let off = RedactArgs {
            no_redact: vec!["all".into()],
            redact_streams: 10,
            ..Default::default()
        };
        assert!(off.policy().unwrap().is_off());
        assert!(Redaction::new(&off.policy().unwrap(), 10).is_none());
        let bad = RedactArgs {
            no_redact: vec!["cookies".into()],
            redact_streams: 10,
            ..Default::default()
        };
        assert!(format!("{:#}", bad.policy().unwrap_err()).contains("unknown redaction rule"));
    }
}

#[cfg(test)]
mod recipient_tests {
    use super::*;

    #[test]
    fn recipients_from_flags_and_file() {
        let id = age::x25519::Identity::generate();
        let pk = id.to_public().to_string();
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("recipients.txt");
        std::fs::write(&f, format!("# team key\n{pk}\n\n")).unwrap();
        let a = RedactArgs {
            encrypt_to: vec![pk.clone()],
            encrypt_to_file: Some(f),
            redact_streams: 1,
            ..Default::default()
        };
        assert_eq!(a.recipients().unwrap().len(), 2);
        let bad = RedactArgs {
            encrypt_to: vec!["age1notakey".into()],
            redact_streams: 1,
            ..Default::default()
        };
        assert!(bad.recipients().is_err());
        assert!(RedactArgs::default().recipients().unwrap().is_empty());
    }
}
