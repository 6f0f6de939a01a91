//! The run's summary as one JSON document (`summary.json` in an output directory, or
//! `juno-analyze report --format json`): what was read, what was damaged or skipped and where,
//! what every bound of the memory budget cut, the counters of every stage, and the exit
//! status the run ends with. Schema: docs/jsonl.md ("The run summary").

use std::collections::BTreeMap;

use crate::pipeline::RunSummary;
use crate::sink::json::Json;

/// The exit status of a run that finished: 0 when the input was read whole, 2 when some of it
/// was damaged, cut short or skipped (1 is for errors that stopped the run).
pub fn exit_status(s: &RunSummary) -> u8 {
    if s.input_damaged() { 2 } else { 0 }
}

fn counters(j: &mut Json, name: &str, kv: &[(&str, u64)]) {
    j.key(name);
    j.open();
    for (k, v) in kv {
        j.key(k);
        j.u64(*v);
    }
    j.close();
}

fn map<K: AsRef<str>>(j: &mut Json, name: &str, m: impl Iterator<Item = (K, u64)>) {
    let sorted: BTreeMap<String, u64> = m.map(|(k, v)| (k.as_ref().to_string(), v)).collect();
    j.key(name);
    j.open();
    for (k, v) in sorted {
        j.key(&k);
        j.u64(v);
    }
    j.close();
}

