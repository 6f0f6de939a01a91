//! `juno-analyze report -o report.html`: one self-contained HTML file (inline CSS and SVG, no
//! scripts, no external assets) with the capture summary, the service graph, a RED table per
//! edge (rate, errors, duration), the busiest endpoints per protocol, the slowest and the
//! failing exchanges, a latency histogram per edge, the protocol mix and what was left
//! unmatched.
//!
//! It is fed by the same run as the terminal report, whose text it also carries (the
//! "Details" section), and by the dependency graph ([`crate::sink::graph`]). The drawing is
//! the graph's aggregate (the busiest nodes and edges, the rest grouped: a layout of thousands
//! of nodes would take minutes and show nothing); the edge table lists the [`TABLE_EDGES`]
//! busiest edges and the latency charts the [`CHART_EDGES`] busiest, each saying how many more
//! there are (every edge is in `juno-analyze graph --format json` and the export).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;

use anyhow::Result;

use crate::conn::views::LinkedConn;
use crate::input::Iface;
use crate::model::{ConnSummary, Exchange, Peer};
use crate::pipeline::{RunSummary, Sink};
use crate::proto;
use crate::sink::graph::{EdgeStats, GraphBuilder, GraphOptions};
use crate::sink::jsonl::rfc3339;
use crate::sink::report::{Report, bytes, dur};

/// Exchanges listed in the "slowest" and "failing" tables.
const LISTED: usize = 20;
/// Edges listed in the edge table.
pub const TABLE_EDGES: usize = 1000;
/// Edges given a latency chart.
pub const CHART_EDGES: usize = 50;

/// An exchange as the tables list it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    latency: u64,
    ts: u64,
    protocol: &'static str,
    endpoint: String,
    status: String,
    client: String,
    server: String,
}

fn end_label(peer: Option<&Peer>, ep: &crate::model::Endpoint) -> String {
    let addr = format!("{}:{}", ep.ip(), ep.port);
    match peer {
        Some(p) => match (&p.namespace, p.pod.as_ref().or(p.service.as_ref())) {
            (Some(ns), Some(n)) => format!("{ns}/{n} ({addr})"),
            _ => addr,
        },
        None => addr,
    }
}

/// The HTML report, as a [`Sink`].
#[derive(Debug)]
pub struct HtmlReport {
    text: Report,
    graph: GraphBuilder,
    slowest: BinaryHeap<Reverse<Row>>,
    failing: Vec<Row>,
    failing_total: u64,
    top: usize,
    html: String,
}

impl HtmlReport {
    /// A report listing `top` endpoints per protocol, keeping its aggregates within `memory`
    /// bytes (half for the text report's keys, half for the graph).
    pub fn with_memory(top: usize, memory: usize) -> Self {
        let mut r = Self::new(top);
        r.text = Report::new(top).with_memory(memory / 2);
        r.graph = GraphBuilder::new(GraphOptions::default()).with_memory(memory / 2);
        r
    }

    /// A report listing `top` endpoints per protocol.
    pub fn new(top: usize) -> Self {
        HtmlReport {
            text: Report::new(top),
            graph: GraphBuilder::new(GraphOptions::default()),
            slowest: BinaryHeap::new(),
            failing: Vec::new(),
            failing_total: 0,
            top,
            html: String::new(),
        }
    }

    /// The rendered page (after [`Sink::finish`]).
    pub fn html(&self) -> &str {
        &self.html
    }

    fn add(&mut self, ex: &Exchange) {
        let Some(p) = proto::by_name(ex.protocol) else {
            return;
        };
        if ex.conn.duplicate {
            // Listed from the vantage point that saw the connection first.
            return;
        }
        let s = (p.summarize)(ex);
        let row = || Row {
            latency: ex.latency_ns().unwrap_or(0),
            ts: ex.ts(),
            protocol: ex.protocol,
            endpoint: s.endpoint.clone(),
            status: s
                .status
                .clone()
                .unwrap_or_else(|| ex.outcome.as_str().into()),
            client: end_label(ex.peers.client.as_deref(), &ex.conn.orig),
            server: end_label(ex.peers.server.as_deref(), &ex.conn.resp),
        };
        if s.failed {
            self.failing_total += 1;
            if self.failing.len() < LISTED {
                self.failing.push(row());
            }
        }
        if let Some(l) = ex.latency_ns() {
            let worst_kept = self.slowest.peek().map(|Reverse(r)| r.latency);
            if self.slowest.len() < LISTED || worst_kept.is_some_and(|w| l > w) {
                self.slowest.push(Reverse(row()));
                if self.slowest.len() > LISTED {
                    self.slowest.pop();
                }
            }
        }
    }

