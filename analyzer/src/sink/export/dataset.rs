//! The partitioned export (`juno-analyze export --partition-by node,hour`): each table as a
//! Hive-style Parquet dataset, `<table>/node=<node>/hour=<hour>/part-<batch>-<n>.parquet`,
//! appended to batch by batch (layout and guarantees in docs/export.md).
//!
//! Invariants:
//! - A data file is written under a hidden temporary name outside the tables' directories
//!   (`_tmp/<batch>/.<table>-part-….parquet.tmp`: no table scan, glob or directory listing
//!   reaches it — polars' directory scan reads hidden files, so inside a partition would not
//!   do), fsynced, and renamed into its partition only when the whole batch is written; then
//!   the batch's
//!   manifest `_batches/<batch>.json` (every file, its rows and bytes) is written the same
//!   way (temporary name, fsync, rename), then `_SUCCESS`. A batch whose manifest exists is
//!   complete.
//! - Files are never rewritten: every name carries the batch id, and a batch id that already
//!   has a manifest is refused.
//! - Every file of a table has the same schema (the table's columns; the partition keys are
//!   in the path only). A partition with no rows has no directory and no file.
//! - Memory: rows wait in per-partition buffers of at most [`super::BATCH_ROWS`] rows in all
//!   (the fullest is written out as a row group when they hold more), and at most
//!   [`MAX_OPEN_FILES`] files are open per table (the least recently used is finished early,
//!   counted in the manifest as `files_closed_early`).

use std::collections::BTreeMap;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use polars::prelude::*;
use serde_json::json;

use super::{BATCH_ROWS, Kind, Table};

/// Files open at once per table, at most.
pub const MAX_OPEN_FILES: usize = 64;

/// Rows per file by default (`--max-file-rows`): about 50–150 MB of Parquet for exchanges
/// (their size depends mostly on the `fields` column), within the range query engines like.
pub const DEFAULT_MAX_FILE_ROWS: u64 = 1 << 20;

/// A partition key (`--partition-by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionKey {
    /// The node the row was recorded on.
    Node,
    /// The UTC hour the row began in, `YYYY-MM-DDTHH`.
    Hour,
}

impl PartitionKey {
    /// The keys accepted, as the command line spells them.
    pub const NAMES: [&'static str; 2] = ["node", "hour"];

    /// The directory name's key.
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionKey::Node => "node",
            PartitionKey::Hour => "hour",
        }
    }

    /// Parses a comma-separated list (`node,hour`): at least one key, none twice.
    pub fn parse_list(s: &str) -> Result<Vec<PartitionKey>> {
        let mut keys = Vec::new();
        for k in s.split(',').map(str::trim) {
            let key = match k {
                "node" => PartitionKey::Node,
                "hour" => PartitionKey::Hour,
                _ => bail!(
                    "unknown partition key {k:?} (accepted: {})",
                    Self::NAMES.join(", ")
                ),
            };
            if keys.contains(&key) {
                bail!("partition key {k:?} given twice");
            }
            keys.push(key);
        }
        Ok(keys)
    }
}

/// How a partitioned export is written.
#[derive(Clone, Debug)]
pub struct DatasetOptions {
    /// Partition keys, outermost directory first.
    pub keys: Vec<PartitionKey>,
    /// Rows per file at most (a partition with more gets more files).
    pub max_file_rows: u64,
    /// Node for rows whose input does not say (a pcap file); `unknown` when not given.
    pub node: Option<String>,
    /// Sleep after each data file is finished (still under its temporary name): a test hook
    /// that widens the window in which an export can be interrupted mid-batch; it changes
    /// nothing that is written. Set from `JUNO_EXPORT_PAUSE_AFTER_FILE_MS` by the binary.
    pub pause_after_file: Option<Duration>,
}

impl Default for DatasetOptions {
    fn default() -> Self {
        DatasetOptions {
            keys: vec![PartitionKey::Node, PartitionKey::Hour],
            max_file_rows: DEFAULT_MAX_FILE_ROWS,
            node: None,
            pause_after_file: None,
        }
    }
}

