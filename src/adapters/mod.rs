//! Implementations of the engine's outward ports: `LocalData` and
//! `LocalRecords` over the embedded data plane (modules and records in
//! fedsync's own store) and over a Corteza instance's compose REST API
//! (sidecar mode), and
//! `NoticeSender` (SMTP mail and signed webhooks).

pub mod corteza;
pub mod embedded;
pub mod notify;

pub use corteza::{CortezaData, CortezaSettings, CortezaToken};
pub use embedded::EmbeddedData;
