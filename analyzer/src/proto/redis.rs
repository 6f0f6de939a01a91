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

pub mod resp;

use std::collections::VecDeque;

use self::resp::{Reader, Role, Visit, parse_int};
use crate::l7::{
    Emitter, Event, MatchKey, Parser, ParserState, Probe, ProbeInput, Protocol, ZVal, ZeekLog,
};
use crate::model::{Dir, Exchange, Fields, Summary, Transport, Ts, Value};

/// Bytes kept of each text field (command name, key, value, reply): Zeek's default
/// `Redis::max_value_size`.
pub const MAX_VALUE: usize = 250;
/// Arguments of a command kept (name and the next three): enough for every field.
const RAW_KEPT: usize = 4;
/// Commands awaiting their replies, per connection. Beyond it the oldest is handed over as
/// unanswered (counted as `redis_excessive_pipelining`) and its reply, when it comes, is
/// skipped.
pub const MAX_PENDING: usize = 4096;

/// The registration.
pub static PROTOCOL: Protocol = Protocol {
    name: "redis",
    transports: &[Transport::Tcp],
    ports: &[6379],
    probe,
    new_parser: |_| Box::new(Redis::default()),
    zeek: Some(&ZEEK_LOG),
    upgrade: None,
    summarize,
};

/// `redis.log`, with Zeek's columns.
pub static ZEEK_LOG: ZeekLog = ZeekLog {
    path: "redis",
    fields: &[
        ("cmd.name", "string"),
        ("cmd.key", "string"),
        ("cmd.value", "string"),
        ("success", "bool"),
        ("reply.value", "string"),
    ],
    row: zeek_row,
};

fn zeek_row(ex: &Exchange, row: &mut Vec<ZVal>) -> bool {
    let f = &ex.fields;
    let name = f.text("command");
    // Zeek logs a key only for the commands its analyzer knows to have one.
    let zeek_key = name.is_some_and(|n| ZEEK_KEY_COMMANDS.contains(&upper(n).as_str()));
    row.push(ZVal::opt_text(name));
    row.push(if zeek_key {
        ZVal::opt_text(f.text("key"))
    } else {
        ZVal::Unset
    });
    row.push(ZVal::opt_text(f.text("value")));
    row.push(match f.get("success") {
        Some(Value::Bool(b)) => ZVal::Bool(*b),
        _ => ZVal::Unset,
    });
    row.push(ZVal::opt_text(f.text("reply_value")));
    true
}

fn upper(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_uppercase()
}

fn summarize(ex: &Exchange) -> Summary {
    let f = &ex.fields;
    let endpoint = match (f.text("command"), f.text("subcommand")) {
        (Some(c), Some(s)) => format!("{} {}", upper(c), String::from_utf8_lossy(s)),
        (Some(c), None) => upper(c),
        (None, _) => "(no command)".into(),
    };
    let (status, failed) = match f.get("success") {
        Some(Value::Bool(true)) => (Some("ok".to_string()), false),
        Some(Value::Bool(false)) => {
            // The error's code: its first word (`ERR`, `WRONGTYPE`, `NOAUTH` ...).
            let code = f
                .text("error")
                .map(|e| {
                    let w = e.split(|&c| c == b' ').next().unwrap_or_default();
                    String::from_utf8_lossy(&w[..w.len().min(32)]).into_owned()
                })
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "error".into());
            (Some(code), true)
        }
        _ => (None, false),
    };
    Summary {
        endpoint,
        status,
        failed,
    }
}

