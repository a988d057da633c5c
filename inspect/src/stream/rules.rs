//! The rules a stream inspector works under, checked and prepared once per configuration
//! rather than once per message: a proxy starts an inspector for every RETR, and copying
//! the rules each time cost a tenth of a small message's inspection (issue 16).

use std::sync::Arc;

use popgate_policy::Verdict;

use super::{HeaderKind, State, StreamInspector};
use crate::inspection::Tally;
use crate::rules::Rules;

/// Rules under which every verdict can be reached while streaming.
#[derive(Debug, Clone)]
pub struct StreamRules(Arc<Rules>);

impl StreamRules {
    /// `rules` for streaming, or `None` when a verdict could need the whole message:
    /// antivirus on (`scanning`), a `content_types`/`file_names` verdict (rule or default)
    /// other than `allow`/`strip`, or a `headers` verdict other than `allow`/`tag`. Any
    /// `unparseable` verdict streams: damage makes the inspector hold. Oversize is the
    /// caller's business: the size limit is not applied here.
    pub fn new(rules: &Rules, scanning: bool) -> Option<StreamRules> {
        let part_ok = |v: Verdict| matches!(v, Verdict::Allow | Verdict::Strip);
        let streamable = !scanning
            && part_ok(rules.content_types.default_verdict())
            && rules
                .content_types
                .rules()
                .iter()
                .all(|r| part_ok(r.verdict()))
            && part_ok(rules.file_names.default_verdict())
            && rules
                .file_names
                .rules()
                .iter()
                .all(|r| part_ok(r.verdict()))
            && rules
                .headers
                .rules()
                .iter()
                .all(|r| matches!(r.verdict(), Verdict::Allow | Verdict::Tag));
        streamable.then(|| {
            StreamRules(Arc::new(Rules {
                max_message_size: u64::MAX,
                ..rules.clone()
            }))
        })
    }

    /// An inspector for one message; `quarantine_id` names it in a replacement.
    pub fn inspector(&self, quarantine_id: &str) -> StreamInspector {
        StreamInspector {
            rules: Arc::clone(&self.0),
            quarantine_id: quarantine_id.to_owned(),
            tally: Tally::new(),
            state: State::Header(HeaderKind::Top),
            pending: Vec::new(),
            pending_start: 0,
            consumed: 0,
            header_from: 0,
            boundaries: Vec::new(),
            closed: Vec::new(),
            owners: Vec::new(),
            nested_messages: 0,
            decisions: Vec::new(),
            eol: "\r\n",
            emitted: Vec::new(),
            damaged: None,
        }
    }
}
