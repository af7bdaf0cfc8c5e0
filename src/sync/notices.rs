//! Notifications: admins told by email and systems by signed webhooks when a
//! peer asks to pair, an admin refuses it, or a sync needs a person.
//!
//! Invariants:
//! - Nothing here blocks or fails the step that caused the event: events are
//!   rendered into rows of the `notifications` outbox (in the pairing step's
//!   own transaction where there is one) and a delivery loop sends them,
//!   retrying with capped exponential backoff until `give_up_after`. The
//!   outbox is leased per row, so a restart or another replica delivers.
//! - No secret is stored or sent: bodies hold names, URLs of peers, ids and
//!   commands. Webhook URLs (which often carry a key) are stored as
//!   fingerprints and looked up in config at delivery. The one message with
//!   a secret, an invite with its node URI, is sent at once to the address
//!   the admin typed and never stored.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::IssuedUri;
use super::ports::{NoticeSender, SendError};
use crate::crypto::sha256;
use crate::domain::{
    self, Channel, Delivery, Id, IdGenerator, Node, Notification, SyncKind, Timestamp,
};
use crate::store::Store;

/// Who is told, and how patiently.
#[derive(Debug, Clone)]
pub struct NoticeSettings {
    /// This node's name, as peers know it.
    pub label: String,
    pub admin_emails: Vec<String>,
    pub webhook_urls: Vec<String>,
    /// A job failing this long is reported once; `None`: never.
    pub failing_for: Option<Duration>,
    pub retry_base: Duration,
    pub retry_cap: Duration,
    pub give_up_after: Duration,
}

/// Something a person should hear about.
#[derive(Debug, Clone)]
pub enum Event {
    /// A peer presented a valid node URI token; the admin must approve.
    HandshakeRequested {
        node: Node,
        source_addr: String,
        at: Timestamp,
    },
    /// Our admin declined a handshake request.
    HandshakeRefused { node: Node, by: String },
    /// A job stopped on an error only a person can fix.
    SyncStopped {
        node: Node,
        kind: SyncKind,
        module: String,
        reason: String,
    },
    /// A job has been failing for longer than `failing_for`.
    SyncFailing {
        node: Node,
        kind: SyncKind,
        module: String,
        since: Timestamp,
        error: String,
    },
    /// A structure change broke the mapping of a shared module.
    MappingBroken {
        node: Node,
        module: String,
        reason: String,
    },
}

impl Event {
    /// The event's name in webhooks and the outbox.
    pub fn name(&self) -> &'static str {
        match self {
            Event::HandshakeRequested { .. } => "pair.requested",
            Event::HandshakeRefused { .. } => "pair.refused",
            Event::SyncStopped { .. } => "sync.stopped",
            Event::SyncFailing { .. } => "sync.failing",
            Event::MappingBroken { .. } => "mapping.broken",
        }
    }

    fn node(&self) -> &Node {
        match self {
            Event::HandshakeRequested { node, .. }
            | Event::HandshakeRefused { node, .. }
            | Event::SyncStopped { node, .. }
            | Event::SyncFailing { node, .. }
            | Event::MappingBroken { node, .. } => node,
        }
    }
}

/// How many outbox rows one pass of the delivery loop takes.
const BATCH: u32 = 16;
/// The longest the delivery loop sleeps without looking at the outbox (a
/// row another replica queued is seen within this).
const IDLE_POLL: Duration = Duration::from_secs(30);

/// The notification service: one per daemon.
pub struct Notices {
    store: Arc<dyn Store>,
    ids: Arc<IdGenerator>,
    sender: Arc<dyn NoticeSender>,
    settings: NoticeSettings,
    owner: String,
    wake: Notify,
}

fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// How a webhook URL is named in the outbox: a fingerprint, never the URL.
fn webhook_target(url: &str) -> String {
    format!("sha256:{}", hex::encode(&sha256(url.as_bytes())[..16]))
}

impl Notices {
    pub fn new(
        store: Arc<dyn Store>,
        ids: Arc<IdGenerator>,
        sender: Arc<dyn NoticeSender>,
        settings: NoticeSettings,
        owner: String,
    ) -> Notices {
        Notices {
            store,
            ids,
            sender,
            settings,
            owner,
            wake: Notify::new(),
        }
    }

