//! What a command's name says: which argument is its key and which its value (Zeek's rules,
//! and further key commands for the JSON output), which commands have subcommands, and the
//! request fields of a command built from them.

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

/// The request fields of a command, with Zeek's key/value rules.
pub(super) fn cmd_fields(c: &Cmd) -> Fields {
    let mut f = Fields::default();
    let name = c.raw.first().cloned().unwrap_or_default();
    let up = upper(&name);
    let arg = |i: usize| c.raw.get(i).cloned();
    f.set("command", Value::owned(name));
    f.set("args", Value::U64(c.argc.saturating_sub(1)));
    let key = match up.as_str() {
        "BITOP" => arg(2),
        "BLMPOP" => arg(3),
        u if ZEEK_KEY_COMMANDS.contains(&u) || MORE_KEY_COMMANDS.contains(&u) => arg(1),
        _ => None,
    };
    if let Some(k) = key {
        f.set("key", Value::owned(k));
    }
    if ZEEK_VALUE_COMMANDS.contains(&up.as_str())
        && let Some(v) = arg(2)
    {
        f.set("value", Value::owned(v));
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
