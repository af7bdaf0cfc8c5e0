//! The HTTP federation protocol toward peers.
//!
//! Invariants: this is the public listener; nothing administrative is ever
//! routed here (admin routes answer 404). The wire formats Corteza speaks live
//! in `wire.rs` alone (later), the peer client in `client.rs` (later), the
//! routes in `server/`.

pub mod client;
pub mod server;
pub mod wire;
