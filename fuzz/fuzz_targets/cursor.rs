//! Page cursors (structure and records): opening arbitrary text never panics
//! and never yields a cursor; a sealed cursor opens to itself, re-seals to
//! the same text, and any single changed byte is refused; an arbitrary
//! sealed payload decodes or is refused without panicking.
#![no_main]

use fedsync::crypto::{KeyMaterial, SigningKey, mac};
use fedsync::sync::{data, structure};
use libfuzzer_sys::fuzz_target;

/// A fixed key (bytes 0..32), so that crashes reproduce.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

fn key() -> SigningKey {
    SigningKey(KeyMaterial::from_text(KEY).expect("a 32-byte key"))
}

fn take<const N: usize>(data: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = data.len().min(N);
    out[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    out
}

fn flipped(text: &str, at: usize, bit: u8) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let i = at % bytes.len();
    bytes[i] ^= 1 << (bit % 7);
    String::from_utf8_lossy(&bytes).into_owned()
}

fuzz_target!(|input: &[u8]| {
    let key = key();
    let Some((&mode, mut data)) = input.split_first() else {
        return;
    };
    match mode % 4 {
        // Arbitrary text offered as a cursor.
        0 => {
            let text = String::from_utf8_lossy(data);
            assert_eq!(structure::open_cursor(&key, &text), None);
            assert_eq!(data::open_cursor(&key, &text), None);
        }
        // A structure cursor we issued.
        1 => {
            let n = u64::from_le_bytes(take(&mut data));
            let a = u64::from_le_bytes(take(&mut data));
            let [has_s] = take::<1>(&mut data);
            let s = i64::from_le_bytes(take(&mut data));
            let cursor = structure::CursorPayload {
                n,
                a,
                s: (has_s & 1 == 1).then_some(s),
            };
            let text = structure::seal_cursor(&key, &cursor);
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            );
            let opened = structure::open_cursor(&key, &text);
            assert_eq!(opened.as_ref(), Some(&cursor));
            assert_eq!(structure::seal_cursor(&key, &cursor), text);
            // Not a records cursor, and a changed byte is caught.
            assert_eq!(data::open_cursor(&key, &text), None);
            let [at, bit] = take::<2>(&mut data);
            let changed = flipped(&text, at as usize, bit);
            assert_eq!(structure::open_cursor(&key, &changed), None);
        }
        // A records cursor we issued.
        2 => {
            let n = u64::from_le_bytes(take(&mut data));
            let m = u64::from_le_bytes(take(&mut data));
            let c = i64::from_le_bytes(take(&mut data));
            let i = u64::from_le_bytes(take(&mut data));
            let [has_s] = take::<1>(&mut data);
            let s = i64::from_le_bytes(take(&mut data));
            let cursor = data::RecordCursor {
                n,
                m,
                c,
                i,
                s: (has_s & 1 == 1).then_some(s),
            };
            let text = data::seal_cursor(&key, &cursor);
            assert_eq!(data::open_cursor(&key, &text).as_ref(), Some(&cursor));
            assert_eq!(data::seal_cursor(&key, &cursor), text);
            assert_eq!(structure::open_cursor(&key, &text), None);
            let [at, bit] = take::<2>(&mut data);
            let changed = flipped(&text, at as usize, bit);
            assert_eq!(data::open_cursor(&key, &changed), None);
        }
        // Any payload sealed under the cursors' purposes: decoding it is
        // total, and a decoded cursor re-seals to a text that opens to it
        // (to the same text when the payload was the canonical encoding).
        _ => {
            let text = mac::seal(&key, "structure-page", data);
            if let Some(cursor) = structure::open_cursor(&key, &text) {
                let again = structure::seal_cursor(&key, &cursor);
                assert_eq!(structure::open_cursor(&key, &again), Some(cursor.clone()));
                if serde_json::to_vec(&cursor).ok().as_deref() == Some(data) {
                    assert_eq!(again, text);
                }
            }
            let text = mac::seal(&key, "records-page", data);
            if let Some(cursor) = data::open_cursor(&key, &text) {
                let again = data::seal_cursor(&key, &cursor);
                assert_eq!(data::open_cursor(&key, &again), Some(cursor.clone()));
                if serde_json::to_vec(&cursor).ok().as_deref() == Some(data) {
                    assert_eq!(again, text);
                }
            }
        }
    }
});
