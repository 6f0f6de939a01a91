//! `juno-analyze report`: a terminal summary of a capture — what was read, connections,
//! protocols, exchanges by outcome and status, latency percentiles, top servers and
//! endpoints, drops and anomalies, and what the memory budget cut.
//!
//! Memory is bounded ([`Report::with_memory`]): servers and endpoints (each with a latency
//! histogram, see [`crate::sink::hist`]) count against it; once it is spent, new keys are
//! counted under `(other)` and latencies that would need a new histogram bin go into the
//! nearest one, both counted and printed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;
use rustc_hash::FxHashMap;

use crate::conn::views::LinkedConn;
use crate::input::Iface;
use crate::model::{ConnState, ConnSummary, Exchange, Outcome, Vantage};
use crate::pipeline::{RunSummary, Sink};
use crate::proto;
use crate::sink::fidelity::Fidelity;
use crate::sink::hist::Latency;
use crate::sink::jsonl::rfc3339;

/// Distinct vantage points counted per protocol; more are counted under `(other)`.
const MAX_KEYS: usize = 10_000;
/// What the memory budget counts per server or endpoint (besides its name and histogram).
const KEY_BYTES: usize = 160;
/// Memory the report may use unless told otherwise.
pub const DEFAULT_MEMORY: usize = 64 << 20;

#[derive(Debug, Default)]
struct Lat(Latency);

impl Lat {
    fn add(&mut self, ns: u64) {
        self.0.record(ns.max(1));
    }
    fn q(&self, q: f64) -> u64 {
        self.0.value_at_quantile(q)
    }
}

#[derive(Debug, Default)]
struct KeyAgg {
    count: u64,
    failed: u64,
    lat: Lat,
}

/// What the memory bound cost the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportStats {
    /// Exchanges counted under `(other)` because the report's memory was spent.
    pub folded: u64,
    /// Latencies recorded into a neighbouring histogram bin for the same reason.
    pub coarsened: u64,
}

#[derive(Debug, Default)]
struct ProtoAgg {
    exchanges: u64,
    outcomes: BTreeMap<&'static str, u64>,
    statuses: BTreeMap<String, u64>,
    failed: u64,
    lat: Lat,
    endpoints: FxHashMap<String, KeyAgg>,
    servers: FxHashMap<String, KeyAgg>,
    /// Exchanges per vantage point (`packets`, `socket:<comm>`): an exchange recorded both
    /// on a veth and in the sockets of its two processes is counted once per vantage.
    vantages: BTreeMap<String, u64>,
}

/// Aggregates exchanges and connections for the terminal report.
#[derive(Debug)]
pub struct Report {
    protos: BTreeMap<&'static str, ProtoAgg>,
    conns: u64,
    /// Views of connections counted from another vantage point (`ConnInfo::duplicate`).
    duplicate_views: u64,
    /// Exchanges of such views.
    duplicate_exchanges: u64,
    /// Protocols of the connections counted (`-`: none recognized).
    conn_protocols: BTreeMap<&'static str, u64>,
    fidelity: Fidelity,
    conn_states: BTreeMap<&'static str, u64>,
    conn_bytes: [u64; 2],
    top: usize,
    text: String,
    memory: usize,
    used: usize,
    /// What the memory bound cost.
    pub stats: ReportStats,
}

fn status_class(s: &str) -> String {
    match s.as_bytes().first() {
        Some(c @ b'1'..=b'5') if s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}xx", *c as char)
        }
        _ => s.to_string(),
    }
}

/// Human-friendly duration.
pub fn dur(ns: u64) -> String {
    match ns {
        n if n < 1_000 => format!("{n} ns"),
        n if n < 1_000_000 => format!("{:.1} µs", n as f64 / 1e3),
        n if n < 1_000_000_000 => format!("{:.1} ms", n as f64 / 1e6),
        n => format!("{:.2} s", n as f64 / 1e9),
    }
}

/// Human-friendly byte count.
pub fn bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// One row of a "top endpoints" table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointRow {
    /// Protocol.
    pub protocol: &'static str,
    /// Endpoint (templated: `GET /users/{id}`, `query SELECT`, ...).
    pub endpoint: String,
    /// Exchanges.
    pub count: u64,
    /// Failed exchanges.
    pub failed: u64,
    /// Latency p50 and p99, ns, when measured.
    pub p50_p99: Option<(u64, u64)>,
}

