//! The dependency graph: who talks to whom, per protocol, with request rates, errors,
//! latency and bytes — built with petgraph from the exchanges and connections of a run.
//!
//! Nodes are what the archive's metadata names (a workload, else a pod, else a service),
//! grouped as asked ([`GroupBy`]); an address nothing names is a node of its own. Edges go
//! client → server, one per protocol. A connection recorded from several vantage points (a
//! veth's packets and the sockets of both processes) is counted once: from the first vantage
//! point that saw it (`conn::views` links the views and marks the others duplicates).
//!
//! Outputs: JSON, Graphviz DOT, Mermaid, and SVG — drawn by Graphviz's `dot` when it is
//! installed, otherwise laid out in-process by the layout-rs crate, so SVG never needs a tool
//! the user may lack. JSON, DOT and Mermaid carry every edge; SVG (and the HTML report's
//! drawing) draws an aggregate ([`GraphBuilder::aggregate`]): the busiest nodes, the rest
//! grouped by namespace or into one "others" node, the busiest edges between them — a layout's
//! cost grows much faster than linearly with the graph, and a drawing of thousands of nodes is
//! unreadable anyway.
//!
//! Memory is bounded by [`GraphBuilder::with_memory`]: edges (each with its latency histogram,
//! which costs memory per distinct latency bin, see [`crate::sink::hist`]) are counted against
//! it; once it is spent, a new edge is folded into an edge to or from an "others" node, and a
//! latency that would need a new histogram bin is recorded into its nearest bin. Both are
//! counted ([`GraphStats`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use anyhow::{Context, Result, anyhow};
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use rustc_hash::FxHashMap;

use crate::input::Iface;
use crate::model::{ConnSummary, Endpoint, Exchange, Outcome, Peer, Ts};
use crate::pipeline::Sink;
use crate::proto;
use crate::sink::hist::Latency;
use crate::sink::json::Json;
use crate::sink::report::dur;

/// How endpoints are grouped into nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GroupBy {
    /// Workloads (Deployment, StatefulSet, ...), else pods, else services, else addresses.
    #[default]
    Workload,
    /// Pods, else services, else addresses.
    Pod,
    /// Namespaces, else addresses.
    Namespace,
    /// Addresses only.
    Ip,
}

/// What goes into the graph.
#[derive(Clone, Debug, Default)]
pub struct GraphOptions {
    /// Grouping of endpoints into nodes.
    pub group_by: GroupBy,
    /// Only edges with an end in this namespace.
    pub namespace: Option<String>,
    /// Only this protocol.
    pub protocol: Option<String>,
}

/// A node: what kind of thing it is and its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// `workload`, `pod`, `service`, `namespace`, `name` (a server nothing in the metadata
    /// names, named by the client's TLS SNI) or `ip`.
    pub kind: &'static str,
    /// Namespace, when known.
    pub namespace: Option<String>,
    /// Name: `Deployment/cart`, a pod or service name, a namespace, an address.
    pub name: String,
}

impl NodeId {
    /// A human label: `namespace/name`, or the name alone.
    pub fn label(&self) -> String {
        match (&self.namespace, self.kind) {
            (Some(ns), k) if k != "namespace" => format!("{ns}/{}", self.name),
            _ => self.name.clone(),
        }
    }
}

/// Statistics of one edge.
#[derive(Clone, Debug)]
pub struct EdgeStats {
    /// Protocol.
    pub protocol: &'static str,
    /// Exchanges.
    pub requests: u64,
    /// Exchanges that failed (the protocol's notion: 5xx, ERR, error reply, rcode, ...).
    pub errors: u64,
    /// Exchanges without a response (or a response without request).
    pub unanswered: u64,
    /// Latencies (request start → response end), ns.
    pub latency: Latency,
    /// Connections.
    pub connections: u64,
    /// Payload bytes client → server, over the edge's connections.
    pub bytes_to_server: u64,
    /// Payload bytes server → client.
    pub bytes_to_client: u64,
    /// First exchange or connection seen.
    pub first_seen: Ts,
    /// Last.
    pub last_seen: Ts,
    /// Community IDs of the edge's connections (the first [`MAX_EDGE_IDS`] distinct), to join
    /// an edge with other tools' flow records.
    pub community_ids: Vec<String>,
    /// Connections whose Community ID was not kept (beyond [`MAX_EDGE_IDS`], or once the
    /// graph's memory was spent).
    pub community_ids_omitted: u64,
}