/// Every Redis 7 command name, lower case, sorted (for the probe).
const COMMANDS: &[&str] = &[
    "acl",
    "append",
    "asking",
    "auth",
    "bgrewriteaof",
    "bgsave",
    "bitcount",
    "bitfield",
    "bitfield_ro",
    "bitop",
    "bitpos",
    "blmove",
    "blmpop",
    "blpop",
    "brpop",
    "brpoplpush",
    "bzmpop",
    "bzpopmax",
    "bzpopmin",
    "client",
    "cluster",
    "command",
    "config",
    "copy",
    "dbsize",
    "debug",
    "decr",
    "decrby",
    "del",
    "discard",
    "dump",
    "echo",
    "eval",
    "eval_ro",
    "evalsha",
    "evalsha_ro",
    "exec",
    "exists",
    "expire",
    "expireat",
    "expiretime",
    "failover",
    "fcall",
    "fcall_ro",
    "flushall",
    "flushdb",
    "function",
    "geoadd",
    "geodist",
    "geohash",
    "geopos",
    "georadius",
    "georadius_ro",
    "georadiusbymember",
    "georadiusbymember_ro",
    "geosearch",
    "geosearchstore",
    "get",
    "getbit",
    "getdel",
    "getex",
    "getrange",
    "getset",
    "hdel",
    "hello",
    "hexists",
    "hget",
    "hgetall",
    "hincrby",
    "hincrbyfloat",
    "hkeys",
    "hlen",
    "hmget",
    "hmset",
    "hrandfield",
    "hscan",
    "hset",
    "hsetnx",
    "hstrlen",
    "hvals",
    "incr",
    "incrby",
    "incrbyfloat",
    "info",
    "keys",
    "lastsave",
    "latency",
    "lcs",
    "lindex",
    "linsert",
    "llen",
    "lmove",
    "lmpop",
    "lolwut",
    "lpop",
    "lpos",
    "lpush",
    "lpushx",
    "lrange",
    "lrem",
    "lset",
    "ltrim",
    "memory",
    "mget",
    "migrate",
    "module",
    "monitor",
    "move",
    "mset",
    "msetnx",
    "multi",
    "object",
    "persist",
    "pexpire",
    "pexpireat",
    "pexpiretime",
    "pfadd",
    "pfcount",
    "pfdebug",
    "pfmerge",
    "pfselftest",
    "ping",
    "psetex",
    "psubscribe",
    "psync",
    "pttl",
    "publish",
    "pubsub",
    "punsubscribe",
    "quit",
    "randomkey",
    "readonly",
    "readwrite",
    "rename",
    "renamenx",
    "replconf",
    "replicaof",
    "reset",
    "restore",
    "restore-asking",
    "role",
    "rpop",
    "rpoplpush",
    "rpush",
    "rpushx",
    "sadd",
    "save",
    "scan",
    "scard",
    "script",
    "sdiff",
    "sdiffstore",
    "select",
    "set",
    "setbit",
    "setex",
    "setnx",
    "setrange",
    "shutdown",
    "sinter",
    "sintercard",
    "sinterstore",
    "sismember",
    "slaveof",
    "slowlog",
    "smembers",
    "smismember",
    "smove",
    "sort",
    "sort_ro",
    "spop",
    "spublish",
    "srandmember",
    "srem",
    "sscan",
    "ssubscribe",
    "strlen",
    "subscribe",
    "substr",
    "sunion",
    "sunionstore",
    "sunsubscribe",
    "swapdb",
    "sync",
    "time",
    "touch",
    "ttl",
    "type",
    "unlink",
    "unsubscribe",
    "unwatch",
    "wait",
    "watch",
    "xack",
    "xadd",
    "xautoclaim",
    "xclaim",
    "xdel",
    "xgroup",
    "xinfo",
    "xlen",
    "xpending",
    "xrange",
    "xread",
    "xreadgroup",
    "xrevrange",
    "xsetid",
    "xtrim",
    "zadd",
    "zcard",
    "zcount",
    "zdiff",
    "zdiffstore",
    "zincrby",
    "zinter",
    "zintercard",
    "zinterstore",
    "zlexcount",
    "zmpop",
    "zmscore",
    "zpopmax",
    "zpopmin",
    "zrandmember",
    "zrange",
    "zrangebylex",
    "zrangebyscore",
    "zrangestore",
    "zrank",
    "zrem",
    "zremrangebylex",
    "zremrangebyrank",
    "zremrangebyscore",
    "zrevrange",
    "zrevrangebylex",
    "zrevrangebyscore",
    "zrevrank",
    "zscan",
    "zscore",
    "zunion",
    "zunionstore",
];

