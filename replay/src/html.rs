//! `timeline --html`: one self-contained page (no network, no external files) that
//! draws a [`Timeline`] so a person can read the incident at a glance.
//!
//! At the top, a strip shows every event in log order, coloured by kind
//! (rejections red, kill switches orange, approvals blue, spends purple, the rest
//! green); each mark links to its row. Below, one row per event: time, seq, verdict,
//! the summary, and what was in force (decision, approvals, budgets). Every text
//! taken from the log is HTML-escaped. A small inline script checks, once the page
//! is laid out, that every row and mark has a size on screen and records the count
//! in `data-rendered` on `<html>` (the tests read it through a headless browser).

use std::fmt::Write as _;

use serde_json::Value;

use crate::time::format_rfc3339;
use crate::timeline::{approval_text, budget_text, decision_text, text, Timeline};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The kind of mark an item gets: a CSS class.
fn kind(item: &Value) -> &'static str {
    if item["verdict"] == "rejected" {
        return "rejected";
    }
    match item["event_type"].as_str().unwrap_or("") {
        "killswitch.engaged" | "killswitch.released" => "kill",
        t if t.starts_with("approval.") => "approval",
        "budget.incremented" | "budget.configured" => "budget",
        "policy.decided" if item["decision"]["decision"] == "deny" => "rejected",
        _ => "accepted",
    }
}

fn details(item: &Value) -> String {
    let mut out = String::new();
    let d = &item["decision"];
    if d.is_object() {
        let _ = write!(
            out,
            "<div class=\"d\">decision: {}</div>",
            escape(&decision_text(d))
        );
    }
    type Describe = fn(&Value) -> String;
    let lists: [(&str, &str, Describe); 2] = [
        ("approvals", "approvals", approval_text),
        ("budgets", "budgets after", budget_text),
    ];
    for (key, label, describe) in lists {
        if let Some(a) = item[key].as_array().filter(|a| !a.is_empty()) {
            let list: Vec<String> = a.iter().map(|x| escape(&describe(x))).collect();
            let _ = write!(out, "<div class=\"d\">{label}: {}</div>", list.join("; "));
        }
    }
    out
}

/// An event-time range in words: open ends say "the start" or "the end of the log".
pub fn range_words(from_ns: u64, to_ns: u64) -> String {
    let from = match from_ns {
        0 => "the start of the log".to_owned(),
        t => format_rfc3339(t),
    };
    let to = match to_ns {
        u64::MAX => "the end of the log".to_owned(),
        t => format_rfc3339(t),
    };
    format!("from {from} to {to}")
}

