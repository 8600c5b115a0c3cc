//! The tree, proofs and signed checkpoints reproduce, byte for byte, the vectors made
//! by Go's `golang.org/x/mod/sumdb/tlog` and `sumdb/note` (tests/data/tlog).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use govledger_ledger::checkpoint::{Checkpoint, StateDigest};
use govledger_ledger::note::{NoteSigner, NoteVerifier};
use govledger_ledger::tree::{self, Hash, NodeId};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tlog")
}

fn read_json(name: &str) -> Value {
    let text = std::fs::read_to_string(data_dir().join(name)).expect(name);
    serde_json::from_str(&text).expect(name)
}

fn h(v: &Value) -> Hash {
    B64.decode(v.as_str().expect("string"))
        .expect("base64")
        .try_into()
        .expect("32 bytes")
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().expect("array").iter().map(h).collect()
}

/// A tree of `leaf-0 .. leaf-(n-1)`, built through the persistent-node append path.
fn build(n: u64) -> BTreeMap<NodeId, Hash> {
    let mut nodes = BTreeMap::new();
    let mut frontier = tree::Frontier::new();
    for i in 0..n {
        let leaf = tree::leaf_hash(format!("leaf-{i}").as_bytes());
        frontier.push(leaf, |id, hash| {
            nodes.insert(id, *hash);
        });
    }
    nodes
}

fn files(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no {prefix} vectors found");
    v
}

#[test]
fn roots_match_go_tlog() {
    let index = read_json("index.json");
    let roots = index["roots"].as_object().unwrap();
    let nodes = build(1000);
    for (size, root) in roots {
        let size: u64 = size.parse().unwrap();
        assert_eq!(
            tree::root(&nodes, size).unwrap(),
            h(root),
            "root of size {size}"
        );
    }
}

