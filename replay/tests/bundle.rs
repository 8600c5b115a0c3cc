//! Incident bundles, timelines and `explain` over a generated log with real
//! signatures: a bundle verifies offline; any changed byte fails and is named by
//! its line; it holds what concerns the agent; a timeline lists the same entries.

use govledger_ingest::gen::admit_generated;
use govledger_ingest::{Admission, GenOptions, Generator, Trust};
use govledger_ledger::note::NoteSigner;
use govledger_ledger::store::MemStore;
use govledger_ledger::Ledger;
use govledger_replay::bundle::{self, BundleError, Request};
use govledger_replay::scope::{envelope, Filter};
use govledger_replay::{count_until, entries_from, explain, timeline};
use govledger_schemas::{DecodeLimits, Entry, Event, RejectReason};
use sha2::{Digest, Sha256};

const ORIGIN: &str = "bundle.test/log";

fn opts() -> GenOptions {
    GenOptions {
        events: 1_200,
        seed: 5,
        tenants: 2,
        ..GenOptions::default()
    }
}

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, [9; 32]).expect("signer")
}

/// The generated stream admitted in batches of 200, each followed by a checkpoint
/// (the last batch left without one when `last_unsigned`).
fn build(last_unsigned: bool) -> (Ledger<MemStore>, Trust) {
    let trust = Generator::new(opts()).trust();
    let mut ledger = Ledger::create(MemStore::new(), ORIGIN).expect("ledger");
    admit_generated(&mut ledger, opts(), 200, &mut |ledger, adm| {
        if !(last_unsigned && ledger.size() == 1_200) {
            ledger
                .checkpoint(&signer(), Some(adm.state_digest()))
                .expect("checkpoint");
        }
    })
    .expect("admit");
    (ledger, trust)
}

fn all(ledger: &Ledger<MemStore>) -> Vec<Entry> {
    entries_from(ledger, 0).map(|e| e.expect("entry")).collect()
}

fn agent_filter() -> Filter {
    Filter {
        agent: Some("agent-2".into()),
        ..Filter::default()
    }
}

/// The bundle of `filter` over event times `from..=to`, starting the walk from the
/// state at entry 0 or, with `start_at_range`, at the range's first entry.
fn make(
    ledger: &Ledger<MemStore>,
    trust: &Trust,
    filter: Filter,
    from: u64,
    to: u64,
    start_at_range: bool,
) -> Result<Vec<u8>, BundleError> {
    let start = if start_at_range && from > 0 {
        count_until(ledger, from - 1).unwrap()
    } else {
        0
    };
    let mut adm = Admission::new(trust, DecodeLimits::default()).unwrap();
    govledger_replay::fold(&mut adm, ledger, 0, start, &mut |_| {}).unwrap();
    let end = count_until(ledger, to).unwrap();
    let req = Request {
        filter,
        from_ns: from,
        to_ns: to,
    };
    bundle::build(
        &mut adm,
        ledger,
        &signer().verifier(),
        &req,
        start,
        end,
        &mut |_| {},
    )
}

/// Agent ids named as actor (or spend scope) by an entry.
fn names_agent(e: &Entry, agent: &str) -> bool {
    let Some(env) = envelope(e) else { return false };
    let v: serde_json::Value = serde_json::from_slice(e.body.as_ref().unwrap()).unwrap();
    let direct = v["actor"]["agent"] == agent || v["scope"]["agent"] == agent;
    direct
        || matches!(&env.event, Event::KillswitchEngaged(k) | Event::KillswitchReleased(k)
            if k.target.as_str() == agent)
}

