//! SHA-256 hashing, fingerprints and constant-time comparison.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = Sha256::digest(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&digest);
    out
}

/// A short, non-secret identifier of a secret, for display and audit:
/// `sha256:` and the first 12 hex digits of its SHA-256.
pub fn fingerprint(secret: &str) -> String {
    let digest = sha256(secret.as_bytes());
    format!("sha256:{}", hex::encode(&digest[..6]))
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_standard_vector() {
        assert_eq!(
            hex::encode(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn fingerprint_is_short_and_stable() {
        assert_eq!(fingerprint("abc"), "sha256:ba7816bf8f01");
        assert_ne!(fingerprint("abc"), fingerprint("abd"));
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sane"));
        assert!(!constant_time_eq(b"same", b"same!"));
    }
}