impl EdgeStats {
    fn new(protocol: &'static str) -> Self {
        EdgeStats {
            protocol,
            requests: 0,
            errors: 0,
            unanswered: 0,
            latency: Latency::new(),
            connections: 0,
            bytes_to_server: 0,
            bytes_to_client: 0,
            first_seen: Ts::MAX,
            last_seen: 0,
            community_ids: Vec::new(),
            community_ids_omitted: 0,
        }
    }

    fn seen(&mut self, ts: Ts) {
        self.first_seen = self.first_seen.min(ts);
        self.last_seen = self.last_seen.max(ts);
    }

    /// Share of requests that failed.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }

    /// Latency quantile, ns (`None` without measured latencies).
    pub fn latency_q(&self, q: f64) -> Option<u64> {
        (!self.latency.is_empty()).then(|| self.latency.value_at_quantile(q))
    }

    /// Adds another edge's statistics (aggregation).
    fn absorb(&mut self, o: &EdgeStats) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.unanswered += o.unanswered;
        self.latency.merge(&o.latency);
        self.connections += o.connections;
        self.bytes_to_server = self.bytes_to_server.saturating_add(o.bytes_to_server);
        self.bytes_to_client = self.bytes_to_client.saturating_add(o.bytes_to_client);
        self.first_seen = self.first_seen.min(o.first_seen);
        self.last_seen = self.last_seen.max(o.last_seen);
        self.community_ids_omitted += o.community_ids_omitted;
        for id in &o.community_ids {
            if self.community_ids.contains(id) {
                continue;
            }
            if self.community_ids.len() < MAX_EDGE_IDS {
                self.community_ids.push(id.clone());
            } else {
                self.community_ids_omitted += 1;
            }
        }
    }

    /// Requests, else connections: how busy the edge is.
    fn weight(&self) -> u64 {
        self.requests.max(self.connections)
    }
}

/// Community IDs kept per edge, at most (the rest are counted).
pub const MAX_EDGE_IDS: usize = 64;
/// What the memory budget counts per node, per edge (besides its histogram's heap), and per
/// connection whose server an exchange named.
const NODE_BYTES: usize = 256;
const EDGE_BYTES: usize = 320;
const VIEW_BYTES: usize = 96;
/// What the memory budget counts per kept Community ID, besides its bytes.
const ID_BYTES: usize = 24;
/// Memory the graph may use unless told otherwise.
pub const DEFAULT_MEMORY: usize = 64 << 20;

/// What the memory bound cost the graph.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GraphStats {
    /// Exchanges and connections counted on an edge to or from an "others" node because the
    /// graph's memory was spent.
    pub folded: u64,
    /// Latencies recorded into a neighbouring histogram bin for the same reason.
    pub coarsened: u64,
}

/// Builds the graph as a [`Sink`] of a run.
#[derive(Debug)]
pub struct GraphBuilder {
    opts: GraphOptions,
    graph: DiGraph<NodeId, EdgeStats>,
    nodes: FxHashMap<NodeId, NodeIndex>,
    edges: FxHashMap<(NodeIndex, NodeIndex, &'static str), EdgeIndex>,
    /// Per connection (uid hash): the server's node named by an exchange's `server_name` (TLS
    /// SNI), for the connection's own counts when it ends.
    named_server: FxHashMap<u64, NodeId>,
    /// Bytes the graph may hold, and holds (nodes, edges, histogram bins).
    memory: usize,
    used: usize,
    /// Views remembered at most.
    max_views: usize,
    /// Namespaces the run's ends were seen in (for `--namespace` that matches none).
    namespaces_seen: std::collections::BTreeSet<String>,
    /// What the memory bound cost.
    pub stats: GraphStats,
}

impl Default for GraphBuilder {
    fn default() -> Self {
        GraphBuilder::new(GraphOptions::default())
    }
}

fn hash_of<T: std::hash::Hash + ?Sized>(v: &T) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(v)
}

/// The node unnamed ends are folded into once the graph's memory is spent.
fn others() -> NodeId {
    NodeId {
        kind: "others",
        namespace: None,
        name: "(others)".into(),
    }
}

