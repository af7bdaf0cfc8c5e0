//! Implementations of the engine's outward ports: `LocalData` and
//! `LocalRecords` over the embedded data plane (modules and records in
//! fedsync's own store; the Corteza compose API lands beside it), and
//! `NoticeSender` (SMTP mail and signed webhooks).

pub mod embedded;
pub mod notify;

pub use embedded::EmbeddedData;
