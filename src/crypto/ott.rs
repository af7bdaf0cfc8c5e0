//! One-time pairing tokens: 32 characters of `[A-Za-z0-9]` (what Corteza
//! generates and accepts) from the OS CSPRNG, about 190 bits.

use zeroize::Zeroizing;

use super::{CryptoError, random_bytes};

pub const OTT_LEN: usize = 32;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh OTT. Rejection sampling keeps every character equally likely.
pub fn generate_ott() -> Result<Zeroizing<String>, CryptoError> {
    let mut out = Zeroizing::new(String::with_capacity(OTT_LEN));
    let mut buf = Zeroizing::new([0u8; 64]);
    while out.len() < OTT_LEN {
        random_bytes(buf.as_mut())?;
        for &b in buf.iter() {
            // 248 = 4 * 62: bytes at or above it would bias the alphabet.
            if b < 248 && out.len() < OTT_LEN {
                out.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
            }
        }
    }
    Ok(out)
}

/// Whether `text` has the shape of an OTT (length and alphabet).
pub fn is_ott_shaped(text: &str) -> bool {
    text.len() == OTT_LEN && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otts_have_the_corteza_shape_and_differ() {
        let a = generate_ott().unwrap();
        let b = generate_ott().unwrap();
        assert!(is_ott_shaped(&a), "{}", a.as_str());
        assert_ne!(a.as_str(), b.as_str());
        assert!(!is_ott_shaped("secret-secret-secret-secret-1234"));
        assert!(!is_ott_shaped(&"a".repeat(31)));
        assert!(!is_ott_shaped(&"a".repeat(33)));
    }

    #[test]
    fn every_character_of_the_alphabet_appears() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.extend(generate_ott().unwrap().bytes());
        }
        assert_eq!(seen.len(), ALPHABET.len());
    }
}
