//! Detection: whether a connection's first bytes are Redis. A client's array of bulk strings
//! is; an inline command (a line starting with a Redis command name) needs the server's
//! answer to look like RESP, or to be a `GET`-like line that no HTTP request would be.

use crate::l7::{Probe, ProbeInput};

/// Every Redis 7 command name, lower case, sorted (for the probe).
pub(super) const COMMANDS: &[&str] = &[
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
    /// A client's inline line whose first word is no Redis command (`FAKE COMMAND`, a
    /// module's command): Redis only on Redis's port, with a RESP answer.
    Unknown,
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
    if line.windows(5).any(|w| w.eq_ignore_ascii_case(b"HTTP/")) {
        return (Shape::No, false);
    }
    let name = String::from_utf8_lossy(first).to_ascii_lowercase();
    if COMMANDS.binary_search(&name.as_str()).is_err() {
        // Zeek attaches its Redis analyzer by port: any command is parsed there.
        let words = line
            .iter()
            .all(|c| c.is_ascii_graphic() || *c == b' ' || *c == b'\t');
        let ident = first
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_-.|".contains(c));
        return (
            if words && ident {
                Shape::Unknown
            } else {
                Shape::No
            },
            false,
        );
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
/// client. The port only breaks ties when the connection ends undecided, and lets an inline
/// command Redis does not know count when the server answers in RESP (as Zeek, which
/// attaches its analyzer to the port, logs it).
pub(super) fn probe(p: &ProbeInput<'_>) -> Probe {
    let (c, method) = client_shape(p.to_server);
    let s = server_shape(p.to_client);
    let on_port = super::PROTOCOL.ports.contains(&p.server_port);
    match (c, s) {
        (Shape::Unknown, Shape::Strong) if on_port => Probe::Yes,
        (Shape::Unknown, Shape::Empty | Shape::Partial) if on_port => Probe::NeedMore,
        (Shape::Unknown, _) => Probe::No,
        (Shape::No, _) | (_, Shape::No) if c != Shape::Strong => Probe::No,
        (Shape::Strong, _) => Probe::Yes,
        (Shape::Weak, Shape::Strong) => Probe::Yes,
        (Shape::Weak, Shape::Empty) if method => Probe::Yes,
        _ => Probe::NeedMore,
    }
}
