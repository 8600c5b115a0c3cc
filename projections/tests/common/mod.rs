//! Shared by the projection tests.

use govledger_projections::canon::{Canon, CanonError, Reader};
use govledger_schemas::{decode_body, DecodeLimits, Envelope};
use serde_json::{json, Value};

/// A strictly decoded v1 event of `tenant` with the type's `fields` (id `e-<kind>`).
pub fn event(tenant: &str, kind: &str, mut fields: Value) -> Envelope {
    let m = fields.as_object_mut().expect("fields are an object");
    m.insert("v".into(), json!(1));
    m.insert("id".into(), json!(format!("e-{kind}")));
    m.insert("type".into(), json!(kind));
    m.insert("tenant".into(), json!(tenant));
    decode_body(fields.to_string().as_bytes(), &DecodeLimits::default())
        .unwrap_or_else(|e| panic!("test event {kind} does not decode: {e}"))
}

/// A part of the state written by `encode` (its canonical encoding) and read back
/// by `decode`.
#[allow(dead_code)]
pub fn decoded<T>(
    encode: impl FnOnce(&mut Canon<Vec<u8>>),
    decode: impl FnOnce(&mut Reader<'_>) -> Result<T, CanonError>,
) -> T {
    let mut c = Canon::buffer();
    encode(&mut c);
    let bytes = c.into_bytes();
    decode(&mut Reader::new("part", &bytes)).expect("decode")
}