#[test]
fn a_bundle_verifies_offline_and_holds_what_concerns_the_agent() {
    let (ledger, trust) = build(false);
    let entries = all(&ledger);
    let (t0, t1) = (entries[300].time_ns, entries[900].time_ns);
    let bytes = make(&ledger, &trust, agent_filter(), t0, t1, false).expect("bundle");
    let v = bundle::verify(&bytes, Some(&signer().verifier())).expect("verifies");
    assert!(v.key_given);
    assert_eq!(v.origin, ORIGIN);
    let seqs: Vec<u64> = v.entries.iter().map(|(e, _)| e.seq.0).collect();
    assert!(seqs.len() > 10, "{} entries", seqs.len());
    // Every entry in range that names the agent is in, and each one in is the
    // stored entry at its seq.
    for e in &entries {
        if (t0..=t1).contains(&e.time_ns) && names_agent(e, "agent-2") {
            assert!(seqs.contains(&e.seq.0), "entry {} names agent-2", e.seq.0);
        }
    }
    for (e, size) in &v.entries {
        assert_eq!(e, &entries[e.seq.0 as usize]);
        assert!((t0..=t1).contains(&e.time_ns));
        assert!(*size > e.seq.0);
    }
    // Decisions and approvals by others on agent-2's proposals are in too.
    assert!(v
        .entries
        .iter()
        .any(
            |(e, _)| e.event_type() == Some("policy.decided") && !names_agent(e, "agent-2")
                || e.event_type() == Some("approval.granted")
        ));
    assert!(v.signatures_checked >= v.entries.iter().filter(|(e, _)| e.body.is_some()).count());
    // The checkpoints are the first covering each entry, plus the newest.
    let sizes: Vec<u64> = v.checkpoints.iter().map(|c| c.size).collect();
    assert_eq!(sizes.last(), Some(&(entries.len() as u64)));
    assert!(sizes.windows(2).all(|w| w[0] < w[1]));

    // The same bundle, walked from the state at the range rather than entry 0.
    let again = make(&ledger, &trust, agent_filter(), t0, t1, true).expect("bundle");
    assert_eq!(
        again, bytes,
        "a walk from mid-log (seeded scope) builds the same bundle"
    );
}

#[test]
fn a_timeline_lists_the_bundle_entries_with_what_was_in_force() {
    let (ledger, trust) = build(false);
    let entries = all(&ledger);
    let (t0, t1) = (entries[0].time_ns, entries[1199].time_ns);
    let bytes = make(&ledger, &trust, agent_filter(), t0, t1, false).expect("bundle");
    let v = bundle::verify(&bytes, None).expect("verifies");
    assert!(!v.key_given);
    let mut adm = Admission::new(&trust, DecodeLimits::default()).unwrap();
    let tl = timeline::build(
        &mut adm,
        &ledger,
        0,
        entries.len() as u64,
        agent_filter(),
        t0,
        t1,
        &mut |_| {},
    )
    .expect("timeline");
    let tl_seqs: Vec<u64> = tl
        .items
        .iter()
        .map(|i| i["seq"].as_u64().unwrap())
        .collect();
    let b_seqs: Vec<u64> = v.entries.iter().map(|(e, _)| e.seq.0).collect();
    assert_eq!(tl_seqs, b_seqs);
    let spends: Vec<_> = tl
        .items
        .iter()
        .filter(|i| i["event_type"] == "budget.incremented" && i["verdict"] == "accepted")
        .collect();
    assert!(!spends.is_empty());
    for s in spends {
        assert!(s["budgets"].is_array(), "{s}");
    }
    let executions: Vec<_> = tl
        .items
        .iter()
        .filter(|i| i["event_type"] == "action.executed" && i["verdict"] == "accepted")
        .collect();
    assert!(!executions.is_empty());
    for x in executions {
        assert!(
            x["decision"].is_object() || !x["approvals"].as_array().unwrap().is_empty(),
            "an accepted execution had an allow decision or an approval: {x}"
        );
    }
    // The page escapes what it shows and names every event.
    let page = govledger_replay::html::render(&tl);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<li id=\"e").count(), tl.items.len());
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "self-contained"
    );
}

