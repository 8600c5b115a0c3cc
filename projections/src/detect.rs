//! Detection rules: alerts, never rejections.
//!
//! A pure fold over accepted events, like every projection: [`Detector::observe`]
//! folds one in at its event time and returns what it detected. Rules, each
//! configurable ([`DetectConfig`]) and each off when its threshold is 0:
//! - **velocity**: an agent proposes more than `velocity_max` actions within
//!   `velocity_window_ns` of event time (sliding); reported when the count first
//!   exceeds the limit, again only after the agent's rate has dropped back under it;
//! - **risk escalation**: an agent proposes at a risk tier above every tier it used
//!   before (its first proposal sets the baseline and is not reported);
//! - **repeated denials**: `denials_max` policy denials in a row for one agent (an
//!   allow resets the run); reported when the run reaches the limit.
//!
//! Agents are keyed by (tenant, agent id). The detector's state is not part of the
//! checkpoint's state digest: it decides alerts, not verdicts.

use govledger_schemas::{Decision, Envelope, Event, RiskTier};
use std::collections::{BTreeMap, VecDeque};

/// Thresholds; 0 turns a rule off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectConfig {
    /// Most proposals per agent within `velocity_window_ns`.
    pub velocity_max: u32,
    /// The sliding window for `velocity_max`, ns of event time.
    pub velocity_window_ns: u64,
    /// Raise on a risk tier above every tier the agent used before.
    pub risk_escalation: bool,
    /// Denials in a row for one agent that raise an alert.
    pub denials_max: u32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            velocity_max: 60,
            velocity_window_ns: 60_000_000_000,
            risk_escalation: true,
            denials_max: 5,
        }
    }
}

/// What a rule found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    /// `velocity`, `risk_escalation` or `repeated_denials`.
    pub rule: &'static str,
    /// The tenant.
    pub tenant: String,
    /// The agent.
    pub agent: String,
    /// A sentence for people.
    pub detail: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct AgentTrack {
    recent: VecDeque<u64>,
    over: bool,
    max_tier: Option<RiskTier>,
    denials: u32,
}

/// Per-agent tracks, by (tenant, agent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Detector {
    config: DetectConfig,
    agents: BTreeMap<(String, String), AgentTrack>,
}

fn tier_name(t: RiskTier) -> &'static str {
    match t {
        RiskTier::Low => "low",
        RiskTier::Medium => "medium",
        RiskTier::High => "high",
        RiskTier::Critical => "critical",
    }
}

impl Detector {
    /// A detector with these thresholds.
    pub fn new(config: DetectConfig) -> Self {
        Detector {
            config,
            agents: BTreeMap::new(),
        }
    }

    /// The thresholds.
    pub fn config(&self) -> DetectConfig {
        self.config
    }

    /// Folds in an accepted event at event time `time_ns`; returns detections.
    pub fn observe(&mut self, env: &Envelope, time_ns: u64) -> Vec<Detection> {
        let tenant = env.tenant.as_str();
        let mut out = Vec::new();
        let cfg = self.config;
        let agents = &mut self.agents;
        let key = |agent: &str| (tenant.to_string(), agent.to_string());
        let found = |rule: &'static str, agent: &str, detail: String| Detection {
            rule,
            tenant: tenant.to_string(),
            agent: agent.to_string(),
            detail,
        };
        match &env.event {
            Event::ActionProposed(a) => {
                let Some(agent) = a.actor.agent.as_ref().map(|x| x.as_str()) else {
                    return out;
                };
                let t = agents.entry(key(agent)).or_default();
                if cfg.velocity_max > 0 && cfg.velocity_window_ns > 0 {
                    t.recent.push_back(time_ns);
                    while t
                        .recent
                        .front()
                        .is_some_and(|&f| time_ns.saturating_sub(f) >= cfg.velocity_window_ns)
                    {
                        t.recent.pop_front();
                    }
                    let n = t.recent.len() as u64;
                    if n > u64::from(cfg.velocity_max) {
                        if !t.over {
                            t.over = true;
                            out.push(found(
                                "velocity",
                                agent,
                                format!(
                                    "agent {agent} proposed {n} actions within {} ms (limit {})",
                                    cfg.velocity_window_ns / 1_000_000,
                                    cfg.velocity_max
                                ),
                            ));
                        }
                    } else {
                        t.over = false;
                    }
                }
                if cfg.risk_escalation {
                    match t.max_tier {
                        Some(max) if a.risk_tier > max => {
                            out.push(found(
                                "risk_escalation",
                                agent,
                                format!(
                                    "agent {agent} proposed {} at risk tier {}, above any it used before ({})",
                                    a.action,
                                    tier_name(a.risk_tier),
                                    tier_name(max)
                                ),
                            ));
                            t.max_tier = Some(a.risk_tier);
                        }
                        Some(_) => {}
                        None => t.max_tier = Some(a.risk_tier),
                    }
                }
            }
            Event::PolicyDecided(d) if cfg.denials_max > 0 => {
                let Some(agent) = d.actor.agent.as_ref().map(|x| x.as_str()) else {
                    return out;
                };
                let t = agents.entry(key(agent)).or_default();
                match d.decision {
                    Decision::Deny => {
                        t.denials = t.denials.saturating_add(1);
                        if t.denials == cfg.denials_max {
                            out.push(found(
                                "repeated_denials",
                                agent,
                                format!("agent {agent} was denied {} times in a row", t.denials),
                            ));
                        }
                    }
                    Decision::Allow => t.denials = 0,
                    Decision::RequireApproval => {}
                }
            }
            _ => {}
        }
        out
    }
}
