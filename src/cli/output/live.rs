//! Live changes with a peer, as `node show` and `sync status` print them.

use serde::Serialize;

use super::rfc3339;
use crate::admin::proto::v1;

/// Flattened into a node's and a status row's JSON.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct LiveJson {
    /// Change notices go to the peer and come from it.
    pub live_changes: bool,
    pub last_notice_received_at: Option<String>,
    pub last_notice_sent_at: Option<String>,
    pub peer_capabilities: Vec<String>,
}

impl LiveJson {
    pub fn of(live: &Option<v1::LiveStatus>) -> LiveJson {
        let Some(live) = live else {
            return LiveJson::default();
        };
        LiveJson {
            live_changes: live.on,
            last_notice_received_at: rfc3339(&live.last_received_at),
            last_notice_sent_at: rfc3339(&live.last_sent_at),
            peer_capabilities: live.peer_capabilities.clone(),
        }
    }

    /// `on (last notice in ..., out ...)` or `off`.
    pub fn human(&self) -> String {
        if !self.live_changes {
            return "off (pulled on the schedule)".into();
        }
        let when = |t: &Option<String>| t.clone().unwrap_or_else(|| "none yet".into());
        format!(
            "on (last notice in: {}; out: {})",
            when(&self.last_notice_received_at),
            when(&self.last_notice_sent_at)
        )
    }
}
