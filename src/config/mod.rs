//! Configuration: defaults < TOML file < `FEDSYNC_*` environment < flags.
//!
//! Invariant: a `Config` that loaded is valid. Every key is checked at load
//! time, unknown keys are refused with their full path and source, `*_file`
//! secrets are read at load time, and no secret is ever printed (`Secret`
//! redacts itself in `Debug` and when serialized). A `FEDSYNC_*` variable
//! that is no config key is refused when it looks like one and otherwise
//! ignored with a warning (see `environment::read`).

mod environment;
mod load;
mod secret;
mod sections;
mod values;

pub use load::{ConfigError, Overrides};
pub use secret::Secret;
pub use sections::*;

/// The documented default configuration file, printed by
/// `fedsync config print-default`.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

#[cfg(test)]
mod tests;
