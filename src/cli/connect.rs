//! The two ways the CLI connects to the admin interface: with a deadline
//! for quick calls, and without one for calls that wait for work (a sync, a
//! reset, a handshake, an import) as long as it runs.

use std::time::Duration;

use anyhow::Context;
use tonic::transport::{Channel, Endpoint};

use super::client::Target;

/// How long connecting may take, for every call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a quick call may wait for its answer to start.
const QUICK_DEADLINE: Duration = Duration::from_secs(60);
/// A call that waits for work pings the daemon this often, so a daemon
/// that went away without closing the connection is noticed.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection counts as cut.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// A channel for quick calls: each must start answering within a minute.
pub(super) async fn connect(target: &Target) -> anyhow::Result<Channel> {
    open(target, endpoint(target)?.timeout(QUICK_DEADLINE)).await
}

/// A channel for calls that wait for work: no overall deadline (the work
/// takes as long as it takes), but the connection is kept checked.
pub(super) async fn connect_waiting(target: &Target) -> anyhow::Result<Channel> {
    let endpoint = endpoint(target)?
        .http2_keep_alive_interval(KEEP_ALIVE_EVERY)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    open(target, endpoint).await
}

fn url(target: &Target) -> String {
    if target.addr.starts_with("http://") || target.addr.starts_with("https://") {
        target.addr.clone()
    } else {
        format!("http://{}", target.addr)
    }
}

fn endpoint(target: &Target) -> anyhow::Result<Endpoint> {
    Ok(Endpoint::from_shared(url(target))
        .with_context(|| format!("invalid admin address `{}`", target.addr))?
        .connect_timeout(CONNECT_TIMEOUT))
}

async fn open(target: &Target, endpoint: Endpoint) -> anyhow::Result<Channel> {
    endpoint.connect().await.with_context(|| {
        format!(
            "cannot reach the admin interface at {} (is `fedsync serve` running?)",
            url(target)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_address_is_reached_over_plain_http() {
        let target = |addr: &str| Target {
            addr: addr.into(),
            token: String::new(),
        };
        assert_eq!(url(&target("127.0.0.1:8081")), "http://127.0.0.1:8081");
        assert_eq!(url(&target("https://a.example:1")), "https://a.example:1");
        assert!(endpoint(&target("not a url at all")).is_err());
    }
}
