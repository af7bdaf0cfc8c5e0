//! fedsync: a federation sync daemon, wire-compatible with Corteza's record
//! federation and safer than it.
//!
//! Code map, in reading order (imports point down this list; modules on one
//! layer do not import each other; `tests/integration/layering.rs` checks it):
//!
//! - [`cli`]: the command line (`serve`, `migrate`, `config`, `token`, admin
//!   client commands).
//! - [`daemon`]: the composition root: start-up, wiring, graceful shutdown.
//! - [`admin`], [`federation`]: the two listeners (admin gRPC + `/metrics`;
//!   public probes and peer routes) and the peer client.
//! - [`scheduler`]: scheduled sync jobs, leases, retries.
//! - [`sync`]: the engine, one service layer under every edge.
//! - [`pairing`]: pure rules (node URIs, address policy, state machine).
//! - [`store`]: the `Store` trait and its SQLite and PostgreSQL engines.
//! - [`config`], [`telemetry`], [`crypto`]: cross-cutting support.
//! - [`domain`]: the vocabulary, no IO.
//!
//! See `ARCHITECTURE.md` for the invariants.

#![forbid(unsafe_code)]

pub mod cli;
pub mod daemon;

pub mod adapters;
pub mod admin;
pub mod federation;

pub mod scheduler;
pub mod sync;

pub mod mapping;
pub mod pairing;
pub mod store;

pub mod config;
pub mod crypto;
pub mod telemetry;

pub mod domain;