/// The summary of run `s`. `sink_cuts` are what the sink's own bounds cut; `peak_rss` the
/// process's peak resident memory, if known.
pub fn summary_json(s: &RunSummary, sink_cuts: &[(&str, u64)], peak_rss: Option<u64>) -> String {
    let mut j = Json::new();
    j.open();
    j.key("exit_status");
    j.u64(u64::from(exit_status(s)));
    j.key("input_damaged");
    j.bool(s.input_damaged());
    j.key("memory_budget_bytes");
    j.u64(s.memory);
    j.key("peak_rss_bytes");
    match peak_rss {
        Some(v) => j.u64(v),
        None => j.null(),
    }
    let t = &s.stages;
    counters(
        &mut j,
        "wall_time_us",
        &[
            ("total", t.total),
            ("input_wait", t.input_wait),
            ("decode", t.decode),
            ("connections", t.connections),
            ("order", t.order),
            ("output", t.output),
            ("free", t.free),
        ]
        .map(|(k, d)| (k, u64::try_from(d.as_micros()).unwrap_or(u64::MAX))),
    );
    j.key("files");
    j.open_list();
    for f in &s.files {
        j.open();
        j.key("path");
        j.str(&f.path.display().to_string());
        j.key("format");
        j.str(&f.format.to_string());
        j.key("packets");
        j.u64(f.stats.packets);
        j.key("bytes");
        j.u64(f.stats.bytes);
        let b = &f.stats.blocks;
        counters(
            &mut j,
            "blocks",
            &[
                ("read", b.blocks),
                ("unknown_type", b.unknown_blocks),
                ("foreign_custom", b.foreign_custom_blocks),
                ("undecodable", b.bad_blocks),
                ("undecodable_records", b.bad_records),
                ("packets_without_interface", b.undescribed_packets),
                ("interfaces_assumed", b.assumed_interfaces),
                ("bad_timestamps", b.bad_timestamps),
                ("resyncs", b.resyncs),
                ("records_newer_minor", b.records.newer_minor),
                ("records_other_major", b.records.other_major),
            ],
        );
        j.key("warnings");
        j.open_list();
        for w in &f.warnings {
            j.str(w);
        }
        j.close_list();
        j.close();
    }
    j.close_list();
    for (name, list) in [("skipped", &s.skipped), ("notes", &s.notes)] {
        j.key(name);
        j.open_list();
        for (p, why) in list {
            j.open();
            j.key("path");
            j.str(&p.display().to_string());
            j.key("why");
            j.str(why);
            j.close();
        }
        j.close_list();
    }
    j.key("packets");
    j.u64(s.packets);
    j.key("bytes");
    j.u64(s.bytes);
    for (k, v) in [("first_ts", s.first_ts), ("last_ts", s.last_ts)] {
        j.key(k);
        match v {
            Some(t) => j.time(t),
            None => j.null(),
        }
    }
    map(
        &mut j,
        "packets_not_analyzed",
        s.skipped_packets.iter().map(|(k, v)| (*k, *v)),
    );
    map(
        &mut j,
        "unknown_link_types",
        s.unknown_linktypes.iter().map(|(k, v)| (k.to_string(), *v)),
    );
    let d = &s.defrag;
    counters(
        &mut j,
        "ip_fragments",
        &[
            ("fragments", d.fragments),
            ("reassembled", d.reassembled),
            ("overlaps", d.overlaps),
            ("overlap_conflicts", d.overlap_conflicts),
            ("truncated", d.truncated),
            ("timed_out", d.timed_out),
            ("evicted", d.evicted),
            ("too_big", d.too_big),
            ("inconsistent", d.inconsistent),
            ("incomplete_at_end", d.incomplete_at_end),
            ("dropped_fragments", d.dropped_fragments),
        ],
    );
    let f = &s.flows;
    counters(
        &mut j,
        "connections",
        &[
            ("created", f.connections),
            ("partial", f.partial),
            ("expired", f.expired),
            ("evicted", f.evicted),
            ("tcp_packets", f.tcp_packets),
            ("udp_packets", f.udp_packets),
            ("late_packets", f.late_packets),
        ],
    );
    let r = &s.reasm;
    counters(
        &mut j,
        "reassembly",
        &[
            ("delivered_bytes", r.delivered),
            ("retransmitted_bytes", r.retrans_bytes),
            ("overlaps", r.overlaps),
            ("out_of_order_segments", r.ooo_segments),
            ("gaps", r.gaps),
            ("gap_bytes", r.gap_bytes),
            ("buffer_overflows", r.ooo_overflows),
            ("held_for_acknowledgement", r.ack_held),
            ("let_go_early", r.ack_forced),
        ],
    );
    let m = &s.l7.matching;
    counters(
        &mut j,
        "exchanges",
        &[
            ("written", s.exchanges),
            ("complete", m.complete),
            ("truncated", m.truncated),
            ("no_response", m.no_response),
            ("no_request", m.no_request),
            ("late_request_end", m.late_request_end),
            ("written_early", m.overflow),
            ("parsers_gave_up", s.l7.gave_up),
            ("detection_cut", s.l7.detection_cut),
        ],
    );
    map(
        &mut j,
        "protocols",
        s.l7.protocols.iter().map(|(k, v)| (*k, *v)),
    );
    map(&mut j, "weirds", s.l7.weirds.iter().map(|(k, v)| (*k, *v)));
    let so = &s.sockets;
    counters(
        &mut j,
        "sockets",
        &[
            ("events", s.socket_events),
            ("data_events", so.data_events),
            ("streams", so.streams),
            ("lost_bytes", so.lost_bytes),
            ("cut_bytes", so.cut_bytes),
            ("existing", so.existing),
        ],
    );
    let me = &s.meta;
    counters(
        &mut j,
        "metadata",
        &[
            ("records", s.metadata_records),
            ("pods", me.pods),
            ("services", me.services),
            ("containers", me.containers),
            ("addresses_dropped", me.addrs_dropped),
            ("claims_dropped", me.claims_dropped),
            ("pods_dropped", me.pods_dropped),
        ],
    );
    let mut cuts = s.cuts();
    cuts.extend_from_slice(sink_cuts);
    counters(&mut j, "memory_budget_cuts", &cuts);
    j.key("files_open_at_once");
    j.u64(s.max_open_files as u64);
    j.key("notices");
    j.u64(s.notices);
    j.close();
    let mut out = j.as_str().to_string();
    out.push('\n');
    out
}
