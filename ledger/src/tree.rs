//! The RFC 6962 Merkle tree: hashing, persistent nodes, proofs and their checks.
//!
//! All of the tree's mathematics lives in this one file, each function naming the
//! rule of RFC 6962 / RFC 9162 it implements, so it can be read beside the spec.
//!
//! # Hashes (RFC 6962 §2.1)
//! - leaf hash = SHA-256(0x00 || leaf bytes)
//! - node hash = SHA-256(0x01 || left || right)
//! - the hash of the empty tree is SHA-256 of the empty string.
//!
//! # Persistent nodes
//! The tree is stored as the hashes of its *complete* subtrees: node `(level L,
//! index i)` is the root of the perfect subtree over leaves `[i·2^L, (i+1)·2^L)`.
//! Those never change once written, so appending a leaf writes the leaf hash and the
//! parents it completes, and no stored node is ever rewritten. The root of a tree of
//! any size, and any proof, is assembled from at most O(log n) such nodes, read
//! through the [`NodeReader`] seam (the one-method interface of Go's
//! `sumdb/tlog.HashReader`, here per node). The mathematics never knows whether the
//! nodes sit in RocksDB, in memory or in a proof bundle.
//!
//! `rs_merkle` supplies the [`Hasher`](rs_merkle::Hasher) seam: [`Rfc6962Hasher`]
//! plugs RFC 6962's domain separation into it, so rs_merkle's in-memory tree computes
//! RFC 6962 roots (the tests use it as an independent oracle). What rs_merkle lacks,
//! persistence and consistency proofs, is written here.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A SHA-256 digest: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// The root of the empty tree, SHA-256("") (RFC 6962 §2.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Leaf hash: SHA-256(0x00 || leaf) (RFC 6962 §2.1).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf);
    h.finalize().into()
}

/// Interior node hash: SHA-256(0x01 || left || right) (RFC 6962 §2.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// RFC 6962 hashing for rs_merkle's in-memory tree. rs_merkle hashes whatever it is
/// given as leaves, so callers pass leaf hashes ([`leaf_hash`]) as its leaves; pairs
/// are joined with the 0x01 prefix, and a lone right-most node is promoted unchanged,
/// which is exactly RFC 6962's split at the largest power of two.
#[derive(Clone, Copy, Debug)]
pub struct Rfc6962Hasher;

impl rs_merkle::Hasher for Rfc6962Hasher {
    type Hash = Hash;

    fn hash(data: &[u8]) -> Hash {
        Sha256::digest(data).into()
    }

    fn concat_and_hash(left: &Hash, right: Option<&Hash>) -> Hash {
        match right {
            Some(right) => node_hash(left, right),
            None => *left,
        }
    }
}

/// The address of a stored complete subtree: `level` 0 holds leaf hashes, and node
/// `(level, index)` covers leaves `[index << level, (index + 1) << level)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    /// Height above the leaves (0 = leaf hash).
    pub level: u8,
    /// Position among the nodes of that level, left to right.
    pub index: u64,
}

impl NodeId {
    /// The node at `level`, `index`.
    pub const fn new(level: u8, index: u64) -> Self {
        NodeId { level, index }
    }
}

/// Why the tree could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// A node the mathematics needs is not stored: the store is damaged, or the
    /// question was about a tree larger than the log.
    #[error("tree node (level {level}, index {index}) is missing from the store")]
    MissingNode {
        /// Level of the missing node.
        level: u8,
        /// Index of the missing node.
        index: u64,
    },
    /// The node store failed to read.
    #[error("reading tree nodes failed: {0}")]
    Read(String),
    /// The proof asked for does not exist (index or sizes out of range).
    #[error("{0}")]
    BadRequest(String),
}

/// Reads stored complete-subtree hashes. An implementation must return exactly the
/// hash written for that node, or `MissingNode`; it must never make one up.
pub trait NodeReader {
    /// The hash of node `id`.
    fn node(&self, id: NodeId) -> Result<Hash, TreeError>;
}

impl NodeReader for BTreeMap<NodeId, Hash> {
    fn node(&self, id: NodeId) -> Result<Hash, TreeError> {
        self.get(&id).copied().ok_or(TreeError::MissingNode {
            level: id.level,
            index: id.index,
        })
    }
}