/// Redis commands that are also HTTP methods: an inline one is Redis only when its line is
/// not an HTTP request line.
const HTTP_METHOD_COMMANDS: &[&str] = &["copy", "get", "move", "unlink"];

/// Commands with subcommands: their endpoint in reports is `NAME SUBCOMMAND`.
const CONTAINERS: &[&str] = &[
    "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "LATENCY", "MEMORY", "MODULE",
    "OBJECT", "PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO",
];

/// Commands Zeek logs a key for (`cmd.key`), and where: the first argument, but `BITOP`'s
/// second (the destination) and `BLMPOP`'s third.
const ZEEK_KEY_COMMANDS: &[&str] = &[
    "APPEND",
    "BITCOUNT",
    "BITFIELD",
    "BITFIELD_RO",
    "BITOP",
    "BITPOS",
    "BLMPOP",
    "BLPOP",
    "BRPOP",
    "COPY",
    "DECR",
    "DECRBY",
    "DEL",
    "DUMP",
    "EXISTS",
    "EXPIRE",
    "EXPIREAT",
    "EXPIRETIME",
    "GET",
    "GETBIT",
    "GETDEL",
    "GETEX",
    "GETRANGE",
    "GETSET",
    "HDEL",
    "HGET",
    "HSET",
    "INCR",
    "INCRBY",
    "KEYS",
    "MGET",
    "MOVE",
    "MSET",
    "PERSIST",
    "RENAME",
    "SET",
    "STRLEN",
    "TTL",
    "TYPE",
];

/// Commands Zeek logs a value for (`cmd.value`): their second argument.
const ZEEK_VALUE_COMMANDS: &[&str] = &[
    "APPEND", "DECRBY", "EXPIRE", "EXPIREAT", "GETBIT", "GETSET", "HDEL", "HGET", "INCRBY", "MOVE",
    "MSET", "RENAME", "SET",
];

/// Further commands whose first argument is a key (beyond Zeek's list): the JSON output
/// names their key too.
const MORE_KEY_COMMANDS: &[&str] = &[
    "BLMOVE",
    "BRPOPLPUSH",
    "BZPOPMAX",
    "BZPOPMIN",
    "GEOADD",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GEORADIUS",
    "GEORADIUSBYMEMBER",
    "GEORADIUSBYMEMBER_RO",
    "GEORADIUS_RO",
    "GEOSEARCH",
    "GEOSEARCHSTORE",
    "HEXISTS",
    "HGETALL",
    "HINCRBY",
    "HINCRBYFLOAT",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HMSET",
    "HRANDFIELD",
    "HSCAN",
    "HSETNX",
    "HSTRLEN",
    "HVALS",
    "INCRBYFLOAT",
    "LCS",
    "LINDEX",
    "LINSERT",
    "LLEN",
    "LMOVE",
    "LPOP",
    "LPOS",
    "LPUSH",
    "LPUSHX",
    "LRANGE",
    "LREM",
    "LSET",
    "LTRIM",
    "MSETNX",
    "PEXPIRE",
    "PEXPIREAT",
    "PEXPIRETIME",
    "PFADD",
    "PFCOUNT",
    "PFMERGE",
    "PSETEX",
    "PTTL",
    "RENAMENX",
    "RESTORE",
    "RPOP",
    "RPOPLPUSH",
    "RPUSH",
    "RPUSHX",
    "SADD",
    "SCARD",
    "SDIFF",
    "SDIFFSTORE",
    "SETBIT",
    "SETEX",
    "SETNX",
    "SETRANGE",
    "SINTER",
    "SINTERSTORE",
    "SISMEMBER",
    "SMEMBERS",
    "SMISMEMBER",
    "SMOVE",
    "SORT",
    "SORT_RO",
    "SPOP",
    "SRANDMEMBER",
    "SREM",
    "SSCAN",
    "SUBSTR",
    "SUNION",
    "SUNIONSTORE",
    "TOUCH",
    "UNLINK",
    "WATCH",
    "XACK",
    "XADD",
    "XAUTOCLAIM",
    "XCLAIM",
    "XDEL",
    "XLEN",
    "XPENDING",
    "XRANGE",
    "XREVRANGE",
    "XSETID",
    "XTRIM",
    "ZADD",
    "ZCARD",
    "ZCOUNT",
    "ZDIFFSTORE",
    "ZINCRBY",
    "ZINTERSTORE",
    "ZLEXCOUNT",
    "ZMSCORE",
    "ZPOPMAX",
    "ZPOPMIN",
    "ZRANDMEMBER",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANGESTORE",
    "ZRANK",
    "ZREM",
    "ZREMRANGEBYLEX",
    "ZREMRANGEBYRANK",
    "ZREMRANGEBYSCORE",
    "ZREVRANGE",
    "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCAN",
    "ZSCORE",
    "ZUNIONSTORE",
];

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