    fn render(&mut self, s: &RunSummary) -> Result<()> {
        let mut o = String::with_capacity(64 << 10);
        o.push_str(HEAD);
        // Capture summary.
        let _ = writeln!(
            o,
            "<section id=\"capture\"><h2>Capture</h2><table class=\"kv\">"
        );
        let files: Vec<String> = s
            .files
            .iter()
            .map(|f| f.path.display().to_string())
            .collect();
        kv(&mut o, "Files", &files.join(", "));
        let nodes: Vec<String> = node_names(s);
        if !nodes.is_empty() {
            kv(&mut o, "Nodes", &nodes.join(", "));
        }
        if let (Some(a), Some(b)) = (s.first_ts, s.last_ts) {
            kv(
                &mut o,
                "Time range",
                &format!("{} .. {} ({})", rfc3339(a), rfc3339(b), dur(b - a)),
            );
        }
        kv(
            &mut o,
            "Packets",
            &format!("{} ({})", s.packets, bytes(s.bytes)),
        );
        if s.socket_events > 0 {
            kv(&mut o, "Socket events", &s.socket_events.to_string());
        }
        let mut drops = 0u64;
        for (i, c) in s.ifaces.iter().enumerate() {
            let name = c
                .iface
                .as_ref()
                .and_then(|x| x.name.clone())
                .unwrap_or_else(|| format!("#{i}"));
            let d = c.drops.dropped.unwrap_or(0);
            drops += d;
            kv(
                &mut o,
                &format!("Interface {name}"),
                &format!(
                    "{} packets, {} dropped{}",
                    c.packets,
                    d,
                    c.iface
                        .as_ref()
                        .and_then(|x| x.description.as_ref())
                        .map(|d| format!(" — {d}"))
                        .unwrap_or_default()
                ),
            );
        }
        kv(&mut o, "Dropped by the capture", &drops.to_string());
        kv(
            &mut o,
            "Truncation (reassembly gaps)",
            &format!("{} gaps, {}", s.reasm.gaps, bytes(s.reasm.gap_bytes)),
        );
        o.push_str("</table></section>\n");

        // Service graph.
        o.push_str("<section id=\"graph\"><h2>Service graph</h2>\n");
        if self.graph.graph().edge_count() == 0 {
            o.push_str("<p>No edges.</p>");
        } else {
            let agg = self.graph.aggregate(
                crate::sink::graph::DRAWN_NODES,
                crate::sink::graph::DRAWN_EDGES,
            );
            if agg.nodes_grouped > 0 || agg.hidden_edges > 0 {
                let _ = writeln!(
                    o,
                    "<p>{} nodes and {} edges in all: the busiest are drawn, {} nodes grouped into “others” nodes{}. Every edge is in the table below (the busiest {TABLE_EDGES}), in <code>juno-analyze graph --format json</code> and in the export.</p>",
                    self.graph.graph().node_count(),
                    self.graph.graph().edge_count(),
                    agg.nodes_grouped,
                    if agg.hidden_edges > 0 {
                        format!(", {} of the edges between them not drawn", agg.hidden_edges)
                    } else {
                        String::new()
                    }
                );
            }
            let svg = self.graph.to_svg()?;
            // Inline: drop the XML prolog, keep the <svg> element.
            let start = svg.find("<svg").unwrap_or(0);
            o.push_str("<div class=\"graph\">");
            o.push_str(&svg[start..]);
            o.push_str("</div>");
        }
        o.push_str("</section>\n");

        // RED per edge, and a latency histogram per edge.
        o.push_str("<section id=\"edges\"><h2>Edges: rate, errors, duration</h2>\n<table><tr><th>client</th><th>server</th><th>protocol</th><th>requests</th><th>req/s</th><th>errors</th><th>error rate</th><th>p50</th><th>p90</th><th>p99</th><th>bytes →</th><th>bytes ←</th></tr>\n");
        let span_s = match (s.first_ts, s.last_ts) {
            (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
            _ => 0.0,
        };
        let g = self.graph.graph();
        let mut edges: Vec<_> = g.edge_indices().collect();
        edges.sort_by_key(|e| (Reverse(g[*e].requests), Reverse(g[*e].connections)));
        let mut charts = String::new();
        let mut charted = 0usize;
        let listed = edges.len().min(TABLE_EDGES);
        for e in &edges[..listed] {
            let Some((a, b)) = g.edge_endpoints(*e) else {
                continue;
            };
            let st = &g[*e];
            let q = |x| st.latency_q(x).map(dur).unwrap_or_else(|| "-".into());
            let rate = if span_s > 0.0 {
                format!("{:.1}", st.requests as f64 / span_s)
            } else {
                "-".into()
            };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{rate}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}%</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&g[a].label()),
                esc(&g[b].label()),
                st.protocol,
                st.requests,
                st.errors,
                100.0 * st.error_rate(),
                q(0.5),
                q(0.9),
                q(0.99),
                bytes(st.bytes_to_server),
                bytes(st.bytes_to_client),
            );
            if st.latency_q(0.5).is_some() && charted < CHART_EDGES {
                charted += 1;
                let _ = writeln!(
                    charts,
                    "<figure><figcaption>{} → {} ({})</figcaption>{}</figure>",
                    esc(&g[a].label()),
                    esc(&g[b].label()),
                    st.protocol,
                    histogram_svg(st)
                );
            }
        }
        o.push_str("</table>");
        if edges.len() > listed {
            let _ = writeln!(
                o,
                "<p>{} more edges, less busy, not listed (in <code>juno-analyze graph --format json</code> and the export).</p>",
                edges.len() - listed
            );
        }
        o.push_str("</section>\n");
        o.push_str("<section id=\"latency\"><h2>Latency per edge</h2>\n");
        if charts.is_empty() {
            o.push_str("<p>No latencies measured.</p>");
        } else if charted == CHART_EDGES {
            let _ = writeln!(o, "<p>The {CHART_EDGES} busiest edges with latencies.</p>");
        }
        o.push_str(&charts);
        o.push_str("</section>\n");

        // Endpoints.
        o.push_str("<section id=\"endpoints\"><h2>Top endpoints</h2>\n<table><tr><th>protocol</th><th>endpoint</th><th>exchanges</th><th>failed</th><th>p50</th><th>p99</th></tr>\n");
        for r in self.text.top_endpoints(self.top) {
            let (p50, p99) = r
                .p50_p99
                .map(|(a, b)| (dur(a), dur(b)))
                .unwrap_or(("-".into(), "-".into()));
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{p50}</td><td class=\"n\">{p99}</td></tr>",
                r.protocol,
                esc(&r.endpoint),
                r.count,
                r.failed
            );
        }
        o.push_str("</table></section>\n");

        // Slowest and failing exchanges.
        let mut slow: Vec<Row> = self.slowest.iter().map(|Reverse(r)| r.clone()).collect();
        slow.sort_by(|a, b| b.latency.cmp(&a.latency).then(a.ts.cmp(&b.ts)));
        rows_table(&mut o, "slowest", "Slowest exchanges", &slow, None);
        rows_table(
            &mut o,
            "failing",
            "Failing exchanges",
            &self.failing,
            Some(self.failing_total),
        );

        // Protocol mix and what stayed unmatched.
        o.push_str("<section id=\"protocols\"><h2>Protocol mix</h2>\n<table><tr><th>protocol</th><th>connections</th></tr>\n");
        let mut mix: Vec<(&&str, &u64)> = s.l7.protocols.iter().collect();
        mix.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (k, v) in mix {
            let name: &str = if **k == *"-" { "unidentified" } else { k };
            let _ = writeln!(o, "<tr><td>{name}</td><td class=\"n\">{v}</td></tr>");
        }
        o.push_str("</table>\n");
        let m = &s.l7.matching;
        let _ = writeln!(
            o,
            "<h3 id=\"unmatched\">Matching</h3><table class=\"kv\"><tr><th>complete</th><td>{}</td></tr><tr><th>truncated</th><td>{}</td></tr><tr><th>requests without response</th><td>{}</td></tr><tr><th>responses without request (orphans)</th><td>{}</td></tr></table></section>",
            m.complete, m.truncated, m.no_response, m.no_request
        );

        // The terminal report, for everything else.
        o.push_str("<section id=\"details\"><h2>Details</h2><pre>");
        o.push_str(&esc(self.text.text()));
        o.push_str("</pre></section>\n</body></html>\n");
        self.html = o;
        Ok(())
    }
}