/// The page for `timeline`, titled with the filter and range.
pub fn render(timeline: &Timeline) -> String {
    let items = &timeline.items;
    let title = format!(
        "govledger timeline: {}, {}",
        timeline.filter.describe(),
        range_words(timeline.from_ns, timeline.to_ns)
    );
    let rejected = items.iter().filter(|i| i["verdict"] == "rejected").count();
    let (t0, t1) = match (items.first(), items.last()) {
        (Some(a), Some(b)) => (
            a["time_ns"].as_u64().unwrap_or(0),
            b["time_ns"].as_u64().unwrap_or(0),
        ),
        _ => (0, 0),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{}</title><style>{CSS}</style></head><body>\n<h1>{}</h1>\n\
<p class=\"sum\">{} events, {} rejected, from {} to {} (event time, UTC). \
Scanned {} ledger entries.</p>\n",
        escape(&title),
        escape(&title),
        items.len(),
        rejected,
        format_rfc3339(t0),
        format_rfc3339(t1),
        timeline.entries_scanned
    );
    // The overview strip: one mark per event, evenly spaced in log order (bursts
    // of events milliseconds apart stay readable), first and last times below.
    const W: f64 = 1000.0;
    let x = |i: usize| -> f64 {
        let f = if items.len() > 1 {
            i as f64 / (items.len() - 1) as f64
        } else {
            0.5
        };
        20.0 + f * (W - 40.0)
    };
    let _ = write!(
        out,
        "<svg class=\"strip\" viewBox=\"0 0 {W} 70\" role=\"img\" aria-label=\"events in log order\">\
<line x1=\"20\" y1=\"30\" x2=\"{}\" y2=\"30\" class=\"axis\"/>\
<text class=\"tick\" x=\"20\" y=\"62\">{}</text>\
<text class=\"tick\" x=\"{}\" y=\"62\" text-anchor=\"end\">{}</text>",
        W - 20.0,
        format_rfc3339(t0),
        W - 20.0,
        format_rfc3339(t1)
    );
    for (i, item) in items.iter().enumerate() {
        let seq = item["seq"].as_u64().unwrap_or(0);
        let _ = write!(
            out,
            "<a href=\"#e{seq}\"><circle class=\"mark {}\" cx=\"{:.1}\" cy=\"30\" r=\"7\">\
<title>{}</title></circle></a>",
            kind(item),
            x(i),
            escape(&format!("#{seq} {}", text(&item["summary"])))
        );
    }
    out.push_str("</svg>\n<p class=\"legend\"><span class=\"k accepted\"></span>accepted \
<span class=\"k approval\"></span>approval <span class=\"k budget\"></span>budget \
<span class=\"k kill\"></span>kill switch <span class=\"k rejected\"></span>rejected or denied</p>\n\
<ol class=\"events\">\n");
    for item in items {
        let seq = item["seq"].as_u64().unwrap_or(0);
        let reason = match item["reason"].as_str() {
            Some(r) => format!(" <span class=\"reason\">{}</span>", escape(r)),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "<li id=\"e{seq}\" class=\"event {}\"><div class=\"when\">{}<br>#{seq}</div>\
<div class=\"what\"><span class=\"type\">{}</span> <span class=\"verdict\">{}</span>{reason}\
<div class=\"s\">{}</div>{}</div></li>",
            kind(item),
            escape(&text(&item["time"])),
            escape(&text(&item["event_type"])),
            escape(&text(&item["verdict"])),
            escape(&text(&item["summary"])),
            details(item)
        );
    }
    let _ = write!(out, "</ol>\n<script>{SCRIPT}</script>\n</body></html>\n");
    out
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#212529}\
h1{font-size:1.3em}.sum{color:#495057}.strip{width:100%;max-width:1000px;height:70px;display:block}\
.axis{stroke:#adb5bd;stroke-width:2}.mark{stroke:#fff;stroke-width:1.5}.tick{font-size:11px;fill:#495057}\
.legend .k{display:inline-block;width:.9em;height:.9em;border-radius:50%;margin:0 .3em 0 1em;vertical-align:-.1em}\
.events{list-style:none;padding:0;max-width:1000px}\
.event{display:flex;gap:1em;border-left:.4em solid #adb5bd;padding:.4em .8em;margin:.3em 0;background:#f8f9fa}\
.event.rejected{background:#fff5f5}.when{flex:none;width:19em;white-space:nowrap;font-family:monospace;color:#495057}\
.type{font-weight:600}.verdict{color:#495057}.reason{color:#c92a2a;font-weight:600}\
.d{font-size:.9em;color:#495057}\
.mark.accepted{fill:#2b8a3e}.event.accepted{border-left-color:#2b8a3e}.k.accepted{background:#2b8a3e}\
.mark.approval{fill:#1971c2}.event.approval{border-left-color:#1971c2}.k.approval{background:#1971c2}\
.mark.budget{fill:#7048e8}.event.budget{border-left-color:#7048e8}.k.budget{background:#7048e8}\
.mark.kill{fill:#e67700}.event.kill{border-left-color:#e67700}.k.kill{background:#e67700}\
.mark.rejected{fill:#c92a2a}.event.rejected{border-left-color:#c92a2a}.k.rejected{background:#c92a2a}";

const SCRIPT: &str = "addEventListener('load',function(){var n=0;\
document.querySelectorAll('.event,.mark').forEach(function(e){var r=e.getBoundingClientRect();\
if(r.width>0&&r.height>0)n++;});document.documentElement.dataset.rendered=String(n);});";