impl Report {
    /// The `n` busiest endpoints of each protocol, busiest first.
    pub fn top_endpoints(&self, n: usize) -> Vec<EndpointRow> {
        let mut out = Vec::new();
        for (name, a) in &self.protos {
            let mut rows: Vec<(&String, &KeyAgg)> = a.endpoints.iter().collect();
            rows.sort_by(|x, y| y.1.count.cmp(&x.1.count).then(x.0.cmp(y.0)));
            out.extend(rows.into_iter().take(n).map(|(k, v)| EndpointRow {
                protocol: name,
                endpoint: k.clone(),
                count: v.count,
                failed: v.failed,
                p50_p99: (!v.lat.0.is_empty()).then(|| (v.lat.q(0.5), v.lat.q(0.99))),
            }));
        }
        out
    }

    /// A report listing `top` entries per table.
    pub fn new(top: usize) -> Self {
        Report {
            protos: BTreeMap::new(),
            conns: 0,
            duplicate_views: 0,
            duplicate_exchanges: 0,
            conn_protocols: BTreeMap::new(),
            fidelity: Fidelity::default(),
            conn_states: BTreeMap::new(),
            conn_bytes: [0; 2],
            top,
            text: String::new(),
            memory: DEFAULT_MEMORY,
            used: 0,
            stats: ReportStats::default(),
        }
    }

    /// Bounds the memory the report's servers and endpoints take.
    pub fn with_memory(mut self, bytes: usize) -> Self {
        self.memory = bytes;
        self
    }

    /// The rendered text (after [`Sink::finish`]).
    pub fn text(&self) -> &str {
        &self.text
    }

    fn add(&mut self, ex: &Exchange) {
        if ex.outcome == Outcome::LateRequestEnd {
            return;
        }
        let Some(p) = proto::by_name(ex.protocol) else {
            return;
        };
        let a = self.protos.entry(ex.protocol).or_default();
        let vantage = match &ex.conn.vantage {
            Vantage::Packets { .. } => "packets".to_string(),
            Vantage::Socket { comm, .. } => format!("{}:{comm}", ex.conn.vantage.kind()),
        };
        if a.vantages.len() < MAX_KEYS || a.vantages.contains_key(&vantage) {
            *a.vantages.entry(vantage).or_default() += 1;
        }
        if ex.conn.duplicate {
            // Counted from the vantage point that saw the connection first (conn::views).
            self.duplicate_exchanges += 1;
            return;
        }
        let s = (p.summarize)(ex);
        a.exchanges += 1;
        *a.outcomes.entry(ex.outcome.as_str()).or_default() += 1;
        *a.statuses
            .entry(
                s.status
                    .as_deref()
                    .map(status_class)
                    .unwrap_or_else(|| "none".into()),
            )
            .or_default() += 1;
        if s.failed {
            a.failed += 1;
        }
        let lat = ex.latency_ns();
        if let Some(l) = lat {
            a.lat.add(l);
        }
        let server = ex.conn.resp.to_string();
        for (map, key) in [(&mut a.endpoints, s.endpoint), (&mut a.servers, server)] {
            let full = self.used >= self.memory;
            let key = if full && !map.contains_key(&key) {
                self.stats.folded += 1;
                "(other)".to_string()
            } else {
                key
            };
            if !map.contains_key(&key) {
                self.used += KEY_BYTES + key.len();
            }
            let k = map.entry(key).or_default();
            k.count += 1;
            if s.failed {
                k.failed += 1;
            }
            if let Some(l) = lat {
                let before = k.lat.0.heap_bytes();
                if full {
                    if !k.lat.0.record_existing(l.max(1)) {
                        self.stats.coarsened += 1;
                    }
                } else {
                    k.lat.add(l);
                }
                self.used += k.lat.0.heap_bytes().saturating_sub(before);
            }
        }
    }

