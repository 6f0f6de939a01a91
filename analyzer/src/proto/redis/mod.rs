//! Redis (RESP2 and RESP3).
//!
//! Commands (arrays of bulk strings, or inline command lines) are paired with their replies
//! in order, as Zeek's Redis analyzer pairs them, and its `redis.log` is reproduced (see
//! `docs/redis.md` for the rules, their sources and the limits):
//!
//! - Framing is done by [`resp::Reader`], which streams: bulk payloads are never buffered,
//!   only a bounded prefix of each field is kept ([`MAX_VALUE`] bytes, Zeek's
//!   `Redis::max_value_size`).
//! - Replies are rendered as Zeek renders them (`[a, b]` arrays, `{k: v}` maps, `(a, b)`
//!   sets, `null`, `T`/`F`); error replies (`-`, `!`) are failures.
//! - Some commands get no reply: everything while `CLIENT REPLY OFF` is in force (but
//!   `CLIENT REPLY ON`), `CLIENT REPLY SKIP` and the command after it, and the
//!   (un)subscribe commands, whose confirmations arrive as pushes. They become exchanges
//!   without response, never paired with a reply.
//! - Pushes are not replies: RESP3 `>` values, and in RESP2 the `message`/`subscribe`/...
//!   arrays a subscribed connection receives, and `MONITOR` output. They are skipped.
//! - The parser pairs commands with replies itself and hands both to the matcher together
//!   once the reply has ended, so pipelining is limited by [`MAX_PENDING`], not by the
//!   matcher's window. Commands that will get no reply are handed over as soon as the
//!   commands sent before them have been (exchanges are numbered in the order commands were
//!   sent), keyed [`MatchKey::NoResponse`]: the matcher writes them at once, unanswered.
//! - A gap inside a bulk payload that holds it is skipped (the message is marked incomplete
//!   and its value is not extended past the gap); any other gap loses the framing, and with
//!   it the count of replies owed, so the connection is given up.
//! - Malformed input (a byte that starts no RESP value, bad or absurd lengths, too deep
//!   nesting, over-long lines) is counted and gives the connection up.
//!
//! The module's files, from the bytes up: [`resp`] (RESP framing, the wire layer),
//! `message` (commands and replies built from the RESP values), `commands` (what a command's
//! name says: the tables of keys, values and subcommands, and a command's fields), `probe`
//! (detection), `zeek` (`redis.log` and the report summary), and this file: the connection —
//! pairing in order, pipelining, `CLIENT REPLY`, pub/sub, `MONITOR`, RESP3 — and the
//! [`Parser`] implementation.

mod commands;
mod message;
mod probe;
pub mod resp;
mod zeek;

use std::collections::VecDeque;

use self::commands::{Name, cmd_fields};
use self::message::{Cmd, Reply, ReplyBuilder, ReqBuilder, reply_fields};
use self::resp::{Reader, Role, Visit};
use crate::l7::{Emitter, Event, MatchKey, Parser, ParserState, Protocol};
use crate::model::{Dir, Fields, Text, Transport, Ts, Value};

pub use self::zeek::ZEEK_LOG;

/// Bytes kept of each text field (command name, key, value, reply): Zeek's default
/// `Redis::max_value_size`.
pub const MAX_VALUE: usize = 250;
/// Arguments of a command kept (name and the next three): enough for every field.
const RAW_KEPT: usize = 4;
/// Commands awaiting their replies, per connection. Beyond it the oldest is handed over as
/// unanswered (counted as `redis_excessive_pipelining`) and its reply, when it comes, is
/// skipped.
pub const MAX_PENDING: usize = 4096;
/// What the memory budget counts per pending command besides its struct: its kept arguments
/// and fields (each at most [`MAX_VALUE`] bytes; a few short ones on average).
const PENDING_HEAP: usize = 384;

/// The registration.
pub static PROTOCOL: Protocol = Protocol {
    name: "redis",
    transports: &[Transport::Tcp],
    ports: &[6379],
    probe: probe::probe,
    new_parser: |_| Box::new(Redis::default()),
    zeek: Some(&ZEEK_LOG),
    upgrade: None,
    summarize: zeek::summarize,
};