#[test]
fn inclusion_proofs_match_go_tlog() {
    let nodes = build(1000);
    for name in files("inclusion-") {
        let v = read_json(&name);
        let (index, size) = (
            v["leaf_index"].as_u64().unwrap(),
            v["tree_size"].as_u64().unwrap(),
        );
        let leaf = B64.decode(v["leaf"].as_str().unwrap()).unwrap();
        assert_eq!(leaf, format!("leaf-{index}").into_bytes(), "{name}");
        assert_eq!(tree::leaf_hash(&leaf), h(&v["leaf_hash"]), "{name}");
        let proof = tree::inclusion_proof(&nodes, index, size).unwrap();
        assert_eq!(proof, hashes(&v["proof"]), "{name}");
        tree::verify_inclusion(&h(&v["leaf_hash"]), index, size, &proof, &h(&v["root"]))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn consistency_proofs_match_go_tlog() {
    let nodes = build(1000);
    for name in files("consistency-") {
        let v = read_json(&name);
        let (old, new) = (
            v["old_size"].as_u64().unwrap(),
            v["new_size"].as_u64().unwrap(),
        );
        let proof = tree::consistency_proof(&nodes, old, new).unwrap();
        assert_eq!(proof, hashes(&v["proof"]), "{name}");
        assert_eq!(
            tree::root(&nodes, old).unwrap(),
            h(&v["old_root"]),
            "{name}"
        );
        assert_eq!(
            tree::root(&nodes, new).unwrap(),
            h(&v["new_root"]),
            "{name}"
        );
        tree::verify_consistency(old, new, &h(&v["old_root"]), &h(&v["new_root"]), &proof)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

fn test_signer() -> NoteSigner {
    let seed: [u8; 32] = Sha256::digest(b"tlogverify test vectors key, TEST ONLY").into();
    NoteSigner::from_seed("vectors.tlogverify.test/log", seed).unwrap()
}

#[test]
fn verifier_key_matches_go_note() {
    let index = read_json("index.json");
    let vkey = index["test_vkey"].as_str().unwrap();
    assert_eq!(test_signer().verifier().to_key_string(), vkey);
    assert_eq!(
        NoteVerifier::from_key_string(vkey).unwrap(),
        test_signer().verifier()
    );
    // Malformed key strings are refused, never half-read.
    let wrong_id = vkey.replace("+a5d4f0c5+", "+a5d4f0c6+");
    assert!(NoteVerifier::from_key_string(&wrong_id).is_err());
    assert!(NoteVerifier::from_key_string("vectors.tlogverify.test/log+a5d4f0c5").is_err());
    assert!(NoteVerifier::from_key_string("bad name+a5d4f0c5+AQU=").is_err());
    assert!(NoteVerifier::from_key_string(&vkey.replace("+AQU+", "+AgU+")).is_err());
    assert!(NoteSigner::from_key_string(vkey).is_err());
    // The signer key string round-trips in Go's PRIVATE+KEY format.
    let skey = test_signer().to_key_string();
    assert!(skey.starts_with("PRIVATE+KEY+vectors.tlogverify.test/log+a5d4f0c5+"));
    assert_eq!(
        NoteSigner::from_key_string(&skey).unwrap().verifier(),
        test_signer().verifier()
    );
}

#[test]
fn signed_checkpoints_match_go_note_byte_for_byte() {
    let signer = test_signer();
    let nodes = build(1000);
    for name in files("checkpoint-") {
        let golden = std::fs::read_to_string(data_dir().join(&name)).unwrap();
        let size: u64 = name
            .trim_start_matches("checkpoint-")
            .trim_end_matches(".txt")
            .parse()
            .unwrap();
        let cp = Checkpoint {
            origin: "vectors.tlogverify.test/log".into(),
            size,
            root: tree::root(&nodes, size).unwrap(),
            state_digest: None,
            extensions: vec![],
        };
        assert_eq!(cp.sign(&signer).unwrap(), golden, "{name}");
        let opened = Checkpoint::open(&golden, &signer.verifier()).unwrap();
        assert_eq!(opened, cp, "{name}");
    }
}

#[test]
fn checkpoint_with_state_digest_round_trips_and_tamper_fails() {
    let signer = test_signer();
    let cp = Checkpoint {
        origin: "example.org/govledger".into(),
        size: 7,
        root: tree::root(&build(7), 7).unwrap(),
        state_digest: Some(StateDigest {
            version: 1,
            hash: [0xab; 32],
        }),
        extensions: vec![],
    };
    let note = cp.sign(&signer).unwrap();
    assert!(note.contains("\nstate-digest sha256:abababab"));
    assert_eq!(Checkpoint::open(&note, &signer.verifier()).unwrap(), cp);
    let v2 = Checkpoint {
        state_digest: Some(StateDigest {
            version: 2,
            hash: [0xcd; 32],
        }),
        ..cp.clone()
    };
    let note = v2.sign(&signer).unwrap();
    assert!(note.contains(&format!("\nstate-digest v2 sha256:{}\n", "cd".repeat(32))));
    assert_eq!(Checkpoint::open(&note, &signer.verifier()).unwrap(), v2);
    let tampered = note.replacen("\n7\n", "\n8\n", 1);
    assert!(Checkpoint::open(&tampered, &signer.verifier()).is_err());
    let other = NoteSigner::from_seed("example.org/govledger", [7; 32]).unwrap();
    assert!(Checkpoint::open(&note, &other.verifier()).is_err());
}

#[test]
fn state_digest_lines_name_their_version_in_one_form() {
    let hex = "0f".repeat(32);
    let body = |line: &str| {
        format!(
            "example.org/govledger\n7\n{}\n{line}\n",
            B64.encode([1u8; 32])
        )
    };
    let parse = |line: &str| Checkpoint::parse_body(&body(line)).map(|c| c.state_digest);
    let want = |version| {
        Ok(Some(StateDigest {
            version,
            hash: [0x0f; 32],
        }))
    };
    assert_eq!(parse(&format!("state-digest sha256:{hex}")), want(1));
    assert_eq!(parse(&format!("state-digest v2 sha256:{hex}")), want(2));
    assert_eq!(parse(&format!("state-digest v3 sha256:{hex}")), want(3));
    assert_eq!(parse(&format!("state-digest v17 sha256:{hex}")), want(17));
    // A damaged line in a form this build writes is refused.
    for bad in [
        format!("state-digest sha256:{}", &hex[1..]),
        format!("state-digest sha256:{hex}0"),
        format!("state-digest v2 sha256:{}", &hex[1..]),
        format!("state-digest v2 sha256:{}", hex.to_uppercase()),
        format!("state-digest v2  sha256:{hex}"),
        format!("state-digest v2 sha512:{hex}"),
        format!("state-digest v3 sha256:{}", &hex[1..]),
        format!("state-digest v3 blake3:{hex}"),
    ] {
        assert!(parse(&bad).is_err(), "{bad} must be refused");
    }
    // Other forms are not digests this build reads: kept as extension lines (replay
    // refuses to pass a checkpoint that carries one).
    for other in [
        format!("state-digest v1 sha256:{hex}"),
        format!("state-digest v0 sha256:{hex}"),
        format!("state-digest v02 sha256:{hex}"),
        format!("state-digest v sha256:{hex}"),
        format!("state-digest v4 blake3:{hex}"),
        format!("state-digest sha512:{hex}"),
    ] {
        let cp = Checkpoint::parse_body(&body(&other)).unwrap();
        assert_eq!((cp.state_digest, cp.extensions), (None, vec![other]));
    }
    // Only the first state-digest line is the digest; later ones are kept as is.
    let two = format!("state-digest v2 sha256:{hex}\nstate-digest sha256:{hex}");
    let cp = Checkpoint::parse_body(&body(&two)).unwrap();
    assert_eq!(
        cp.state_digest,
        Some(StateDigest {
            version: 2,
            hash: [0x0f; 32]
        })
    );
    assert_eq!(cp.extensions, [format!("state-digest sha256:{hex}")]);
}
