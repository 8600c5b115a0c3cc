//! Looking up the state's composite keys without building them.
//!
//! The state's maps are keyed by owned tuples: `(tenant, id)` as `(String,
//! String)`, kill switches by `(tenant, scope, target)`. Looking one up by
//! building such a tuple from borrowed strings costs two allocations per lookup,
//! and a fold does several lookups per event. [`Pair`] and [`Triple`] are the
//! borrowed forms: the owned tuples [`Borrow`] them, so an ordered map finds an
//! entry from `&(tenant, id)` (two `&str`) as a `&dyn Pair`.
//!
//! `Borrow` requires the borrowed form to order and compare exactly as the owned
//! key does. Both order as their parts do, lexicographically, and a string by its
//! bytes; the property tests below check it against the tuples' own order.
//!
//! The state maps ([`crate::digest_map::DigestMap`]) and the id lists keep each key
//! as a `Sorted` key: with the first sixteen bytes of its order ([`SortPrefix`])
//! beside it, compared first, so a search reads the key's strings only when the
//! prefixes tie. A lookup computes its own key's prefix once (a `Probe`).

use govledger_schemas::KillScope;
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

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

        impl PartialEq for dyn $trait + '_ {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == Ordering::Equal
            }
        }

        impl Eq for dyn $trait + '_ {}

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
/// as their bytes do), instead of a call to `memcmp` per comparison. The state's
/// ids are short and a map search compares a few dozen of them per lookup, so the
/// call was most of the cost (`perf`, fold bench).
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

/// The first sixteen bytes of a key's order, as a big-endian integer: a map keeps
/// it beside each key, inside its nodes, and compares it first, so most steps of a
/// search settle without reading the key's strings from wherever they were
/// allocated (those reads, one cache miss after another, were most of the state
/// lookups' time: `perf`, fold bench).
///
/// It must never contradict the key's order: `a.sort_prefix() < b.sort_prefix()`
/// only when `a < b` (equal prefixes say nothing), and an owned key and its
/// borrowed form must give the same prefix. A constant meets both.
pub trait SortPrefix {
    /// The prefix.
    fn sort_prefix(&self) -> u128;
}

/// Zero-padded big-endian value of the first sixteen bytes of `bytes`.
fn prefix_of(bytes: &[u8]) -> u128 {
    let mut out = [0u8; 16];
    let n = bytes.len().min(16);
    out[..n].copy_from_slice(&bytes[..n]);
    u128::from_be_bytes(out)
}

/// `(a, b)` written so that byte order is tuple order, cut to sixteen bytes: `a`
/// with each zero byte as `00 FF`, then `00 00`, then `b` (a zero byte never
/// occurs in a valid id, but the order must hold for any string).
fn pair_prefix(a: &str, b: &str) -> u128 {
    let mut out = [0u8; 16];
    let mut n = 0;
    for &x in a.as_bytes() {
        if n == out.len() {
            break;
        }
        out[n] = x;
        n += 1;
        if x == 0 && n < out.len() {
            out[n] = 0xFF;
            n += 1;
        }
    }
    // The separator: two bytes left zero.
    n += 2;
    for &x in b.as_bytes() {
        if n >= out.len() {
            break;
        }
        out[n] = x;
        n += 1;
    }
    u128::from_be_bytes(out)
}

impl SortPrefix for (String, String) {
    fn sort_prefix(&self) -> u128 {
        pair_prefix(&self.0, &self.1)
    }
}

impl SortPrefix for dyn Pair + '_ {
    fn sort_prefix(&self) -> u128 {
        let (a, b) = self.parts();
        pair_prefix(a, b)
    }
}

/// Kill switches are few: they keep a constant prefix and compare in full.
impl SortPrefix for (String, KillScope, String) {
    fn sort_prefix(&self) -> u128 {
        0
    }
}

impl SortPrefix for dyn Triple + '_ {
    fn sort_prefix(&self) -> u128 {
        0
    }
}

impl SortPrefix for str {
    fn sort_prefix(&self) -> u128 {
        prefix_of(self.as_bytes())
    }
}

impl SortPrefix for String {
    fn sort_prefix(&self) -> u128 {
        self.as_str().sort_prefix()
    }
}

/// For the digest map's own tests, keyed by numbers.
#[cfg(test)]
impl SortPrefix for u32 {
    fn sort_prefix(&self) -> u128 {
        u128::from(*self)
    }
}

/// A map key with its [`SortPrefix`], ordered by the prefix, then the key (the
/// key's own order, since the prefix never contradicts it).
#[derive(Clone, Debug)]
pub(crate) struct Sorted<K> {
    prefix: u128,
    pub(crate) key: K,
}

