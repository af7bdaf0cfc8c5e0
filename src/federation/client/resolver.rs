//! The SSRF guard at connect time: the resolver drops every address the
//! policy refuses (so DNS rebinding does not get through), and its refusal
//! is found again in reqwest's error chain.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::pairing::AddressPolicy;

/// The SSRF guard's refusal, found again in reqwest's error chain.
#[derive(Debug)]
pub(super) struct BlockedAddress(pub(super) String);

impl std::fmt::Display for BlockedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BlockedAddress {}

/// Resolves names and drops every address the policy refuses.
pub(super) struct GuardedResolver {
    pub(super) policy: AddressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusals = Vec::new();
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match policy.check(addr.ip()) {
                    Ok(()) => true,
                    Err(reason) => {
                        refusals.push(reason);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let reason = refusals
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| format!("{host} has no address"));
                return Err(Box::new(BlockedAddress(format!("{host}: {reason}")))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}