// ---------------------------------------------------------------------------------------
// Detection

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Nothing yet.
    Empty,
    /// Consistent so far, too short to tell.
    Partial,
    /// This is it (for a client: an array of bulk strings).
    Strong,
    /// Could be (a client's inline Redis command; a server's simple string with spaces,
    /// which other line protocols' greetings look like too).
    Weak,
    /// Not Redis.
    No,
}

fn digits_line(b: &[u8], allow_neg: bool) -> Shape {
    let body = match b.first() {
        Some(b'-') if allow_neg => &b[1..],
        _ => b,
    };
    let n = body.iter().take_while(|c| c.is_ascii_digit()).count();
    let rest = &body[n..];
    if n > 19 {
        return Shape::No;
    }
    match rest {
        [] => Shape::Partial,
        [b'\r'] if n > 0 => Shape::Partial,
        [b'\r', b'\n', ..] if n > 0 => Shape::Strong,
        _ => Shape::No,
    }
}

/// A client's first bytes: `*N\r\n$` or an inline line starting with a Redis command.
fn client_shape(b: &[u8]) -> (Shape, bool) {
    if b.is_empty() {
        return (Shape::Empty, false);
    }
    if b[0] == b'*' {
        return match digits_line(&b[1..], false) {
            Shape::Strong => {
                let at = 1 + b[1..].iter().position(|&c| c == b'\n').unwrap_or(0) + 1;
                match b.get(at) {
                    None => (Shape::Partial, false),
                    Some(b'$') => (Shape::Strong, false),
                    Some(_) => (Shape::No, false),
                }
            }
            s => (s, false),
        };
    }
    let Some(eol) = b.iter().position(|&c| c == b'\n') else {
        let plausible = b.len() < 256 && b.iter().all(|c| c.is_ascii_graphic() || *c == b' ');
        return (if plausible { Shape::Partial } else { Shape::No }, false);
    };
    let line = &b[..eol];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut words = line
        .split(|&c| c == b' ' || c == b'\t')
        .filter(|w| !w.is_empty());
    let Some(first) = words.next() else {
        return (Shape::No, false);
    };
    let name = String::from_utf8_lossy(first).to_ascii_lowercase();
    if COMMANDS.binary_search(&name.as_str()).is_err() {
        return (Shape::No, false);
    }
    if line.windows(5).any(|w| w.eq_ignore_ascii_case(b"HTTP/")) {
        return (Shape::No, false);
    }
    let method = HTTP_METHOD_COMMANDS.contains(&name.as_str());
    if method && words.next().is_some_and(|w| w.starts_with(b"/")) {
        // `GET /path`: an HTTP/0.9 request.
        return (Shape::No, false);
    }
    (Shape::Weak, method)
}