/// First elements of the arrays a RESP2 subscribed connection receives as pushes.
const PUSH_KINDS: &[&[u8]] = &[
    b"message",
    b"pmessage",
    b"smessage",
    b"subscribe",
    b"psubscribe",
    b"ssubscribe",
    b"unsubscribe",
    b"punsubscribe",
    b"sunsubscribe",
];

/// What a command does to the connection once answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Special {
    None,
    Reset,
    Hello,
    Monitor,
}

/// `CLIENT REPLY` state, as Redis keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ReplyMode {
    #[default]
    On,
    Off,
    /// The next command gets no reply.
    Skip,
}

#[derive(Debug)]
struct Pending {
    cmd: Cmd,
    fields: Fields,
    special: Special,
    /// A reply will come for it.
    answered: bool,
}

/// The Redis parser for one connection.
#[derive(Debug)]
pub struct Redis {
    readers: [Reader; 2],
    req: ReqBuilder,
    rep: ReplyBuilder,
    /// Commands awaiting replies, oldest first.
    pending: VecDeque<Pending>,
    /// Replies still owed to commands dropped from `pending` (too many pipelined).
    untracked: u64,
    mode: ReplyMode,
    /// A RESP2 connection that (un)subscribed: pub/sub arrays from the server are pushes.
    pubsub: bool,
    /// `MONITOR` was answered: the server streams its feed.
    monitor: bool,
    /// The server speaks RESP3: pushes carry their own type.
    resp3: bool,
    server_ended: bool,
    state: Option<ParserState>,
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            readers: [Reader::new(Role::Client), Reader::new(Role::Server)],
            req: ReqBuilder::default(),
            rep: ReplyBuilder::default(),
            pending: VecDeque::new(),
            untracked: 0,
            mode: ReplyMode::On,
            pubsub: false,
            monitor: false,
            resp3: false,
            server_ended: false,
            state: None,
        }
    }
}

fn eq(a: Option<&Text>, b: &str) -> bool {
    a.is_some_and(|a| a.eq_ignore_ascii_case(b.as_bytes()))
}

const KEY: MatchKey = MatchKey::Fifo;

impl Redis {
    fn give_up(&mut self, why: &'static str, out: &mut Emitter) {
        out.weird(why);
        self.flush_pending(out);
        self.state = Some(ParserState::GaveUp);
    }

    /// Hands over a command that will get no reply.
    fn unanswered(&mut self, cmd: &Cmd, fields: Fields, out: &mut Emitter) {
        let key = MatchKey::NoResponse;
        out.emit(Event::RequestStart {
            ts: cmd.start,
            key,
            fields,
        });
        out.emit(Event::RequestEnd {
            ts: cmd.end,
            key,
            fields: Fields::default(),
            complete: cmd.complete,
        });
    }

    /// Every command still waiting is handed over unanswered.
    fn flush_pending(&mut self, out: &mut Emitter) {
        while let Some(p) = self.pending.pop_front() {
            self.unanswered(&p.cmd, p.fields, out);
        }
    }

