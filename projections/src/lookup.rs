//! Looking up the state's composite keys without building them.
//!
//! The state's maps are keyed by owned tuples: `(tenant, id)` as `(String,
//! String)`, kill switches by `(tenant, scope, target)`. Looking one up by
//! building such a tuple from borrowed strings costs two allocations per lookup,
//! and a fold does several lookups per event. [`Pair`] and [`Triple`] are the
//! borrowed forms: the owned tuples [`Borrow`] them, so a map (ordered or hashed)
//! finds an entry from `&(tenant, id)` (two `&str`) as a `&dyn Pair`.
//!
//! `Borrow` requires the borrowed form to order, compare and hash exactly as the
//! owned key does. Both order as their parts do, lexicographically, and a string by
//! its bytes, and hash their parts in turn as a tuple does; the property tests
//! below check it against the tuples' own order and hash.
//!
//! The state maps ([`crate::digest_map::DigestMap`]), the id lists and
//! detection's per-agent tracks are hash tables (hashbrown's, hashed with std's
//! SipHash keyed at random per table, so ids a producer chooses cannot be made
//! to collide). The one ordered set searched by these borrowed forms is
//! admission's ids of the batch being committed, whose pairs compare eight
//! bytes at a time.

use govledger_schemas::KillScope;
use hashbrown::HashTable;
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};

/// A `(tenant, id)` key, owned or borrowed.
pub trait Pair {
    /// The two parts.
    fn parts(&self) -> (&str, &str);
}

impl Pair for (String, String) {
    fn parts(&self) -> (&str, &str) {
        (&self.0, &self.1)
    }
}

impl Pair for (&str, &str) {
    fn parts(&self) -> (&str, &str) {
        (self.0, self.1)
    }
}

/// A kill switch's `(tenant, scope, target)` key, owned or borrowed.
pub trait Triple {
    /// The three parts.
    fn parts(&self) -> (&str, KillScope, &str);
}

impl Triple for (String, KillScope, String) {
    fn parts(&self) -> (&str, KillScope, &str) {
        (&self.0, self.1, &self.2)
    }
}

impl Triple for (&str, KillScope, &str) {
    fn parts(&self) -> (&str, KillScope, &str) {
        (self.0, self.1, self.2)
    }
}

/// The comparisons, `Borrow` and `ToOwned` of a `dyn` key trait: `$cmp` orders
/// two keys' parts, `$to_owned` builds the owned key from parts `$p`.
macro_rules! borrowed_key {
    ($trait:ident, $owned:ty, $cmp:expr, |$p:ident| $to_owned:expr) => {
        impl<'a> Borrow<dyn $trait + 'a> for $owned {
            fn borrow(&self) -> &(dyn $trait + 'a) {
                self
            }
        }

        /// As the owned key compares: part by part. Every hashed lookup asks
        /// this once, so it compares the parts' bytes directly, not their order.
        impl PartialEq for dyn $trait + '_ {
            fn eq(&self, other: &Self) -> bool {
                self.parts() == other.parts()
            }
        }

        impl Eq for dyn $trait + '_ {}

        /// As the owned key hashes: a tuple hashes its parts in turn.
        impl Hash for dyn $trait + '_ {
            fn hash<H: Hasher>(&self, h: &mut H) {
                self.parts().hash(h)
            }
        }

        impl PartialOrd for dyn $trait + '_ {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for dyn $trait + '_ {
            fn cmp(&self, other: &Self) -> Ordering {
                $cmp(self.parts(), other.parts())
            }
        }

        impl ToOwned for dyn $trait + '_ {
            type Owned = $owned;
            fn to_owned(&self) -> $owned {
                let $p = self.parts();
                $to_owned
            }
        }
    };
}

borrowed_key!(
    Pair,
    (String, String),
    |a: (&str, &str), b: (&str, &str)| cmp_str(a.0, b.0).then_with(|| cmp_str(a.1, b.1)),
    |p| (p.0.to_owned(), p.1.to_owned())
);
borrowed_key!(
    Triple,
    (String, KillScope, String),
    |a: (&str, KillScope, &str), b: (&str, KillScope, &str)| cmp_str(a.0, b.0)
        .then_with(|| a.1.cmp(&b.1))
        .then_with(|| cmp_str(a.2, b.2)),
    |p| (p.0.to_owned(), p.1, p.2.to_owned())
);