/// A server's first bytes: a RESP value's first line.
fn server_shape(b: &[u8]) -> Shape {
    let Some((&ty, rest)) = b.split_first() else {
        return Shape::Empty;
    };
    let line_end = rest.iter().position(|&c| c == b'\n');
    let simple = |upper_word: bool| -> Shape {
        let Some(e) = line_end else {
            return if rest.len() < 256 && rest.iter().all(|c| !c.is_ascii_control() || *c == b'\r')
            {
                Shape::Partial
            } else {
                Shape::No
            };
        };
        let Some(line) = rest[..e].strip_suffix(b"\r") else {
            return Shape::No;
        };
        if line.iter().any(|c| c.is_ascii_control()) {
            return Shape::No;
        }
        let word = line.split(|&c| c == b' ').next().unwrap_or_default();
        let strong = if upper_word {
            // Redis errors start with an upper-case code: ERR, WRONGTYPE, NOAUTH ...
            !word.is_empty() && word.iter().all(|c| c.is_ascii_uppercase())
        } else {
            !line.is_empty() && !line.contains(&b' ')
        };
        if strong { Shape::Strong } else { Shape::Weak }
    };
    match ty {
        b'+' => simple(false),
        b'-' => simple(true),
        b':' | b'(' => digits_line(rest, true),
        b'$' | b'*' => digits_line(rest, true),
        b'%' | b'~' | b'>' | b'|' | b'!' | b'=' => digits_line(rest, false),
        b'_' => match rest {
            [] | [b'\r'] => Shape::Partial,
            [b'\r', b'\n', ..] => Shape::Strong,
            _ => Shape::No,
        },
        b'#' => match rest {
            [] | [b't' | b'f'] | [b't' | b'f', b'\r'] => Shape::Partial,
            [b't' | b'f', b'\r', b'\n', ..] => Shape::Strong,
            _ => Shape::No,
        },
        b',' => match line_end {
            None if rest.len() < 64 => Shape::Partial,
            Some(e)
                if e > 1
                    && rest[..e - 1]
                        .iter()
                        .all(|c| b"0123456789.-+eEinfa".contains(c)) =>
            {
                Shape::Strong
            }
            _ => Shape::No,
        },
        _ => Shape::No,
    }
}

/// Content decides: a client array of bulk strings is Redis whatever the server says; an
/// inline command needs a RESP-shaped answer (or, for `GET`-like commands that HTTP would
/// otherwise claim, a line that is no HTTP request); a server speaking alone waits for the
/// client. The port only breaks ties when the connection ends undecided.
fn probe(p: &ProbeInput<'_>) -> Probe {
    let (c, method) = client_shape(p.to_server);
    let s = server_shape(p.to_client);
    match (c, s) {
        (Shape::No, _) | (_, Shape::No) if c != Shape::Strong => Probe::No,
        (Shape::Strong, _) => Probe::Yes,
        (Shape::Weak, Shape::Strong) => Probe::Yes,
        (Shape::Weak, Shape::Empty) if method => Probe::Yes,
        _ => Probe::NeedMore,
    }
}

// ---------------------------------------------------------------------------------------
// Commands

/// A bounded byte string: keeps the first [`MAX_VALUE`] bytes pushed into it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Bounded(Vec<u8>);

impl Bounded {
    fn push(&mut self, b: &[u8]) {
        let room = MAX_VALUE.saturating_sub(self.0.len());
        self.0.extend_from_slice(&b[..b.len().min(room)]);
    }
}

/// A command as read.
#[derive(Clone, Debug, Default)]
struct Cmd {
    start: Ts,
    end: Ts,
    /// The first [`RAW_KEPT`] arguments (the name first), each cut to [`MAX_VALUE`] bytes.
    raw: Vec<Vec<u8>>,
    /// Arguments, the name included.
    argc: u64,
    inline: bool,
    complete: bool,
}

/// What a command does to the connection once answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Special {
    None,
    Reset,
    Hello,
    Monitor,
}