/// A timeline whose walk starts mid-log (as `timeline --from` and `replay
/// --from-checkpoint` start it, from the state there) gives each item the same
/// decision in full as a walk from entry 0, also where the decision came
/// before the walk began (its entry is found by reading back from the start).
#[test]
fn a_timeline_started_mid_log_names_decisions_made_before_it_in_full() {
    let (ledger, trust) = build(false);
    let entries = all(&ledger);
    let tenant = Filter {
        tenant: entries[0].tenant().map(str::to_owned),
        ..Filter::default()
    };
    // Starts right after a decision whose proposal has entries later on.
    let proposal_of = |e: &Entry| match envelope(e).map(|env| env.event) {
        Some(Event::PolicyDecided(d)) => Some(("d", d.proposal.as_str().to_owned())),
        Some(Event::ActionExecuted(x)) => Some(("x", x.proposal.as_str().to_owned())),
        _ => None,
    };
    let starts: Vec<usize> = (300..1_100)
        .filter(|&d| {
            let Some(("d", p)) = proposal_of(&entries[d]) else {
                return false;
            };
            entries[d + 1..]
                .iter()
                .any(|e| proposal_of(e) == Some(("x", p.clone())))
        })
        .map(|d| d + 1)
        .step_by(40)
        .take(4)
        .collect();
    assert!(!starts.is_empty());
    let mut decided_before = 0;
    for filter in [agent_filter(), tenant] {
        for &first in &starts {
            let (t0, t1) = (entries[first].time_ns, entries[1199].time_ns);
            let walk = |start: u64| {
                let mut adm = Admission::new(&trust, DecodeLimits::default()).unwrap();
                govledger_replay::fold(&mut adm, &ledger, 0, start, &mut |_| {}).unwrap();
                let end = entries.len() as u64;
                timeline::build(
                    &mut adm,
                    &ledger,
                    start,
                    end,
                    filter.clone(),
                    t0,
                    t1,
                    &mut |_| {},
                )
                .expect("timeline")
            };
            let start = count_until(&ledger, t0 - 1).unwrap();
            let (whole, late) = (walk(0), walk(start));
            assert_eq!(late.items, whole.items, "{filter:?} from {start}");
            decided_before += late
                .items
                .iter()
                .filter(|i| i["decision"]["seq"].as_u64().is_some_and(|s| s < start))
                .count();
            assert!(late
                .items
                .iter()
                .all(|i| !i["decision"].is_object() || i["decision"]["policy_id"].is_string()));
        }
    }
    assert!(decided_before > 0, "some decisions came before their walk");
}

/// The 1-based line that byte `i` of `bytes` is on.
fn line_of(bytes: &[u8], i: usize) -> usize {
    1 + bytes[..i].iter().filter(|&&b| b == b'\n').count()
}

#[test]
fn any_changed_byte_fails_and_the_problem_names_its_line() {
    let (ledger, trust) = build(false);
    let entries = all(&ledger);
    // A narrow range keeps the bundle small enough to change every byte.
    let (t0, t1) = (entries[400].time_ns, entries[460].time_ns);
    let bytes = make(&ledger, &trust, agent_filter(), t0, t1, false).expect("bundle");
    let key = signer().verifier();
    bundle::verify(&bytes, Some(&key)).expect("the original verifies");
    let header_lines = 5;
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        let p = match bundle::verify(&bad, Some(&key)) {
            Ok(_) => panic!(
                "changing byte {i} (line {}) went unnoticed",
                line_of(&bytes, i)
            ),
            Err(p) => p,
        };
        let line = line_of(&bytes, i);
        if line > header_lines {
            // A changed newline splits or joins lines: the problem is on this
            // line or the next.
            let ok = p.line == line || (bytes[i] == b'\n' && p.line == line + 1);
            assert!(ok, "byte {i} is on line {line}, the problem names {p}");
        }
    }
}

