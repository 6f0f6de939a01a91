//! File information and recorder statistics records.

use super::tlv::*;
use super::*;

/// Describes the file: which node wrote it, when, and where it sits in the rotation sequence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileInfo {
    /// When the file was started, nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// Sequence number in the recorder's rotation (0-based).
    pub sequence: u64,
    /// Node name.
    pub node: String,
    /// Host name.
    pub hostname: Option<String>,
    /// Recorder name and version.
    pub recorder: Option<String>,
    /// Wall-clock time of boot, to relate kernel monotonic stamps to wall time.
    pub boot_time_ns: Option<u64>,
    /// Bound on the uncompressed size of one compressed frame, as configured.
    pub frame_size: Option<u32>,
    /// Name of the previous file in the sequence.
    pub previous: Option<String>,
    /// The redaction policy the recorder applied to every payload byte before writing it
    /// (`juno_redact::Policy::describe`: `off`, or the rules and lists); `None`: the writer
    /// does not say (files written before format 1.1, other writers).
    pub redaction: Option<String>,
}

const FILEINFO_FIXED_LEN: usize = 16;

impl FileInfo {
    /// Appends the encoded record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = begin_record(out, RecordType::FileInfo, FILEINFO_FIXED_LEN as u16);
        out.extend_from_slice(&self.start_ns.to_le_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        let mut w = TlvWriter { out };
        w.str(tag::NODE, &self.node);
        w.opt_str(tag::HOSTNAME, self.hostname.as_deref());
        w.opt_str(tag::RECORDER, self.recorder.as_deref());
        w.opt_u64(tag::BOOT_TIME, self.boot_time_ns);
        w.opt_u32(tag::FRAME_SIZE, self.frame_size);
        w.opt_str(tag::PREVIOUS, self.previous.as_deref());
        w.opt_str(tag::REDACTION, self.redaction.as_deref());
        finish_record(out, start);
    }

    pub(super) fn decode(
        f: &[u8],
        var: &[u8],
        stats: &mut DecodeStats,
    ) -> Result<Self, RecordError> {
        if f.len() < FILEINFO_FIXED_LEN {
            return Err(RecordError::FixedTooShort {
                rtype: RecordType::FileInfo,
                len: f.len(),
                min: FILEINFO_FIXED_LEN,
            });
        }
        let mut fi = FileInfo {
            start_ns: le64(&f[0..8]),
            sequence: le64(&f[8..16]),
            ..Default::default()
        };
        for item in tlvs(var) {
            let (t, v) = item?;
            let known = match t {
                tag::NODE => {
                    fi.node = tlv_str(v);
                    true
                }
                tag::HOSTNAME => {
                    fi.hostname = Some(tlv_str(v));
                    true
                }
                tag::RECORDER => {
                    fi.recorder = Some(tlv_str(v));
                    true
                }
                tag::BOOT_TIME => tlv_u64(v).map(|x| fi.boot_time_ns = Some(x)).is_some(),
                tag::FRAME_SIZE => tlv_u32(v).map(|x| fi.frame_size = Some(x)).is_some(),
                tag::PREVIOUS => {
                    fi.previous = Some(tlv_str(v));
                    true
                }
                tag::REDACTION => {
                    fi.redaction = Some(tlv_str(v));
                    true
                }
                _ => false,
            };
            if !known {
                stats.unknown_tags += 1;
            }
        }
        Ok(fi)
    }
}

/// One counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    /// Counter name, e.g. `ringbuf_reserve_failed` (documented by the recorder).
    pub name: String,
    /// CPU the counter belongs to, or `None` for a total.
    pub cpu: Option<u32>,
    /// Value since the recorder started (monotonic).
    pub value: u64,
}

/// A set of recorder counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsRecord {
    /// Time of the reading, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Counters.
    pub counters: Vec<Counter>,
}

const STATS_FIXED_LEN: usize = 8;
const NO_CPU: u32 = u32::MAX;

impl StatsRecord {
    /// Appends the encoded record to `out`. Names are cut to 255 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = begin_record(out, RecordType::Stats, STATS_FIXED_LEN as u16);
        out.extend_from_slice(&self.ts_ns.to_le_bytes());
        for c in &self.counters {
            let mut end = c.name.len().min(255);
            while !c.name.is_char_boundary(end) {
                end -= 1;
            }
            out.push(end as u8);
            out.extend_from_slice(&c.name.as_bytes()[..end]);
            out.extend_from_slice(&c.cpu.unwrap_or(NO_CPU).to_le_bytes());
            out.extend_from_slice(&c.value.to_le_bytes());
        }
        finish_record(out, start);
    }

    pub(super) fn decode(f: &[u8], mut var: &[u8]) -> Result<Self, RecordError> {
        if f.len() < STATS_FIXED_LEN {
            return Err(RecordError::FixedTooShort {
                rtype: RecordType::Stats,
                len: f.len(),
                min: STATS_FIXED_LEN,
            });
        }
        let mut s = StatsRecord {
            ts_ns: le64(&f[0..8]),
            counters: Vec::new(),
        };
        while !var.is_empty() {
            let n = usize::from(var[0]);
            if var.len() < 1 + n + 12 {
                return Err(RecordError::BadLength {
                    what: "stats counter",
                    len: n,
                });
            }
            let name = tlv_str(&var[1..1 + n]);
            let cpu = le32(&var[1 + n..5 + n]);
            let value = le64(&var[5 + n..13 + n]);
            s.counters.push(Counter {
                name,
                cpu: (cpu != NO_CPU).then_some(cpu),
                value,
            });
            var = &var[13 + n..];
        }
        Ok(s)
    }
}
