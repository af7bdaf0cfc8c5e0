//! Notifications: messages to people (email) and systems (webhooks) about
//! events that need someone: a peer asking to pair, a sync that stopped.

use super::{Id, NodeId, Timestamp, UnknownVariant};

/// How a notification travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(value: &str) -> Result<Channel, UnknownVariant> {
        match value {
            "email" => Ok(Channel::Email),
            "webhook" => Ok(Channel::Webhook),
            other => Err(UnknownVariant {
                what: "notification channel",
                value: other.to_owned(),
                expected: "email, webhook",
            }),
        }
    }
}

/// One message to one recipient, waiting in the outbox or delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: Id,
    pub channel: Channel,
    /// An email address or a webhook URL.
    pub target: String,
    /// The event name, e.g. `pair.requested`.
    pub event: String,
    pub node_id: Option<NodeId>,
    /// The email subject; empty for webhooks.
    pub subject: String,
    /// The email text, or the webhook's JSON document.
    pub body: String,
    pub created_at: Timestamp,
    /// Failed deliveries so far.
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: String,
    pub sent_at: Option<Timestamp>,
    pub given_up_at: Option<Timestamp>,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Sent,
    /// Try again at this time.
    Retry {
        error: String,
        at: Timestamp,
    },
    /// Stop trying (too old, or an error no retry fixes).
    GiveUp {
        error: String,
    },
}