    fn render(&mut self, s: &RunSummary) {
        let mut o = String::new();
        let _ = writeln!(o, "Capture");
        let mut formats: BTreeMap<String, u64> = BTreeMap::new();
        for f in &s.files {
            *formats.entry(f.format.to_string()).or_default() += 1;
        }
        let fl: Vec<String> = formats.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let _ = writeln!(o, "  files        {} ({})", s.files.len(), fl.join(", "));
        if let (Some(a), Some(b)) = (s.first_ts, s.last_ts) {
            let _ = writeln!(
                o,
                "  time range   {} .. {} ({})",
                rfc3339(a),
                rfc3339(b),
                dur(b - a)
            );
        }
        let _ = writeln!(o, "  packets      {} ({})", s.packets, bytes(s.bytes));
        let mut blocks = juno_archive::ReadStats::default();
        for f in &s.files {
            blocks.add(&f.stats.blocks);
        }
        let b = &blocks;
        let r = &b.records;
        if b.unknown_blocks
            + b.foreign_custom_blocks
            + b.bad_blocks
            + b.bad_records
            + r.other_major
            + r.unknown_type
            > 0
        {
            let _ = writeln!(
                o,
                "  skipped blocks unknown type {}, foreign custom {}, undecodable {}; Juno records undecodable {}, other major version {}, unknown type {}",
                b.unknown_blocks,
                b.foreign_custom_blocks,
                b.bad_blocks,
                b.bad_records,
                r.other_major,
                r.unknown_type
            );
        }
        if r.newer_minor + r.unknown_tags > 0 {
            let _ = writeln!(
                o,
                "  newer records read in part: {} (unknown fields {})",
                r.newer_minor, r.unknown_tags
            );
        }
        if s.socket_events > 0 || s.metadata_records > 0 {
            let _ = writeln!(
                o,
                "  socket events {}, metadata records {}",
                s.socket_events, s.metadata_records
            );
        }
        let so = &s.sockets;
        if so.data_events > 0 || so.streams > 0 {
            let _ = writeln!(
                o,
                "  sockets      {} streams, {} data events; lost between events {}, not captured {}; open at the recorder's start {}",
                so.streams,
                so.data_events,
                bytes(so.lost_bytes),
                bytes(so.cut_bytes),
                so.existing
            );
        }
        let me = &s.meta;
        if me.pods + me.services + me.containers > 0 {
            let _ = writeln!(
                o,
                "  metadata     {} pod, {} service, {} container records{}",
                me.pods,
                me.services,
                me.containers,
                if me.addrs_dropped + me.claims_dropped + me.pods_dropped > 0 {
                    format!(
                        "; not remembered: {} addresses, {} claims, {} pods or cgroups",
                        me.addrs_dropped, me.claims_dropped, me.pods_dropped
                    )
                } else {
                    String::new()
                }
            );
        }
        for (i, c) in s.ifaces.iter().enumerate() {
            let name = c
                .iface
                .as_ref()
                .and_then(|x| x.name.clone())
                .unwrap_or_else(|| format!("#{i}"));
            let desc = c
                .iface
                .as_ref()
                .and_then(|x| x.description.clone())
                .map(|d| format!(" [{d}]"))
                .unwrap_or_default();
            let drops = match (c.drops.dropped, c.drops.received) {
                (Some(d), Some(r)) if r > 0 => {
                    format!("{d} dropped of {r} ({:.2}%)", 100.0 * d as f64 / r as f64)
                }
                (Some(d), _) => format!("{d} dropped"),
                _ => "drops not reported by the capture".into(),
            };
            let _ = writeln!(
                o,
                "  interface    {name}{desc}: {} packets, {drops}",
                c.packets
            );
        }
        if !s.skipped_packets.is_empty() {
            let mut v: Vec<_> = s.skipped_packets.iter().collect();
            v.sort();
            let l: Vec<String> = v.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(o, "  not analyzed {}", l.join(", "));
        }
        for (lt, n) in &s.unknown_linktypes {
            let name = crate::decode::linktype_name(*lt).unwrap_or_else(|| "unassigned".into());
            let _ = writeln!(o, "  link type    {lt} ({name}): {n} packets, not read");
        }
        let d = &s.defrag;
        if d.fragments > 0 {
            let _ = writeln!(
                o,
                "  ip fragments {} in {} datagrams reassembled; not reassembled {} ({} fragments: timed out {}, evicted {}, too big {}, inconsistent {}, incomplete at end {}); overlapping {} ({} differing), cut by the capture {}",
                d.fragments,
                d.reassembled,
                d.dropped(),
                d.dropped_fragments,
                d.timed_out,
                d.evicted,
                d.too_big,
                d.inconsistent,
                d.incomplete_at_end,
                d.overlaps,
                d.overlap_conflicts,
                d.truncated
            );
        }
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Connections    {} (tcp {}, udp {} packets); began before capture {}; expired idle {}",
            self.conns, s.flows.tcp_packets, s.flows.udp_packets, s.flows.partial, s.flows.expired
        );
        let st: Vec<String> = self
            .conn_states
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(o, "  states       {}", st.join(", "));
        if self.duplicate_views > 0 {
            let _ = writeln!(
                o,
                "  views        {} more of the same connections from other vantage points (counted once, from the first)",
                self.duplicate_views
            );
        }
        let _ = writeln!(
            o,
            "  payload      to servers {}, to clients {}",
            bytes(self.conn_bytes[0]),
            bytes(self.conn_bytes[1])
        );
        let mut protos: Vec<_> = if self.duplicate_views > 0 {
            self.conn_protocols.iter().collect()
        } else {
            s.l7.protocols.iter().collect()
        };
        protos.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let pl: Vec<String> = protos
            .iter()
            .map(|(k, v)| format!("{} {v}", if **k == "-" { "unidentified" } else { k }))
            .collect();
        let _ = writeln!(o, "  protocols    {}", pl.join(", "));
        let r = &s.reasm;
        let _ = writeln!(
            o,
            "  reassembly   gaps {} ({}), retransmitted {}, out-of-order segments {}, buffer overflows {}",
            r.gaps,
            bytes(r.gap_bytes),
            bytes(r.retrans_bytes),
            r.ooo_segments,
            r.ooo_overflows
        );
        if r.ack_held + r.ack_forced > 0 {
            let _ = writeln!(
                o,
                "  reordered    segments held for the other direction's bytes they acknowledge {} (let go early {})",
                r.ack_held, r.ack_forced
            );
        }
        let mut cuts: Vec<(&str, u64)> = s.cuts();
        cuts.push(("report_keys_folded", self.stats.folded));
        cuts.push(("report_latencies_coarsened", self.stats.coarsened));
        cuts.retain(|(_, v)| *v > 0);
        if !cuts.is_empty() {
            let l: Vec<String> = cuts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(o, "  memory budget {}: {}", bytes(s.memory), l.join(", "));
        }
        let _ = writeln!(o);
        let m = &s.l7.matching;
        let (complete, truncated, no_response, no_request) = if self.duplicate_exchanges > 0 {
            // The exchanges counted (one view per connection), from the protocols' tallies.
            let n =
                |k: &str| -> u64 { self.protos.values().filter_map(|a| a.outcomes.get(k)).sum() };
            (
                n("complete"),
                n("truncated"),
                n("no_response"),
                n("no_request"),
            )
        } else {
            (m.complete, m.truncated, m.no_response, m.no_request)
        };
        let _ = writeln!(
            o,
            "Exchanges      {complete} complete, {truncated} truncated, {no_response} without response, {no_request} without request"
        );
        if self.duplicate_exchanges > 0 {
            let _ = writeln!(
                o,
                "  views        {} more of the same exchanges from other vantage points (counted once, from the first)",
                self.duplicate_exchanges
            );
        }
        if m.overflow + m.overflow_answers > 0 {
            let _ = writeln!(
                o,
                "  overflow     {} written early (more open than the matcher holds), {} responses to them dropped",
                m.overflow, m.overflow_answers
            );
        }
        for (name, a) in &self.protos {
            let ol: Vec<String> = a.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(
                o,
                "  {name:<12} {} exchanges: {}",
                a.exchanges,
                ol.join(", ")
            );
            if a.vantages.len() > 1 || a.vantages.keys().any(|k| k != "packets") {
                let vl: Vec<String> = a.vantages.iter().map(|(k, v)| format!("{k} {v}")).collect();
                let _ = writeln!(o, "    seen as    {}", vl.join(", "));
            }
            let sl: Vec<String> = a.statuses.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(o, "    status     {}; failed {}", sl.join(", "), a.failed);
            if !a.lat.0.is_empty() {
                let _ = writeln!(
                    o,
                    "    latency    p50 {}  p90 {}  p99 {}  max {}  (n={})",
                    dur(a.lat.q(0.5)),
                    dur(a.lat.q(0.9)),
                    dur(a.lat.q(0.99)),
                    dur(a.lat.0.max()),
                    a.lat.0.len()
                );
            }
        }
        for (title, pick) in [("Top servers", 0usize), ("Top endpoints", 1)] {
            let mut rows: Vec<(&str, &String, &KeyAgg)> = Vec::new();
            for (name, a) in &self.protos {
                let map = if pick == 0 { &a.servers } else { &a.endpoints };
                rows.extend(map.iter().map(|(k, v)| (*name, k, v)));
            }
            if rows.is_empty() {
                continue;
            }
            rows.sort_by(|a, b| b.2.count.cmp(&a.2.count).then(a.1.cmp(b.1)));
            let _ = writeln!(o, "\n{title} (by exchanges)");
            for (p, k, v) in rows.iter().take(self.top) {
                let lat = if !v.lat.0.is_empty() {
                    format!("p50 {}  p99 {}", dur(v.lat.q(0.5)), dur(v.lat.q(0.99)))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    o,
                    "  {p:<6} {k:<48} {:>8}  failed {:<6} {lat}",
                    v.count, v.failed
                );
            }
        }
        if !s.l7.weirds.is_empty() {
            let mut w: Vec<_> = s.l7.weirds.iter().collect();
            w.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let _ = writeln!(o, "\nParser anomalies");
            for (k, v) in w.iter().take(self.top) {
                let _ = writeln!(o, "  {k:<40} {v}");
            }
            if s.l7.gave_up > 0 {
                let _ = writeln!(
                    o,
                    "  connections given up by their parser: {}",
                    s.l7.gave_up
                );
            }
        }
        if !s.recorded_redaction.is_empty() || s.redaction.is_some() {
            let _ = writeln!(o, "\nRedaction");
            for p in &s.recorded_redaction {
                let _ = writeln!(o, "  recorded with: {p}");
            }
            if let Some(c) = &s.redaction {
                let per_rule: Vec<String> = juno_redact::Rule::ALL
                    .iter()
                    .map(|r| format!("{r} {}", c.of(*r)))
                    .collect();
                let _ = writeln!(
                    o,
                    "  --redact: {} values overwritten ({}), {} bytes; {} directions lost sync, {} dropped at the bound",
                    c.total(),
                    per_rule.join(", "),
                    c.bytes,
                    c.desync,
                    c.streams_evicted
                );
            }
        }
        if self.fidelity.worth_showing() {
            self.fidelity.render(&mut o);
        }
        if !s.recorder_counters.is_empty() {
            let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
            for ((name, _), v) in &s.recorder_counters {
                *totals.entry(name).or_default() += v;
            }
            let _ = writeln!(o, "\nRecorder counters");
            for (k, v) in totals {
                let _ = writeln!(o, "  {k:<40} {v}");
            }
        }
        let warnings: Vec<String> = s
            .files
            .iter()
            .flat_map(|f| {
                f.warnings
                    .iter()
                    .map(move |w| format!("{}: {w}", f.path.display()))
            })
            .chain(
                s.skipped
                    .iter()
                    .map(|(p, why)| format!("{}: skipped: {why}", p.display())),
            )
            .chain((s.files_waited > 0).then(|| {
                format!(
                    "{} files overlapped in time with more files than could be open at once ({}): their packets were merged after later packets of others",
                    s.files_waited, s.max_open_files
                )
            }))
            .collect();
        if !warnings.is_empty() {
            let _ = writeln!(o, "\nWarnings");
            for w in warnings {
                let _ = writeln!(o, "  {w}");
            }
        }
        self.text = o;
    }
}

