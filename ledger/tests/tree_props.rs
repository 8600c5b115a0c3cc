//! Property tests of the RFC 6962 tree: for random sizes up to 2,000, every inclusion
//! and consistency proof verifies, and flipping any bit of a proof, a hash or a root
//! makes it fail.

use govledger_ledger::tree::{self, Hash, NodeId};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::OnceLock;

const MAX: u64 = 2000;

fn nodes() -> &'static BTreeMap<NodeId, Hash> {
    static NODES: OnceLock<BTreeMap<NodeId, Hash>> = OnceLock::new();
    NODES.get_or_init(|| {
        let mut nodes = BTreeMap::new();
        let mut frontier = tree::Frontier::new();
        for i in 0..MAX {
            let leaf = tree::leaf_hash(&i.to_be_bytes());
            frontier.push(leaf, |id, h| {
                nodes.insert(id, *h);
            });
        }
        nodes
    })
}

fn flip(h: &mut Hash, bit: usize) {
    h[(bit / 8) % 32] ^= 1 << (bit % 8);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn inclusion_verifies_and_flips_fail(size in 1..=MAX, idx in any::<u64>(), bit in 0usize..256, which in any::<usize>()) {
        let index = idx % size;
        let n = nodes();
        let root = tree::root(n, size).unwrap();
        let leaf = tree::leaf_hash(&index.to_be_bytes());
        let proof = tree::inclusion_proof(n, index, size).unwrap();
        prop_assert!(tree::verify_inclusion(&leaf, index, size, &proof, &root).is_ok());

        let mut bad_leaf = leaf;
        flip(&mut bad_leaf, bit);
        prop_assert!(tree::verify_inclusion(&bad_leaf, index, size, &proof, &root).is_err());
        let mut bad_root = root;
        flip(&mut bad_root, bit);
        prop_assert!(tree::verify_inclusion(&leaf, index, size, &proof, &bad_root).is_err());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let k = which % bad.len();
            flip(&mut bad[k], bit);
            prop_assert!(tree::verify_inclusion(&leaf, index, size, &bad, &root).is_err());
            prop_assert!(tree::verify_inclusion(&leaf, index, size, &proof[1..], &root).is_err());
        }
        // A wrong index or size is refused too (except where it names the same path).
        if size > 1 {
            let other = (index + 1) % size;
            prop_assert!(tree::verify_inclusion(&leaf, other, size, &proof, &root).is_err());
        }
    }

    #[test]
    fn consistency_verifies_and_flips_fail(a in 0..=MAX, b in 0..=MAX, bit in 0usize..256, which in any::<usize>()) {
        let (old, new) = if a <= b { (a, b) } else { (b, a) };
        let n = nodes();
        let old_root = tree::root(n, old).unwrap();
        let new_root = tree::root(n, new).unwrap();
        let proof = tree::consistency_proof(n, old, new).unwrap();
        prop_assert!(tree::verify_consistency(old, new, &old_root, &new_root, &proof).is_ok());
        if old > 0 && old < new {
            let mut bad_old = old_root;
            flip(&mut bad_old, bit);
            prop_assert!(tree::verify_consistency(old, new, &bad_old, &new_root, &proof).is_err());
            let mut bad_new = new_root;
            flip(&mut bad_new, bit);
            prop_assert!(tree::verify_consistency(old, new, &old_root, &bad_new, &proof).is_err());
            let mut bad = proof.clone();
            let k = which % bad.len();
            flip(&mut bad[k], bit);
            prop_assert!(tree::verify_consistency(old, new, &old_root, &new_root, &bad).is_err());
            prop_assert!(tree::verify_consistency(old, new, &old_root, &new_root, &proof[..proof.len() - 1]).is_err());
        }
    }

    #[test]
    fn root_matches_rs_merkle(size in 1..=MAX) {
        let leaves: Vec<Hash> = (0..size).map(|i| tree::leaf_hash(&i.to_be_bytes())).collect();
        let oracle = rs_merkle::MerkleTree::<tree::Rfc6962Hasher>::from_leaves(&leaves);
        prop_assert_eq!(oracle.root(), Some(tree::root(nodes(), size).unwrap()));
    }
}