impl<K: SortPrefix> Sorted<K> {
    pub(crate) fn new(key: K) -> Self {
        Sorted {
            prefix: key.sort_prefix(),
            key,
        }
    }
}

impl<K: Ord> Ord for Sorted<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| self.key.cmp(&other.key))
    }
}

impl<K: Ord> PartialOrd for Sorted<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord> PartialEq for Sorted<K> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<K: Ord> Eq for Sorted<K> {}

/// A [`Sorted`] key or a [`Probe`], seen as a prefix and a key of type `Q`: what
/// a map of `Sorted<K>` is searched by.
pub(crate) trait Probed<Q: ?Sized> {
    fn prefix(&self) -> u128;
    fn key(&self) -> &Q;
}

impl<K: Borrow<Q>, Q: ?Sized> Probed<Q> for Sorted<K> {
    fn prefix(&self) -> u128 {
        self.prefix
    }
    fn key(&self) -> &Q {
        self.key.borrow()
    }
}

/// A borrowed key with its prefix, computed once per lookup.
pub(crate) struct Probe<'q, Q: ?Sized> {
    prefix: u128,
    key: &'q Q,
}

impl<'q, Q: SortPrefix + ?Sized> Probe<'q, Q> {
    pub(crate) fn of(key: &'q Q) -> Self {
        Probe {
            prefix: key.sort_prefix(),
            key,
        }
    }

    /// What a map of `Sorted<K>` takes as its lookup key.
    pub(crate) fn dyn_ref(&self) -> &(dyn Probed<Q> + 'q) {
        self
    }
}

impl<Q: ?Sized> Probed<Q> for Probe<'_, Q> {
    fn prefix(&self) -> u128 {
        self.prefix
    }
    fn key(&self) -> &Q {
        self.key
    }
}

impl<'a, K: Borrow<Q> + 'a, Q: ?Sized + 'a> Borrow<dyn Probed<Q> + 'a> for Sorted<K> {
    fn borrow(&self) -> &(dyn Probed<Q> + 'a) {
        self
    }
}

impl<Q: Ord + ?Sized> Ord for dyn Probed<Q> + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.prefix()
            .cmp(&other.prefix())
            .then_with(|| self.key().cmp(other.key()))
    }
}

impl<Q: Ord + ?Sized> PartialOrd for dyn Probed<Q> + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<Q: Ord + ?Sized> PartialEq for dyn Probed<Q> + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<Q: Ord + ?Sized> Eq for dyn Probed<Q> + '_ {}

/// Ids listed under `(tenant, name)` keys, each list ascending with a tag per id:
/// the indexes a projection derives from its own map so that a per-event search
/// looks at a few entries, not at all its tenant's (tickets by session and by
/// proposal, budgets by scope). Never holds an empty list, so one kept up to date
/// equals one built afresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IdLists<T>(BTreeMap<Sorted<(String, String)>, IdList<T>>);

/// One list of [`IdLists`]: ids, ascending, each with its tag.
type IdList<T> = Vec<(String, T)>;

impl<T> Default for IdLists<T> {
    fn default() -> Self {
        IdLists(BTreeMap::new())
    }
}

impl<T> IdLists<T> {
    /// Lists `id` (tagged `tag`) under `(tenant, name)`, once.
    pub(crate) fn add(&mut self, tenant: &str, name: &str, id: &str, tag: T) {
        let ids = match self.0.get_mut(Probe::of(pair(&(tenant, name))).dyn_ref()) {
            Some(ids) => ids,
            None => self
                .0
                .entry(Sorted::new((tenant.to_string(), name.to_string())))
                .or_default(),
        };
        if let Err(at) = ids.binary_search_by(|(x, _)| x.as_str().cmp(id)) {
            ids.insert(at, (id.to_string(), tag));
        }
    }

    /// Takes `id` off the list under `(tenant, name)`.
    pub(crate) fn remove(&mut self, tenant: &str, name: &str, id: &str) {
        let key = (tenant, name);
        let probe = Probe::of(pair(&key));
        if let Some(ids) = self.0.get_mut(probe.dyn_ref()) {
            if let Ok(at) = ids.binary_search_by(|(x, _)| x.as_str().cmp(id)) {
                ids.remove(at);
            }
            if ids.is_empty() {
                self.0.remove(probe.dyn_ref());
            }
        }
    }

