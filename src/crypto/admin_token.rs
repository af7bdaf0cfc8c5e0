//! Admin tokens are HS256 JWTs signed with the node's signing key.
//!
//! A token verifies only with our key, our issuer and the admin audience, so
//! a peer token (audience `federation`) can never pass as an admin token. The
//! `jti` must also be registered and active in the store; that check is the
//! caller's, because it needs IO.
//!
//! The web console's credentials are the same registered tokens with other
//! audiences (`Audience`): a console session (the cookie) or a one-time
//! login link. Each verifies only for its own audience, so a console cookie
//! presented to gRPC or REST is refused there like a peer token.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{CryptoError, SigningKey};
use crate::domain::{AdminTokenKind, Id, Timestamp, TokenId};

pub const ISSUER: &str = "fedsync";
pub const ADMIN_AUDIENCE: &str = "fedsync-admin";

/// Which door a registered admin credential opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// gRPC and REST (`Authorization: Bearer`).
    Admin,
    /// The web console's session cookie, accepted under `/ui/` only.
    ConsoleSession,
    /// A one-time console login link, exchanged for a session.
    ConsoleLogin,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Admin => ADMIN_AUDIENCE,
            Audience::ConsoleSession => "fedsync-console",
            Audience::ConsoleLogin => "fedsync-console-login",
        }
    }
}

/// What an admin token says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminTokenClaims {
    pub id: TokenId,
    pub name: String,
    pub kind: AdminTokenKind,
    pub issued_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// The JWT body on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct WireClaims {
    iss: String,
    aud: String,
    sub: String,
    jti: String,
    iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    kind: String,
}

/// Why a presented admin token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("no bearer token was sent")]
    Missing,
    #[error("the authorization header is not `Bearer <token>`")]
    MalformedHeader,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's signature does not verify with this node's key")]
    BadSignature,
    #[error("the token is not an admin token of this node")]
    WrongAudience,
    #[error("the token expired")]
    Expired,
    #[error("the token is unknown or revoked")]
    UnknownOrRevoked,
}

impl TokenRejection {
    /// A stable reason code for audit events and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            TokenRejection::Missing => "missing",
            TokenRejection::MalformedHeader => "malformed_header",
            TokenRejection::Malformed => "malformed",
            TokenRejection::BadSignature => "bad_signature",
            TokenRejection::WrongAudience => "wrong_audience",
            TokenRejection::Expired => "expired",
            TokenRejection::UnknownOrRevoked => "unknown_or_revoked",
        }
    }
}

/// The token of exactly one `Authorization: Bearer <token>` header value,
/// parsed strictly: the scheme spelled `Bearer`, one space, a token with no
/// whitespace or control characters. Several headers are refused.
pub fn parse_bearer<'a>(values: &[&'a [u8]]) -> Result<&'a str, TokenRejection> {
    let value = match values {
        [] => return Err(TokenRejection::Missing),
        [one] => *one,
        _ => return Err(TokenRejection::MalformedHeader),
    };
    let text = std::str::from_utf8(value).map_err(|_| TokenRejection::MalformedHeader)?;
    let token = text
        .strip_prefix("Bearer ")
        .ok_or(TokenRejection::MalformedHeader)?;
    if token.is_empty()
        || token
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(TokenRejection::MalformedHeader);
    }
    Ok(token)
}

pub fn mint_admin_token(
    key: &SigningKey,
    claims: &AdminTokenClaims,
) -> Result<String, CryptoError> {
    mint_token(key, claims, Audience::Admin)
}

/// Checks signature, issuer, the admin audience and expiry at `now`.
pub fn verify_admin_token(
    key: &SigningKey,
    token: &str,
    now: Timestamp,
) -> Result<AdminTokenClaims, TokenRejection> {
    verify_token(key, token, now, Audience::Admin)
}