/// `a.cmp(b)`, inline: eight bytes at a time as big-endian integers (which order
/// as their bytes do), instead of a call to `memcmp` per comparison. Ids are
/// short and a search in an ordered set (admission's ids of the batch being
/// committed) compares several of them per lookup, where the call would be
/// most of the cost.
#[inline]
fn cmp_str(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while let (Some((x, a_rest)), Some((y, b_rest))) =
        (a.split_first_chunk::<8>(), b.split_first_chunk::<8>())
    {
        if x != y {
            return u64::from_be_bytes(*x).cmp(&u64::from_be_bytes(*y));
        }
        (a, b) = (a_rest, b_rest);
    }
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// The borrowed key `(a, b)`, to look up a `(String, String)` key.
pub fn pair<'a>(key: &'a (&'a str, &'a str)) -> &'a (dyn Pair + 'a) {
    key
}

/// The borrowed key `(tenant, scope, target)`, to look up a kill switch.
pub fn triple<'a>(key: &'a (&'a str, KillScope, &'a str)) -> &'a (dyn Triple + 'a) {
    key
}

/// A key written as bytes that order as the key does, so that many keys can be
/// sorted by comparing bytes laid out together instead of strings wherever each
/// was allocated ([`crate::digest_map::DigestMap::iter`]). Distinct keys give
/// distinct bytes.
pub trait OrderBytes {
    /// Appends the bytes to `out`.
    fn order_bytes(&self, out: &mut Vec<u8>);
}

/// A string that other parts follow: each zero byte as `00 FF`, then `00 00`, so
/// that a shorter string orders first whatever follows it.
fn order_bytes_then(s: &str, out: &mut Vec<u8>) {
    let s = s.as_bytes();
    if s.contains(&0) {
        for &b in s {
            out.push(b);
            if b == 0 {
                out.push(0xFF);
            }
        }
    } else {
        out.extend_from_slice(s);
    }
    out.extend_from_slice(&[0, 0]);
}

