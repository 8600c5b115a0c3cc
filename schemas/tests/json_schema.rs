//! The JSON Schema files in `schemas/json/` agree with the decoder.
//!
//! There is no JSON Schema validator among our dependencies, so this checks the subset of
//! keywords the files use (`$ref` to local `$defs`, `type`, `const`, `enum`, `properties`,
//! `required`, `additionalProperties`, `allOf`, `anyOf`, `items`, `minimum`, `maximum`,
//! `minLength`, `maxLength`); `pattern` is not checked. Beyond that it cross-checks each
//! file against the decoder: the properties are exactly the fields of the complete example,
//! and a field is `required` exactly when removing it makes the decoder fail.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use govledger_schemas::{decode_body, DecodeError, DecodeLimits, EventType};
use serde_json::Value;

fn json_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("json")
}

fn load(name: &str) -> Value {
    let path = json_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/$defs/").expect("only local $defs refs");
            root["$defs"]
                .get(name)
                .unwrap_or_else(|| panic!("dangling $ref {r}"))
        }
        None => schema,
    }
}

/// Validates `v` against `schema` (subset of draft 2020-12), returning the first error.
fn validate(root: &Value, schema: &Value, v: &Value, path: &str) -> Result<(), String> {
    if schema.get("$ref").is_some() {
        validate(root, resolve(root, schema), v, path)?;
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_u64() || v.is_i64(),
            "boolean" => v.is_boolean(),
            other => panic!("type {other} not handled"),
        };
        if !ok {
            return Err(format!("{path}: expected {t}"));
        }
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            return Err(format!("{path}: expected const {c}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            return Err(format!("{path}: not in enum"));
        }
    }
    let int = |x: &Value| {
        x.as_u64()
            .map(i128::from)
            .or_else(|| x.as_i64().map(i128::from))
    };
    if let Some(n) = int(v) {
        if schema.get("minimum").and_then(int).is_some_and(|m| n < m) {
            return Err(format!("{path}: below minimum"));
        }
        if schema.get("maximum").and_then(int).is_some_and(|m| n > m) {
            return Err(format!("{path}: above maximum"));
        }
    }
    if let Some(s) = v.as_str() {
        let n = s.chars().count() as u64;
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| n < m)
            || schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| n > m)
        {
            return Err(format!("{path}: length out of range"));
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate(root, s, v, path)?;
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        if !any.iter().any(|s| validate(root, s, v, path).is_ok()) {
            return Err(format!("{path}: matches none of anyOf"));
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            validate(root, items, item, &format!("{path}[{i}]"))?;
        }
    }
    if let Some(obj) = v.as_object() {
        if let Some(req) = schema.get("required").and_then(Value::as_array) {
            for r in req {
                let r = r.as_str().unwrap();
                if !obj.contains_key(r) {
                    return Err(format!("{path}: missing required `{r}`"));
                }
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        if let Some(props) = props {
            for (k, val) in obj {
                match props.get(k) {
                    Some(s) => validate(root, s, val, &format!("{path}.{k}"))?,
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        return Err(format!("{path}: `{k}` not in properties"));
                    }
                    None => {}
                }
            }
        }
    }
    Ok(())
}

