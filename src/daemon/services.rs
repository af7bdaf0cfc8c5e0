//! The services the daemon composes from its configuration: notifications,
//! the pairing service with the real peer client, and the local data plane.

use std::sync::Arc;

use anyhow::{Context, anyhow};

use super::Keys;
use crate::adapters::{CortezaData, CortezaSettings, CortezaToken, EmbeddedData};
use crate::config::Config;
use crate::domain::IdGenerator;
use crate::federation::client::{PeerClient, PeerClientConfig};
use crate::store::Store;
use crate::sync::{
    LocalData, LocalRecords, NoticeSettings, Notices, PairingService, PairingSettings,
};

/// The notification service with the real SMTP and webhook sender.
pub(super) fn notices(
    config: &Config,
    store: Arc<dyn Store>,
    ids: Arc<IdGenerator>,
    owner: &str,
) -> anyhow::Result<Notices> {
    use crate::adapters::notify::{Sender, SenderSettings, SmtpSecurity, SmtpSettings};
    let notify = &config.notify;
    let smtp = &notify.smtp;
    let sender = Sender::new(SenderSettings {
        smtp: (!smtp.host.is_empty()).then(|| SmtpSettings {
            host: smtp.host.clone(),
            port: smtp.port(),
            security: match smtp.security {
                crate::config::SmtpSecurity::Starttls => SmtpSecurity::Starttls,
                crate::config::SmtpSecurity::Tls => SmtpSecurity::Tls,
                crate::config::SmtpSecurity::None => SmtpSecurity::None,
            },
            credentials: (!smtp.username.is_empty()).then(|| {
                (
                    smtp.username.clone(),
                    zeroize::Zeroizing::new(smtp.password.expose().to_owned()),
                )
            }),
            from: smtp.from.clone(),
            ca_file: (!smtp.ca_file.as_os_str().is_empty()).then(|| smtp.ca_file.clone()),
        }),
        webhook_secret: zeroize::Zeroizing::new(notify.webhook_secret.expose().to_owned()),
        timeout: notify.timeout,
    })
    .map_err(|e| anyhow!(e))?;
    Ok(Notices::new(
        store,
        ids,
        Arc::new(sender),
        NoticeSettings {
            label: config.federation.label.clone(),
            admin_emails: notify.admin_emails(),
            webhook_urls: notify.webhook_urls(),
            failing_for: Some(notify.failing_for).filter(|d| !d.is_zero()),
            retry_base: notify.retry_base,
            retry_cap: notify.retry_cap,
            give_up_after: notify.give_up_after,
        },
        owner.to_owned(),
    ))
}

/// The pairing service with the real peer client.
pub(super) fn pairing_service(
    config: &Config,
    store: Arc<dyn Store>,
    keys: &Keys,
    ids: Arc<IdGenerator>,
) -> anyhow::Result<(PairingService, Arc<PeerClient>)> {
    let federation = &config.federation;
    let peer = PeerClient::new(&PeerClientConfig {
        allow_insecure_peers: federation.allow_insecure_peers,
        ca_file: (!federation.peer_ca_file.as_os_str().is_empty())
            .then(|| federation.peer_ca_file.clone()),
        connect_timeout: federation.peer_connect_timeout,
        request_timeout: federation.peer_request_timeout,
        max_response_bytes: federation.peer_max_response_bytes,
        capabilities: our_capabilities(config),
    })
    .map_err(|e| anyhow!("config key `federation.peer_ca_file`: {e}"))?;
    let public_url = match federation.public_url.as_str() {
        "" => None,
        url => Some(url::Url::parse(url).context("config key `federation.public_url`")?),
    };
    let peer = Arc::new(peer);
    let service = PairingService::new(
        store,
        peer.clone(),
        keys.signing.clone(),
        keys.encryption.clone(),
        ids,
        PairingSettings {
            public_url,
            label: federation.label.clone(),
            allow_insecure_peers: federation.allow_insecure_peers,
            ott_ttl: config.pairing.ott_ttl,
            max_failed_attempts: config.pairing.max_failed_attempts,
            token_idle_timeout: Some(config.pairing.token_idle_timeout).filter(|d| !d.is_zero()),
        },
    );
    Ok((service, peer))
}

