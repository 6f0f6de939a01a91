//! Capture fidelity: what each vantage point saw of the connections it shares with others
//! (docs/fidelity.md). A connection recorded on a veth and in the sockets of its two processes
//! has three views ([`crate::conn::views`]); each view's stream — the payload it read plus
//! what it knows it missed — should be the same connection's bytes. Where they differ, one
//! view lost something the others saw: a ring buffer that overflowed, a payload or snap
//! length that cut, a recorder that started after the connection did, packets the capture
//! dropped. This aggregates, per kind of vantage point, the views, their payload, what they
//! missed and what they saw twice, the connections seen from one kind only, and the
//! connections whose views disagree, with a few named.
//!
//! Memory: counters, and at most [`EXAMPLES`] described connections.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::conn::views::{LinkedConn, ViewTotals};
use crate::input::Iface;
use crate::model::Vantage;
use crate::sink::report::bytes;

/// Connections whose views disagree that the report names.
pub const EXAMPLES: usize = 5;

/// One kind of vantage point's views.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindTotals {
    /// Views.
    pub views: u64,
    /// Payload bytes read.
    pub read: u64,
    /// Bytes known missing (gaps: lost packets or events, payload not captured).
    pub missing: u64,
    /// Of `missing`, bytes the capture cut on purpose (snap length, payload limit).
    pub cut: u64,
    /// Views with something missing.
    pub views_missing: u64,
    /// Bytes seen twice (retransmissions).
    pub retransmitted: u64,
}

/// What the views of linked connections saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fidelity {
    /// Connections seen from more than one vantage point.
    pub shared: u64,
    /// Connections seen from one vantage point only, by its kind (`packets`, `socket`).
    pub single: BTreeMap<&'static str, u64>,
    /// Connections seen from several vantage points whose views' streams are equally long.
    pub agree: u64,
    /// Connections seen from several vantage points whose views' streams differ.
    pub differ: u64,
    /// Per kind of vantage point, the views of connections seen from several.
    pub kinds: BTreeMap<&'static str, KindTotals>,
    /// Some of the connections that differ, described.
    pub examples: Vec<String>,
    /// Views given up unended (a bound).
    pub views_open: u64,
}

/// The view's stream: payload read plus what it knows it missed, both directions.
pub fn stream_len(v: &ViewTotals) -> u64 {
    v.reasm.delivered.saturating_add(v.reasm.gap_bytes)
}

fn label(v: &ViewTotals, ifaces: &[Iface]) -> String {
    match &v.vantage {
        Vantage::Packets { iface } => {
            match ifaces.get(*iface as usize).and_then(|i| i.name.as_deref()) {
                Some(name) => format!("packets ({name})"),
                None => format!("packets (interface {iface})"),
            }
        }
        Vantage::Socket { comm, pid, .. } => format!("{}:{comm} (pid {pid})", v.vantage.kind()),
    }
}

impl Fidelity {
    /// Whether anything was seen from more than one vantage point or from sockets: a plain
    /// packet capture has nothing to compare, and the report leaves the section out.
    pub fn worth_showing(&self) -> bool {
        self.shared > 0 || self.single.get("socket").is_some_and(|n| *n > 0)
    }

    /// Adds finished connections (`ifaces`: the run's interfaces, to name them).
    pub fn add(&mut self, linked: &[LinkedConn], ifaces: &[Iface]) {
        for l in linked {
            self.views_open += u64::from(l.views_open);
            let Some(first) = l.views.first() else {
                continue;
            };
            if l.views.len() == 1 {
                *self.single.entry(first.vantage.kind()).or_default() += 1;
                continue;
            }
            self.shared += 1;
            for v in &l.views {
                let k = self.kinds.entry(v.vantage.kind()).or_default();
                k.views += 1;
                k.read = k.read.saturating_add(v.reasm.delivered);
                k.missing = k.missing.saturating_add(v.reasm.gap_bytes);
                k.cut = k.cut.saturating_add(v.reasm.cut_bytes);
                k.views_missing += u64::from(v.reasm.gap_bytes > 0);
                k.retransmitted = k.retransmitted.saturating_add(v.reasm.retrans_bytes);
            }
            // Plaintext from a TLS library is compared with plaintext only: its length is not
            // the ciphertext's.
            let same = |tls: bool| {
                let mut lens = l
                    .views
                    .iter()
                    .filter(|v| (v.vantage.kind() == "tls") == tls)
                    .map(stream_len);
                let first = lens.next();
                lens.all(|n| Some(n) == first)
            };
            if same(false) && same(true) {
                self.agree += 1;
                continue;
            }
            self.differ += 1;
            if self.examples.len() < EXAMPLES {
                let views: Vec<String> = l
                    .views
                    .iter()
                    .map(|v| {
                        let mut s = format!("{} {}", label(v, ifaces), bytes(stream_len(v)));
                        if v.reasm.gap_bytes > 0 {
                            let _ = write!(
                                s,
                                " (missing {}, of which not captured {})",
                                bytes(v.reasm.gap_bytes),
                                bytes(v.reasm.cut_bytes)
                            );
                        }
                        s
                    })
                    .collect();
                self.examples.push(format!(
                    "{} {} → {}: {}",
                    l.info.uid,
                    l.info.orig,
                    l.info.resp,
                    views.join(", ")
                ));
            }
        }
    }

    /// The report's section.
    pub fn render(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "\nCapture fidelity (one connection, several vantage points)"
        );
        let single: Vec<String> = self
            .single
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            o,
            "  connections  {} seen from several vantage points; from one only: {}",
            self.shared,
            if single.is_empty() {
                "none".to_string()
            } else {
                single.join(", ")
            }
        );
        for (k, t) in &self.kinds {
            let _ = writeln!(
                o,
                "  {k:<12} {} views: payload read {}, missing {} in {} views (lost {}, not captured {}), retransmitted {}",
                t.views,
                bytes(t.read),
                bytes(t.missing),
                t.views_missing,
                bytes(t.missing.saturating_sub(t.cut)),
                bytes(t.cut),
                bytes(t.retransmitted)
            );
        }
        let _ = writeln!(
            o,
            "  agreement    {} connections whose views saw the same stream length, {} that differ",
            self.agree, self.differ
        );
        for e in &self.examples {
            let _ = writeln!(o, "    {e}");
        }
        if self.views_open > 0 {
            let _ = writeln!(
                o,
                "  cut short    {} views given up before they ended (memory bound)",
                self.views_open
            );
        }
    }
}
