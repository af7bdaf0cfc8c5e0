//! 256-bit keys: the token signing key and the encryption key for secrets at
//! rest. Their text form is unpadded URL-safe base64 of 32 bytes.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use super::{CryptoError, random_bytes};

/// 32 secret bytes, zeroed on drop, never printed.
#[derive(Clone)]
pub struct KeyMaterial(Zeroizing<[u8; 32]>);

impl KeyMaterial {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Result<KeyMaterial, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        random_bytes(bytes.as_mut())?;
        Ok(KeyMaterial(bytes))
    }

    /// Parses the text form. Surrounding whitespace (a trailing newline in a
    /// key file) is ignored; standard base64 is accepted too.
    pub fn from_text(text: &str) -> Result<KeyMaterial, CryptoError> {
        let text = text.trim();
        let decoded = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(text)
                .or_else(|_| STANDARD.decode(text))
                .map_err(|_| CryptoError::BadKey("not base64".into()))?,
        );
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| {
            CryptoError::BadKey(format!(
                "decodes to {} bytes, a key has 32 (generate one with `openssl rand -base64 32`)",
                decoded.len()
            ))
        })?;
        Ok(KeyMaterial(Zeroizing::new(bytes)))
    }

    /// The text form, for writing a key file.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(URL_SAFE_NO_PAD.encode(self.0.as_ref()))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyMaterial(<redacted>)")
    }
}

/// Signs and verifies the JWTs this node issues (admin and peer tokens).
#[derive(Clone, Debug)]
pub struct SigningKey(pub KeyMaterial);

/// Encrypts the secrets this node must keep in a readable form (tokens peers
/// issued to us).
#[derive(Clone, Debug)]
pub struct EncryptionKey(pub KeyMaterial);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let key = KeyMaterial::generate().unwrap();
        let again = KeyMaterial::from_text(&format!("{}\n", key.to_text().as_str())).unwrap();
        assert_eq!(key.bytes(), again.bytes());
    }

    #[test]
    fn generated_keys_differ() {
        let a = KeyMaterial::generate().unwrap();
        let b = KeyMaterial::generate().unwrap();
        assert_ne!(a.bytes(), b.bytes());
    }

    #[test]
    fn wrong_length_and_garbage_are_refused_with_a_reason() {
        let short = KeyMaterial::from_text("AAAA").unwrap_err().to_string();
        assert!(short.contains("3 bytes"), "{short}");
        let garbage = KeyMaterial::from_text("not base64 !!")
            .unwrap_err()
            .to_string();
        assert!(garbage.contains("not base64"), "{garbage}");
    }

    #[test]
    fn debug_never_shows_the_bytes() {
        let key = KeyMaterial::from_text(&URL_SAFE_NO_PAD.encode([7u8; 32])).unwrap();
        let shown = format!("{:?}", SigningKey(key));
        assert!(!shown.contains("Bwc"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