    /// How long a job fails before it is reported.
    pub fn failing_for(&self) -> Option<Duration> {
        self.settings.failing_for
    }

    /// Whether `fedsync node invite --email` can work.
    pub fn email_enabled(&self) -> bool {
        self.sender.email_enabled()
    }

    /// The outbox rows for `event`: one per admin address (when mail is on)
    /// and one per webhook.
    pub fn render(&self, event: &Event, now: Timestamp) -> Vec<Notification> {
        let node = event.node();
        let event_id = self.ids.next_id();
        let mut out = Vec::new();
        let row = |channel, target: String, subject: String, body: String| Notification {
            id: self.ids.next_id(),
            channel,
            target,
            event: event.name().to_owned(),
            node_id: Some(node.id),
            subject,
            body,
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            last_error: String::new(),
            sent_at: None,
            given_up_at: None,
        };
        if self.sender.email_enabled() && !self.settings.admin_emails.is_empty() {
            let (subject, text) = self.email_text(event);
            for address in &self.settings.admin_emails {
                out.push(row(
                    Channel::Email,
                    address.clone(),
                    subject.clone(),
                    text.clone(),
                ));
            }
        }
        if !self.settings.webhook_urls.is_empty() {
            let body = self.webhook_json(event, event_id, now).to_string();
            for url in &self.settings.webhook_urls {
                out.push(row(
                    Channel::Webhook,
                    webhook_target(url),
                    String::new(),
                    body.clone(),
                ));
            }
        }
        out
    }

    /// Queues `event` for delivery. Never fails the caller: a store error is
    /// logged.
    pub async fn post(&self, event: Event) {
        let rows = self.render(&event, domain::now());
        if rows.is_empty() {
            return;
        }
        match self.store.enqueue_notifications(&rows).await {
            Ok(()) => self.wake(),
            Err(error) => tracing::warn!(
                event = event.name(),
                node_id = %event.node().id,
                error = %error,
                "cannot queue a notification"
            ),
        }
    }

    /// Tells the delivery loop that rows were queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Checks that `to` is one email address, before anything is generated.
    pub fn check_address(to: &str) -> Result<(), String> {
        to.parse::<lettre::Address>()
            .map(|_| ())
            .map_err(|e| format!("`{to}` is not an email address: {e}"))
    }

    /// Sends an invite with the node URI to `to`, at once (it is never
    /// stored: it holds a secret). `Err` says why it was not sent.
    pub async fn send_invite(&self, node: &Node, to: &str, uri: &IssuedUri) -> Result<(), String> {
        if !self.sender.email_enabled() {
            return Err("email is not configured: set notify.smtp.host".into());
        }
        let subject = format!("[fedsync] {} invites you to federate", self.settings.label);
        let body = format!(
            "{label} invites your node to federate records with it.\n\
             \n\
             Your administrator registers the invitation with this node URI:\n\
             \n\
             \x20   {uri}\n\
             \n\
             On fedsync:\n\
             \x20   fedsync node add-uri '<the node URI above>'\n\
             \x20   fedsync node pair <the node id it prints>\n\
             On Corteza: Admin > Federation > Nodes > Add node, paste the node URI,\n\
             then request pairing.\n\
             \n\
             Then the administrator of {label} approves the request.\n\
             \n\
             The node URI is a secret, like a password: whoever holds it can ask to\n\
             pair as you. Do not forward this message. It can be used once, and it\n\
             expires at {expires}.\n\
             \n\
             (Invitation for the node we registered as \"{name}\", {base}.)\n",
            label = self.settings.label,
            uri = uri.uri.as_str(),
            expires = rfc3339(uri.expires_at),
            name = node.name,
            base = node.base_url,
        );
        self.sender
            .send_email(to, &subject, &body)
            .await
            .map_err(|e| e.message)
    }

