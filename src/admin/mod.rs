//! The admin interface: tonic gRPC services (`fedsync.admin.v1`), gRPC health
//! and reflection, Corteza's federation admin REST API under `/federation`
//! (`rest.rs`), the web console under `/ui/` (`ui/`), and plain HTTP
//! (`/metrics`) on one listener.
//!
//! Invariants: every admin RPC and REST call passes admin authentication
//! (`auth::authenticate_request`; health and reflection stay open), and
//! every console page its session check (`ui::session`), whose cookie
//! nothing else accepts; handlers are thin (decode, validate, call the store
//! or engine, encode); `proto.rs` is the only file that touches generated
//! code, and `status.rs` the only place errors become gRPC statuses. Nothing
//! here is reachable from the federation listener.

pub mod admin_token;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod node;
pub mod proto;
pub mod record;
pub mod rest;
pub mod server;
mod status;
pub mod sync;
mod sync_now;
pub mod ui;

pub use auth::AdminIdentity;
pub use server::{AdminState, router};