fn ip_of(e: &Endpoint) -> IpAddr {
    e.ip()
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new(opts: GraphOptions) -> Self {
        GraphBuilder {
            opts,
            graph: DiGraph::default(),
            nodes: FxHashMap::default(),
            edges: FxHashMap::default(),
            named_server: FxHashMap::default(),
            memory: DEFAULT_MEMORY,
            used: 0,
            max_views: DEFAULT_MEMORY / 4 / VIEW_BYTES,
            namespaces_seen: Default::default(),
            stats: GraphStats::default(),
        }
    }

    /// Bounds the graph's memory: `bytes` for nodes, edges and their histograms, and a
    /// quarter more for remembering which vantage point counted each connection.
    pub fn with_memory(mut self, bytes: usize) -> Self {
        self.memory = bytes;
        self.max_views = (bytes / 4 / VIEW_BYTES).max(1024);
        self
    }

    /// Namespaces seen at the ends of the run's exchanges and connections.
    pub fn namespaces_seen(&self) -> &std::collections::BTreeSet<String> {
        &self.namespaces_seen
    }

    fn full(&self) -> bool {
        self.used >= self.memory
    }

    /// The graph.
    pub fn graph(&self) -> &DiGraph<NodeId, EdgeStats> {
        &self.graph
    }

    fn node_id(&self, peer: Option<&Peer>, ip: IpAddr) -> NodeId {
        let by_ip = || NodeId {
            kind: "ip",
            namespace: None,
            name: ip.to_string(),
        };
        let Some(p) = peer else { return by_ip() };
        let ns = p.namespace.clone();
        let workload = || match (&p.workload_kind, &p.workload) {
            (Some(k), Some(w)) => Some(NodeId {
                kind: "workload",
                namespace: ns.clone(),
                name: format!("{k}/{w}"),
            }),
            _ => None,
        };
        let pod = || {
            p.pod.as_ref().map(|n| NodeId {
                kind: "pod",
                namespace: ns.clone(),
                name: n.clone(),
            })
        };
        let service = || {
            p.service.as_ref().map(|n| NodeId {
                kind: "service",
                namespace: ns.clone(),
                name: n.clone(),
            })
        };
        let namespace = || {
            p.namespace.as_ref().map(|n| NodeId {
                kind: "namespace",
                namespace: None,
                name: n.clone(),
            })
        };
        match self.opts.group_by {
            GroupBy::Workload => workload().or_else(pod).or_else(service),
            GroupBy::Pod => pod().or_else(service),
            GroupBy::Namespace => namespace(),
            GroupBy::Ip => None,
        }
        .unwrap_or_else(by_ip)
    }

    fn node(&mut self, id: NodeId) -> NodeIndex {
        if let Some(i) = self.nodes.get(&id) {
            return *i;
        }
        self.used += NODE_BYTES + id.name.len();
        let i = self.graph.add_node(id.clone());
        self.nodes.insert(id, i);
        i
    }

    fn wanted(&self, a: &NodeId, b: &NodeId, protocol: &str) -> bool {
        if self.opts.protocol.as_deref().is_some_and(|p| p != protocol) {
            return false;
        }
        match &self.opts.namespace {
            None => true,
            Some(ns) => [a, b].iter().any(|n| {
                n.namespace.as_deref() == Some(ns) || (n.kind == "namespace" && n.name == *ns)
            }),
        }
    }

    fn note_namespaces(&mut self, a: &NodeId, b: &NodeId) {
        for n in [a, b] {
            let ns = if n.kind == "namespace" {
                Some(&n.name)
            } else {
                n.namespace.as_ref()
            };
            if let Some(ns) = ns
                && self.namespaces_seen.len() < 4096
                && !self.namespaces_seen.contains(ns)
            {
                self.namespaces_seen.insert(ns.clone());
            }
        }
    }

    /// The edge a → b for `protocol`; once the memory is spent, an edge not known yet is
    /// folded: a client end not in the graph becomes "others", and so does the server end.
    fn edge(&mut self, a: NodeId, b: NodeId, protocol: &'static str) -> EdgeIndex {
        let key = |g: &Self, a: &NodeId, b: &NodeId| {
            let (ia, ib) = (g.nodes.get(a)?, g.nodes.get(b)?);
            g.edges.get(&(*ia, *ib, protocol)).copied()
        };
        if let Some(e) = key(self, &a, &b) {
            return e;
        }
        let (a, b) = if self.full() {
            self.stats.folded += 1;
            let o = others();
            let b = if self.nodes.contains_key(&b) {
                b
            } else {
                o.clone()
            };
            if let Some(e) = key(self, &o, &b) {
                return e;
            }
            (o, b)
        } else {
            (a, b)
        };
        let (ia, ib) = (self.node(a), self.node(b));
        self.used += EDGE_BYTES;
        let e = self.graph.add_edge(ia, ib, EdgeStats::new(protocol));
        self.edges.insert((ia, ib, protocol), e);
        e
    }

    /// Records a latency on edge `e`, within the memory bound.
    fn record(&mut self, e: EdgeIndex, l: u64) {
        let full = self.full();
        let h = &mut self.graph[e].latency;
        let before = h.heap_bytes();
        if full {
            if !h.record_existing(l.max(1)) {
                self.stats.coarsened += 1;
            }
        } else {
            h.record(l.max(1));
        }
        self.used += h.heap_bytes().saturating_sub(before);
    }

    fn add_exchange(&mut self, ex: &Exchange) {
        if ex.outcome == Outcome::LateRequestEnd {
            return;
        }
        let c = &ex.conn;
        if c.duplicate {
            // Counted from the vantage point that saw the connection first (conn::views).
            return;
        }
        let a = self.node_id(ex.peers.client.as_deref(), ip_of(&c.orig));
        let mut b = self.node_id(ex.peers.server.as_deref(), ip_of(&c.resp));
        if b.kind == "ip"
            && self.opts.group_by != GroupBy::Ip
            && let Some(name) = ex.fields.text("server_name")
            && !name.is_empty()
        {
            // Nothing in the metadata names the server: the name the client asked for (TLS
            // SNI) does.
            b = NodeId {
                kind: "name",
                namespace: None,
                name: String::from_utf8_lossy(name).into_owned(),
            };
            if self.named_server.len() < self.max_views {
                self.named_server.insert(hash_of(&c.uid), b.clone());
            }
        }
        self.note_namespaces(&a, &b);
        if !self.wanted(&a, &b, ex.protocol) {
            return;
        }
        let failed = proto::by_name(ex.protocol).is_some_and(|p| (p.summarize)(ex).failed);
        let lat = ex.latency_ns();
        let ei = self.edge(a, b, ex.protocol);
        if let Some(l) = lat {
            self.record(ei, l);
        }
        let e = &mut self.graph[ei];
        e.requests += 1;
        if failed {
            e.errors += 1;
        }
        if matches!(ex.outcome, Outcome::NoResponse | Outcome::NoRequest) {
            e.unanswered += 1;
        }
        e.seen(ex.ts());
    }

    fn add_connection(&mut self, s: &ConnSummary) {
        let c = &s.info;
        // Connections no parser recognized are edges of their own ("tcp"/"udp").
        let protocol = s.protocol.unwrap_or(c.transport.as_str());
        if c.duplicate {
            // Counted from the vantage point that saw the connection first (conn::views).
            return;
        }
        let a = self.node_id(s.peers.client.as_deref(), ip_of(&c.orig));
        let b = match self.named_server.remove(&hash_of(&c.uid)) {
            Some(named) => named,
            None => self.node_id(s.peers.server.as_deref(), ip_of(&c.resp)),
        };
        self.note_namespaces(&a, &b);
        if !self.wanted(&a, &b, protocol) {
            return;
        }
        let ei = self.edge(a, b, protocol);
        let e = &mut self.graph[ei];
        e.connections += 1;
        e.bytes_to_server = e.bytes_to_server.saturating_add(s.bytes[0]);
        e.bytes_to_client = e.bytes_to_client.saturating_add(s.bytes[1]);
        e.seen(c.first_ts);
        e.seen(s.last_ts);
        let full = self.full();
        let e = &mut self.graph[ei];
        if !e.community_ids.contains(&c.community_id) {
            if e.community_ids.len() < MAX_EDGE_IDS && !full {
                e.community_ids.push(c.community_id.clone());
                self.used += ID_BYTES + c.community_id.len();
            } else {
                e.community_ids_omitted += 1;
            }
        }
    }

    /// Nodes sorted by label, and edges sorted by (from, to, protocol): a stable order for
    /// every output.
    fn ordered(&self) -> (Vec<NodeIndex>, Vec<EdgeIndex>) {
        let mut nodes: Vec<NodeIndex> = self.graph.node_indices().collect();
        nodes.sort_by_key(|n| (self.graph[*n].label(), self.graph[*n].kind));
        let rank: FxHashMap<NodeIndex, usize> =
            nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let mut edges: Vec<EdgeIndex> = self.graph.edge_indices().collect();
        edges.sort_by_key(|e| {
            let (a, b) = self
                .graph
                .edge_endpoints(*e)
                .unwrap_or((NodeIndex::end(), NodeIndex::end()));
            (
                rank.get(&a).copied(),
                rank.get(&b).copied(),
                self.graph[*e].protocol,
            )
        });
        (nodes, edges)
    }

    /// JSON: `{"group_by", "nodes": [...], "edges": [...]}` (schema in docs/graph.md).
    pub fn to_json(&self) -> String {
        let (nodes, edges) = self.ordered();
        let pos: FxHashMap<NodeIndex, usize> =
            nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let mut j = Json::default();
        j.open();
        j.key("group_by");
        j.str(match self.opts.group_by {
            GroupBy::Workload => "workload",
            GroupBy::Pod => "pod",
            GroupBy::Namespace => "namespace",
            GroupBy::Ip => "ip",
        });
        j.key("nodes");
        j.open_list();
        for (i, n) in nodes.iter().enumerate() {
            let id = &self.graph[*n];
            j.open();
            j.key("id");
            j.u64(i as u64);
            j.key("kind");
            j.str(id.kind);
            j.key("namespace");
            match &id.namespace {
                Some(ns) => j.str(ns),
                None => j.null(),
            }
            j.key("name");
            j.str(&id.name);
            j.key("label");
            j.str(&id.label());
            j.close();
        }
        j.close_list();
        j.key("edges");
        j.open_list();
        for e in edges {
            let Some((a, b)) = self.graph.edge_endpoints(e) else {
                continue;
            };
            let s = &self.graph[e];
            j.open();
            j.key("from");
            j.u64(pos[&a] as u64);
            j.key("to");
            j.u64(pos[&b] as u64);
            j.key("protocol");
            j.str(s.protocol);
            j.key("requests");
            j.u64(s.requests);
            j.key("errors");
            j.u64(s.errors);
            j.key("error_rate");
            j.f64(s.error_rate());
            j.key("unanswered");
            j.u64(s.unanswered);
            for (k, q) in [("p50_ns", 0.5), ("p90_ns", 0.9), ("p99_ns", 0.99)] {
                j.key(k);
                match s.latency_q(q) {
                    Some(v) => j.u64(v),
                    None => j.null(),
                }
            }
            j.key("connections");
            j.u64(s.connections);
            j.key("bytes_to_server");
            j.u64(s.bytes_to_server);
            j.key("bytes_to_client");
            j.u64(s.bytes_to_client);
            j.key("first_seen");
            j.time(s.first_seen);
            j.key("last_seen");
            j.time(s.last_seen);
            j.key("community_ids");
            j.open_list();
            for id in &s.community_ids {
                j.str(id);
            }
            j.close_list();
            j.key("community_ids_omitted");
            j.u64(s.community_ids_omitted);
            j.close();
        }
        j.close_list();
        j.close();
        let mut out = j.as_str().to_string();
        out.push('\n');
        out
    }

    fn edge_label(s: &EdgeStats) -> String {
        let mut l = format!("{} {} req", s.protocol, s.requests);
        if s.requests > 0 {
            let _ = write!(l, ", {:.1}% err", 100.0 * s.error_rate());
        }
        if let Some(p) = s.latency_q(0.5) {
            let _ = write!(l, ", p50 {}", dur(p));
        }
        if s.requests == 0 {
            let _ = write!(l, ", {} conn", s.connections);
        }
        l
    }

    /// Graphviz DOT.
    pub fn to_dot(&self) -> String {
        let (nodes, edges) = self.ordered();
        let pos: FxHashMap<NodeIndex, usize> =
            nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let mut o = String::from("digraph juno {\n  rankdir=LR;\n  node [shape=box];\n");
        for (i, n) in nodes.iter().enumerate() {
            let id = &self.graph[*n];
            let _ = writeln!(o, "  n{i} [label=\"{}\"];", dot_escape(&id.label()));
        }
        for e in edges {
            let Some((a, b)) = self.graph.edge_endpoints(e) else {
                continue;
            };
            let _ = writeln!(
                o,
                "  n{} -> n{} [label=\"{}\"];",
                pos[&a],
                pos[&b],
                dot_escape(&Self::edge_label(&self.graph[e]))
            );
        }
        o.push_str("}\n");
        o
    }

    /// Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        let (nodes, edges) = self.ordered();
        let pos: FxHashMap<NodeIndex, usize> =
            nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let mut o = String::from("flowchart LR\n");
        for (i, n) in nodes.iter().enumerate() {
            let _ = writeln!(o, "  n{i}[\"{}\"]", mermaid_escape(&self.graph[*n].label()));
        }
        for e in edges {
            let Some((a, b)) = self.graph.edge_endpoints(e) else {
                continue;
            };
            let _ = writeln!(
                o,
                "  n{} -->|\"{}\"| n{}",
                pos[&a],
                mermaid_escape(&Self::edge_label(&self.graph[e])),
                pos[&b]
            );
        }
        o
    }

    /// SVG of the aggregate ([`GraphBuilder::aggregate`] with [`DRAWN_NODES`] nodes and
    /// [`DRAWN_EDGES`] edges): through Graphviz's `dot` when it is installed, else laid out
    /// in-process.
    pub fn to_svg(&self) -> Result<String> {
        let dot = self.aggregate(DRAWN_NODES, DRAWN_EDGES).to_dot();
        match svg_with_graphviz(&dot) {
            Some(svg) => Ok(svg),
            None => svg_builtin(&dot),
        }
    }

    /// A graph of at most `max_nodes` nodes and `max_edges` edges that sums this one up: the
    /// busiest nodes (by the requests, else connections, of their edges) stay; the others are
    /// grouped — per namespace when they have one (`ns/(N others)`), else into one
    /// `(N others)` node — and their edges summed into the groups' edges; of the edges that
    /// result, the busiest `max_edges` are drawn ([`Aggregate::hidden_edges`] counts the
    /// rest). The full graph stays in JSON, DOT, Mermaid and the export.
    pub fn aggregate(&self, max_nodes: usize, max_edges: usize) -> Aggregate {
        let g = &self.graph;
        // How busy each node is.
        let mut busy: Vec<(u64, NodeIndex)> = g
            .node_indices()
            .map(|n| {
                let w: u64 = g
                    .edges_directed(n, petgraph::Direction::Outgoing)
                    .chain(g.edges_directed(n, petgraph::Direction::Incoming))
                    .map(|e| e.weight().weight())
                    .sum();
                (w, n)
            })
            .collect();
        busy.sort_by(|a, b| b.0.cmp(&a.0).then(g[a.1].label().cmp(&g[b.1].label())));
        let keep: rustc_hash::FxHashSet<NodeIndex> = busy
            .iter()
            .take(max_nodes.max(2) - 1)
            .map(|(_, n)| *n)
            .collect();
        let group = |n: NodeIndex| -> NodeId {
            if keep.contains(&n) {
                return g[n].clone();
            }
            let id = &g[n];
            let ns = if id.kind == "namespace" {
                None
            } else {
                id.namespace.clone()
            };
            NodeId {
                kind: "others",
                name: "(others)".into(),
                namespace: ns,
            }
        };
        let mut agg = GraphBuilder::new(self.opts.clone());
        agg.memory = usize::MAX;
        let mut grouped: rustc_hash::FxHashMap<NodeId, u64> = Default::default();
        for n in g.node_indices() {
            if !keep.contains(&n) {
                *grouped.entry(group(n)).or_default() += 1;
            }
        }
        for e in g.edge_indices() {
            let Some((a, b)) = g.edge_endpoints(e) else {
                continue;
            };
            let st = &g[e];
            let ei = agg.edge(group(a), group(b), st.protocol);
            agg.graph[ei].absorb(st);
        }
        // Name the groups with how many they hold.
        for n in agg.graph.node_indices() {
            if let Some(k) = grouped.get(&agg.graph[n]) {
                agg.graph[n].name = format!("({k} others)");
            }
        }
        // The busiest edges stay.
        let mut edges: Vec<(u64, EdgeIndex)> = agg
            .graph
            .edge_indices()
            .map(|e| (agg.graph[e].weight(), e))
            .collect();
        edges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let hidden: Vec<EdgeIndex> = edges.iter().skip(max_edges).map(|(_, e)| *e).collect();
        let hidden_edges = hidden.len() as u64;
        // Removing edges by descending index keeps the other indices valid.
        let mut hidden = hidden;
        hidden.sort_unstable_by(|a, b| b.cmp(a));
        for e in hidden {
            agg.graph.remove_edge(e);
        }
        agg.graph
            .retain_nodes(|g, n| g.neighbors_undirected(n).next().is_some());
        agg.nodes = agg
            .graph
            .node_indices()
            .map(|n| (agg.graph[n].clone(), n))
            .collect();
        agg.edges = agg
            .graph
            .edge_indices()
            .filter_map(|e| {
                let (a, b) = agg.graph.edge_endpoints(e)?;
                Some(((a, b, agg.graph[e].protocol), e))
            })
            .collect();
        Aggregate {
            graph: agg,
            nodes_grouped: grouped.values().sum(),
            hidden_edges,
        }
    }

    /// Edges out of each node, for callers that walk the graph (HTML report).
    pub fn edges_of(&self, n: NodeIndex) -> impl Iterator<Item = (NodeIndex, &EdgeStats)> {
        self.graph.edges(n).map(|e| (e.target(), e.weight()))
    }

    /// Totals per protocol over the graph's edges: (requests, errors).
    pub fn protocol_totals(&self) -> BTreeMap<&'static str, (u64, u64)> {
        let mut m: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
        for e in self.graph.edge_weights() {
            let t = m.entry(e.protocol).or_default();
            t.0 += e.requests;
            t.1 += e.errors;
        }
        m
    }
}

