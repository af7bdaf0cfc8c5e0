//! The handshake body decoder (`POST /federation/nodes/{id}/handshake`):
//! never panics; refusals are 400 or 413 and never echo a token; a decoded
//! body has its tokens within bounds, and the body re-encoded decodes the
//! same way.
#![no_main]

use fedsync::federation::wire::{
    HandshakeInitBody, MAX_TOKEN_LEN, decode_handshake, decode_handshake_body, decode_json_body,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match decode_handshake_body(data) {
        Ok(decoded) => {
            for token in [&decoded.pair_token, &decoded.auth_token] {
                assert!(!token.is_empty() && token.len() <= MAX_TOKEN_LEN);
            }
            let body: HandshakeInitBody = decode_json_body(data).expect("a decoded body is a body");
            let encoded = serde_json::to_vec(&body).expect("a body encodes");
            let again = decode_handshake_body(&encoded).expect("a re-encoded body decodes");
            assert_eq!(again.pair_token, decoded.pair_token);
            assert_eq!(again.auth_token, decoded.auth_token);
            assert_eq!(again.body_node_id, decoded.body_node_id);
            assert_eq!(again.peer_kind, decoded.peer_kind);
        }
        Err(refused) => {
            assert!(matches!(refused.status.as_u16(), 400 | 413));
            assert!(refused.message.starts_with("request invalid: ") || refused.status == 413);
            // A refusal never repeats a token the body carried (tokens
            // longer than any fixed message, so a short token that happens
            // to be a word of one does not count).
            if let Ok(body) = decode_json_body::<HandshakeInitBody>(data) {
                for token in [&body.pair_token, &body.auth_token, &body.token]
                    .into_iter()
                    .flatten()
                    .filter(|t| t.len() > 64)
                {
                    assert!(!refused.message.contains(token.as_str()));
                }
                // Decoding the body value is the same as decoding the bytes.
                assert_eq!(decode_handshake(body).err(), Some(refused));
            }
        }
    }
});