impl Sink for Report {
    fn exchanges(&mut self, ex: &[&Exchange], _ifaces: &[Iface]) -> Result<()> {
        for e in ex {
            self.add(e);
        }
        Ok(())
    }

    fn connections(&mut self, c: &[ConnSummary]) -> Result<()> {
        for s in c {
            if s.info.duplicate {
                self.duplicate_views += 1;
                continue;
            }
            self.conns += 1;
            *self
                .conn_protocols
                .entry(s.protocol.unwrap_or("-"))
                .or_default() += 1;
            let st = match s.state {
                ConnState::Open => "open at end",
                ConnState::Closed => "closed",
                ConnState::Reset => "reset",
            };
            *self.conn_states.entry(st).or_default() += 1;
            self.conn_bytes[0] += s.bytes[0];
            self.conn_bytes[1] += s.bytes[1];
        }
        Ok(())
    }

    fn linked(&mut self, l: &[LinkedConn], ifaces: &[Iface]) -> Result<()> {
        self.fidelity.add(l, ifaces);
        Ok(())
    }

    fn finish(&mut self, s: &RunSummary) -> Result<()> {
        self.render(s);
        Ok(())
    }

    fn cuts(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("report_keys_folded", self.stats.folded),
            ("report_latencies_coarsened", self.stats.coarsened),
        ]
    }
}
