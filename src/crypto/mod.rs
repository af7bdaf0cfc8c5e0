//! Key material, hashing and token signing.
//!
//! Invariant: pure functions over explicit inputs (keys, time); randomness
//! comes only from the OS (getrandom). Nothing here logs, and every type that
//! holds a secret redacts itself in `Debug` and zeroes its memory on drop.

pub mod admin_token;
pub mod hash;
pub mod keys;
pub mod mac;
pub mod ott;
pub mod peer_token;
pub mod secretbox;
pub mod tls;

pub use admin_token::{
    AdminTokenClaims, Audience, TokenRejection, mint_admin_token, mint_token, parse_bearer,
    verify_admin_token, verify_token,
};
pub use hash::{constant_time_eq, fingerprint, sha256};
pub use keys::{EncryptionKey, KeyMaterial, SigningKey};
pub use ott::{OTT_LEN, generate_ott, is_ott_shaped};
pub use peer_token::{PeerTokenClaims, mint_peer_token, verify_peer_token};

/// A failure of the crypto layer itself (not a rejected token).
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the operating system's random generator failed: {0}")]
    Random(String),
    #[error("key is not valid: {0}")]
    BadKey(String),
    #[error("could not sign token: {0}")]
    Sign(String),
    #[error("could not encrypt a secret")]
    Seal,
    #[error(
        "a stored secret does not decrypt with this node's encryption key (was the key changed?)"
    )]
    Open,
}

/// Fills `buf` from the OS CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|e| CryptoError::Random(e.to_string()))
}