    fn on_command(&mut self, mut cmd: Cmd, out: &mut Emitter) {
        let name = Name::of(cmd.raw.first().map_or(&[], |a| a));
        let arg1 = cmd.raw.get(1);
        let client_reply = if name.as_str() == "CLIENT" && cmd.argc == 3 && eq(arg1, "reply") {
            cmd.raw.get(2).map(|a| a.to_ascii_lowercase())
        } else {
            None
        };
        // Last: it moves the arguments it shows out of `cmd.raw`.
        let mut fields = cmd_fields(&mut cmd, &name, out.fields());
        // What Redis does with the reply flags around this command (networking.c,
        // clientReplyCommand and resetClient).
        let before = self.mode;
        let mut no_reply: Option<&'static str> = match before {
            ReplyMode::On => None,
            ReplyMode::Off => Some("client_reply_off"),
            ReplyMode::Skip => Some("client_reply_skip"),
        };
        let mut special = Special::None;
        match client_reply.as_deref() {
            Some(b"on") => {
                self.mode = ReplyMode::On;
                no_reply = None;
            }
            Some(b"off") => {
                self.mode = ReplyMode::Off;
                no_reply = Some("client_reply_off");
            }
            Some(b"skip") => {
                if before != ReplyMode::Off {
                    self.mode = ReplyMode::Skip;
                }
                no_reply = no_reply.or(Some("client_reply_skip"));
            }
            _ => {
                if before == ReplyMode::Skip {
                    self.mode = ReplyMode::On;
                }
                match name.as_str() {
                    // RESET clears the reply flags before it answers.
                    "RESET" => {
                        self.mode = ReplyMode::On;
                        no_reply = None;
                        special = Special::Reset;
                    }
                    "HELLO" => special = Special::Hello,
                    "MONITOR" => special = Special::Monitor,
                    // Their confirmations are pushes, one per channel; without a channel
                    // the subscribe commands get an error reply.
                    "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" if cmd.argc > 1 => {
                        self.pubsub = true;
                        no_reply = no_reply.or(Some("subscribe"));
                    }
                    "UNSUBSCRIBE" | "PUNSUBSCRIBE" | "SUNSUBSCRIBE" => {
                        self.pubsub = true;
                        no_reply = no_reply.or(Some("subscribe"));
                    }
                    _ => {}
                }
            }
        }
        if let Some(why) = no_reply {
            fields.set("no_reply", Value::text(why));
        }
        if self.pending.len() >= MAX_PENDING
            && let Some(old) = self.pending.pop_front()
        {
            if old.answered {
                out.weird("redis_excessive_pipelining");
                self.untracked += 1;
            }
            self.unanswered(&old.cmd, old.fields, out);
        }
        // Nobody answers once the server has closed its side.
        let answered = no_reply.is_none() && !self.server_ended;
        self.pending.push_back(Pending {
            cmd,
            fields,
            special,
            answered,
        });
        self.release(out);
    }

    /// Hands over the commands at the head of the queue that will get no reply: commands
    /// are handed over in the order they were sent, so that exchanges are numbered so.
    fn release(&mut self, out: &mut Emitter) {
        while let Some(p) = self.pending.pop_front() {
            if p.answered {
                self.pending.push_front(p);
                return;
            }
            self.unanswered(&p.cmd, p.fields, out);
        }
    }

    fn is_push(&self, r: &Reply) -> bool {
        if r.ty == b'>' {
            return true;
        }
        if self.monitor && r.ty == b'+' && r.value.0.first().is_some_and(u8::is_ascii_digit) {
            // MONITOR feed: `+1700000000.123456 [0 10.0.0.1:5000] "get" "k"`.
            return true;
        }
        !self.resp3
            && self.pubsub
            && r.ty == b'*'
            && PUSH_KINDS.iter().any(|k| r.head.eq_ignore_ascii_case(k))
    }

    fn on_reply(&mut self, mut r: Reply, out: &mut Emitter) {
        if r.resp3 {
            self.resp3 = true;
        }
        if self.is_push(&r) {
            if r.ty == b'*'
                && r.head.to_ascii_lowercase().ends_with(b"unsubscribe")
                && r.third_int == Some(0)
            {
                // No subscription left: the connection is back to request/reply.
                self.pubsub = false;
            }
            return;
        }
        if self.untracked > 0 {
            self.untracked -= 1;
            return;
        }
        let Some(p) = self.pending.pop_front() else {
            // A reply to a command not seen (the capture began after it was sent).
            out.emit(Event::ResponseStart {
                ts: r.start,
                key: KEY,
                fields: Fields::default(),
            });
            let fields = reply_fields(&mut r, out.fields());
            out.emit(Event::ResponseEnd {
                ts: r.end,
                key: KEY,
                fields,
                complete: r.complete,
            });
            return;
        };
        if !r.is_error() && r.complete {
            match p.special {
                Special::Reset => {
                    self.pubsub = false;
                    self.monitor = false;
                    self.resp3 = false;
                }
                Special::Hello => self.resp3 = r.ty == b'%',
                Special::Monitor => self.monitor = true,
                Special::None => {}
            }
        }
        self.exchange(p, &mut r, out);
        self.release(out);
    }

    fn exchange(&mut self, p: Pending, r: &mut Reply, out: &mut Emitter) {
        out.emit(Event::RequestStart {
            ts: p.cmd.start,
            key: KEY,
            fields: p.fields,
        });
        out.emit(Event::RequestEnd {
            ts: p.cmd.end,
            key: KEY,
            fields: Fields::default(),
            complete: p.cmd.complete,
        });
        out.emit(Event::ResponseStart {
            ts: r.start,
            key: KEY,
            fields: Fields::default(),
        });
        let fields = reply_fields(r, out.fields());
        out.emit(Event::ResponseEnd {
            ts: r.end,
            key: KEY,
            fields,
            complete: r.complete,
        });
    }

    fn drain(&mut self, out: &mut Emitter) {
        // The lists go back afterwards, with their room, for the next data.
        let mut cmds = std::mem::take(&mut self.req.done);
        for c in cmds.drain(..) {
            self.on_command(c, out);
        }
        self.req.done = cmds;
        let mut replies = std::mem::take(&mut self.rep.done);
        for r in replies.drain(..) {
            self.on_reply(r, out);
        }
        self.rep.done = replies;
    }
}

