//! Validates the golden OCSF output against the published OCSF schema with
//! `tests/ocsf_validate.py` (packages: `pip install -r export/tests/requirements.txt`).
//! Skips, saying why, only when python3 or the packages are missing.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn golden_ocsf_output_validates_against_the_ocsf_schema() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    let script = dir.join("ocsf_validate.py");
    let golden = dir.join("golden/ocsf.jsonl");
    let output = match Command::new("python3").arg(&script).arg(&golden).output() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("SKIPPED golden_ocsf_output_validates_against_the_ocsf_schema: cannot run python3 ({e})");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => println!("{stdout}"),
        Some(3) => eprintln!(
            "SKIPPED golden_ocsf_output_validates_against_the_ocsf_schema: {}",
            stderr.trim()
        ),
        other => panic!("OCSF validation failed ({other:?}):\n{stdout}\n{stderr}"),
    }
}