    fn email_text(&self, event: &Event) -> (String, String) {
        let label = &self.settings.label;
        let node = event.node();
        let id = node.id;
        let about = format!(
            "  Peer:      {}\n  Base URL:  {}\n  Node id:   {id}\n",
            node.name, node.base_url
        );
        match event {
            Event::HandshakeRequested {
                source_addr, at, ..
            } => (
                format!("[fedsync] {} asks to pair with {label}", node.name),
                format!(
                    "A peer presented the node URI you gave out for \"{name}\" and asks\n\
                     {label} to pair with it.\n\
                     \n\
                     {about}  From:      {source_addr}\n\
                     \x20 At:        {at}\n\
                     \n\
                     If you expect this request, approve it:\n\
                     \n\
                     \x20   fedsync node confirm {id}\n\
                     \n\
                     If you do not, refuse it:\n\
                     \n\
                     \x20   fedsync node refuse {id}\n\
                     \n\
                     Nothing is shared with the peer until you approve.\n",
                    name = node.name,
                    at = rfc3339(*at),
                ),
            ),
            Event::HandshakeRefused { by, .. } => (
                format!("[fedsync] pairing with {} was refused", node.name),
                format!(
                    "{by} refused the handshake request of \"{}\" on {label}.\n\
                     \n\
                     {about}\n\
                     To invite the peer again, generate a new node URI:\n\
                     \n\
                     \x20   fedsync node uri {id}\n",
                    node.name
                ),
            ),
            Event::SyncStopped {
                kind,
                module,
                reason,
                ..
            } => (
                format!(
                    "[fedsync] {} sync with {} stopped",
                    kind.as_str(),
                    node.name
                ),
                format!(
                    "The {} sync{} with \"{}\" stopped on an error that retrying cannot fix.\n\
                     \n\
                     {about}\n\
                     Reason: {reason}\n\
                     \n\
                     After fixing it, run the sync again:\n\
                     \n\
                     \x20   fedsync node resume {id}\n",
                    kind.as_str(),
                    module_part(module),
                    node.name
                ),
            ),
            Event::SyncFailing {
                kind,
                module,
                since,
                error,
                ..
            } => (
                format!(
                    "[fedsync] {} sync with {} keeps failing",
                    kind.as_str(),
                    node.name
                ),
                format!(
                    "The {} sync{} with \"{}\" has been failing since {} and is retried\n\
                     with backoff.\n\
                     \n\
                     {about}\n\
                     Last error: {error}\n\
                     \n\
                     See: fedsync sync status {id}\n",
                    kind.as_str(),
                    module_part(module),
                    node.name,
                    rfc3339(*since)
                ),
            ),
            Event::MappingBroken { module, reason, .. } => (
                format!("[fedsync] mapping of {module} from {} is broken", node.name),
                format!(
                    "A structure change of \"{}\" broke the mapping of its module {module};\n\
                     its records are not synced until it is mapped again.\n\
                     \n\
                     {about}\n\
                     Reason: {reason}\n\
                     \n\
                     See: fedsync map show {id} {module}\n",
                    node.name
                ),
            ),
        }
    }

    fn webhook_json(&self, event: &Event, event_id: Id, now: Timestamp) -> serde_json::Value {
        let node = event.node();
        let data = match event {
            Event::HandshakeRequested {
                source_addr, at, ..
            } => json!({
                "sourceAddr": source_addr,
                "requestedAt": rfc3339(*at),
                "approve": format!("fedsync node confirm {}", node.id),
                "refuse": format!("fedsync node refuse {}", node.id),
            }),
            Event::HandshakeRefused { by, .. } => json!({ "by": by }),
            Event::SyncStopped {
                kind,
                module,
                reason,
                ..
            } => json!({ "kind": kind.as_str(), "module": module, "reason": reason }),
            Event::SyncFailing {
                kind,
                module,
                since,
                error,
                ..
            } => json!({
                "kind": kind.as_str(),
                "module": module,
                "failingSince": rfc3339(*since),
                "error": error,
            }),
            Event::MappingBroken { module, reason, .. } => {
                json!({ "module": module, "reason": reason })
            }
        };
        let (subject, _) = self.email_text(event);
        json!({
            "id": event_id.to_string(),
            "event": event.name(),
            "occurredAt": rfc3339(now),
            "source": self.settings.label,
            "summary": subject.trim_start_matches("[fedsync] "),
            "node": {
                "id": node.id.to_string(),
                "name": node.name,
                "baseUrl": node.base_url,
                "status": node.status.as_str(),
            },
            "data": data,
        })
    }

