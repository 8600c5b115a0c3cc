//! The alerts an admitted batch raises beyond its rejections: budget warnings and
//! detections, in one JSON shape that `serve` publishes on `gov.alerts.<tenant>` and
//! `append --json` reports.

use govledger_ledger::Appended;
use govledger_projections::{BudgetWarning, Detection};
use govledger_schemas::Entry;
use serde_json::{json, Value};

/// The seq of the accepted entry `event_id` of `tenant` in this batch.
fn seq_of(entries: &[Entry], appended: &[Appended], tenant: &str, event_id: &str) -> Option<u64> {
    entries
        .iter()
        .zip(appended)
        .find(|(e, _)| e.event_id() == Some(event_id) && e.tenant() == Some(tenant))
        .map(|(_, a)| a.seq.0)
}

/// (tenant, alert) for each warning and detection of a durable batch, as
/// [`crate::Admission::take_warnings`] and [`crate::Admission::take_detections`]
/// return them:
/// `{"kind": "budget_warning", "seq", "event_id", "tenant", "budget_id", "measure",
/// "threshold_pct", "used", "limit"}` and
/// `{"kind": "detection", "rule", "seq", "event_id", "tenant", "agent", "detail"}`.
pub fn raised(
    entries: &[Entry],
    appended: &[Appended],
    warnings: Vec<(String, BudgetWarning)>,
    detections: Vec<(String, Detection)>,
) -> Vec<(String, Value)> {
    let warnings = warnings.into_iter().map(|(event_id, w)| {
        let alert = json!({
            "kind": "budget_warning",
            "seq": seq_of(entries, appended, &w.tenant, &event_id),
            "event_id": event_id,
            "tenant": w.tenant,
            "budget_id": w.budget_id,
            "measure": w.measure,
            "threshold_pct": w.threshold_pct,
            "used": w.used,
            "limit": w.limit,
        });
        (w.tenant, alert)
    });
    let detections = detections.into_iter().map(|(event_id, d)| {
        let alert = json!({
            "kind": "detection",
            "rule": d.rule,
            "seq": seq_of(entries, appended, &d.tenant, &event_id),
            "event_id": event_id,
            "tenant": d.tenant,
            "agent": d.agent,
            "detail": d.detail,
        });
        (d.tenant, alert)
    });
    warnings.chain(detections).collect()
}
