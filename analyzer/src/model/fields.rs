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
    /// List of texts (each held in place when short, as [`Value::Text`] is: a list of short
    /// texts — a PostgreSQL command tag, a DNS address answer — costs one allocation, not one
    /// per element).
    List(Vec<Text>),
}

impl Value {
    /// Heap bytes the value holds.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Text(t) if t.spilled() => t.capacity(),
            Value::Text(_) => 0,
            Value::Counts(c) => c.capacity() * 8,
            Value::List(l) => {
                l.capacity() * std::mem::size_of::<Text>()
                    + l.iter()
                        .filter(|t| t.spilled())
                        .map(Text::capacity)
                        .sum::<usize>()
            }
            Value::U64(_) | Value::I64(_) | Value::Bool(_) => 0,
        }
    }

    /// A text value that takes `v`'s buffer when it is too long to be held in place.
    pub fn owned(v: Vec<u8>) -> Value {
        Value::Text(text_of(v))
    }

    /// A list of texts, copied.
    pub fn list<T: AsRef<[u8]>>(items: impl IntoIterator<Item = T>) -> Value {
        Value::List(
            items
                .into_iter()
                .map(|t| Text::from_slice(t.as_ref()))
                .collect(),
        )
    }

    /// A text value from a string.
    pub fn text(s: impl AsRef<[u8]>) -> Value {
        Value::Text(Text::from_slice(s.as_ref()))
    }
}

/// `v` as a [`Text`]: held in place when short (`v`'s buffer is freed), else `v`'s buffer.
pub fn text_of(v: Vec<u8>) -> Text {
    if v.len() <= TEXT_INLINE {
        Text::from_slice(&v)
    } else {
        Text::from_vec(v)
    }
}

/// Fields a [`Fields`] makes room for when its first is set.
pub const FIRST_ROOM: usize = 8;

/// Protocol-specific fields of a message, in the order they were set.
///
/// Besides the list, a 64-bit summary of the names it holds (one bit per name, picked by
/// `name_bit`): a name whose bit is clear is not in the list, so setting a new field — most
/// of a message's fields — appends without comparing it with every name already set, and
/// looking up a field the message does not have (a Zeek row asks for every column) returns at
/// once. A set bit only says "maybe": the list is searched as before. Every change to the
/// list goes through the methods below, which keep the summary equal to the OR of its names'
/// bits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    list: Vec<(&'static str, Value)>,
    names: u64,
}

/// Whether two field names are the same. Names are string literals, so the one looked for is
/// usually the very string stored (same address: no byte compared), and most others differ
/// in length or first byte; only the rest are compared byte by byte (a `memcmp` call).
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && (std::ptr::eq(a.as_ptr(), b.as_ptr())
            || (a.as_bytes().first() == b.as_bytes().first() && a == b))
}

/// The bit of [`Fields`]' name summary that stands for `name`: from its length and its first
/// and last bytes, mixed by a multiplication whose top six bits pick the bit. Equal names get
/// the same bit (it depends on the bytes, not on where the literal lies).
#[inline]
fn name_bit(name: &str) -> u64 {
    let b = name.as_bytes();
    let (first, last) = (b.first().copied(), b.last().copied());
    let key =
        (b.len() as u64) | u64::from(first.unwrap_or(0)) << 16 | u64::from(last.unwrap_or(0)) << 32;
    1 << (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58)
}