/// Splits an inline command line into tokens as Zeek's analyzer does: whitespace (NUL, TAB,
/// LF, CR, space) separates tokens; a quote starts a quoted run that whitespace does not end
/// (a backslash escapes the quote inside it); tokens keep their quotes and backslashes.
/// (Redis itself unquotes; Zeek logs the tokens as written, and so do we.)
fn tokenize_inline(line: &[u8], mut token: impl FnMut(&[u8])) {
    let ws = |c: u8| matches!(c, 0 | 9 | 10 | 13 | 32);
    let n = line.len();
    let mut i = 0;
    loop {
        while i < n && ws(line[i]) {
            i += 1;
        }
        if i >= n {
            return;
        }
        let start = i;
        let mut quote: Option<u8> = None;
        while i < n {
            let c = line[i];
            match quote {
                Some(q) => {
                    if c == b'\\' && line.get(i + 1) == Some(&q) {
                        i += 1;
                    } else if c == q {
                        quote = None;
                    }
                    i += 1;
                }
                None if ws(c) => break,
                None => {
                    if c == b'"' || c == b'\'' {
                        quote = Some(c);
                    }
                    i += 1;
                }
            }
        }
        token(&line[start..i.min(n)]);
    }
}

/// Builds commands from the client's RESP values.
#[derive(Debug, Default)]
struct ReqBuilder {
    now: Ts,
    cur: Cmd,
    /// Index in `cur.raw` of the bulk string being read, if it is kept.
    arg: Option<usize>,
    done: Vec<Cmd>,
}

impl ReqBuilder {
    /// Bytes were lost inside the current bulk string: its kept prefix stops there.
    fn gap(&mut self) {
        self.arg = None;
        self.cur.complete = false;
    }
}

