//! Encryption of secrets we must be able to read back (tokens peers issued
//! to us): XChaCha20-Poly1305 with a random 192-bit nonce, bound to its
//! purpose by associated data so a ciphertext cannot be moved to another row.
//!
//! Stored form: 24-byte nonce followed by the ciphertext and its tag.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::{CryptoError, EncryptionKey, random_bytes};

const NONCE_LEN: usize = 24;

/// Encrypts `plaintext`; `context` (e.g. `node:42:auth_token`) must be given
/// again to decrypt.
pub fn seal(key: &EncryptionKey, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let cipher = XChaCha20Poly1305::new(key.0.bytes().into());
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    let sealed = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| CryptoError::Seal)?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Decrypts what `seal` made with the same key and context.
pub fn open(
    key: &EncryptionKey,
    context: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Open);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Open)?;
    let cipher = XChaCha20Poly1305::new(key.0.bytes().into());
    cipher
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: body,
                aad: context.as_bytes(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyMaterial;

    fn key() -> EncryptionKey {
        EncryptionKey(KeyMaterial::generate().unwrap())
    }

    #[test]
    fn sealed_text_opens_only_with_its_key_and_context() {
        let k = key();
        let sealed = seal(&k, "node:1:auth_token", b"CANARY-TOKEN").unwrap();
        assert!(
            !sealed.windows(12).any(|w| w == b"CANARY-TOKEN"),
            "plaintext must not show"
        );
        assert_eq!(
            open(&k, "node:1:auth_token", &sealed).unwrap().as_slice(),
            b"CANARY-TOKEN"
        );
        assert!(
            open(&k, "node:2:auth_token", &sealed).is_err(),
            "moved to another row"
        );
        assert!(
            open(&key(), "node:1:auth_token", &sealed).is_err(),
            "another key"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(open(&k, "node:1:auth_token", &tampered).is_err());
        assert!(open(&k, "node:1:auth_token", &sealed[..10]).is_err());
    }

    #[test]
    fn two_seals_of_the_same_text_differ() {
        let k = key();
        assert_ne!(seal(&k, "c", b"x").unwrap(), seal(&k, "c", b"x").unwrap());
    }
}