/// Largest power of two strictly smaller than `n` (n ≥ 2): RFC 6962's split point k.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[lo:hi]) (RFC 6962 §2.1) for a non-empty range whose left edge is aligned as
/// the recursion guarantees. A complete aligned range is one stored node; otherwise
/// it splits at the largest power of two and recurses into the right part only.
fn range_hash(reader: &dyn NodeReader, lo: u64, hi: u64) -> Result<Hash, TreeError> {
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        let level = n.trailing_zeros() as u8;
        return reader.node(NodeId::new(level, lo >> level));
    }
    let k = split(n);
    let left = range_hash(reader, lo, lo + k)?;
    let right = range_hash(reader, lo + k, hi)?;
    Ok(node_hash(&left, &right))
}

/// The root of the tree of the first `size` leaves (MTH, RFC 6962 §2.1).
pub fn root(reader: &dyn NodeReader, size: u64) -> Result<Hash, TreeError> {
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    range_hash(reader, 0, size)
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves: PATH(m, D[n])
/// of RFC 9162 §2.1.3.1, sibling hashes ordered from the leaf up.
pub fn inclusion_proof(
    reader: &dyn NodeReader,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, TreeError> {
    if index >= size {
        return Err(TreeError::BadRequest(format!(
            "leaf {index} is not in a tree of size {size}"
        )));
    }
    let mut proof = Vec::new();
    path(reader, index, 0, size, &mut proof)?;
    Ok(proof)
}

/// PATH(m, D[lo:hi]) appending leaf-to-root order: recurse first, then push this
/// level's sibling.
fn path(
    reader: &dyn NodeReader,
    m: u64,
    lo: u64,
    hi: u64,
    out: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    let n = hi - lo;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(reader, m, lo, lo + k, out)?;
        out.push(range_hash(reader, lo + k, hi)?);
    } else {
        path(reader, m - k, lo + k, hi, out)?;
        out.push(range_hash(reader, lo, lo + k)?);
    }
    Ok(())
}

/// The consistency proof between the trees of `old_size` and `new_size` leaves:
/// PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 9162 §2.1.4.1. Empty when the
/// sizes are equal or the old tree is empty.
pub fn consistency_proof(
    reader: &dyn NodeReader,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, TreeError> {
    if old_size > new_size {
        return Err(TreeError::BadRequest(format!(
            "old size {old_size} is larger than new size {new_size}"
        )));
    }
    let mut proof = Vec::new();
    if old_size == 0 || old_size == new_size {
        return Ok(proof);
    }
    subproof(reader, old_size, 0, new_size, true, &mut proof)?;
    Ok(proof)
}

/// SUBPROOF(m, D[lo:hi], b) of RFC 9162 §2.1.4.1, appending in the RFC's order.
fn subproof(
    reader: &dyn NodeReader,
    m: u64,
    lo: u64,
    hi: u64,
    b: bool,
    out: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    let n = hi - lo;
    if m == n {
        if !b {
            out.push(range_hash(reader, lo, hi)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(reader, m, lo, lo + k, b, out)?;
        out.push(range_hash(reader, lo + k, hi)?);
    } else {
        subproof(reader, m - k, lo + k, hi, false, out)?;
        out.push(range_hash(reader, lo, lo + k)?);
    }
    Ok(())
}

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// Index or sizes out of range, or the proof has the wrong number of hashes.
    #[error("malformed proof: {0}")]
    Malformed(String),
    /// The proof is well formed but leads to another root.
    #[error("proof does not lead to the expected root")]
    RootMismatch,
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Malformed(format!(
            "leaf index {index} is not below tree size {size}"
        )));
    }
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::Malformed("proof is too long".into()));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Malformed("proof is too short".into()));
    }
    if &r == root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::Malformed(format!(
            "old size {old_size} is larger than new size {new_size}"
        )));
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::Malformed(
                "proof between equal sizes must be empty".into(),
            ));
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if old_size == 0 {
        // Every tree is consistent with the empty tree; RFC 9162 defines no proof.
        if !proof.is_empty() {
            return Err(ProofError::Malformed(
                "proof from the empty tree must be empty".into(),
            ));
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(ProofError::Malformed("proof is empty".into()));
    }
    // Step 2: if first is an exact power of two, prepend first_hash.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let mut fn_ = old_size - 1;
    let mut sn = new_size - 1;
    // Step 4: shift while LSB(fn) is set.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::Malformed("proof is too long".into()));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Malformed("proof is too short".into()));
    }
    if &fr == old_root && &sr == new_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The right edge of a tree being built leaf by leaf in memory: the roots of its
/// complete subtrees, largest first (a "compact range"). `verify` streams the whole
/// log through one of these, holding O(log n) hashes whatever the log's size, and
/// compares every node it completes with the stored one.
#[derive(Clone, Debug, Default)]
pub struct Frontier {
    size: u64,
    /// (level, hash) of each complete subtree, left to right (levels descending).
    stack: Vec<(u8, Hash)>,
}