#[test]
fn a_wrong_key_an_unused_signer_and_a_stale_checksum_are_named() {
    let (ledger, trust) = build(false);
    let entries = all(&ledger);
    let (t0, t1) = (entries[100].time_ns, entries[300].time_ns);
    let bytes = make(&ledger, &trust, agent_filter(), t0, t1, false).expect("bundle");
    let other = NoteSigner::from_seed(ORIGIN, [1; 32]).unwrap().verifier();
    let p = bundle::verify(&bytes, Some(&other)).unwrap_err();
    assert_eq!((p.line, p.section), (3, "header"), "{p}");
    assert!(p.message.contains("not the key given"), "{p}");

    // An extra signer line, with the checksum recomputed: refused by name.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let body = &text[..text.rfind("sha256 ").unwrap()];
    let extra = format!("{body}signer zzz/extra {}\n", "A".repeat(43) + "=");
    let sum: String = Sha256::digest(extra.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let forged = format!("{extra}sha256 {sum}\n");
    let p = bundle::verify(forged.as_bytes(), Some(&signer().verifier())).unwrap_err();
    assert_eq!(p.section, "signer", "{p}");

    // The unsigned header changed, with the checksum left as it was.
    let moved = text.replacen(&format!("range {t0} "), &format!("range {} ", t0 - 1), 1);
    let p = bundle::verify(moved.as_bytes(), Some(&signer().verifier())).unwrap_err();
    assert_eq!(p.section, "sha256", "{p}");
    assert!(p.message.contains("unsigned header"), "{p}");
}

#[test]
fn nothing_to_bundle_or_nothing_signed_yet_is_a_clear_error() {
    let (ledger, trust) = build(true);
    let entries = all(&ledger);
    let nobody = Filter {
        agent: Some("agent-99".into()),
        ..Filter::default()
    };
    let e = make(&ledger, &trust, nobody, 0, u64::MAX, false).unwrap_err();
    assert!(matches!(e, BundleError::Empty { .. }), "{e}");
    assert!(e.to_string().contains("agent agent-99"), "{e}");
    // The last 200 entries are after the newest checkpoint.
    let e = make(&ledger, &trust, agent_filter(), 0, u64::MAX, false).unwrap_err();
    assert!(
        matches!(e, BundleError::NotCovered { newest: 1000, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("govledger checkpoint"), "{e}");
    // Up to the signed part it works.
    make(
        &ledger,
        &trust,
        agent_filter(),
        0,
        entries[999].time_ns,
        false,
    )
    .expect("bundle");
}

#[test]
fn explain_names_the_entries_behind_a_verdict() {
    let (ledger, _) = build(false);
    let entries = all(&ledger);
    // An accepted execution rests on its proposal and a decision or approval.
    let x = entries
        .iter()
        .find(|e| e.event_type() == Some("action.executed"))
        .expect("an execution");
    let why = explain::explain(&ledger, x.seq.0).expect("explain");
    let relations: Vec<&str> = why.causes.iter().map(|c| c.relation.as_str()).collect();
    assert!(relations.contains(&"proposed it"), "{relations:?}");
    assert!(
        relations.contains(&"the policy decision") || relations.contains(&"granted an approval"),
        "{relations:?}"
    );
    assert!(why.causes.iter().all(|c| c.seq < x.seq.0));
    assert!(why.causes.windows(2).all(|w| w[0].seq <= w[1].seq));
    // Finding by id gives that entry.
    let id = x.event_id().unwrap();
    assert_eq!(
        explain::find(&ledger, id, x.tenant()).unwrap(),
        vec![x.seq.0]
    );
    // A rejection keeps its reason.
    if let Some(r) = entries.iter().find(|e| !e.is_accepted()) {
        let why = explain::explain(&ledger, r.seq.0).unwrap();
        assert!(why.entry.reject_reason().is_some());
        if why.entry.reject_reason() == Some(RejectReason::Duplicate) {
            assert!(why
                .causes
                .iter()
                .any(|c| c.relation == "first carried this event id"));
        }
    }
}
