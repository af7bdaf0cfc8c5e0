//! Pairing rules: node URIs, which peer addresses may be contacted, and the
//! pairing state machine.
//!
//! Invariant: pure functions, no IO; table-tested. The flow that performs
//! pairing (store writes, peer calls) is `sync::pairing_flow`.

pub mod addr;
pub mod state;
pub mod uri;

pub use addr::{AddressPolicy, is_loopback_host};
pub use state::{Action, Facts, check_action};
pub use uri::{NodeUri, UriError, format_node_uri, parse_base_url, parse_node_uri};
