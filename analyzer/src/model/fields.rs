//! Protocol fields: the named values a parser attaches to a request or a response.

/// Bytes of a text value: up to [`TEXT_INLINE`] of them are held in place, longer ones on the
/// heap. Most texts of small messages are short (a method, a version, a reason phrase, a
/// content type, a host name, a DNS type); held in place they cost no allocation to make,
/// copy or free.
pub type Text = smallvec::SmallVec<[u8; TEXT_INLINE]>;

/// Bytes a [`Text`] holds without allocating (with smallvec's `union` layout a `Text` is
/// three words, as a `Vec` is).
pub const TEXT_INLINE: usize = 16;

/// A protocol field value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Text as it appeared on the wire (not necessarily UTF-8).
    Text(Text),
    /// Unsigned number.
    U64(u64),
    /// Signed number.
    I64(i64),
    /// List of unsigned numbers.
    Counts(Vec<u64>),
    /// Boolean.
    Bool(bool),
    /// List of texts.
    List(Vec<Vec<u8>>),
}

impl Value {
    /// Heap bytes the value holds.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Text(t) if t.spilled() => t.capacity(),
            Value::Text(_) => 0,
            Value::Counts(c) => c.capacity() * 8,
            Value::List(l) => {
                l.capacity() * std::mem::size_of::<Vec<u8>>()
                    + l.iter().map(Vec::capacity).sum::<usize>()
            }
            Value::U64(_) | Value::I64(_) | Value::Bool(_) => 0,
        }
    }

    /// A text value that takes `v`'s buffer when it is too long to be held in place.
    pub fn owned(v: Vec<u8>) -> Value {
        Value::Text(if v.len() <= TEXT_INLINE {
            Text::from_slice(&v)
        } else {
            Text::from_vec(v)
        })
    }

    /// A text value from a string.
    pub fn text(s: impl AsRef<[u8]>) -> Value {
        Value::Text(Text::from_slice(s.as_ref()))
    }
}

/// Fields a [`Fields`] makes room for when its first is set.
pub const FIRST_ROOM: usize = 8;

/// Protocol-specific fields of a message, in the order they were set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(pub Vec<(&'static str, Value)>);

/// Whether two field names are the same. Names are string literals, so the one looked for is
/// usually the very string stored (same address: no byte compared), and most others differ
/// in length or first byte; only the rest are compared byte by byte (a `memcmp` call).
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && (std::ptr::eq(a.as_ptr(), b.as_ptr())
            || (a.as_bytes().first() == b.as_bytes().first() && a == b))
}

impl Fields {
    /// Heap bytes the fields hold (what memory budgets count for them).
    pub fn heap_bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<(&'static str, Value)>()
            + self.0.iter().map(|(_, v)| v.heap_bytes()).sum::<usize>()
    }

    /// Sets a field, replacing an earlier value of the same name.
    pub fn set(&mut self, name: &'static str, v: Value) {
        match self.0.iter_mut().find(|(n, _)| same_name(n, name)) {
            Some(slot) => slot.1 = v,
            None => {
                // Room for a message's usual fields at once, instead of growing 4, 8, 16.
                if self.0.capacity() == 0 {
                    self.0.reserve_exact(FIRST_ROOM);
                }
                self.0.push((name, v));
            }
        }
    }
    /// Looks a field up.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(n, _)| same_name(n, name))
            .map(|(_, v)| v)
    }
    /// Adds all of `other`, replacing same-named fields.
    pub fn merge(&mut self, mut other: Fields) {
        self.absorb(&mut other);
    }
    /// Moves all of `other`'s fields here, replacing same-named ones, and leaves `other`
    /// empty with room to reuse (an empty `self` takes `other`'s list whole, and `other` gets
    /// `self`'s).
    pub fn absorb(&mut self, other: &mut Fields) {
        if self.0.is_empty() && self.0.capacity() <= other.0.capacity() {
            std::mem::swap(self, other);
            return;
        }
        self.0.reserve(other.0.len());
        for (n, v) in other.0.drain(..) {
            self.set(n, v);
        }
    }
    /// A text field as bytes.
    pub fn text(&self, name: &str) -> Option<&[u8]> {
        match self.get(name) {
            Some(Value::Text(t)) => Some(t),
            _ => None,
        }
    }
    /// A numeric field.
    pub fn u64(&self, name: &str) -> Option<u64> {
        match self.get(name) {
            Some(Value::U64(v)) => Some(*v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_up_to_the_inline_size_hold_no_heap_bytes() {
        for len in [0, 1, TEXT_INLINE - 1, TEXT_INLINE, TEXT_INLINE + 1, 300] {
            let bytes: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let heap = len > TEXT_INLINE;
            for v in [Value::text(&bytes), Value::owned(bytes.clone())] {
                let Value::Text(t) = &v else {
                    panic!("not text")
                };
                assert_eq!(&t[..], &bytes[..]);
                assert_eq!(t.spilled(), heap, "{len} bytes");
                assert_eq!(v.heap_bytes() == 0, !heap);
                assert!(!heap || v.heap_bytes() >= len);
            }
        }
        // A long vector's buffer is taken, not copied.
        let long = vec![b'x'; 100];
        let at = long.as_ptr();
        let Value::Text(t) = Value::owned(long) else {
            panic!("not text")
        };
        assert_eq!(t.as_ptr(), at);
        // As big as the Vec it replaced: values and exchanges do not grow.
        assert_eq!(std::mem::size_of::<Text>(), std::mem::size_of::<Vec<u8>>());
    }

    #[test]
    fn absorb_moves_fields_over_and_leaves_the_room_behind() {
        let mut a = Fields::default();
        a.set("method", Value::text("GET"));
        a.set("status_code", Value::U64(100));
        let mut b = Fields::default();
        b.set("status_code", Value::U64(200));
        b.set("status_msg", Value::text("OK"));
        let room = b.0.capacity();
        a.absorb(&mut b);
        assert_eq!(a.text("method"), Some(&b"GET"[..]));
        assert_eq!(a.u64("status_code"), Some(200), "the later value wins");
        assert_eq!(a.text("status_msg"), Some(&b"OK"[..]));
        assert_eq!(a.0.len(), 3, "replaced in place, not appended");
        assert!(b.0.is_empty());
        assert_eq!(b.0.capacity(), room, "emptied, its room kept for reuse");
        // An empty list takes the other's whole (no field moved one by one).
        let mut empty = Fields::default();
        let at = a.0.as_ptr();
        empty.absorb(&mut a);
        assert_eq!(empty.0.as_ptr(), at);
        assert_eq!(empty.0.len(), 3);
        assert!(a.0.is_empty());
        // merge is absorb of a list given away.
        let mut c = Fields::default();
        c.set("x", Value::U64(1));
        empty.merge(c);
        assert_eq!(empty.u64("x"), Some(1));
    }
}
