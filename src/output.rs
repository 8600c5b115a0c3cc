//! Output helpers shared by the commands: base64, hex, and the JSON contracts that
//! README documents (entry, inclusion, consistency, checkpoint, key).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use govledger_schemas::{Entry, Verdict};
use serde_json::{json, Value};

pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Prints one JSON document on stdout.
pub fn print_json(v: &Value) {
    println!("{v}");
}

/// The entry contract: `{"seq", "leaf", "leaf_hash", ...decoded fields}`.
pub fn entry_json(leaf: &[u8], leaf_hash: &[u8; 32], e: &Entry) -> Value {
    let mut v = json!({
        "seq": e.seq.0,
        "leaf": b64(leaf),
        "leaf_hash": b64(leaf_hash),
        "stream_seq": e.stream_seq,
        "time_ns": e.time_ns,
        "subject": e.subject,
        "key_id": e.key_id,
        "signature": e.signature.as_deref().map(b64),
        "body_sha256": hex(&e.body_sha256),
        "body_len": e.body_len,
    });
    match &e.verdict {
        Verdict::Accepted {
            event_id,
            event_type,
            tenant,
        } => {
            v["verdict"] = json!("accepted");
            v["event_id"] = json!(event_id);
            v["event_type"] = json!(event_type);
            v["tenant"] = json!(tenant);
            v["reason"] = Value::Null;
        }
        Verdict::Rejected {
            reason,
            detail,
            event_id,
            tenant,
        } => {
            v["verdict"] = json!("rejected");
            v["event_id"] = json!(event_id);
            v["event_type"] = Value::Null;
            v["tenant"] = json!(tenant);
            v["reason"] = json!(reason.as_str());
            v["detail"] = json!(detail);
        }
    }
    if let Some(body) = &e.body {
        v["body"] = json!(String::from_utf8_lossy(body));
        v["event"] = serde_json::from_slice(body).unwrap_or(Value::Null);
    } else {
        v["body"] = Value::Null;
        v["event"] = Value::Null;
    }
    v
}
