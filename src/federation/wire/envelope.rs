//! What every exchange shares: our `fedsync` extension, the `{"response":
//! ...}` envelope, acknowledgements and error bodies, what a peer's answer
//! tells us (`AnswerProbe`), the wire's time format, and a request refused
//! while decoding (`Refused`) with the JSON body decoder.

use serde::{Deserialize, Serialize};

use crate::domain::Timestamp;

/// Our extension, present in what fedsync sends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FedsyncExtension {
    pub version: String,
    /// What the sender can do (`change-notices`); absent from versions
    /// before live changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
}

impl FedsyncExtension {
    pub fn ours() -> FedsyncExtension {
        FedsyncExtension::with_capabilities(&[])
    }

    pub fn with_capabilities(capabilities: &[String]) -> FedsyncExtension {
        FedsyncExtension {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: capabilities.to_vec(),
        }
    }

    /// What it says, as the store keeps it.
    pub fn capabilities(&self) -> crate::domain::PeerCapabilities {
        crate::domain::PeerCapabilities {
            version: self.version.chars().take(64).collect(),
            capabilities: self.capabilities.iter().take(32).cloned().collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Message {
    pub message: String,
}

/// `{"success":{"message":"OK"}}`, plus our extension.
#[derive(Debug, Serialize)]
pub struct SuccessBody {
    pub success: Message,
    pub fedsync: FedsyncExtension,
}

impl SuccessBody {
    pub fn ok() -> SuccessBody {
        SuccessBody::with_capabilities(&[])
    }

    /// A handshake's answer: it says what we can do too.
    pub fn with_capabilities(capabilities: &[String]) -> SuccessBody {
        SuccessBody {
            success: Message {
                message: "OK".to_owned(),
            },
            fedsync: FedsyncExtension::with_capabilities(capabilities),
        }
    }
}

/// `{"error":{"message": ...}}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: Message,
}

impl ErrorBody {
    pub fn new(message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: Message {
                message: message.into(),
            },
        }
    }
}

/// `{"response": ...}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub response: T,
}

/// What a peer's answer tells us: an error message when it refused (also
/// Corteza's HTTP-200 error body), and whether it is a fedsync.
#[derive(Debug, Default, Deserialize)]
pub struct AnswerProbe {
    #[serde(default)]
    pub error: Option<ErrorProbe>,
    #[serde(default)]
    pub fedsync: Option<serde_json::Value>,
}

impl AnswerProbe {
    /// What a fedsync peer's answer says it can do (`None` from Corteza;
    /// an extension that does not parse says nothing).
    pub fn capabilities(&self) -> Option<crate::domain::PeerCapabilities> {
        let value = self.fedsync.clone()?;
        let extension: FedsyncExtension = serde_json::from_value(value).ok()?;
        Some(extension.capabilities())
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ErrorProbe {
    #[serde(default)]
    pub message: String,
}

pub fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

// ------------------------------------------------------------ request decoding
//
// The pure halves of the peer routes' decoding (the routes read the body and
// the query, then call these), public so that fuzz targets and property tests
// reach them.

/// A request refused while decoding: the status and the message for
/// Corteza's error envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: http::StatusCode,
    pub message: String,
}

impl Refused {
    pub fn new(status: http::StatusCode, message: impl Into<String>) -> Refused {
        Refused {
            status,
            message: message.into(),
        }
    }
}

/// A JSON request body (already known to be JSON and within its cap):
/// 400 when it does not decode (wrong types, duplicate keys, too deep).
pub fn decode_json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Refused> {
    serde_json::from_slice(bytes).map_err(|e| {
        Refused::new(
            http::StatusCode::BAD_REQUEST,
            format!("request invalid: {e}"),
        )
    })
}
