//! The handshake on the wire: its request and completion bodies in
//! Corteza's spelling and the documentation's, and the pure decoding of a
//! handshake body (caps on its size and its tokens).

use serde::{Deserialize, Serialize};

use super::envelope::{FedsyncExtension, Refused, decode_json_body};

/// A handshake request in either spelling: Corteza's (`pairToken`,
/// `authToken`, `sharedNodeID`) or the documentation's (`nodeURI`, `token`,
/// `nodeIDB`). Serde refuses duplicate keys and wrong types.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct HandshakeInitBody {
    #[serde(rename = "pairToken", default, skip_serializing_if = "Option::is_none")]
    pub pair_token: Option<String>,
    #[serde(rename = "authToken", default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    #[serde(
        rename = "sharedNodeID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub shared_node_id: Option<String>,
    #[serde(rename = "nodeURI", default, skip_serializing_if = "Option::is_none")]
    pub node_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(rename = "nodeIDB", default, skip_serializing_if = "Option::is_none")]
    pub node_id_b: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fedsync: Option<FedsyncExtension>,
}

/// A handshake completion: Corteza's `authToken` or the documentation's `token`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct HandshakeCompleteBody {
    #[serde(rename = "authToken", default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fedsync: Option<FedsyncExtension>,
}

/// Largest handshake body read (federation-security 3.2.7).
pub const MAX_HANDSHAKE_BODY: usize = 16 * 1024;
/// Longest token accepted in a handshake body.
pub const MAX_TOKEN_LEN: usize = 4096;

/// A token field that must be present, non-empty and not too long.
pub fn present_token(
    value: Option<String>,
    field: &str,
) -> Result<zeroize::Zeroizing<String>, Refused> {
    match value {
        Some(v) if !v.is_empty() && v.len() <= MAX_TOKEN_LEN => Ok(zeroize::Zeroizing::new(v)),
        Some(v) if v.len() > MAX_TOKEN_LEN => Err(Refused::new(
            http::StatusCode::BAD_REQUEST,
            format!("request invalid: {field} is too long"),
        )),
        _ => Err(Refused::new(
            http::StatusCode::BAD_REQUEST,
            format!("request invalid: {field} is required"),
        )),
    }
}

/// What a handshake body says, in either spelling.
#[derive(Debug)]
pub struct DecodedHandshake {
    /// The one-time pairing token.
    pub pair_token: zeroize::Zeroizing<String>,
    /// The token the peer gives us for calling it.
    pub auth_token: zeroize::Zeroizing<String>,
    /// The node id the body names (empty when it names none).
    pub body_node_id: String,
    /// Fedsync when the body carries our extension.
    pub peer_kind: crate::domain::PeerKind,
    /// What a fedsync peer says it can do.
    pub capabilities: Option<crate::domain::PeerCapabilities>,
}

/// The handshake body in either spelling: (OTT, token for us, node id named).
pub fn decode_handshake(body: HandshakeInitBody) -> Result<DecodedHandshake, Refused> {
    let peer_kind = if body.fedsync.is_some() {
        crate::domain::PeerKind::Fedsync
    } else {
        crate::domain::PeerKind::Corteza
    };
    let capabilities = body.fedsync.as_ref().map(FedsyncExtension::capabilities);
    // Corteza's spelling first, then the documentation's.
    if body.pair_token.is_some() || body.shared_node_id.is_some() {
        return Ok(DecodedHandshake {
            pair_token: present_token(body.pair_token, "pairToken")?,
            auth_token: present_token(body.auth_token, "authToken")?,
            body_node_id: body.shared_node_id.unwrap_or_default(),
            peer_kind,
            capabilities,
        });
    }
    let Some(uri) = body.node_uri else {
        return Err(Refused::new(
            http::StatusCode::BAD_REQUEST,
            "request invalid: pairToken is required",
        ));
    };
    let parsed = crate::pairing::parse_node_uri(&uri, true).map_err(|_| {
        Refused::new(
            http::StatusCode::BAD_REQUEST,
            "request invalid: nodeURI is not a node URI",
        )
    })?;
    let token = present_token(body.token, "token")?;
    Ok(DecodedHandshake {
        pair_token: parsed.token,
        auth_token: token,
        body_node_id: parsed.node_id.to_string(),
        peer_kind,
        capabilities,
    })
}

/// The bytes of a handshake request body (already known to be JSON):
/// 413 past the cap, 400 when it does not decode or lacks a token.
pub fn decode_handshake_body(bytes: &[u8]) -> Result<DecodedHandshake, Refused> {
    if bytes.len() > MAX_HANDSHAKE_BODY {
        return Err(Refused::new(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "the body is too large",
        ));
    }
    decode_handshake(decode_json_body::<HandshakeInitBody>(bytes)?)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::federation::wire::arbitrary_json;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// The handshake body decoder is total on arbitrary bytes and JSON.
        #[test]
        fn handshake_bodies_decode_or_are_refused(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            value in arbitrary_json(),
        ) {
            for body in [bytes, serde_json::to_vec(&value).unwrap()] {
                match decode_handshake_body(&body) {
                    Ok(decoded) => {
                        prop_assert!(!decoded.pair_token.is_empty() && decoded.pair_token.len() <= MAX_TOKEN_LEN);
                        prop_assert!(!decoded.auth_token.is_empty() && decoded.auth_token.len() <= MAX_TOKEN_LEN);
                    }
                    Err(refused) => prop_assert!(matches!(refused.status.as_u16(), 400 | 413)),
                }
            }
        }

        /// Corteza's spelling decodes to its tokens; tokens past the cap are refused.
        #[test]
        fn handshake_tokens_are_bounded(pair_len in 1usize..5000, auth_len in 1usize..5000, fedsync in any::<bool>()) {
            let mut body = serde_json::json!({
                "pairToken": "p".repeat(pair_len),
                "authToken": "a".repeat(auth_len),
                "sharedNodeID": "523615093115650149",
            });
            if fedsync {
                body["fedsync"] = serde_json::json!({"version": "1"});
            }
            let decoded = decode_handshake_body(&serde_json::to_vec(&body).unwrap());
            if pair_len > MAX_TOKEN_LEN {
                prop_assert_eq!(decoded.unwrap_err().message, "request invalid: pairToken is too long");
            } else if auth_len > MAX_TOKEN_LEN {
                prop_assert_eq!(decoded.unwrap_err().message, "request invalid: authToken is too long");
            } else {
                let decoded = decoded.unwrap();
                prop_assert_eq!(decoded.pair_token.len(), pair_len);
                prop_assert_eq!(decoded.auth_token.len(), auth_len);
                prop_assert_eq!(decoded.body_node_id, "523615093115650149");
                let kind = if fedsync { crate::domain::PeerKind::Fedsync } else { crate::domain::PeerKind::Corteza };
                prop_assert_eq!(decoded.peer_kind, kind);
            }
        }
    }

    #[test]
    fn oversized_handshake_bodies_are_refused_before_decoding() {
        let body = vec![b' '; MAX_HANDSHAKE_BODY + 1];
        assert_eq!(
            decode_handshake_body(&body).unwrap_err().status,
            http::StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