#[test]
fn every_type_has_a_closed_schema_matching_its_example() {
    let envelope = load("envelope.schema.json");
    assert_eq!(
        envelope["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let type_enum: Vec<&str> = envelope["properties"]["type"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let all: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(type_enum, all);

    for (kind, example) in common::examples() {
        let schema = load(&format!("{}.schema.json", kind.as_str()));
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["additionalProperties"], Value::Bool(false), "{kind}");
        assert_eq!(schema["properties"]["type"]["const"], kind.as_str());
        assert_eq!(schema["properties"]["v"]["const"], 1);

        // Properties are exactly the fields of the complete example.
        let props: BTreeSet<&String> = schema["properties"].as_object().unwrap().keys().collect();
        let keys: BTreeSet<&String> = example.as_object().unwrap().keys().collect();
        assert_eq!(props, keys, "{kind}: schema properties vs example fields");

        validate(&schema, &schema, &example, "$")
            .unwrap_or_else(|e| panic!("{kind}: example fails its schema: {e}"));
        validate(&envelope, &envelope, &example, "$")
            .unwrap_or_else(|e| panic!("{kind}: example fails the envelope schema: {e}"));

        // A field is required by the schema exactly when the decoder needs it.
        let required: BTreeSet<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for key in &keys {
            let mut v = example.clone();
            v.as_object_mut().unwrap().remove(key.as_str());
            let decoded = decode_body(&serde_json::to_vec(&v).unwrap(), &DecodeLimits::default());
            if required.contains(key.as_str()) {
                match decoded {
                    Err(DecodeError::Schema { field, message }) => {
                        assert_eq!(&field, *key, "{kind}");
                        assert_eq!(message, "missing required field");
                    }
                    other => panic!("{kind}: removing required `{key}` gave {other:?}"),
                }
                assert!(validate(&schema, &schema, &v, "$").is_err());
            } else {
                assert!(
                    decoded.is_ok(),
                    "{kind}: `{key}` is optional but {decoded:?}"
                );
                assert!(validate(&schema, &schema, &v, "$").is_ok(), "{kind}: {key}");
            }
        }
    }
}

#[test]
fn no_stray_schema_files() {
    let mut names: Vec<String> = std::fs::read_dir(json_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<String> = EventType::ALL
        .iter()
        .map(|t| format!("{}.schema.json", t.as_str()))
        .chain(["envelope.schema.json".to_owned()])
        .collect();
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
fn schema_rejects_what_the_decoder_rejects() {
    // Spot checks that the schema keywords carry the decoder's rules.
    let cases: &[(EventType, &str, Value)] = &[
        (
            EventType::ActionExecuted,
            "cost_micros",
            serde_json::json!(-1),
        ),
        (
            EventType::ActionExecuted,
            "outcome",
            serde_json::json!("ok"),
        ),
        (
            EventType::ActionProposed,
            "actor",
            serde_json::json!({"user": "u"}),
        ),
        (EventType::SessionStarted, "actor", serde_json::json!({})),
        (EventType::BudgetIncremented, "scope", serde_json::json!({})),
        (
            EventType::BudgetConfigured,
            "warn_thresholds_pct",
            serde_json::json!([0]),
        ),
        (
            EventType::ApprovalGranted,
            "max_count",
            serde_json::json!(0),
        ),
        (
            EventType::PolicyDecided,
            "policy_version",
            serde_json::json!(""),
        ),
        (EventType::Telemetry, "data", serde_json::json!([])),
        (EventType::KeyRevoked, "extra", serde_json::json!(1)),
    ];
    for (kind, key, val) in cases {
        let (_, mut v) = common::examples()
            .into_iter()
            .find(|(k, _)| k == kind)
            .unwrap();
        v.as_object_mut()
            .unwrap()
            .insert((*key).into(), val.clone());
        let schema = load(&format!("{}.schema.json", kind.as_str()));
        assert!(
            validate(&schema, &schema, &v, "$").is_err(),
            "{kind}.{key}={val} should fail the schema"
        );
        assert!(
            decode_body(&serde_json::to_vec(&v).unwrap(), &DecodeLimits::default()).is_err(),
            "{kind}.{key}={val} should fail the decoder"
        );
    }
    // Both limits absent violates the top-level anyOf of budget.configured.
    let (_, mut v) = common::examples()
        .into_iter()
        .find(|(k, _)| *k == EventType::BudgetConfigured)
        .unwrap();
    v.as_object_mut().unwrap().remove("limit_tokens");
    v.as_object_mut().unwrap().remove("limit_cost_micros");
    let schema = load("budget.configured.schema.json");
    assert!(validate(&schema, &schema, &v, "$").is_err());
}