impl Fields {
    /// The fields, in the order they were first set.
    pub fn iter(&self) -> std::slice::Iter<'_, (&'static str, Value)> {
        self.list.iter()
    }
    /// How many fields are set.
    pub fn len(&self) -> usize {
        self.list.len()
    }
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// Fields the list has room for without growing.
    pub fn capacity(&self) -> usize {
        self.list.capacity()
    }
    /// An empty list with room for `n` fields (a list that will hold more than
    /// [`FIRST_ROOM`], such as an exchange's, is made with its room instead of growing).
    pub fn with_room(n: usize) -> Fields {
        Fields {
            list: Vec::with_capacity(n),
            names: 0,
        }
    }
    /// Removes every field, keeping the room.
    pub fn clear(&mut self) {
        self.list.clear();
        self.names = 0;
    }
    /// Where the list's storage is (tests of reuse compare it).
    #[cfg(test)]
    pub fn as_ptr(&self) -> *const (&'static str, Value) {
        self.list.as_ptr()
    }
    /// Heap bytes the fields hold (what memory budgets count for them).
    pub fn heap_bytes(&self) -> usize {
        self.list.capacity() * std::mem::size_of::<(&'static str, Value)>()
            + self.list.iter().map(|(_, v)| v.heap_bytes()).sum::<usize>()
    }

    /// Sets a field, replacing an earlier value of the same name.
    ///
    /// Inlined: for a literal name the bit is a constant, and the value is built where it is
    /// stored (passed to an outlined call, a value written field by field and read back whole
    /// stalled store forwarding: half of this function's samples in a DNS profile).
    #[inline(always)]
    pub fn set(&mut self, name: &'static str, v: Value) {
        let bit = name_bit(name);
        if self.names & bit != 0
            && let Some(slot) = self.find_mut(name)
        {
            slot.1 = v;
            return;
        }
        // Room for a message's usual fields at once, instead of growing 4, 8, 16.
        if self.list.capacity() == 0 {
            self.list.reserve_exact(FIRST_ROOM);
        }
        self.list.push((name, v));
        self.names |= bit;
    }
    /// The slot of a field whose name's bit is set, if the name is really there.
    #[inline(never)]
    fn find_mut(&mut self, name: &str) -> Option<&mut (&'static str, Value)> {
        self.list.iter_mut().find(|(n, _)| same_name(n, name))
    }
    /// Looks a field up.
    #[inline]
    pub fn get(&self, name: &str) -> Option<&Value> {
        if self.names & name_bit(name) == 0 {
            return None;
        }
        self.list
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
        if self.list.is_empty() && self.list.capacity() <= other.list.capacity() {
            std::mem::swap(self, other);
            return;
        }
        self.list.reserve(other.list.len());
        for (n, v) in other.list.drain(..) {
            self.set(n, v);
        }
        other.names = 0;
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

    /// A list's short texts are held in its elements: its heap is the list alone; long ones
    /// are counted besides, and keep their order and bytes.
    #[test]
    fn lists_hold_short_texts_in_place() {
        let short = [&b"SELECT 1"[..], b"", &[b'z'; TEXT_INLINE]];
        let v = Value::list(short);
        let Value::List(l) = &v else {
            panic!("not a list")
        };
        assert!(l.iter().all(|t| !t.spilled()));
        assert_eq!(v.heap_bytes(), l.capacity() * std::mem::size_of::<Text>());
        assert!(l.iter().map(|t| &t[..]).eq(short));
        let long = [
            vec![b'q'; TEXT_INLINE + 1],
            b"UPDATE 1".to_vec(),
            vec![b'r'; 200],
        ];
        let v = Value::List(long.iter().cloned().map(text_of).collect());
        let Value::List(l) = &v else {
            panic!("not a list")
        };
        assert_eq!(
            l.iter().map(Text::spilled).collect::<Vec<_>>(),
            [true, false, true]
        );
        assert!(
            v.heap_bytes() >= l.capacity() * std::mem::size_of::<Text>() + TEXT_INLINE + 1 + 200
        );
        assert!(l.iter().map(|t| &t[..]).eq(long.iter().map(|t| &t[..])));
    }

    #[test]
    fn the_name_summary_never_hides_a_field() {
        // Every pair of these names that shares a summary bit is one whose search must still
        // tell them apart; 200 names over 64 bits make sure many pairs do.
        let names: Vec<&'static str> = (0..200)
            .map(|i| {
                let (a, b) = (
                    char::from(b'a' + (i % 26) as u8),
                    char::from(b'a' + (i / 8) as u8),
                );
                &*Box::leak(format!("{a}{}{b}", "_".repeat(i % 5)).into_boxed_str())
            })
            .collect();
        let bits: std::collections::HashSet<u64> = names.iter().map(|n| name_bit(n)).collect();
        assert!(
            bits.len() > 40,
            "names spread over the bits: {}",
            bits.len()
        );
        let mut f = Fields::default();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(f.get(n), None, "{n} not set yet");
            f.set(n, Value::U64(i as u64));
        }
        for (i, n) in names.iter().enumerate() {
            // The same bytes at another address: found by content, and replaced in place.
            let copy: &'static str = Box::leak(n.to_string().into_boxed_str());
            assert_eq!(f.u64(copy), Some(i as u64));
            f.set(copy, Value::U64(i as u64 + 1000));
        }
        assert_eq!(f.len(), names.len(), "no name appended twice");
        assert!(
            f.iter().map(|(n, _)| *n).eq(names.iter().copied()),
            "first-set order kept"
        );
        assert!(
            names
                .iter()
                .enumerate()
                .all(|(i, n)| f.u64(n) == Some(i as u64 + 1000))
        );
        // Cleared, absorbed or swapped away, nothing is reported as still there.
        let mut g = Fields::default();
        g.set("x", Value::U64(1));
        let mut h = f.clone();
        h.absorb(&mut g);
        assert_eq!(g.get("x"), None);
        assert!(g.is_empty());
        g.set("x", Value::U64(2));
        assert_eq!(g.u64("x"), Some(2));
        assert_eq!(h.u64("x"), Some(1));
        f.clear();
        assert!(names.iter().all(|n| f.get(n).is_none()));
        f.set(names[0], Value::U64(7));
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn absorb_moves_fields_over_and_leaves_the_room_behind() {
        let mut a = Fields::default();
        a.set("method", Value::text("GET"));
        a.set("status_code", Value::U64(100));
        let mut b = Fields::default();
        b.set("status_code", Value::U64(200));
        b.set("status_msg", Value::text("OK"));
        let room = b.capacity();
        a.absorb(&mut b);
        assert_eq!(a.text("method"), Some(&b"GET"[..]));
        assert_eq!(a.u64("status_code"), Some(200), "the later value wins");
        assert_eq!(a.text("status_msg"), Some(&b"OK"[..]));
        assert_eq!(a.len(), 3, "replaced in place, not appended");
        assert!(b.is_empty());
        assert_eq!(b.capacity(), room, "emptied, its room kept for reuse");
        // An empty list takes the other's whole (no field moved one by one).
        let mut empty = Fields::default();
        let at = a.as_ptr();
        empty.absorb(&mut a);
        assert_eq!(empty.as_ptr(), at);
        assert_eq!(empty.len(), 3);
        assert!(a.is_empty());
        // merge is absorb of a list given away.
        let mut c = Fields::default();
        c.set("x", Value::U64(1));
        empty.merge(c);
        assert_eq!(empty.u64("x"), Some(1));
    }
}
