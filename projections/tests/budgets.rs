//! Budgets: matching by identity subset, windows by event time, hard limits,
//! warning thresholds; as given / when / then scenarios, plus a property test that
//! the fold is deterministic and resumable.

mod common;

use govledger_projections::budgets::{applies, window_index};
use govledger_projections::Budgets;
use govledger_schemas::{BudgetScope, BudgetWindow, Envelope};
use proptest::prelude::*;
use serde_json::{json, Value};

const S: u64 = 1_000_000_000;
/// 2026-01-01T00:00:00Z, a Thursday.
const NEW_YEAR_2026: u64 = 1_767_225_600 * S;

/// An event of tenant acme.
fn event(kind: &str, fields: Value) -> Envelope {
    common::event("acme", kind, fields)
}

fn configured(id: &str, scope: Value, window: &str, cost: u64, warn: &[u8]) -> Envelope {
    event(
        "budget.configured",
        json!({"budget_id": id, "scope": scope, "limit_cost_micros": cost, "window": window,
               "warn_thresholds_pct": warn}),
    )
}

fn spent(scope: Value, cost: u64) -> Envelope {
    event(
        "budget.incremented",
        json!({"scope": scope, "tokens": 10, "cost_micros": cost, "model": "m"}),
    )
}

fn scope(v: Value) -> BudgetScope {
    let e = spent(v, 0);
    match e.event {
        govledger_schemas::Event::BudgetIncremented(i) => i.scope,
        _ => unreachable!("spent() builds an increment"),
    }
}

/// Given these (event, time) pairs, each passing `check`.
fn given(events: &[(Envelope, u64)]) -> Budgets {
    let mut b = Budgets::new();
    for (i, (e, t)) in events.iter().enumerate() {
        if let Err(m) = b.check(e, *t) {
            panic!("given event {i} is refused: {}", m.message);
        }
        b.apply(e, *t);
    }
    b
}

#[test]
fn windows_follow_the_utc_calendar() {
    let day = |d: u64| NEW_YEAR_2026 + d * 86_400 * S;
    // Day.
    assert_eq!(
        window_index(BudgetWindow::Day, day(0)),
        window_index(BudgetWindow::Day, day(1) - 1)
    );
    assert_ne!(
        window_index(BudgetWindow::Day, day(0)),
        window_index(BudgetWindow::Day, day(1))
    );
    // ISO week: Thursday 2026-01-01 is in the week of Monday 2025-12-29.
    let week = |t| window_index(BudgetWindow::Week, t);
    assert_eq!(week(day(0)), week(day(0) - 3 * 86_400 * S));
    assert_ne!(week(day(0)), week(day(0) - 3 * 86_400 * S - 1));
    assert_eq!(
        week(day(3)),
        week(day(0)),
        "Sunday 2026-01-04 closes the week"
    );
    assert_ne!(
        week(day(4)),
        week(day(0)),
        "Monday 2026-01-05 opens the next"
    );
    // Calendar months, leap years included.
    let month = |secs: u64| window_index(BudgetWindow::Month, secs * S);
    assert_eq!(
        month(1_706_745_600),
        month(1_709_164_800),
        "2024-02-01 and 2024-02-29"
    );
    assert_ne!(
        month(1_709_164_800),
        month(1_709_251_200),
        "2024-02-29 and 2024-03-01"
    );
    assert_eq!(
        month(1_767_225_599) + 1,
        month(1_767_225_600),
        "2025-12 then 2026-01"
    );
    assert_eq!(
        window_index(BudgetWindow::Total, 0),
        window_index(BudgetWindow::Total, u64::MAX)
    );
}

#[test]
fn a_budget_applies_to_every_scope_that_has_its_levels() {
    let org = scope(json!({"org": "acme"}));
    let agent = scope(json!({"org": "acme", "agent": "a-1"}));
    let other = scope(json!({"org": "globex", "agent": "a-1"}));
    assert!(applies(&org, &agent));
    assert!(applies(&org, &org));
    assert!(
        !applies(&agent, &org),
        "a narrower budget does not cover the org"
    );
    assert!(!applies(&org, &other));
    assert!(applies(&scope(json!({"agent": "a-1"})), &other));
}