impl Parser for Redis {
    fn heap_bytes(&self) -> usize {
        self.pending.capacity() * std::mem::size_of::<Pending>()
            + self.pending.len() * PENDING_HEAP
            + self.readers[0].heap_bytes()
            + self.readers[1].heap_bytes()
            + 2 * RAW_KEPT * MAX_VALUE
    }
    fn data(&mut self, dir: Dir, ts: Ts, data: &[u8], out: &mut Emitter) {
        if self.state.is_some() {
            return;
        }
        let r = match dir {
            Dir::ToServer => {
                self.req.now = ts;
                self.readers[0].feed(data, &mut self.req)
            }
            Dir::ToClient => {
                self.rep.now = ts;
                self.readers[1].feed(data, &mut self.rep)
            }
        };
        self.drain(out);
        if let Err(e) = r {
            self.give_up(e.weird(), out);
        }
    }

    fn gap(&mut self, dir: Dir, _ts: Ts, len: u64, out: &mut Emitter) {
        if self.state.is_some() || len == 0 {
            return;
        }
        out.weird("redis_content_gap");
        if self.readers[dir.idx()].gap(len) {
            match dir {
                Dir::ToServer => self.req.gap(),
                Dir::ToClient => self.rep.gap(),
            }
            return;
        }
        // Where the next value starts, and how many replies the lost bytes held or owed,
        // cannot be known.
        self.give_up("redis_gap_lost_sync", out);
    }

    fn end(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        if self.state.is_some() {
            return;
        }
        match dir {
            Dir::ToServer => {
                // A command cut by the end of the stream was never executed.
                let reader = &self.readers[0];
                if let Some(line) = reader.partial_inline() {
                    let line = line.to_vec();
                    self.req.inline(&line);
                }
                if reader.in_message() && !self.req.cur.raw.is_empty() {
                    let mut cmd = std::mem::take(&mut self.req.cur);
                    cmd.end = ts;
                    cmd.complete = false;
                    let name = Name::of(cmd.raw.first().map_or(&[], |a| a));
                    let fields = cmd_fields(&mut cmd, &name, out.fields());
                    self.unanswered(&cmd, fields, out);
                }
                self.readers[0] = Reader::new(Role::Client);
            }
            Dir::ToClient => {
                if self.readers[1].in_message() {
                    // The reply the stream ended in answers the oldest command, in part.
                    self.rep.cur.complete = false;
                    self.rep.message_end();
                }
                self.readers[1] = Reader::new(Role::Server);
                self.drain(out);
                self.server_ended = true;
                self.flush_pending(out);
            }
        }
    }

    fn state(&self) -> ParserState {
        self.state.unwrap_or(ParserState::Active)
    }
}

#[cfg(test)]
mod tests;
