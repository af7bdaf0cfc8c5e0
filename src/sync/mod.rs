//! The engine: what fedsync does, behind ports to the outside world.
//!
//! Invariants: one service layer under every edge (gRPC, the peer routes,
//! later the Corteza-compatible REST API), so no logic is written twice; the
//! engine talks to peers only through the `Peer` port and to storage only
//! through `Store`; every multi-row write of a step is one transaction.

/// The properties both page cursors (structure pages and record pages) hold,
/// stated once. Expanded in each module's tests, where `cursor()` (a
/// strategy), `seal_cursor`, `open_cursor`, `CURSOR_PURPOSE` and `mac` are
/// that module's (with `proptest::prelude::*` in scope); `$other_open` is the other kind's `open_cursor`.
#[cfg(test)]
macro_rules! sealed_cursor_properties {
    ($other_open:path) => {
        use crate::crypto::KeyMaterial;

        fn key() -> SigningKey {
            SigningKey(
                KeyMaterial::from_text("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").unwrap(),
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            /// A cursor we issued opens to itself and re-seals to the same
            /// text; it is not a cursor of the other kind, nor under
            /// another key.
            #[test]
            fn cursors_round_trip(cursor in cursor()) {
                let text = seal_cursor(&key(), &cursor);
                prop_assert_eq!(open_cursor(&key(), &text), Some(cursor.clone()));
                prop_assert_eq!(seal_cursor(&key(), &cursor), text.clone());
                prop_assert_eq!($other_open(&key(), &text), None);
                let other_key = SigningKey(KeyMaterial::from_text("AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").unwrap());
                prop_assert_eq!(open_cursor(&other_key, &text), None);
            }

            /// Any single bit flipped in a cursor is refused.
            #[test]
            fn changed_cursors_are_refused(cursor in cursor(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
                let mut bytes = seal_cursor(&key(), &cursor).into_bytes();
                let i = at.index(bytes.len());
                bytes[i] ^= 1 << bit;
                prop_assert_eq!(open_cursor(&key(), &String::from_utf8_lossy(&bytes)), None);
            }

            /// Any payload sealed for cursors decodes or is refused; what
            /// decodes re-seals to a cursor that opens to the same value.
            #[test]
            fn sealed_payloads_decode_or_are_refused(payload in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..100),
                "\\{(\"[nmacis]\":-?[0-9]{1,21},?){0,7}\\}".prop_map(String::into_bytes),
            ]) {
                let text = mac::seal(&key(), CURSOR_PURPOSE, &payload);
                if let Some(cursor) = open_cursor(&key(), &text) {
                    let again = seal_cursor(&key(), &cursor);
                    prop_assert_eq!(open_cursor(&key(), &again), Some(cursor));
                }
            }
        }
    };
}
#[cfg(test)]
pub(crate) use sealed_cursor_properties;

pub mod admin_tokens;
pub mod audit;
pub mod catalog;
pub mod data;
pub mod invite;
pub mod live;
pub mod notices;
pub mod pairing_flow;
pub mod ports;
pub mod progress;
pub mod records;
pub mod runs;
pub mod structure;
pub mod wake;
pub mod work;

pub use notices::{Event, NoticeSettings, Notices};
pub use pairing_flow::{
    AuthenticatedPeer, InboundHandshake, IssuedUri, NodeCheck, NodeUpdate, PairingError,
    PairingService, PairingSettings, PeerAuthError,
};
pub use ports::{
    DataPeer, HandshakeInit, LocalData, LocalError, LocalRecords, NewModule, NoticeSender, Peer,
    PeerError, PeerReply, RecordsPage, RecordsRequest, RemoteModule, RemoteRecord, RemoteValue,
    SendError, StructurePage, StructurePeer,
};
