//! What a command's name says: which argument is its key and which its value (Zeek's rules,
//! and further key commands for the JSON output), which commands have subcommands, and the
//! request fields of a command built from them.

use std::sync::LazyLock;

use rustc_hash::FxHashMap;

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

/// What the tables say of a name: bits of [`Name::class`].
mod class {
    /// In Zeek's key commands.
    pub(super) const ZEEK_KEY: u8 = 1;
    /// Its first argument is a key (Zeek's key commands and the further ones).
    pub(super) const KEY: u8 = 2;
    /// Zeek logs its second argument as the value.
    pub(super) const VALUE: u8 = 4;
    /// It has subcommands.
    pub(super) const CONTAINER: u8 = 8;
}

/// A name's bytes and length as integers: the key of [`CLASSES`] (compared and hashed a word at
/// a time, where the sorted tables it replaces were searched with a string comparison, a
/// `memcmp` call, per probe).
type NameKey = (u64, u64, u64, usize);

/// Every name of the tables, with its [`class`] bits.
static CLASSES: LazyLock<FxHashMap<NameKey, u8>> = LazyLock::new(|| {
    let mut m = FxHashMap::default();
    for (table, bits) in [
        (ZEEK_KEY_COMMANDS, class::ZEEK_KEY | class::KEY),
        (MORE_KEY_COMMANDS, class::KEY),
        (ZEEK_VALUE_COMMANDS, class::VALUE),
        (CONTAINERS, class::CONTAINER),
    ] {
        for n in table {
            *m.entry(Name::of(n.as_bytes()).key()).or_insert(0) |= bits;
        }
    }
    m
});

impl Name {
    fn key(&self) -> NameKey {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&self.buf[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        (word(0), word(1), word(2), self.len)
    }

    /// The name's [`class`] bits (0 for a name no table has).
    fn class(&self) -> u8 {
        if self.len == 0 {
            return 0;
        }
        CLASSES.get(&self.key()).copied().unwrap_or(0)
    }
}

/// Whether Zeek logs a key for the command named `name` (any case).
pub(super) fn zeek_logs_key(name: &[u8]) -> bool {
    Name::of(name).class() & class::ZEEK_KEY != 0
}

/// The request fields of a command, with Zeek's key/value rules, set in `f` (an empty list,
/// for its room).
pub(super) fn cmd_fields(c: &mut Cmd, name: &Name, mut f: Fields) -> Fields {
    let bits = name.class();
    let key_at = match name.as_str() {
        "BITOP" => Some(2),
        "BLMPOP" => Some(3),
        _ if bits & class::KEY != 0 => Some(1),
        _ => None,
    };
    let value_at = (bits & class::VALUE != 0).then_some(2);
    let subcommand = if bits & class::CONTAINER != 0 {
        c.raw.get(1).map(|s| upper(&s[..s.len().min(32)]))
    } else {
        None
    };
    // The arguments a field shows are moved into it (the command is read once): no copy.
    let mut take = |i: usize| c.raw.get_mut(i).map(std::mem::take);
    let command = take(0).unwrap_or_default();
    let key = key_at.and_then(&mut take);
    let value = match value_at {
        Some(v) if Some(v) == key_at => key.clone(),
        Some(v) => take(v),
        None => None,
    };
    f.set("command", Value::Text(command));
    f.set("args", Value::U64(c.argc.saturating_sub(1)));
    if let Some(k) = key {
        f.set("key", Value::Text(k));
    }
    if let Some(v) = value {
        f.set("value", Value::Text(v));
    }
    if let Some(s) = subcommand {
        f.set("subcommand", Value::text(s));
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

    /// Each name has the bits of exactly the tables that list it, in any case; other names
    /// (a table name with one more byte, one byte less, or a NUL after it) have none.
    #[test]
    fn classes_are_the_tables() {
        let tables = [
            (ZEEK_KEY_COMMANDS, class::ZEEK_KEY),
            (ZEEK_KEY_COMMANDS, class::KEY),
            (MORE_KEY_COMMANDS, class::KEY),
            (ZEEK_VALUE_COMMANDS, class::VALUE),
            (CONTAINERS, class::CONTAINER),
        ];
        let all = tables.iter().flat_map(|(t, _)| t.iter());
        for n in all.clone() {
            let want = tables
                .iter()
                .filter(|(t, _)| t.contains(n))
                .fold(0, |b, (_, bit)| b | bit);
            assert_eq!(Name::of(n.as_bytes()).class(), want, "{n}");
            let lower = n.to_ascii_lowercase();
            assert_eq!(Name::of(lower.as_bytes()).class(), want, "{lower}");
            for other in [
                format!("{n}X"),
                format!("{n}\0"),
                n[..n.len() - 1].to_string(),
            ] {
                if !all.clone().any(|m| *m == other) {
                    assert_eq!(Name::of(other.as_bytes()).class(), 0, "{other:?}");
                }
            }
        }
        assert_eq!(Name::of(b"").class(), 0);
    }
}
