//! What a command's name says: which argument is its key and which its value (Zeek's rules,
//! and further key commands for the JSON output), which commands have subcommands, and the
//! request fields of a command built from them.

use std::sync::LazyLock;

use super::message::Cmd;
use crate::model::{Fields, Value};

/// Commands with subcommands: their endpoint in reports is `NAME SUBCOMMAND`.
const CONTAINERS: &[&str] = &[
    "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "LATENCY", "MEMORY", "MODULE",
    "OBJECT", "PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO",
];

/// Commands Zeek logs a key for (`cmd.key`), and where: the first argument, but `BITOP`'s
/// second (the destination) and `BLMPOP`'s third.
pub(super) const ZEEK_KEY_COMMANDS: &[&str] = &[
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

/// A command name (or any argument) in upper case, for comparing with the tables.
pub(super) fn upper(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_uppercase()
}

/// Names longer than this match no table (a test holds the tables to it).
const NAME_MAX: usize = 24;

/// A command name in upper case, held on the stack, for comparing with the tables (what
/// [`upper`] gives, without allocating): a name longer than [`NAME_MAX`] or not ASCII is held
/// as the empty name, which no table has.
pub(super) struct Name {
    buf: [u8; NAME_MAX],
    len: usize,
}

impl Name {
    pub(super) fn of(b: &[u8]) -> Name {
        let mut buf = [0u8; NAME_MAX];
        let len = match buf.get_mut(..b.len()) {
            Some(d) if b.is_ascii() => {
                d.copy_from_slice(b);
                d.make_ascii_uppercase();
                b.len()
            }
            _ => 0,
        };
        Name { buf, len }
    }
    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// A table sorted, for binary search.
fn sorted(tables: &[&[&'static str]]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = tables.iter().flat_map(|t| t.iter().copied()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Zeek's key commands, sorted.
static ZEEK_KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| sorted(&[ZEEK_KEY_COMMANDS]));
/// Every command whose first argument is a key, sorted.
static ALL_KEYS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| sorted(&[ZEEK_KEY_COMMANDS, MORE_KEY_COMMANDS]));

/// Whether Zeek logs a key for the command named `name` (any case).
pub(super) fn zeek_logs_key(name: &[u8]) -> bool {
    ZEEK_KEYS.binary_search(&Name::of(name).as_str()).is_ok()
}

/// The request fields of a command, with Zeek's key/value rules, set in `f` (an empty list,
/// for its room).
pub(super) fn cmd_fields(c: &Cmd, mut f: Fields) -> Fields {
    let name: &[u8] = c.raw.first().map_or(&[], |a| a);
    let up = Name::of(name);
    let up = up.as_str();
    let arg = |i: usize| c.raw.get(i).map(|a| &a[..]);
    f.set("command", Value::text(name));
    f.set("args", Value::U64(c.argc.saturating_sub(1)));
    let key = match up {
        "BITOP" => arg(2),
        "BLMPOP" => arg(3),
        u if ALL_KEYS.binary_search(&u).is_ok() => arg(1),
        _ => None,
    };
    if let Some(k) = key {
        f.set("key", Value::text(k));
    }
    if ZEEK_VALUE_COMMANDS.contains(&up)
        && let Some(v) = arg(2)
    {
        f.set("value", Value::text(v));
    }
    if CONTAINERS.contains(&up)
        && let Some(s) = arg(1)
    {
        f.set("subcommand", Value::text(upper(&s[..s.len().min(32)])));
    }
    if c.inline {
        f.set("inline", Value::Bool(true));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_the_tables_fit_the_stack_name() {
        for t in [
            CONTAINERS,
            ZEEK_KEY_COMMANDS,
            ZEEK_VALUE_COMMANDS,
            MORE_KEY_COMMANDS,
        ] {
            for n in t {
                assert!(n.len() <= NAME_MAX && n.is_ascii(), "{n}");
                assert_eq!(*n, n.to_ascii_uppercase(), "{n}");
                assert_eq!(Name::of(n.to_ascii_lowercase().as_bytes()).as_str(), *n);
                assert_eq!(Name::of(n.as_bytes()).as_str(), upper(n.as_bytes()));
            }
        }
        // Names the stack cannot hold match nothing, as their upper-case string would not.
        let long = [b'A'; NAME_MAX + 1];
        assert_eq!(Name::of(&long).as_str(), "");
        assert_eq!(Name::of("gét".as_bytes()).as_str(), "");
        assert!(zeek_logs_key(b"get") && zeek_logs_key(b"SeT") && !zeek_logs_key(b"PING"));
    }
}