/// A batch id: the UTC time it began and 32 random bits, `20261205T014500Z-3f9a1c2b`; ids sort
/// in time order.
pub fn new_batch_id() -> String {
    let now = SystemTime::now();
    let t: String = humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    // RandomState is seeded from the OS's randomness; mix in the time and pid as well.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        now.duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("{t}-{:08x}", h.finish() as u32)
}

/// The UTC hour of a time (ns since the epoch), `YYYY-MM-DDTHH`.
pub fn hour_of(ns: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(ns / 1_000_000_000);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.get(..13).unwrap_or("1970-01-01T00").to_string()
}

/// A partition value as a directory name: bytes outside `[A-Za-z0-9._-]` and a leading `.`
/// or `_` (hidden to readers) are written `%XX`, as Hive escapes them; empty is `unknown`.
pub fn escape_value(v: &str) -> String {
    if v.is_empty() {
        return "unknown".to_string();
    }
    let mut out = String::with_capacity(v.len());
    for (i, b) in v.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'-' || (i > 0 && (b == b'.' || b == b'_'));
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where a row goes: its node and the time it began.
#[derive(Clone, Copy, Debug)]
pub struct RowPlace<'a> {
    /// Node, when known.
    pub node: Option<&'a str>,
    /// Start time, ns since the epoch.
    pub ts: u64,
}

/// A finished data file, under its temporary name until the batch is committed.
#[derive(Debug)]
struct Done {
    tmp: PathBuf,
    /// Final path, relative to the dataset's root.
    rel: PathBuf,
    rows: u64,
    bytes: u64,
}

/// An open data file of one partition.
struct PartFile {
    table: Table,
    writer: Box<polars::io::parquet::write::BatchedWriter<File>>,
    /// A second handle on the file, to fsync it once the writer is done.
    sync: File,
    tmp: PathBuf,
    rel: PathBuf,
    /// Rows written and buffered.
    rows: u64,
    /// When it was last written to (for closing the least recently used).
    used: u64,
}

impl std::fmt::Debug for PartFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartFile")
            .field("tmp", &self.tmp)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// One table of the dataset, for one batch.