/// Nodes and edges an SVG drawing shows at most.
pub const DRAWN_NODES: usize = 40;
/// Edges an SVG drawing shows at most.
pub const DRAWN_EDGES: usize = 80;

/// A graph summed up for drawing ([`GraphBuilder::aggregate`]).
#[derive(Debug)]
pub struct Aggregate {
    /// The aggregate graph.
    pub graph: GraphBuilder,
    /// Nodes of the full graph that were grouped.
    pub nodes_grouped: u64,
    /// Edges of the aggregate not drawn (the least busy).
    pub hidden_edges: u64,
}

impl Aggregate {
    /// Graphviz DOT of the aggregate.
    pub fn to_dot(&self) -> String {
        self.graph.to_dot()
    }
}

impl Sink for GraphBuilder {
    fn exchanges(&mut self, ex: &[&Exchange], _ifaces: &[Iface]) -> Result<()> {
        for e in ex {
            self.add_exchange(e);
        }
        Ok(())
    }
    fn connections(&mut self, c: &[ConnSummary]) -> Result<()> {
        for s in c {
            self.add_connection(s);
        }
        Ok(())
    }
    fn cuts(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("graph_exchanges_folded", self.stats.folded),
            ("graph_latencies_coarsened", self.stats.coarsened),
        ]
    }
}

