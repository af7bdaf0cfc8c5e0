//! Implementations of the engine's `LocalData` port: the embedded data plane
//! (modules and records in fedsync's own store); the Corteza compose API
//! lands beside it.

pub mod embedded;

pub use embedded::EmbeddedData;
