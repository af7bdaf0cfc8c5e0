//! The one integration-test binary. Every test runs real parts on loopback:
//! daemons in-process on 127.0.0.1:0 (or as child processes where signals
//! matter), real SQLite files, the real PostgreSQL named by
//! FEDSYNC_TEST_DATABASE_URL (each test in its own database), real gRPC.

mod common;

mod cli;
mod cli_wait;
mod config;
mod corteza_wire;
mod crash;
mod daemon;
mod data;
mod data_pipeline;
mod deploy;
mod handshake;
mod hostile;
mod layering;
mod lifecycle;
mod limits;
mod live;
mod live_more;
mod notify;
mod ops;
mod ownership;
mod pairing;
mod read_ahead;
mod replicas;
mod rest;
mod scheduler;
mod secrets;
mod sidecar;
mod store_outage;
mod store_story;
mod structure;
mod tls;
mod ui;
mod ui_browser;