/// The data plane `[local] kind` names: fedsync's own store, or a Corteza
/// instance beside it (not contacted here: it may start after us).
pub(super) fn local_data_plane(
    config: &Config,
    store: Arc<dyn Store>,
    ids: Arc<IdGenerator>,
) -> anyhow::Result<(Arc<dyn LocalData>, Arc<dyn LocalRecords>)> {
    Ok(match config.local.kind {
        crate::config::LocalKind::Embedded => {
            let embedded = Arc::new(EmbeddedData::new(store, ids));
            (embedded.clone(), embedded)
        }
        crate::config::LocalKind::Corteza => {
            let local = &config.local;
            let token = match &local.corteza_token_file {
                Some(path) => CortezaToken::File(path.clone()),
                None => CortezaToken::Inline(zeroize::Zeroizing::new(
                    local.corteza_token.expose().to_owned(),
                )),
            };
            let corteza = Arc::new(
                CortezaData::new(
                    CortezaSettings {
                        url: local.corteza_url.clone(),
                        token,
                        namespace: local.corteza_namespace.trim().to_owned(),
                        requests_per_second: local.corteza_requests_per_second,
                        max_concurrent: local.corteza_max_concurrent,
                        page_size: local.corteza_page_size,
                        timeout: local.corteza_timeout,
                    },
                    store,
                )
                .map_err(anyhow::Error::msg)?,
            );
            tracing::info!(
                url = %local.corteza_url,
                namespace = %local.corteza_namespace,
                "local data plane: Corteza"
            );
            (corteza.clone(), corteza)
        }
    })
}

/// `/metrics` reads the data plane's pacing (Corteza's) at each scrape.
pub(super) fn read_pacing(metrics: &crate::telemetry::Metrics, records: &Arc<dyn LocalRecords>) {
    if records.pacing().is_none() {
        return;
    }
    let records = Arc::downgrade(records);
    metrics.read_pacing_from(Arc::new(move || {
        let p = records.upgrade()?.pacing()?;
        Some(crate::telemetry::PacingFigures {
            limit: p.limit,
            max: p.max,
            in_flight: p.in_flight,
            p50_latency_seconds: p.p50_latency.map_or(0.0, |d| d.as_secs_f64()),
            requests: p.requests,
            throttled: p.throttled,
            server_errors: p.server_errors,
            timeouts: p.timeouts,
            limit_cuts: p.cuts,
        })
    }));
}

/// What we tell fedsync peers we can do.
pub(super) fn our_capabilities(config: &Config) -> Vec<String> {
    let mut capabilities = Vec::new();
    if config.sync.live_changes {
        capabilities.push(crate::domain::PeerCapabilities::CHANGE_NOTICES.to_owned());
    }
    capabilities
}

/// Live changes to and from fedsync peers, counted on the daemon's metrics.
pub(super) fn live_changes(
    config: &Config,
    store: &Arc<dyn Store>,
    pairing: &Arc<PairingService>,
    peer: &Arc<PeerClient>,
    wake: &Arc<crate::sync::wake::Wake>,
    work: &crate::sync::work::Work,
    metrics: &crate::telemetry::Metrics,
) -> Arc<crate::sync::live::LiveChanges> {
    use crate::sync::live::{LiveChanges, LiveSettings};
    let notices = metrics.live_notices.clone();
    Arc::new(LiveChanges::new(
        LiveSettings {
            enabled: config.sync.live_changes,
            window: config.sync.live_window,
            reexport: config.sync.reexport,
            poll: config.local.corteza_change_poll,
        },
        store.clone(),
        pairing.clone(),
        peer.clone(),
        wake.clone(),
        work.clone(),
        Arc::new(move |event, n| {
            notices
                .get_or_create(&crate::telemetry::EventLabels {
                    event: event.as_str(),
                })
                .inc_by(n);
        }),
    ))
}