#[test]
fn an_increment_past_any_applicable_limit_is_refused_and_not_counted() {
    let t = NEW_YEAR_2026;
    let b = given(&[
        (
            configured("org", json!({"org": "acme"}), "month", 10_000, &[]),
            t,
        ),
        (
            configured(
                "agent",
                json!({"org": "acme", "agent": "a-1"}),
                "day",
                3_000,
                &[],
            ),
            t,
        ),
        (spent(json!({"org": "acme", "agent": "a-1"}), 2_000), t + 1),
        (spent(json!({"org": "acme", "agent": "a-2"}), 7_000), t + 2),
    ]);
    assert_eq!(b.budget("acme", "org").map(|b| b.cost_micros), Some(9_000));
    assert_eq!(
        b.budget("acme", "agent").map(|b| b.cost_micros),
        Some(2_000)
    );
    // Reaching a limit exactly is allowed; one micro-unit more is not.
    assert!(b
        .check(&spent(json!({"org": "acme", "agent": "a-1"}), 1_000), t + 3)
        .is_ok());
    let e = b
        .check(&spent(json!({"org": "acme", "agent": "a-2"}), 1_001), t + 3)
        .unwrap_err()
        .message;
    assert!(
        e.contains("budget org would be exceeded: spend 10001 of 10000"),
        "{e}"
    );
    // a-1 hits its own daily budget before the org's.
    let e = b
        .check(&spent(json!({"org": "acme", "agent": "a-1"}), 1_001), t + 3)
        .unwrap_err()
        .message;
    assert!(
        e.contains("budget agent") && e.contains("3001 of 3000"),
        "{e}"
    );
    // Another tenant's spend is not counted here.
    let mut other = spent(json!({"org": "acme", "agent": "a-1"}), 1_000_000);
    other.tenant = "globex".parse().expect("tenant");
    assert!(b.check(&other, t + 3).is_ok());
}

#[test]
fn counters_restart_with_each_window_of_event_time() {
    let t = NEW_YEAR_2026;
    let day = 86_400 * S;
    let b = given(&[
        (
            configured("daily", json!({"org": "acme"}), "day", 1_000, &[]),
            t,
        ),
        (spent(json!({"org": "acme"}), 1_000), t + 5),
    ]);
    assert!(b
        .check(&spent(json!({"org": "acme"}), 1), t + day - 1)
        .is_err());
    assert!(b
        .check(&spent(json!({"org": "acme"}), 1_000), t + day)
        .is_ok());
    let b = given(&[
        (
            configured("daily", json!({"org": "acme"}), "day", 1_000, &[]),
            t,
        ),
        (spent(json!({"org": "acme"}), 1_000), t + 5),
        (spent(json!({"org": "acme"}), 400), t + day),
    ]);
    assert_eq!(b.budget("acme", "daily").map(|b| b.cost_micros), Some(400));
    // Re-configuring keeps the window's counters.
    let b = given(&[
        (
            configured("daily", json!({"org": "acme"}), "day", 1_000, &[]),
            t,
        ),
        (spent(json!({"org": "acme"}), 900), t + 5),
        (
            configured("daily", json!({"org": "acme"}), "day", 2_000, &[]),
            t + 6,
        ),
    ]);
    assert_eq!(b.budget("acme", "daily").map(|b| b.cost_micros), Some(900));
    assert!(b
        .check(&spent(json!({"org": "acme"}), 1_100), t + 7)
        .is_ok());
}

#[test]
fn crossing_a_warning_threshold_is_reported_once_per_window() {
    let t = NEW_YEAR_2026;
    let mut b = given(&[(
        configured("b", json!({"org": "acme"}), "day", 1_000, &[50, 80, 95]),
        t,
    )]);
    let warn = |b: &mut Budgets, cost: u64, at: u64| -> Vec<u8> {
        b.apply(&spent(json!({"org": "acme"}), cost), at)
            .iter()
            .map(|w| w.threshold_pct)
            .collect()
    };
    assert_eq!(warn(&mut b, 400, t + 1), Vec::<u8>::new());
    assert_eq!(warn(&mut b, 100, t + 2), [50], "exactly 50%");
    assert_eq!(warn(&mut b, 100, t + 3), Vec::<u8>::new());
    assert_eq!(warn(&mut b, 350, t + 4), [95], "the highest crossed, once");
    assert_eq!(warn(&mut b, 10, t + 5), Vec::<u8>::new());
    // A new day starts over.
    assert_eq!(warn(&mut b, 800, t + 86_400 * S), [80]);
    let w = b.apply(&spent(json!({"org": "acme"}), 0), t + 86_400 * S + 1);
    assert!(w.is_empty());
}