fn node_names(s: &RunSummary) -> Vec<String> {
    s.nodes.iter().cloned().collect()
}

fn kv(o: &mut String, k: &str, v: &str) {
    let _ = writeln!(o, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
}

fn rows_table(o: &mut String, id: &str, title: &str, rows: &[Row], total: Option<u64>) {
    let _ = writeln!(o, "<section id=\"{id}\"><h2>{title}</h2>");
    if let Some(t) = total {
        let _ = writeln!(o, "<p>{t} in all; the first {} listed.</p>", rows.len());
    }
    if rows.is_empty() {
        o.push_str("<p>None.</p></section>\n");
        return;
    }
    o.push_str("<table><tr><th>time</th><th>protocol</th><th>endpoint</th><th>status</th><th>client</th><th>server</th><th>latency</th></tr>\n");
    for r in rows {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            rfc3339(r.ts),
            r.protocol,
            esc(&r.endpoint),
            esc(&r.status),
            esc(&r.client),
            esc(&r.server),
            if r.latency > 0 {
                dur(r.latency)
            } else {
                "-".into()
            }
        );
    }
    o.push_str("</table></section>\n");
}

/// A bar chart of an edge's latencies: counts in log-spaced buckets (×2 each), as inline SVG.
fn histogram_svg(st: &EdgeStats) -> String {
    let h = &st.latency;
    let lo = h.min().max(1);
    let hi = h.max().max(lo);
    let mut bounds = vec![lo];
    while *bounds.last().unwrap_or(&hi) < hi && bounds.len() < 40 {
        let next = bounds.last().copied().unwrap_or(lo).saturating_mul(2);
        bounds.push(next);
    }
    let mut counts = vec![0u64; bounds.len()];
    for v in h.iter_recorded() {
        let x = v.value;
        let i = bounds
            .iter()
            .position(|b| x <= *b)
            .unwrap_or(bounds.len() - 1);
        counts[i] += v.count;
    }
    let max = counts.iter().copied().max().unwrap_or(1).max(1);
    let (w, hgt, bar) = (24 * counts.len() + 60, 140, 20);
    let mut s = format!(
        "<svg class=\"hist\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" role=\"img\">",
        hgt + 40
    );
    for (i, (c, b)) in counts.iter().zip(&bounds).enumerate() {
        let x = 40 + i * 24;
        let bh = (*c as f64 / max as f64 * hgt as f64).round() as usize;
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{bh}\"><title>≤ {}: {c}</title></rect>",
            10 + hgt - bh,
            dur(*b)
        );
        if i % 3 == 0 {
            let _ = write!(
                s,
                "<text x=\"{x}\" y=\"{}\" font-size=\"9\">{}</text>",
                hgt + 24,
                esc(&dur(*b))
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"0\" y=\"18\" font-size=\"9\">{max}</text><text x=\"0\" y=\"{}\" font-size=\"9\">0</text></svg>",
        hgt + 10
    );
    s
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Juno report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { width: 16em; }
.graph svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figure { display: inline-block; margin: .5em 1em .5em 0; } figcaption { font-size: .85em; }
svg.hist rect { fill: #4a7bd0; } pre { background: #f8f8f8; padding: 1em; overflow-x: auto; font-size: .8em; }
</style></head><body>
<h1>Juno report</h1>
"#;

impl Sink for HtmlReport {
    fn exchanges(&mut self, ex: &[&Exchange], ifaces: &[Iface]) -> Result<()> {
        self.text.exchanges(ex, ifaces)?;
        self.graph.exchanges(ex, ifaces)?;
        for e in ex {
            self.add(e);
        }
        Ok(())
    }

    fn connections(&mut self, c: &[ConnSummary]) -> Result<()> {
        self.text.connections(c)?;
        self.graph.connections(c)
    }

    fn linked(&mut self, l: &[LinkedConn], ifaces: &[Iface]) -> Result<()> {
        self.text.linked(l, ifaces)
    }

    fn finish(&mut self, s: &RunSummary) -> Result<()> {
        self.text.finish(s)?;
        self.render(s)
    }

    fn cuts(&self) -> Vec<(&'static str, u64)> {
        let mut c = self.text.cuts();
        c.extend(self.graph.cuts());
        c
    }
}
