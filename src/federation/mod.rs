//! The HTTP federation protocol toward peers.
//!
//! Invariants: this is the public listener; nothing administrative is ever
//! routed here (admin routes answer 404). The wire formats Corteza speaks
//! (and our extensions) live in `wire/` alone, the peer client in
//! `client/`, the routes in `server/`.

pub mod client;
pub mod server;
pub mod wire;
