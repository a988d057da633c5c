//! How one proxy action inspects messages, built once per (re)load from the checked
//! configuration: the inspect crate's rules, the antivirus settings, where quarantined
//! originals go, and whether bodies may stream. The relay only reads it.

use std::sync::Arc;
use std::time::Duration;

use popgate_inspect::{Rules, StreamInspector, StreamRules};
use popgate_policy::{Clamd, Policy};

use crate::state::quarantine::Quarantine;

/// How one proxy action inspects, prepared once per configuration.
#[derive(Debug)]
pub struct InspectionPlan {
    rules: Rules,
    antivirus: Option<Antivirus>,
    quarantine: Quarantine,
    /// Set when no verdict can need the whole message: RETR bodies stream (see
    /// `relay/streaming.rs`).
    stream_rules: Option<StreamRules>,
}

/// The antivirus settings of an action whose antivirus is on.
#[derive(Debug)]
pub struct Antivirus {
    /// Where clamd listens.
    pub clamd: Clamd,
    /// The whole scan's deadline.
    pub timeout: Duration,
}

impl InspectionPlan {
    /// The plan for `policy`'s action, or `None` when the action cannot change a message
    /// (no rules, antivirus off): bodies then stream through without being collected.
    pub fn for_policy(policy: &Policy, quarantine: Quarantine) -> Option<Arc<InspectionPlan>> {
        let action = policy.action();
        let antivirus = action.antivirus();
        let passive = action.content_types().rules().is_empty()
            && action.content_types().default_verdict() == popgate_policy::Verdict::Allow
            && action.file_names().rules().is_empty()
            && action.file_names().default_verdict() == popgate_policy::Verdict::Allow
            && action.headers().rules().is_empty()
            && action.unparseable() == popgate_policy::Verdict::Allow
            && !antivirus.enabled();
        if passive {
            return None;
        }
        let rules = Rules::for_action(policy.name(), action);
        let stream_rules = (rules.oversize == popgate_inspect::Oversize::Allow)
            .then(|| StreamRules::new(&rules, antivirus.enabled()))
            .flatten();
        Some(Arc::new(InspectionPlan {
            rules,
            antivirus: antivirus.enabled().then(|| Antivirus {
                clamd: antivirus.clamd().clone(),
                timeout: antivirus.timeout(),
            }),
            quarantine,
            stream_rules,
        }))
    }

    /// The size past which a body is not collected (`max_message_size`). A streamed body
    /// is never collected for inspection alone, so the limit does not apply to it.
    pub fn max_message_size(&self) -> u64 {
        if self.stream_rules.is_some() {
            u64::MAX
        } else {
            self.rules.max_message_size
        }
    }

    /// A stream inspector for a RETR (not a TOP: it is cut down after inspection) when the
    /// rules allow streaming.
    pub fn stream_inspector(&self) -> Option<StreamInspector> {
        self.stream_rules.as_ref().map(|rules| rules.inspector(""))
    }

    /// Whether an oversize message passes uninspected (`oversize: allow`).
    pub fn passes_oversize(&self) -> bool {
        self.rules.oversize == popgate_inspect::Oversize::Allow
    }

    /// The inspect crate's rules.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The antivirus settings, when the action scans.
    pub fn antivirus(&self) -> Option<&Antivirus> {
        self.antivirus.as_ref()
    }

    /// Where quarantined originals are written (`state_dir/quarantine`, bounded).
    pub fn quarantine(&self) -> &Quarantine {
        &self.quarantine
    }
}