/// Signs a registered credential for one audience.
pub fn mint_token(
    key: &SigningKey,
    claims: &AdminTokenClaims,
    audience: Audience,
) -> Result<String, CryptoError> {
    let wire = WireClaims {
        iss: ISSUER.to_owned(),
        aud: audience.as_str().to_owned(),
        sub: claims.name.clone(),
        jti: claims.id.to_string(),
        iat: claims.issued_at.timestamp(),
        exp: claims.expires_at.map(|t| t.timestamp()),
        kind: claims.kind.as_str().to_owned(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &wire,
        &EncodingKey::from_secret(key.0.bytes()),
    )
    .map_err(|e| CryptoError::Sign(e.to_string()))
}

/// Checks signature, issuer, `audience` and expiry at `now`.
pub fn verify_token(
    key: &SigningKey,
    token: &str,
    now: Timestamp,
    audience: Audience,
) -> Result<AdminTokenClaims, TokenRejection> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[audience.as_str()]);
    validation.set_required_spec_claims(&["iss", "aud", "sub"]);
    // Expiry is checked below against the injected clock.
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<WireClaims>(
        token,
        &DecodingKey::from_secret(key.0.bytes()),
        &validation,
    )
    .map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => TokenRejection::BadSignature,
        ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => TokenRejection::WrongAudience,
        ErrorKind::InvalidAlgorithm => TokenRejection::BadSignature,
        _ => TokenRejection::Malformed,
    })?;
    let wire = data.claims;
    let id = wire
        .jti
        .parse::<Id>()
        .map(TokenId)
        .map_err(|_| TokenRejection::Malformed)?;
    let kind = AdminTokenKind::parse(&wire.kind).map_err(|_| TokenRejection::Malformed)?;
    let issued_at =
        chrono::DateTime::from_timestamp(wire.iat, 0).ok_or(TokenRejection::Malformed)?;
    let expires_at = match wire.exp {
        Some(exp) => {
            Some(chrono::DateTime::from_timestamp(exp, 0).ok_or(TokenRejection::Malformed)?)
        }
        None => None,
    };
    if expires_at.is_some_and(|exp| exp <= now) {
        return Err(TokenRejection::Expired);
    }
    Ok(AdminTokenClaims {
        id,
        name: wire.sub,
        kind,
        issued_at,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyMaterial;
    use base64::Engine;

    fn key(byte: u8) -> SigningKey {
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([byte; 32]);
        SigningKey(KeyMaterial::from_text(&text).unwrap())
    }

    fn at(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn claims(expires_at: Option<Timestamp>) -> AdminTokenClaims {
        AdminTokenClaims {
            id: TokenId::from_u64(523615093115650149).unwrap(),
            name: "ops@example.com".into(),
            kind: AdminTokenKind::Admin,
            issued_at: at(1_800_000_000),
            expires_at,
        }
    }

    #[test]
    fn a_minted_token_verifies_and_round_trips_its_claims() {
        let c = claims(Some(at(1_800_086_400)));
        let token = mint_admin_token(&key(1), &c).unwrap();
        assert_eq!(
            verify_admin_token(&key(1), &token, at(1_800_000_100)),
            Ok(c)
        );
    }

    #[test]
    fn rejections_name_the_problem() {
        let token = mint_admin_token(&key(1), &claims(Some(at(1_800_000_060)))).unwrap();
        let check = |k: &SigningKey, t: &str, now: i64, expected: TokenRejection| {
            assert_eq!(verify_admin_token(k, t, at(now)), Err(expected));
        };
        check(&key(2), &token, 1_800_000_000, TokenRejection::BadSignature);
        check(&key(1), &token, 1_800_000_060, TokenRejection::Expired);
        check(
            &key(1),
            "not-a-jwt",
            1_800_000_000,
            TokenRejection::Malformed,
        );
        // A token without expiry never expires by time.
        let forever = mint_admin_token(&key(1), &claims(None)).unwrap();
        assert!(verify_admin_token(&key(1), &forever, at(4_000_000_000)).is_ok());
    }

    #[test]
    fn each_audience_opens_only_its_own_door() {
        let c = claims(None);
        let now = at(1_800_000_100);
        let all = [
            Audience::Admin,
            Audience::ConsoleSession,
            Audience::ConsoleLogin,
        ];
        for minted in all {
            let token = mint_token(&key(1), &c, minted).unwrap();
            for presented in all {
                let verdict = verify_token(&key(1), &token, now, presented);
                if minted == presented {
                    assert_eq!(verdict, Ok(c.clone()));
                } else {
                    assert_eq!(
                        verdict,
                        Err(TokenRejection::WrongAudience),
                        "{minted:?} as {presented:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn alg_none_and_foreign_audiences_are_refused() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(
            br#"{"iss":"fedsync","aud":"fedsync-admin","sub":"x","jti":"42","iat":1,"kind":"admin"}"#,
        );
        let none_token = format!("{header}.{body}.");
        assert!(verify_admin_token(&key(1), &none_token, at(2)).is_err());

        let peer_like = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"iss":"fedsync","aud":"federation","sub":"x","jti":"42","iat":1,"kind":"admin"}),
            &EncodingKey::from_secret(key(1).0.bytes()),
        )
        .unwrap();
        assert_eq!(
            verify_admin_token(&key(1), &peer_like, at(2)),
            Err(TokenRejection::WrongAudience)
        );
    }
}