impl Frontier {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The right edge of the stored tree of `size` leaves: one node per set bit of
    /// `size`, largest subtree first, so O(log n) reads.
    pub fn from_nodes(reader: &dyn NodeReader, size: u64) -> Result<Self, TreeError> {
        let mut stack = Vec::new();
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size & (1u64 << level) != 0 {
                stack.push((level, reader.node(NodeId::new(level, start >> level))?));
                start += 1u64 << level;
            }
        }
        Ok(Frontier { size, stack })
    }

    /// Number of leaves pushed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash and calls `completed` with every node it completes,
    /// bottom-up, starting with the leaf itself at level 0.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(NodeId, &Hash)) {
        let index = self.size;
        completed(NodeId::new(0, index), &leaf);
        let mut level = 0u8;
        let mut hash = leaf;
        let mut i = index;
        while i & 1 == 1 {
            // The top of the stack is the left sibling at this level.
            let Some((_, left)) = self.stack.pop() else {
                break;
            };
            hash = node_hash(&left, &hash);
            level += 1;
            i >>= 1;
            completed(NodeId::new(level, i), &hash);
        }
        self.stack.push((level, hash));
        self.size += 1;
    }

    /// The root of the tree pushed so far (RFC 6962 MTH).
    pub fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        let Some((_, last)) = iter.next() else {
            return EMPTY_ROOT;
        };
        let mut acc = *last;
        for (_, h) in iter {
            acc = node_hash(h, &acc);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(n: u64) -> BTreeMap<NodeId, Hash> {
        let mut nodes = BTreeMap::new();
        let mut f = Frontier::new();
        for i in 0..n {
            f.push(leaf_hash(format!("leaf-{i}").as_bytes()), |id, h| {
                nodes.insert(id, *h);
            });
        }
        nodes
    }

    #[test]
    fn rfc6962_check_values() {
        assert_eq!(EMPTY_ROOT, <[u8; 32]>::from(Sha256::digest(b"")));
        assert_eq!(
            hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(root(&BTreeMap::new(), 0).unwrap(), EMPTY_ROOT);
    }

    #[test]
    fn frontier_matches_stored_nodes_and_rs_merkle() {
        for n in 1..70u64 {
            let nodes = build(n);
            let mut f = Frontier::new();
            let mut seen = BTreeMap::new();
            let leaves: Vec<Hash> = (0..n)
                .map(|i| leaf_hash(format!("leaf-{i}").as_bytes()))
                .collect();
            for l in &leaves {
                f.push(*l, |id, h| {
                    seen.insert(id, *h);
                });
            }
            assert_eq!(seen, nodes, "completed nodes differ at size {n}");
            // Every stored node is the MTH of the leaves it covers.
            for (id, h) in &nodes {
                let lo = id.index << id.level;
                let hi = lo + (1u64 << id.level);
                let sub: Vec<Hash> = leaves[lo as usize..hi as usize].to_vec();
                let oracle = rs_merkle::MerkleTree::<Rfc6962Hasher>::from_leaves(&sub);
                assert_eq!(oracle.root(), Some(*h), "node {id:?}");
            }
            let stored = root(&nodes, n).unwrap();
            assert_eq!(f.root(), stored);
            let oracle = rs_merkle::MerkleTree::<Rfc6962Hasher>::from_leaves(&leaves);
            assert_eq!(oracle.root(), Some(stored), "rs_merkle disagrees at {n}");
        }
    }

    #[test]
    fn frontier_restored_from_nodes_continues_the_same_tree() {
        let nodes = build(300);
        for n in [0u64, 1, 2, 3, 7, 8, 100, 255, 256, 299] {
            let mut f = Frontier::from_nodes(&nodes, n).unwrap();
            assert_eq!(f.size(), n);
            assert_eq!(f.root(), root(&nodes, n).unwrap(), "root at {n}");
            let mut completed = BTreeMap::new();
            for i in n..300 {
                f.push(leaf_hash(format!("leaf-{i}").as_bytes()), |id, h| {
                    completed.insert(id, *h);
                });
            }
            assert_eq!(f.root(), root(&nodes, 300).unwrap(), "continued from {n}");
            for (id, h) in completed {
                assert_eq!(nodes.get(&id), Some(&h), "node {id:?} continued from {n}");
            }
        }
    }

    #[test]
    fn missing_node_is_an_error_not_a_guess() {
        let nodes = build(4);
        let err = root(&nodes, 5).unwrap_err();
        assert!(matches!(err, TreeError::MissingNode { level: 0, index: 4 }));
    }

    fn hex(h: &[u8]) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }
}