impl OrderBytes for String {
    fn order_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl OrderBytes for (String, String) {
    fn order_bytes(&self, out: &mut Vec<u8>) {
        order_bytes_then(&self.0, out);
        out.extend_from_slice(self.1.as_bytes());
    }
}

impl OrderBytes for (String, KillScope, String) {
    fn order_bytes(&self, out: &mut Vec<u8>) {
        order_bytes_then(&self.0, out);
        // Scopes order as declared, which is the order of their tags.
        out.push(self.1 as u8);
        out.extend_from_slice(self.2.as_bytes());
    }
}

impl OrderBytes for u32 {
    fn order_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}

/// The first 16 of order bytes as one integer, zero-padded: heads order as the
/// bytes do or tie (zero is the least byte), never the other way, so a sort
/// compares heads first and the whole bytes only on a tie.
pub(crate) fn order_head(order: &[u8]) -> u128 {
    let mut head = [0u8; 16];
    let n = order.len().min(16);
    head[..n].copy_from_slice(&order[..n]);
    u128::from_be_bytes(head)
}

/// Keys that can be compared inside their entries' canonical bytes
/// ([`crate::canon`]), which begin with the key's fields: so a snapshot's entries,
/// encoded in whatever order the map holds them, are sorted later without the
/// map ([`crate::canon::Entries`]).
pub trait EncodedKey {
    /// Orders two entries' canonical bytes as their keys order. Bytes that are not
    /// such an encoding compare as if cut short, never a panic.
    fn cmp_encoded(a: &[u8], b: &[u8]) -> Ordering;
}

/// The string at the start of canonical bytes (a `u64` length, then the bytes),
/// and what follows it; as much as there is of a string cut short.
fn encoded_str(b: &[u8]) -> (&[u8], &[u8]) {
    let Some((len, rest)) = b.split_first_chunk::<8>() else {
        return (&[], &[]);
    };
    let n = usize::try_from(u64::from_be_bytes(*len)).unwrap_or(usize::MAX);
    rest.split_at(n.min(rest.len()))
}

impl EncodedKey for String {
    fn cmp_encoded(a: &[u8], b: &[u8]) -> Ordering {
        encoded_str(a).0.cmp(encoded_str(b).0)
    }
}

impl EncodedKey for (String, String) {
    fn cmp_encoded(a: &[u8], b: &[u8]) -> Ordering {
        let ((at, a), (bt, b)) = (encoded_str(a), encoded_str(b));
        at.cmp(bt)
            .then_with(|| encoded_str(a).0.cmp(encoded_str(b).0))
    }
}

impl EncodedKey for (String, KillScope, String) {
    fn cmp_encoded(a: &[u8], b: &[u8]) -> Ordering {
        let ((at, a), (bt, b)) = (encoded_str(a), encoded_str(b));
        // Scopes order as declared, which is the order of their tags.
        let (a_scope, a) = a
            .split_first()
            .map_or((None, &[][..]), |(s, r)| (Some(s), r));
        let (b_scope, b) = b
            .split_first()
            .map_or((None, &[][..]), |(s, r)| (Some(s), r));
        at.cmp(bt)
            .then_with(|| a_scope.cmp(&b_scope))
            .then_with(|| encoded_str(a).0.cmp(encoded_str(b).0))
    }
}

impl EncodedKey for u32 {
    fn cmp_encoded(a: &[u8], b: &[u8]) -> Ordering {
        a.get(..4).cmp(&b.get(..4))
    }
}

/// Values under `(tenant, name)` keys, in a hash table (hashbrown's
/// `HashTable`, hashed with std's SipHash keyed at random per table, as std's
/// maps are): a value is found, or added when absent, with one hash and one
/// probe (std's map hashes the key again to add it, and an ordered map
/// searches at every level). Owned keys are built only when a value is added.
/// Equal when they hold equal values under the same keys, whatever the
/// tables' seeds. The id lists and detection's per-agent tracks are ones.
#[derive(Clone, Debug)]
pub(crate) struct PairMap<V> {
    table: HashTable<((String, String), V)>,
    hasher: RandomState,
}

impl<V> Default for PairMap<V> {
    fn default() -> Self {
        PairMap {
            table: HashTable::new(),
            hasher: RandomState::new(),
        }
    }
}

impl<V: PartialEq> PartialEq for PairMap<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .table
                .iter()
                .all(|((a, b), v)| other.get(a, b) == Some(v))
    }
}

impl<V: Eq> Eq for PairMap<V> {}

impl<V> PairMap<V> {
    /// The hash of the key `(a, b)`, as the table hashes its owned keys.
    fn hash(&self, a: &str, b: &str) -> u64 {
        self.hasher.hash_one(pair(&(a, b)))
    }

    /// Whether an entry of the table is the one under `(a, b)`.
    fn under<'k>(a: &'k str, b: &'k str) -> impl Fn(&((String, String), V)) -> bool + 'k {
        move |(k, _)| k.0 == a && k.1 == b
    }

    /// How many values it holds.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Room for `additional` more values.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let hasher = &self.hasher;
        self.table.reserve(additional, |(k, _)| hasher.hash_one(k));
    }

    /// How many values it holds room for without growing.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// The value under `(a, b)`, if any.
    pub(crate) fn get(&self, a: &str, b: &str) -> Option<&V> {
        self.table
            .find(self.hash(a, b), Self::under(a, b))
            .map(|(_, v)| v)
    }

    /// The value under `(a, b)`, added by `make` when it has none.
    pub(crate) fn get_or_insert_with(
        &mut self,
        a: &str,
        b: &str,
        make: impl FnOnce() -> V,
    ) -> &mut V {
        let h = self.hash(a, b);
        let hasher = &self.hasher;
        let entry = self
            .table
            .entry(h, Self::under(a, b), |(k, _)| hasher.hash_one(k));
        let made = || ((a.to_string(), b.to_string()), make());
        &mut entry.or_insert_with(made).into_mut().1
    }

    /// Changes the value under `(a, b)`, if any, with `change`, and takes it
    /// out when `change` says it is not to be kept.
    pub(crate) fn change_or_remove(
        &mut self,
        a: &str,
        b: &str,
        change: impl FnOnce(&mut V) -> bool,
    ) {
        if let Ok(mut o) = self.table.find_entry(self.hash(a, b), Self::under(a, b)) {
            if !change(&mut o.get_mut().1) {
                o.remove();
            }
        }
    }

    /// Every value with its key, in `(a, b)` order.
    pub(crate) fn sorted(&self) -> Vec<&((String, String), V)> {
        let mut all: Vec<_> = self.table.iter().collect();
        all.sort_unstable_by(|x, y| x.0.cmp(&y.0));
        all
    }
}

