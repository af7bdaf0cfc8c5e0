//! Tamper-evident tokens for our own use (page cursors): a payload and an
//! HMAC-SHA256 over it, keyed by a key derived from the signing key for one
//! purpose. The text form is `<base64url payload>.<base64url tag>`: only
//! unreserved URL characters, so it survives peers that do not escape it
//! (Corteza's syncer, W14).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::SigningKey;

type HmacSha256 = Hmac<Sha256>;

fn mac_for(key: &SigningKey, purpose: &str) -> HmacSha256 {
    // Derive a key per purpose so a cursor tag can never be a token signature.
    let mut derive =
        <HmacSha256 as KeyInit>::new_from_slice(key.0.bytes()).expect("HMAC takes any key length");
    derive.update(b"fedsync mac v1:");
    derive.update(purpose.as_bytes());
    let derived = derive.finalize().into_bytes();
    <HmacSha256 as KeyInit>::new_from_slice(&derived).expect("HMAC takes any key length")
}

/// Signs `payload` for `purpose`.
pub fn seal(key: &SigningKey, purpose: &str, payload: &[u8]) -> String {
    let mut mac = mac_for(key, purpose);
    mac.update(payload);
    let tag = mac.finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// The payload of a sealed text, or `None` when it was not made by `seal`
/// with this key and purpose (or was changed at all).
pub fn open(key: &SigningKey, purpose: &str, text: &str) -> Option<Vec<u8>> {
    if text.len() > 4096 {
        return None;
    }
    let (payload, tag) = text.split_once('.')?;
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let mut mac = mac_for(key, purpose);
    mac.update(&payload);
    mac.verify_slice(&tag).ok()?;
    Some(payload)
}

/// The signature a webhook carries in `X-Fedsync-Signature`: `sha256=` and
/// the hex HMAC-SHA256, keyed by the shared webhook secret, over
/// `<timestamp>.<body>` (the timestamp is `X-Fedsync-Timestamp`, so a
/// receiver can refuse replays of old deliveries).
pub fn webhook_signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyMaterial;

    #[test]
    fn sealed_texts_open_only_unchanged_with_their_key_and_purpose() {
        let key = SigningKey(KeyMaterial::generate().unwrap());
        let text = seal(&key, "cursor", br#"{"n":1}"#);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        );
        assert_eq!(open(&key, "cursor", &text).unwrap(), br#"{"n":1}"#);
        assert_eq!(open(&key, "other", &text), None);
        assert_eq!(
            open(
                &SigningKey(KeyMaterial::generate().unwrap()),
                "cursor",
                &text
            ),
            None
        );
        // Every single-character change is caught.
        for i in 0..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            if changed != text {
                assert_eq!(open(&key, "cursor", &changed), None, "change at {i}");
            }
        }
        assert_eq!(open(&key, "cursor", "garbage"), None);
    }

    fn fixed_key() -> SigningKey {
        SigningKey(KeyMaterial::from_text("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").unwrap())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Whatever is sealed opens to itself, with its purpose only.
        #[test]
        fn sealed_payloads_open_to_themselves(
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            purpose in "[a-z-]{1,20}",
        ) {
            let key = fixed_key();
            let text = seal(&key, &purpose, &payload);
            proptest::prop_assert_eq!(open(&key, &purpose, &text), Some(payload));
            proptest::prop_assert_eq!(open(&key, &format!("{purpose}x"), &text), None);
        }

        /// Any single bit flipped anywhere in a sealed text is refused.
        #[test]
        fn any_bit_flip_is_refused(
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            at in proptest::prelude::any::<proptest::sample::Index>(),
            bit in 0u8..8,
        ) {
            let key = fixed_key();
            let text = seal(&key, "cursor", &payload);
            let mut bytes = text.into_bytes();
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
            let changed = String::from_utf8_lossy(&bytes);
            proptest::prop_assert_eq!(open(&key, "cursor", &changed), None);
        }

        /// Arbitrary text is refused, never a panic.
        #[test]
        fn arbitrary_text_is_refused(text in "\\PC{0,300}|[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}") {
            proptest::prop_assert_eq!(open(&fixed_key(), "cursor", &text), None);
        }
    }

    #[test]
    fn webhook_signatures_match_a_known_vector() {
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'webhook-secret-0123'
        assert_eq!(
            webhook_signature(b"webhook-secret-0123", 1_700_000_000, br#"{"a":1}"#),
            "sha256=74e1b170a115de6222ee93674d5b49b9a9dee9bb819fcb83c8eb2c446e76b037"
        );
    }
}
