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

use crate::canon::{Canon, CanonError, Out, Reader};
use crate::lookup::PairMap;
use govledger_schemas::{Decision, Envelope, Event, RiskTier};
use std::collections::VecDeque;

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

/// The agents' tracks by (tenant, agent): a [`PairMap`], so the track of a
/// proposal's or a decision's agent is found with one hash and one probe, and
/// added with the same when it has none (two levels of ordered maps searched
/// the tenant and then the agent twice each: `docs/BENCHMARKS.md`, stop 37).
/// Encoded in (tenant, agent) order, sorted then.
type Tracks = PairMap<AgentTrack>;

/// Per-agent tracks, by (tenant, agent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Detector {
    config: DetectConfig,
    agents: Tracks,
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
            agents: Tracks::default(),
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
                let t = agents.get_or_insert_with(tenant, agent, AgentTrack::default);
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
                let t = agents.get_or_insert_with(tenant, agent, AgentTrack::default);
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

impl Detector {
    /// Writes the thresholds and every track in the canonical encoding
    /// ([`crate::canon`]), for snapshots: config (velocity max, window, risk
    /// escalation flag, denials max); tracks (tenant, agent, recent proposal times,
    /// over flag, highest tier as an optional tag, denials in a row).
    pub fn encode<O: Out>(&self, c: &mut Canon<O>) {
        let cfg = self.config;
        c.u32(cfg.velocity_max)
            .u64(cfg.velocity_window_ns)
            .u8(u8::from(cfg.risk_escalation))
            .u32(cfg.denials_max);
        c.u64(self.agents.len() as u64);
        for ((t, a), track) in self.agents.sorted() {
            c.str(t).str(a).u64(track.recent.len() as u64);
            for &time in &track.recent {
                c.u64(time);
            }
            c.u8(u8::from(track.over));
            match track.max_tier {
                None => c.u8(0),
                Some(tier) => c.u8(1).u8(tier as u8),
            };
            c.u32(track.denials);
        }
    }

    /// Reads a detector back from [`Detector::encode`]'s bytes, strictly.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, CanonError> {
        let config = DetectConfig {
            velocity_max: r.u32()?,
            velocity_window_ns: r.u64()?,
            risk_escalation: r.flag()?,
            denials_max: r.u32()?,
        };
        let mut d = Detector::new(config);
        let mut prev = None;
        let n = r.count(30)?;
        d.agents.reserve(n);
        for _ in 0..n {
            let key = (r.str()?, r.str()?);
            r.ascending(prev.as_ref(), &key)?;
            let n = r.count(8)?;
            let mut recent = VecDeque::with_capacity(n);
            for _ in 0..n {
                recent.push_back(r.u64()?);
            }
            let over = r.flag()?;
            let max_tier = if r.flag()? {
                Some(match r.tag(4, "risk tier")? {
                    0 => RiskTier::Low,
                    1 => RiskTier::Medium,
                    2 => RiskTier::High,
                    _ => RiskTier::Critical,
                })
            } else {
                None
            };
            let track = AgentTrack {
                recent,
                over,
                max_tier,
                denials: r.u32()?,
            };
            *d.agents
                .get_or_insert_with(&key.0, &key.1, AgentTrack::default) = track;
            prev = Some(key);
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_are_equal_when_they_hold_the_same_tracks_in_any_order() {
        let (mut a, mut b) = (Tracks::default(), Tracks::default());
        for (tenant, agent) in [("t1", "a"), ("t2", "b"), ("t1", "c")] {
            a.get_or_insert_with(tenant, agent, AgentTrack::default)
                .denials = 1;
        }
        for (tenant, agent) in [("t1", "c"), ("t1", "a"), ("t2", "b")] {
            b.get_or_insert_with(tenant, agent, AgentTrack::default)
                .denials = 1;
        }
        assert!(a == b);
        let order: Vec<(&str, &str)> = a
            .sorted()
            .iter()
            .map(|((t, g), _)| (t.as_str(), g.as_str()))
            .collect();
        assert_eq!(order, [("t1", "a"), ("t1", "c"), ("t2", "b")]);
        b.get_or_insert_with("t1", "c", AgentTrack::default).denials = 2;
        assert!(a != b, "a track's content differs");
        b.get_or_insert_with("t1", "c", AgentTrack::default).denials = 1;
        assert!(a == b);
        b.get_or_insert_with("t3", "d", AgentTrack::default);
        assert!(a != b, "one track more");
        a.get_or_insert_with("t3", "e", AgentTrack::default);
        assert!(a != b, "another agent's track");
    }
}
