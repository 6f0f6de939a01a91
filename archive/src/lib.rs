//! The Juno capture archive format.
//!
//! A Juno archive is a pcapng stream — Section Header, Interface Descriptions, Enhanced Packet
//! Blocks, Interface Statistics — compressed as a sequence of independent, bounded zstd frames,
//! so that `zstd -dc FILE | tshark -r -` opens the packets. Socket events, pod/container
//! metadata, recorder statistics and file information travel in pcapng Custom Blocks under
//! [`record::JUNO_PEN`], with the explicit little-endian encoding of [`record`]; Wireshark skips
//! them.
//!
//! This crate is pure: it encodes and decodes bytes and writes to any `std::io::Write`. It
//! makes no system calls of its own, so the recorder and the analyzer share it, and it can be
//! fuzzed.
//!
//! Invariants:
//! - Decoding never panics, whatever the input; lengths read from the input are checked
//!   against the bytes present before anything is sliced or allocated, and decompression is
//!   bounded by [`frame::MAX_FRAME_SIZE`] (or the caller's limit).
//! - Unknown block types, foreign custom blocks, unknown record types, other major versions
//!   and unknown fields of newer minor versions are skipped and counted, never fatal.
//! - The format is specified in `docs/archive-format.md`.

pub mod frame;
pub mod naming;
pub mod reader;
pub mod record;
pub mod writer;

pub use frame::{FrameIndex, FrameScan};
pub use naming::ArchiveName;
pub use reader::{
    ArchiveReport, InterfaceInfo, Item, Packet, PcapNgStream, ReadStats, read_archive,
};
pub use record::{
    ContainerMeta, Counter, DataDirection, Entity, FileInfo, InterfaceMeta, MetaOp, MetaRecord,
    NodeMeta, PodMeta, Record, ServiceMeta, SocketEvent, SocketEventKind, StatsRecord,
};
pub use writer::{
    ArchiveWriter, BlockEncoder, FrameOptions, InterfaceDesc, InterfaceStats, PendingFrame,
};