impl Visit for ReqBuilder {
    fn begin(&mut self) {
        self.cur = Cmd {
            start: self.now,
            complete: true,
            ..Cmd::default()
        };
        self.arg = None;
    }
    fn scalar(&mut self, _ty: u8, _text: &[u8]) {}
    fn bulk_start(&mut self, _ty: u8, _len: Option<u64>) {
        self.arg = (self.cur.raw.len() < RAW_KEPT).then(|| {
            self.cur.raw.push(Vec::new());
            self.cur.raw.len() - 1
        });
    }
    fn bulk_data(&mut self, data: &[u8]) {
        if let Some(a) = self.arg
            && let Some(v) = self.cur.raw.get_mut(a)
        {
            let room = MAX_VALUE.saturating_sub(v.len());
            v.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    fn bulk_end(&mut self) {
        self.cur.argc += 1;
        self.arg = None;
    }
    fn agg_start(&mut self, _ty: u8, _len: Option<u64>) {}
    fn agg_end(&mut self) {}
    fn inline(&mut self, line: &[u8]) {
        let cur = &mut self.cur;
        cur.inline = true;
        tokenize_inline(line, |t| {
            if cur.raw.len() < RAW_KEPT {
                cur.raw.push(t[..t.len().min(MAX_VALUE)].to_vec());
            }
            cur.argc += 1;
        });
    }
    fn message_end(&mut self) {
        let mut c = std::mem::take(&mut self.cur);
        // An empty array or an empty inline line is no command: Redis skips it.
        if c.argc > 0 {
            c.end = self.now;
            self.done.push(c);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Replies

/// A reply (or push) as read.
#[derive(Clone, Debug, Default)]
struct Reply {
    start: Ts,
    end: Ts,
    /// Type byte of the top-level value.
    ty: u8,
    /// RESP2 null (`$-1`, `*-1`).
    null: bool,
    value: Bounded,
    attrs: Option<Bounded>,
    /// Top-level array: its first element's text (up to 16 bytes) and its third as integer.
    head: Vec<u8>,
    third_int: Option<i64>,
    /// A RESP3-only type appears in it.
    resp3: bool,
    complete: bool,
}

impl Reply {
    fn is_error(&self) -> bool {
        matches!(self.ty, b'-' | b'!')
    }
    fn type_name(&self) -> &'static str {
        match (self.ty, self.null) {
            (b'$' | b'*', true) | (b'_', _) => "null",
            (b'+', _) => "simple_string",
            (b'-', _) => "error",
            (b':', _) => "integer",
            (b'$', _) => "bulk_string",
            (b'*', _) => "array",
            (b'#', _) => "boolean",
            (b',', _) => "double",
            (b'(', _) => "big_number",
            (b'!', _) => "bulk_error",
            (b'=', _) => "verbatim_string",
            (b'%', _) => "map",
            (b'~', _) => "set",
            (b'>', _) => "push",
            _ => "unknown",
        }
    }
}

/// Renders the server's RESP values as Zeek does, bounded.
#[derive(Debug, Default)]
struct ReplyBuilder {
    now: Ts,
    cur: Reply,
    /// Open aggregates: type byte and values begun so far.
    stack: Vec<(u8, u64)>,
    /// Open attributes, and whether the outermost one is at the top level (rendered into
    /// `attrs`; nested attributes are not rendered).
    attr_depth: usize,
    attr_top: bool,
    /// The bulk string being read is the top-level array's first element.
    in_head: bool,
    /// Bytes were lost inside the message: rendering stops there.
    frozen: bool,
    done: Vec<Reply>,
}

impl ReplyBuilder {
    fn out(&mut self, b: &[u8]) {
        if self.frozen {
            return;
        }
        if self.attr_depth > 0 {
            if self.attr_top {
                self.cur.attrs.get_or_insert_with(Bounded::default).push(b);
            }
        } else {
            self.cur.value.push(b);
        }
    }

    /// A value of type `ty` begins: the separator before it, and what the top level is.
    fn enter(&mut self, ty: u8) {
        if !matches!(ty, b'+' | b'-' | b':' | b'$' | b'*') {
            self.cur.resp3 = true;
        }
        if ty == b'|' {
            return;
        }
        match self.stack.last_mut() {
            Some((pty, idx)) => {
                let sep: &[u8] = match (*pty, *idx) {
                    (_, 0) => b"",
                    (b'%' | b'|', i) if i % 2 == 1 => b": ",
                    _ => b", ",
                };
                *idx += 1;
                self.out(sep);
            }
            None => self.cur.ty = ty,
        }
    }

    /// Position of the value just entered in the top-level array, if it is directly in it.
    fn top_array_index(&self) -> Option<u64> {
        match self.stack.as_slice() {
            [(b'*', i)] if self.attr_depth == 0 => Some(*i),
            _ => None,
        }
    }

    fn gap(&mut self) {
        self.frozen = true;
        self.in_head = false;
        self.cur.complete = false;
    }
}

impl Visit for ReplyBuilder {
    fn begin(&mut self) {
        self.cur = Reply {
            start: self.now,
            complete: true,
            ..Reply::default()
        };
        self.stack.clear();
        self.attr_depth = 0;
        self.attr_top = false;
        self.in_head = false;
        self.frozen = false;
    }
    fn scalar(&mut self, ty: u8, text: &[u8]) {
        self.enter(ty);
        match ty {
            b'_' => self.out(b"null"),
            b'#' => self.out(if text == b"t" { b"T" } else { b"F" }),
            _ => self.out(text),
        }
        match self.top_array_index() {
            Some(1) => self.cur.head = text[..text.len().min(16)].to_vec(),
            Some(3) if ty == b':' => self.cur.third_int = parse_int(text),
            _ => {}
        }
    }
    fn bulk_start(&mut self, ty: u8, len: Option<u64>) {
        self.enter(ty);
        if self.stack.is_empty() && len.is_none() {
            self.cur.null = true;
        }
        self.in_head = self.top_array_index() == Some(1);
    }
    fn bulk_data(&mut self, data: &[u8]) {
        self.out(data);
        if self.in_head {
            let room = 16usize.saturating_sub(self.cur.head.len());
            self.cur
                .head
                .extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    fn bulk_end(&mut self) {
        self.in_head = false;
    }
    fn agg_start(&mut self, ty: u8, len: Option<u64>) {
        self.enter(ty);
        if ty == b'|' {
            if self.attr_depth == 0 {
                self.attr_top = self.stack.is_empty();
            }
            self.attr_depth += 1;
        }
        if self.stack.is_empty() && len.is_none() {
            self.cur.null = true;
        }
        self.out(match ty {
            b'%' | b'|' => b"{",
            b'~' => b"(",
            _ => b"[",
        });
        self.stack.push((ty, 0));
    }
    fn agg_end(&mut self) {
        let Some((ty, _)) = self.stack.pop() else {
            return;
        };
        self.out(match ty {
            b'%' | b'|' => b"}",
            b'~' => b")",
            _ => b"]",
        });
        if ty == b'|' {
            self.attr_depth = self.attr_depth.saturating_sub(1);
        }
    }
    fn inline(&mut self, _line: &[u8]) {}
    fn message_end(&mut self) {
        let mut r = std::mem::take(&mut self.cur);
        r.end = self.now;
        self.done.push(r);
        self.stack.clear();
    }
}

// ---------------------------------------------------------------------------------------
// The connection

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

fn eq(a: Option<&Vec<u8>>, b: &str) -> bool {
    a.is_some_and(|a| a.eq_ignore_ascii_case(b.as_bytes()))
}

/// The request fields of a command, with Zeek's key/value rules.
fn cmd_fields(c: &Cmd) -> Fields {
    let mut f = Fields::default();
    let name = c.raw.first().cloned().unwrap_or_default();
    let up = upper(&name);
    let arg = |i: usize| c.raw.get(i).cloned();
    f.set("command", Value::Text(name));
    f.set("args", Value::U64(c.argc.saturating_sub(1)));
    let key = match up.as_str() {
        "BITOP" => arg(2),
        "BLMPOP" => arg(3),
        u if ZEEK_KEY_COMMANDS.contains(&u) || MORE_KEY_COMMANDS.contains(&u) => arg(1),
        _ => None,
    };
    if let Some(k) = key {
        f.set("key", Value::Text(k));
    }
    if ZEEK_VALUE_COMMANDS.contains(&up.as_str())
        && let Some(v) = arg(2)
    {
        f.set("value", Value::Text(v));
    }
    if CONTAINERS.contains(&up.as_str())
        && let Some(s) = arg(1)
    {
        f.set("subcommand", Value::text(upper(&s[..s.len().min(32)])));
    }
    if c.inline {
        f.set("inline", Value::Bool(true));
    }
    f
}

fn reply_fields(r: &Reply) -> Fields {
    let mut f = Fields::default();
    f.set("reply_type", Value::text(r.type_name()));
    f.set("reply_value", Value::Text(r.value.0.clone()));
    if let Some(a) = &r.attrs {
        f.set("reply_attributes", Value::Text(a.0.clone()));
    }
    f.set("success", Value::Bool(!r.is_error()));
    if r.is_error() {
        f.set("error", Value::Text(r.value.0.clone()));
    }
    f
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

    fn on_command(&mut self, cmd: Cmd, out: &mut Emitter) {
        let mut fields = cmd_fields(&cmd);
        let name = upper(cmd.raw.first().map(Vec::as_slice).unwrap_or_default());
        let arg1 = cmd.raw.get(1);
        let client_reply = if name == "CLIENT" && cmd.argc == 3 && eq(arg1, "reply") {
            cmd.raw.get(2).map(|a| a.to_ascii_lowercase())
        } else {
            None
        };
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

    fn on_reply(&mut self, r: Reply, out: &mut Emitter) {
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
            out.emit(Event::ResponseEnd {
                ts: r.end,
                key: KEY,
                fields: reply_fields(&r),
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
        self.exchange(p, &r, out);
        self.release(out);
    }

    fn exchange(&mut self, p: Pending, r: &Reply, out: &mut Emitter) {
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
        out.emit(Event::ResponseEnd {
            ts: r.end,
            key: KEY,
            fields: reply_fields(r),
            complete: r.complete,
        });
    }

    fn drain(&mut self, out: &mut Emitter) {
        for c in std::mem::take(&mut self.req.done) {
            self.on_command(c, out);
        }
        for r in std::mem::take(&mut self.rep.done) {
            self.on_reply(r, out);
        }
    }
}

impl Parser for Redis {
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
                    let fields = cmd_fields(&cmd);
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
