//! Tokens we issue to peers: JWTs as Corteza's documentation describes
//! (HS256 with our signing key, audience `federation`, subject the per-pair
//! identity `federation_<node id>`), whose `jti` is registered in the store,
//! bound to one pair and kept only as a hash. They carry no expiry: Corteza
//! peers cannot refresh tokens, so ours end by revocation (unpair, re-pair,
//! idle timeout).
//!
//! This module only checks what a token says about itself; the store check
//! (registered, same pair, not revoked, not idle) is the caller's.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::admin_token::ISSUER;
use super::{CryptoError, SigningKey};
use crate::domain::{Id, NodeId, Timestamp, TokenId};

pub const PEER_AUDIENCE: &str = "federation";

/// What a peer token says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerTokenClaims {
    pub id: TokenId,
    /// Our node record of the peer the token was issued to.
    pub node_id: NodeId,
    pub issued_at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize)]
struct WireClaims {
    iss: String,
    aud: String,
    sub: String,
    jti: String,
    iat: i64,
    scope: String,
    node: String,
}

pub fn mint_peer_token(key: &SigningKey, claims: &PeerTokenClaims) -> Result<String, CryptoError> {
    let wire = WireClaims {
        iss: ISSUER.to_owned(),
        aud: PEER_AUDIENCE.to_owned(),
        sub: format!("federation_{}", claims.node_id),
        jti: claims.id.to_string(),
        iat: claims.issued_at.timestamp(),
        scope: "api".to_owned(),
        node: claims.node_id.to_string(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &wire,
        &EncodingKey::from_secret(key.0.bytes()),
    )
    .map_err(|e| CryptoError::Sign(e.to_string()))
}

/// Verifies signature, issuer and audience. Any failure is `None`: to a
/// caller every token we cannot vouch for is simply unknown.
pub fn verify_peer_token(key: &SigningKey, token: &str) -> Option<PeerTokenClaims> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[PEER_AUDIENCE]);
    validation.set_required_spec_claims(&["iss", "aud", "sub"]);
    validation.validate_exp = false;
    let wire = jsonwebtoken::decode::<WireClaims>(
        token,
        &DecodingKey::from_secret(key.0.bytes()),
        &validation,
    )
    .ok()?
    .claims;
    Some(PeerTokenClaims {
        id: wire.jti.parse::<Id>().ok().map(TokenId)?,
        node_id: wire.node.parse::<Id>().ok().map(NodeId)?,
        issued_at: chrono::DateTime::from_timestamp(wire.iat, 0)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyMaterial;
    use crate::crypto::admin_token::{AdminTokenClaims, mint_admin_token};
    use crate::domain::AdminTokenKind;

    fn key() -> SigningKey {
        SigningKey(KeyMaterial::generate().unwrap())
    }

    fn claims() -> PeerTokenClaims {
        PeerTokenClaims {
            id: TokenId::from_u64(77).unwrap(),
            node_id: NodeId::from_u64(523615093115650149).unwrap(),
            issued_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn a_peer_token_round_trips_and_only_with_our_key() {
        let k = key();
        let token = mint_peer_token(&k, &claims()).unwrap();
        assert_eq!(verify_peer_token(&k, &token), Some(claims()));
        assert_eq!(verify_peer_token(&key(), &token), None);
        assert_eq!(verify_peer_token(&k, "not.a.jwt"), None);
    }

    #[test]
    fn an_admin_token_is_not_a_peer_token() {
        let k = key();
        let admin = mint_admin_token(
            &k,
            &AdminTokenClaims {
                id: TokenId::from_u64(5).unwrap(),
                name: "ops".into(),
                kind: AdminTokenKind::Admin,
                issued_at: claims().issued_at,
                expires_at: None,
            },
        )
        .unwrap();
        assert_eq!(verify_peer_token(&k, &admin), None);
    }

    #[test]
    fn alg_none_is_an_unknown_token() {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(
            br#"{"iss":"fedsync","aud":"federation","sub":"x","jti":"77","iat":1,"scope":"api","node":"1"}"#,
        );
        assert_eq!(
            verify_peer_token(&key(), &format!("{header}.{body}.")),
            None
        );
    }
}