    /// The list under `(tenant, name)`, ascending by id.
    pub(crate) fn get(&self, tenant: &str, name: &str) -> &[(String, T)] {
        self.0
            .get(Probe::of(pair(&(tenant, name))).dyn_ref())
            .map_or(&[][..], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scope(n: u8) -> KillScope {
        [KillScope::Session, KillScope::Agent, KillScope::Tenant][n as usize % 3]
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

        /// The borrowed forms order as the owned tuples do (what `Borrow` needs).
        #[test]
        fn pairs_order_as_tuples(a in "[a-c]{0,19}", b in "[a-c]{0,19}", c in "[a-c]{0,19}", d in "[a-c]{0,19}") {
            let (x, y) = ((a.clone(), b.clone()), (c.clone(), d.clone()));
            let (p, q) = ((a.as_str(), b.as_str()), (c.as_str(), d.as_str()));
            prop_assert_eq!(pair(&p).cmp(pair(&q)), x.cmp(&y));
            prop_assert_eq!(pair(&p) == pair(&q), x == y);
            let owned: &dyn Pair = x.borrow();
            prop_assert_eq!(owned.cmp(pair(&q)), x.cmp(&y));
            prop_assert_eq!(pair(&p).to_owned(), x);
        }

        #[test]
        fn triples_order_as_tuples(a in "[a-c]{0,19}", s in 0u8..3, b in "[a-c]{0,19}", c in "[a-c]{0,19}", t in 0u8..3, d in "[a-c]{0,19}") {
            let (x, y) = ((a.clone(), scope(s), b.clone()), (c.clone(), scope(t), d.clone()));
            let (p, q) = ((a.as_str(), scope(s), b.as_str()), (c.as_str(), scope(t), d.as_str()));
            prop_assert_eq!(triple(&p).cmp(triple(&q)), x.cmp(&y));
            prop_assert_eq!(triple(&p) == triple(&q), x == y);
            prop_assert_eq!(triple(&p).to_owned(), x);
        }

        /// A prefix never contradicts the order of pairs, with zero bytes (the
        /// escape) and long shared beginnings (the sixteen-byte cut) included; an
        /// owned pair and its borrowed form have the same prefix.
        #[test]
        fn pair_prefixes_never_contradict_the_order(
            a in "[a\\x00\\xff]{0,10}", b in "[a\\x00\\x01]{0,12}",
            c in "[a\\x00\\xff]{0,10}", d in "[a\\x00\\x01]{0,12}",
        ) {
            let (x, y) = ((a.clone(), b.clone()), (c.clone(), d.clone()));
            let (px, py) = (x.sort_prefix(), y.sort_prefix());
            if px != py {
                prop_assert_eq!(px.cmp(&py), x.cmp(&y), "{:?} {:?}", x, y);
            }
            prop_assert_eq!(pair(&(a.as_str(), b.as_str())).sort_prefix(), px);
        }

        /// The same for single strings, whose prefix is their first sixteen bytes.
        #[test]
        fn string_prefixes_never_contradict_the_order(a in "[a\\x00]{0,20}", b in "[a\\x00]{0,20}") {
            let (pa, pb) = (a.sort_prefix(), b.sort_prefix());
            if pa != pb {
                prop_assert_eq!(pa.cmp(&pb), a.cmp(&b));
            }
            prop_assert_eq!(a.as_str().sort_prefix(), pa);
        }

        /// A map of sorted keys finds by a probe what a plain map finds, and
        /// lists its keys in the plain order.
        #[test]
        fn sorted_maps_find_and_order_as_plain_maps(
            keys in proptest::collection::vec(("[a\\x00]{0,9}", "[a\\x00]{0,9}"), 0..40),
            probe in ("[a\\x00]{0,9}", "[a\\x00]{0,9}"),
        ) {
            let plain: BTreeMap<(String, String), usize> =
                keys.iter().cloned().enumerate().map(|(i, k)| (k, i)).collect();
            let sorted: BTreeMap<Sorted<(String, String)>, usize> =
                plain.iter().map(|(k, i)| (Sorted::new(k.clone()), *i)).collect();
            let borrowed = (probe.0.as_str(), probe.1.as_str());
            let probed = Probe::of(pair(&borrowed));
            prop_assert_eq!(sorted.get(probed.dyn_ref()), plain.get(&probe));
            prop_assert!(sorted.keys().map(|k| &k.key).eq(plain.keys()));
        }

        /// A map finds by the borrowed form exactly what it finds by the owned key.
        #[test]
        fn maps_find_by_borrowed_keys(keys in proptest::collection::vec(("[a-c]{0,2}", "[a-c]{0,2}"), 0..20), probe in ("[a-c]{0,2}", "[a-c]{0,2}")) {
            let map: BTreeMap<(String, String), usize> =
                keys.into_iter().enumerate().map(|(i, k)| (k, i)).collect();
            let borrowed = (probe.0.as_str(), probe.1.as_str());
            prop_assert_eq!(map.get(pair(&borrowed)), map.get(&probe));
        }
    }
}