/// Ids listed under `(tenant, name)` keys, each list ascending with a tag per id:
/// the indexes a projection derives from its own map so that a per-event search
/// looks at a few entries, not at all its tenant's (tickets by session and by
/// proposal, budgets by scope). Never holds an empty list, so one kept up to date
/// equals one built afresh. A [`PairMap`], so an add hashes its key once
/// whether or not the list is there (most adds make one: a proposal's list
/// usually holds one ticket); a new list has room for its one id only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IdLists<T>(PairMap<IdList<T>>);

/// One list of [`IdLists`]: ids, ascending, each with its tag.
type IdList<T> = Vec<(String, T)>;

impl<T> Default for IdLists<T> {
    fn default() -> Self {
        IdLists(PairMap::default())
    }
}

impl<T> IdLists<T> {
    /// Room for `additional` more lists.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.0.reserve(additional);
    }

    /// How many lists it holds room for without growing.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// Lists `id` (tagged `tag`) under `(tenant, name)`, once.
    pub(crate) fn add(&mut self, tenant: &str, name: &str, id: &str, tag: T) {
        let ids = self
            .0
            .get_or_insert_with(tenant, name, || Vec::with_capacity(1));
        if let Err(at) = ids.binary_search_by(|(x, _)| x.as_str().cmp(id)) {
            ids.insert(at, (id.to_string(), tag));
        }
    }

    /// Takes `id` off the list under `(tenant, name)`.
    pub(crate) fn remove(&mut self, tenant: &str, name: &str, id: &str) {
        self.0.change_or_remove(tenant, name, |ids| {
            if let Ok(at) = ids.binary_search_by(|(x, _)| x.as_str().cmp(id)) {
                ids.remove(at);
            }
            !ids.is_empty()
        });
    }

    /// The list under `(tenant, name)`, ascending by id.
    pub(crate) fn get(&self, tenant: &str, name: &str) -> &[(String, T)] {
        self.0.get(tenant, name).map_or(&[][..], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::Canon;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::collections::HashMap;

    /// One hasher for every call of a test run, seeded at random as maps are.
    fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
        static SEED: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
        SEED.get_or_init(RandomState::new).hash_one(value)
    }

    fn scope(n: u8) -> KillScope {
        [
            KillScope::Session,
            KillScope::Agent,
            KillScope::Tenant,
            KillScope::System,
        ][n as usize % 4]
    }

    proptest! {
        /// The inline comparison orders as `str` does, most of all on long shared
        /// prefixes (the eight-byte steps) and on bytes above 0x7f.
        #[test]
        fn strings_compare_as_str(p in "\\PC{0,17}", x in "\\PC{0,9}", y in "\\PC{0,9}") {
            let (a, b) = (format!("{p}{x}"), format!("{p}{y}"));
            prop_assert_eq!(cmp_str(&a, &b), a.cmp(&b));
            prop_assert_eq!(cmp_str(&a, &a), Ordering::Equal);
        }

        /// The borrowed forms order, compare and hash as the owned tuples do (what
        /// `Borrow` needs).
        #[test]
        fn pairs_order_as_tuples(a in "[a-c]{0,19}", b in "[a-c]{0,19}", c in "[a-c]{0,19}", d in "[a-c]{0,19}") {
            let (x, y) = ((a.clone(), b.clone()), (c.clone(), d.clone()));
            let (p, q) = ((a.as_str(), b.as_str()), (c.as_str(), d.as_str()));
            prop_assert_eq!(pair(&p).cmp(pair(&q)), x.cmp(&y));
            prop_assert_eq!(pair(&p) == pair(&q), x == y);
            let owned: &dyn Pair = x.borrow();
            prop_assert_eq!(owned.cmp(pair(&q)), x.cmp(&y));
            prop_assert_eq!(hash_of(pair(&p)), hash_of(&x));
            prop_assert_eq!(pair(&p).to_owned(), x);
        }

        #[test]
        fn triples_order_as_tuples(a in "[a-c]{0,19}", s in 0u8..3, b in "[a-c]{0,19}", c in "[a-c]{0,19}", t in 0u8..3, d in "[a-c]{0,19}") {
            let (x, y) = ((a.clone(), scope(s), b.clone()), (c.clone(), scope(t), d.clone()));
            let (p, q) = ((a.as_str(), scope(s), b.as_str()), (c.as_str(), scope(t), d.as_str()));
            prop_assert_eq!(triple(&p).cmp(triple(&q)), x.cmp(&y));
            prop_assert_eq!(triple(&p) == triple(&q), x == y);
            prop_assert_eq!(hash_of(triple(&p)), hash_of(&x));
            prop_assert_eq!(triple(&p).to_owned(), x);
        }

        /// Order bytes order as the keys do, zero bytes and shared beginnings
        /// included.
        #[test]
        fn order_bytes_order_as_keys(
            a in "[a\\x00\\xff]{0,6}", b in "[a\\x00\\x01]{0,6}", s in 0u8..4,
            c in "[a\\x00\\xff]{0,6}", d in "[a\\x00\\x01]{0,6}", t in 0u8..4,
        ) {
            let bytes = |k: &dyn OrderBytes| {
                let mut out = Vec::new();
                k.order_bytes(&mut out);
                out
            };
            let (x, y) = ((a.clone(), b.clone()), (c.clone(), d.clone()));
            prop_assert_eq!(bytes(&x).cmp(&bytes(&y)), x.cmp(&y));
            prop_assert_eq!(bytes(&a).cmp(&bytes(&c)), a.cmp(&c));
            let (x, y) = ((a.clone(), scope(s), b.clone()), (c.clone(), scope(t), d.clone()));
            prop_assert_eq!(bytes(&x).cmp(&bytes(&y)), x.cmp(&y));
            let (m, n) = (u32::from(s) << 24 | 7, u32::from(t) << 24);
            prop_assert_eq!(bytes(&m).cmp(&bytes(&n)), m.cmp(&n));
        }

        /// Entries' canonical bytes compare as their keys do, whatever value
        /// bytes follow the key: zero bytes, shared beginnings and strings of
        /// every length included (a length prefix must not decide the order).
        #[test]
        fn encoded_keys_order_as_keys(
            a in "[a\\x00\\xff]{0,10}", b in "[a\\x00\\x01]{0,10}", s in 0u8..4,
            c in "[a\\x00\\xff]{0,10}", d in "[a\\x00\\x01]{0,10}", t in 0u8..4,
            tail_x in proptest::collection::vec(any::<u8>(), 0..12),
            tail_y in proptest::collection::vec(any::<u8>(), 0..12),
        ) {
            let enc = |fields: &dyn Fn(&mut Canon<Vec<u8>>), tail: &[u8]| {
                let mut c = Canon::buffer();
                fields(&mut c);
                c.raw(tail);
                c.into_bytes()
            };
            let (x, y) = ((a.clone(), b.clone()), (c.clone(), d.clone()));
            let ex = enc(&|k| { k.str(&a).str(&b); }, &tail_x);
            let ey = enc(&|k| { k.str(&c).str(&d); }, &tail_y);
            prop_assert_eq!(<(String, String)>::cmp_encoded(&ex, &ey), x.cmp(&y));
            let ex = enc(&|k| { k.str(&a); }, &tail_x);
            let ey = enc(&|k| { k.str(&c); }, &tail_y);
            prop_assert_eq!(String::cmp_encoded(&ex, &ey), a.cmp(&c));
            let (x, y) = ((a.clone(), scope(s), b.clone()), (c.clone(), scope(t), d.clone()));
            let ex = enc(&|k| { k.str(&a).u8(scope(s) as u8).str(&b); }, &tail_x);
            let ey = enc(&|k| { k.str(&c).u8(scope(t) as u8).str(&d); }, &tail_y);
            prop_assert_eq!(<(String, KillScope, String)>::cmp_encoded(&ex, &ey), x.cmp(&y));
            let (m, n) = (u32::from(s) << 24 | 7, u32::from(t) << 24);
            let ex = enc(&|k| { k.u32(m); }, &tail_x);
            let ey = enc(&|k| { k.u32(n); }, &tail_y);
            prop_assert_eq!(u32::cmp_encoded(&ex, &ey), m.cmp(&n));
            // Bytes cut anywhere compare without a panic.
            for cut in 0..ex.len() {
                let _ = <(String, KillScope, String)>::cmp_encoded(&ex[..cut], &ey);
                let _ = <(String, String)>::cmp_encoded(&ex, &ey[..cut.min(ey.len())]);
            }
        }

        /// Ordered and hashed maps find by the borrowed form exactly what they
        /// find by the owned key.
        #[test]
        fn maps_find_by_borrowed_keys(keys in proptest::collection::vec(("[a-c]{0,2}", "[a-c]{0,2}"), 0..20), probe in ("[a-c]{0,2}", "[a-c]{0,2}")) {
            let ordered: BTreeMap<(String, String), usize> =
                keys.iter().cloned().enumerate().map(|(i, k)| (k, i)).collect();
            let hashed: HashMap<(String, String), usize> =
                ordered.iter().map(|(k, i)| (k.clone(), *i)).collect();
            let borrowed = (probe.0.as_str(), probe.1.as_str());
            prop_assert_eq!(ordered.get(pair(&borrowed)), ordered.get(&probe));
            prop_assert_eq!(hashed.get(pair(&borrowed)), hashed.get(&probe));
        }

        /// Id lists hold what a model of ordered sets holds after any adds and
        /// removals (lists ascending, each id once, no empty list), and equal
        /// the lists built afresh from that model, in another order and with
        /// another table seed; lists that differ are not equal.
        #[test]
        fn id_lists_hold_what_a_model_holds(
            ops in proptest::collection::vec((any::<bool>(), "[a-b]{0,1}", "[a-c]{0,1}", "[a-d]{0,1}", any::<u8>()), 0..60),
        ) {
            let mut lists = IdLists::default();
            let mut model: BTreeMap<(String, String), BTreeMap<String, u8>> = BTreeMap::new();
            for (add, tenant, name, id, tag) in &ops {
                let key = (tenant.clone(), name.clone());
                if *add {
                    lists.add(tenant, name, id, *tag);
                    model.entry(key).or_default().entry(id.clone()).or_insert(*tag);
                } else {
                    lists.remove(tenant, name, id);
                    if let Some(ids) = model.get_mut(&key) {
                        ids.remove(id);
                        if ids.is_empty() {
                            model.remove(&key);
                        }
                    }
                }
            }
            prop_assert_eq!(lists.0.len(), model.len());
            let mut afresh = IdLists::default();
            for ((tenant, name), ids) in model.iter().rev() {
                for (id, tag) in ids.iter().rev() {
                    afresh.add(tenant, name, id, *tag);
                }
                let want: Vec<(String, u8)> = ids.iter().map(|(i, t)| (i.clone(), *t)).collect();
                prop_assert_eq!(lists.get(tenant, name), want.as_slice());
            }
            prop_assert!(lists == afresh);
            if let Some(((tenant, name), ids)) = model.iter().next() {
                let first = ids.keys().next().cloned().unwrap_or_default();
                afresh.remove(tenant, name, &first);
                prop_assert!(lists != afresh, "one id fewer");
                afresh.add(tenant, name, "zz", 0);
                prop_assert!(lists != afresh, "another id in its place");
                afresh.add(tenant, name, &first, ids[&first]);
                prop_assert!(lists != afresh, "one id more");
            }
        }
    }
}