    /// The delivery loop, until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            // A stop does not wait for a slow server: what was claimed is
            // delivered after its lease runs out, by this or another process.
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.deliver_due() => {}
            }
            let wait = match self.store.next_notification_due().await {
                Ok(Some(due)) => (due - domain::now())
                    .to_std()
                    .unwrap_or_default()
                    .min(IDLE_POLL),
                Ok(None) => IDLE_POLL,
                Err(error) => {
                    tracing::warn!(error = %error, "cannot read the notification outbox");
                    IDLE_POLL.min(self.settings.retry_cap)
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Delivers what is due now; returns how many were sent.
    pub async fn deliver_due(&self) -> usize {
        let mut sent = 0;
        loop {
            let now = domain::now();
            let lease = self.settings.retry_cap.max(Duration::from_secs(300));
            let claimed = match self
                .store
                .claim_notifications(
                    now,
                    &self.owner,
                    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX),
                    BATCH,
                )
                .await
            {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(error = %error, "cannot claim notifications");
                    return sent;
                }
            };
            if claimed.is_empty() {
                return sent;
            }
            // One slow server delays none of the others.
            let outcomes = futures::future::join_all(claimed.iter().map(|n| self.deliver(n))).await;
            for (n, outcome) in claimed.iter().zip(outcomes) {
                if outcome == Delivery::Sent {
                    sent += 1;
                }
                if let Err(error) = self
                    .store
                    .finish_notification(n.id, &self.owner, &outcome, domain::now())
                    .await
                {
                    tracing::warn!(notification = %n.id, error = %error, "cannot record a notification's delivery");
                }
            }
        }
    }

    async fn deliver(&self, n: &Notification) -> Delivery {
        let result = match n.channel {
            Channel::Email => {
                if self.sender.email_enabled() {
                    self.sender.send_email(&n.target, &n.subject, &n.body).await
                } else {
                    Err(SendError::permanent("email is no longer configured"))
                }
            }
            Channel::Webhook => {
                match self
                    .settings
                    .webhook_urls
                    .iter()
                    .find(|url| webhook_target(url) == n.target)
                {
                    Some(url) => {
                        self.sender
                            .post_webhook(url, &n.event, &n.id.to_string(), &n.body)
                            .await
                    }
                    None => Err(SendError::permanent(
                        "the webhook URL is no longer in notify.webhook_urls",
                    )),
                }
            }
        };
        let now = domain::now();
        match result {
            Ok(()) => {
                tracing::info!(notification = %n.id, channel = n.channel.as_str(), event = %n.event, "notification sent");
                Delivery::Sent
            }
            Err(error) => {
                let age = (now - n.created_at).to_std().unwrap_or_default();
                let attempts = n.attempts.saturating_add(1);
                let wait = backoff(self.settings.retry_base, self.settings.retry_cap, attempts);
                let give_up = error.permanent || age + wait > self.settings.give_up_after;
                tracing::warn!(
                    notification = %n.id,
                    channel = n.channel.as_str(),
                    event = %n.event,
                    attempts,
                    error = %error.message,
                    retry = !give_up,
                    "a notification was not delivered"
                );
                if give_up {
                    Delivery::GiveUp {
                        error: error.message,
                    }
                } else {
                    Delivery::Retry {
                        error: error.message,
                        at: now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX),
                    }
                }
            }
        }
    }
}

fn module_part(module: &str) -> String {
    if module.is_empty() {
        String::new()
    } else {
        format!(" of module {module}")
    }
}

/// `base * 2^(attempts - 1)`, at most `cap`.
fn backoff(base: Duration, cap: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
    base.saturating_mul(factor).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_secs(5);
        let cap = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=6).map(|a| backoff(base, cap, a).as_secs()).collect();
        assert_eq!(waits, vec![5, 10, 20, 40, 60, 60]);
        assert_eq!(backoff(base, cap, u32::MAX), cap);
    }

    #[test]
    fn webhook_targets_do_not_hold_the_url() {
        let target = webhook_target("https://hooks.example.com/T000/B000/SECRETKEY");
        assert!(target.starts_with("sha256:"), "{target}");
        assert!(!target.contains("SECRETKEY"));
        assert_eq!(
            target,
            webhook_target("https://hooks.example.com/T000/B000/SECRETKEY")
        );
    }
}