// ---- determinism ----

/// Scopes that share values across levels (`x` as an org, a team and a user), so
/// that a budget is found by its level, not by its value alone.
fn any_scope() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"org": "acme"})),
        Just(json!({"org": "acme", "agent": "a-1"})),
        Just(json!({"org": "acme", "agent": "a-2"})),
        Just(json!({"agent": "a-1"})),
        Just(json!({"org": "x", "user": "x"})),
        Just(json!({"team": "x"})),
        Just(json!({"user": "x", "agent": "a-1"})),
        Just(json!({"org": "acme", "team": "x", "user": "u", "agent": "a-2"})),
    ]
}

fn any_event() -> impl Strategy<Value = (Envelope, u64)> {
    let window = prop_oneof![Just("day"), Just("week"), Just("month"), Just("total")];
    let tenant = prop_oneof![4 => Just("acme"), 1 => Just("globex")];
    (
        any_scope(),
        window,
        0usize..6,
        0u64..5_000,
        0u64..(90 * 86_400),
        tenant,
    )
        .prop_map(|(sc, w, k, amount, secs, tenant)| {
            let mut e = match k {
                0 => configured("b-1", sc, w, 5_000, &[50, 90]),
                1 => configured("b-2", sc, w, 20_000, &[]),
                2 => configured("b-3", sc, w, 9_000, &[10]),
                // A scope that sets no level (the wire refuses it; a fold of
                // another writer's log could meet it): it applies to every spend.
                3 => {
                    let mut e = configured("b-0", sc, w, 30_000, &[]);
                    if let govledger_schemas::Event::BudgetConfigured(c) = &mut e.event {
                        c.scope = BudgetScope::default();
                    }
                    e
                }
                _ => spent(sc, amount),
            };
            e.tenant = tenant.parse().expect("tenant");
            (e, NEW_YEAR_2026 + secs * S)
        })
}

fn decoded(b: &Budgets) -> Budgets {
    common::decoded(|c| b.encode(c), Budgets::decode)
}

fn fold(mut b: Budgets, events: &[(Envelope, u64)]) -> (Budgets, usize) {
    let mut warnings = 0;
    for (e, t) in events {
        if b.check(e, *t).is_ok() {
            warnings += b.apply(e, *t).len();
        }
    }
    (b, warnings)
}

proptest! {
    #[test]
    fn folding_is_deterministic_and_resumable_at_any_point(
        mut events in proptest::collection::vec(any_event(), 0..60),
        k in 0usize..60,
    ) {
        // Event time moves forward with the log.
        events.sort_by_key(|(_, t)| *t);
        let k = k.min(events.len());
        let (all, w) = fold(Budgets::new(), &events);
        prop_assert_eq!(&(all.clone(), w), &fold(Budgets::new(), &events));
        let (head, w1) = fold(Budgets::new(), &events[..k]);
        let (rest, w2) = fold(head, &events[k..]);
        prop_assert_eq!(&(all.clone(), w), &(rest, w1 + w2));
        // Nothing counted is ever past a limit.
        for (_, id, b) in all.iter() {
            prop_assert!(b.cost_micros <= b.terms.limit_cost_micros.unwrap_or(u64::MAX), "{}", id);
        }
        // Decoding rebuilds the index by scope too, and a fold resumes from it alike.
        prop_assert_eq!(&decoded(&all), &all);
        let (head, _) = fold(Budgets::new(), &events[..k]);
        prop_assert_eq!(&fold(decoded(&head), &events[k..]).0, &all);
    }

    /// The budgets found for a spend are every budget of its tenant that applies,
    /// in id order: what a walk over all of them finds.
    #[test]
    fn the_applicable_budgets_are_those_a_full_walk_finds(
        mut events in proptest::collection::vec(any_event(), 0..60),
        spend in any_scope(),
        tenant in prop_oneof![Just("acme"), Just("globex")],
    ) {
        events.sort_by_key(|(_, t)| *t);
        let (all, _) = fold(Budgets::new(), &events);
        let spend = scope(spend);
        let found: Vec<&str> = all.applicable(tenant, &spend).map(|(id, _)| id).collect();
        let walked: Vec<&str> = all
            .iter()
            .filter(|(t, _, b)| *t == tenant && applies(&b.terms.scope, &spend))
            .map(|(_, id, _)| id)
            .collect();
        prop_assert_eq!(found, walked);
    }
}