#[derive(Debug)]
pub(super) struct Parts {
    root: PathBuf,
    name: &'static str,
    columns: Vec<(&'static str, Kind)>,
    schema: Schema,
    batch: String,
    opts: DatasetOptions,
    /// Open files by partition directory (relative to the table).
    open: BTreeMap<String, PartFile>,
    /// Finished files.
    done: Vec<Done>,
    /// Files numbered in the batch, per table.
    next_file: u64,
    /// Rows buffered over all open files.
    buffered: usize,
    tick: u64,
    /// Files finished before reaching `max_file_rows` because too many were open.
    closed_early: u64,
}

impl Parts {
    pub(super) fn new(
        root: &Path,
        name: &'static str,
        columns: &[(&'static str, Kind)],
        batch: &str,
        opts: &DatasetOptions,
    ) -> Result<Parts> {
        let schema = Table::new(columns, false).take()?.schema().as_ref().clone();
        Ok(Parts {
            root: root.to_path_buf(),
            name,
            columns: columns.to_vec(),
            schema,
            batch: batch.to_string(),
            opts: opts.clone(),
            open: BTreeMap::new(),
            done: Vec::new(),
            next_file: 0,
            buffered: 0,
            tick: 0,
            closed_early: 0,
        })
    }

    /// The partition directory of a row, relative to the table: `node=…/hour=…`.
    fn dir_of(&self, place: RowPlace<'_>) -> String {
        if self.opts.keys.is_empty() {
            return format!("batch={}", self.batch);
        }
        let mut d = String::new();
        for k in &self.opts.keys {
            if !d.is_empty() {
                d.push('/');
            }
            let v = match k {
                PartitionKey::Node => escape_value(
                    place
                        .node
                        .or(self.opts.node.as_deref())
                        .unwrap_or("unknown"),
                ),
                PartitionKey::Hour => hour_of(place.ts),
            };
            d.push_str(k.as_str());
            d.push('=');
            d.push_str(&v);
        }
        d
    }

    /// The table to write a row of this partition into; call [`Parts::row_done`] after.
    pub(super) fn row(&mut self, place: RowPlace<'_>) -> Result<(&mut Table, String)> {
        let dir = self.dir_of(place);
        if !self.open.contains_key(&dir) {
            if self.open.len() >= MAX_OPEN_FILES {
                let lru = self
                    .open
                    .iter()
                    .min_by_key(|(_, f)| f.used)
                    .map(|(d, _)| d.clone());
                if let Some(d) = lru {
                    self.close(&d)?;
                    self.closed_early += 1;
                }
            }
            let f = self.create(&dir)?;
            self.open.insert(dir.clone(), f);
        }
        self.tick += 1;
        let tick = self.tick;
        let f = self
            .open
            .get_mut(&dir)
            .context("partition file just opened")?;
        f.used = tick;
        Ok((&mut f.table, dir))
    }

    /// A row was added to the partition `dir`: writes out what is due.
    pub(super) fn row_done(&mut self, dir: &str) -> Result<()> {
        self.buffered += 1;
        let full = {
            let f = self.open.get_mut(dir).context("partition file")?;
            f.rows += 1;
            f.rows >= self.opts.max_file_rows
        };
        if full {
            return self.close(dir);
        }
        if self.buffered >= BATCH_ROWS {
            // The fullest buffer becomes a row group.
            let fullest = self
                .open
                .iter()
                .max_by_key(|(_, f)| f.table.rows)
                .map(|(d, _)| d.clone());
            if let Some(d) = fullest {
                self.flush(&d)?;
            }
        }
        Ok(())
    }

    fn create(&mut self, dir: &str) -> Result<PartFile> {
        let n = self.next_file;
        self.next_file += 1;
        let file_name = format!("part-{}-{n}.parquet", self.batch);
        let rel = Path::new(self.name).join(dir).join(&file_name);
        let staging = self.staging();
        std::fs::create_dir_all(&staging)
            .with_context(|| format!("cannot create {}", staging.display()))?;
        let tmp = staging.join(format!(".{}-{file_name}.tmp", self.name));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let sync = file
            .try_clone()
            .with_context(|| format!("cannot use {}", tmp.display()))?;
        let writer = ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .batched(&self.schema)?;
        Ok(PartFile {
            table: Table::new(&self.columns, false),
            writer: Box::new(writer),
            sync,
            tmp,
            rel,
            rows: 0,
            used: 0,
        })
    }

    /// Where the batch's files are written before the commit: `_tmp/<batch>/`.
    fn staging(&self) -> PathBuf {
        self.root.join("_tmp").join(&self.batch)
    }

    /// Writes a partition's buffered rows as a row group.
    fn flush(&mut self, dir: &str) -> Result<()> {
        let f = self.open.get_mut(dir).context("partition file")?;
        if f.table.rows == 0 {
            return Ok(());
        }
        self.buffered = self.buffered.saturating_sub(f.table.rows);
        let df = f.table.take()?;
        f.writer
            .write_batch(&df)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("cannot write {}", f.tmp.display()))?;
        Ok(())
    }

    /// Finishes a partition's file: its rows, the footer, fsync (still under its temporary
    /// name).
    fn close(&mut self, dir: &str) -> Result<()> {
        self.flush(dir)?;
        let Some(f) = self.open.remove(dir) else {
            return Ok(());
        };
        let what = || format!("cannot write {}", f.tmp.display());
        f.writer
            .finish()
            .map_err(anyhow::Error::from)
            .with_context(what)?;
        f.sync.sync_all().with_context(what)?;
        let bytes = f.sync.metadata().with_context(what)?.len();
        self.done.push(Done {
            tmp: f.tmp,
            rel: f.rel,
            rows: f.rows,
            bytes,
        });
        if let Some(d) = self.opts.pause_after_file {
            std::thread::sleep(d);
        }
        Ok(())
    }

    /// Finishes every open file.
    pub(super) fn finish(&mut self) -> Result<()> {
        let dirs: Vec<String> = self.open.keys().cloned().collect();
        for d in dirs {
            self.close(&d)?;
        }
        Ok(())
    }

    /// Renames the finished files to their final names (after [`Parts::finish`] of every
    /// table) and fsyncs their directories; returns the table's manifest entry.
    pub(super) fn commit(&mut self) -> Result<serde_json::Value> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut files = Vec::new();
        let mut rows = 0u64;
        for d in std::mem::take(&mut self.done) {
            let to = self.root.join(&d.rel);
            if let Some(p) = to.parent() {
                std::fs::create_dir_all(p)
                    .with_context(|| format!("cannot create {}", p.display()))?;
            }
            std::fs::rename(&d.tmp, &to).with_context(|| {
                format!("cannot rename {} to {}", d.tmp.display(), to.display())
            })?;
            if let Some(p) = to.parent()
                && !dirs.iter().any(|x| x == p)
            {
                dirs.push(p.to_path_buf());
            }
            rows += d.rows;
            files.push(json!({
                "path": d.rel.to_string_lossy(),
                "rows": d.rows,
                "bytes": d.bytes,
            }));
        }
        for d in &dirs {
            sync_dir(d)?;
        }
        // Empty now (other tables' files may still be there: the last one removes it).
        let _ = std::fs::remove_dir(self.staging());
        let _ = std::fs::remove_dir(self.root.join("_tmp"));
        Ok(json!({
            "rows": rows,
            "files": files,
            "files_closed_early": self.closed_early,
        }))
    }
}

impl Drop for Parts {
    /// An export that failed (or was dropped before its commit) leaves no temporary files
    /// behind, as far as it can: a killed process cannot, and its files stay hidden.
    fn drop(&mut self) {
        for f in self.open.values() {
            let _ = std::fs::remove_file(&f.tmp);
        }
        for d in &self.done {
            let _ = std::fs::remove_file(&d.tmp);
        }
        let _ = std::fs::remove_dir(self.staging());
        let _ = std::fs::remove_dir(self.root.join("_tmp"));
    }
}

/// fsync of a directory (its entries: a rename is durable once its directory is synced).
pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// Writes `bytes` to `dir/name` atomically: a hidden temporary file in `dir`, fsync, rename,
/// fsync of `dir`.
pub(super) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let tmp = dir.join(format!(".{name}.tmp"));
    let to = dir.join(name);
    let mut f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &to).with_context(|| format!("cannot rename to {}", to.display()))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_utc_and_cut_at_the_hour() {
        // 2026-11-23T21:29:06.59Z
        assert_eq!(hour_of(1_795_469_346_593_658_927), "2026-11-23T21");
        assert_eq!(hour_of(0), "1970-01-01T00");
        assert_eq!(hour_of(3_599_999_999_999), "1970-01-01T00");
        assert_eq!(hour_of(3_600_000_000_000), "1970-01-01T01");
    }

    #[test]
    fn partition_values_are_escaped_and_never_hidden() {
        for (v, want) in [
            ("node-1.example", "node-1.example"),
            ("", "unknown"),
            ("a/b", "a%2Fb"),
            ("x=y", "x%3Dy"),
            (".hidden", "%2Ehidden"),
            ("_meta", "%5Fmeta"),
            ("in_side.x", "in_side.x"),
            ("ü", "%C3%BC"),
        ] {
            assert_eq!(escape_value(v), want, "{v:?}");
        }
    }

    #[test]
    fn keys_parse_in_order_and_reject_unknown_or_repeated() {
        assert_eq!(
            PartitionKey::parse_list("hour,node").unwrap(),
            [PartitionKey::Hour, PartitionKey::Node]
        );
        assert_eq!(
            PartitionKey::parse_list("node").unwrap(),
            [PartitionKey::Node]
        );
        let e = PartitionKey::parse_list("node,day")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"day\"") && e.contains("node, hour"), "{e}");
        assert!(PartitionKey::parse_list("node,node").is_err());
        assert!(PartitionKey::parse_list("").is_err());
    }

    #[test]
    fn batch_ids_sort_by_time_and_differ() {
        let (a, b) = (new_batch_id(), new_batch_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), "20261205T014500Z-3f9a1c2b".len(), "{a}");
        assert!(a.as_bytes()[8] == b'T' && a.ends_with(|c: char| c.is_ascii_hexdigit()));
        assert!(a[..16] <= b[..16]);
    }
}