fn dot_escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            _ => vec![c],
        })
        .collect()
}

fn mermaid_escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '"' => '\'',
            '|' => '/',
            _ => c,
        })
        .collect()
}

/// SVG from Graphviz's `dot`, if it is installed and succeeds.
pub fn svg_with_graphviz(dot: &str) -> Option<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(dot.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()
}

/// SVG laid out in-process (layout-rs) from DOT this module wrote.
pub fn svg_builtin(dot: &str) -> Result<String> {
    use layout::backends::svg::SVGWriter;
    use layout::gv::{DotParser, GraphBuilder as LayoutBuilder};
    let mut parser = DotParser::new(dot);
    let ast = parser
        .process()
        .map_err(|e| anyhow!("graph layout: cannot parse the DOT it was given: {e}"))?;
    // layout-rs has no error path for layout itself; a panic there must not take the
    // analyzer down with it.
    std::panic::catch_unwind(|| {
        let mut gb = LayoutBuilder::new();
        gb.visit_graph(&ast);
        let mut vg = gb.get();
        let mut svg = SVGWriter::new();
        vg.do_it(false, false, false, &mut svg);
        svg.finalize()
    })
    .map_err(|_| anyhow!("graph layout failed"))
    .context("rendering SVG without Graphviz")
}
