//! TLS on the federation listener (rustls), for a node that faces peers
//! without a proxy. The certificate and key are re-read when either file
//! changes (checked every few seconds), so a renewed certificate is served
//! without a restart; a file that does not load keeps the previous pair and
//! says why in the log. Handshakes run in their own tasks with a timeout, so
//! a slow or silent client never holds up the others.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// How often the files are checked for a change.
const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// The longest a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        return Err(anyhow!("{} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{} is not a PEM private key", key.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| anyhow!("the certificate and the key do not go together: {e}"))?;
    Ok(Arc::new(certified))
}

fn stamp(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The current certificate, swapped when the files change.
#[derive(Debug)]
struct Reloading {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// The TLS side of the federation listener.
pub struct TlsConfig {
    acceptor: TlsAcceptor,
    resolver: Arc<Reloading>,
    cert: PathBuf,
    key: PathBuf,
}

impl TlsConfig {
    /// Loads the pair now: a bad file stops the daemon at start.
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<TlsConfig> {
        let resolver = Arc::new(Reloading {
            current: RwLock::new(load(cert, key).context("config key `federation.tls_cert`")?),
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsConfig {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            resolver,
            cert: cert.to_owned(),
            key: key.to_owned(),
        })
    }

    /// Watches the files until `stop`, swapping in a new pair that loads.
    fn spawn_reloader(&self, stop: CancellationToken) {
        let (cert, key, resolver) = (self.cert.clone(), self.key.clone(), self.resolver.clone());
        tokio::spawn(async move {
            let mut seen = (stamp(&cert), stamp(&key));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(RELOAD_EVERY) => {}
                }
                let now = (stamp(&cert), stamp(&key));
                if now == seen {
                    continue;
                }
                seen = now;
                match load(&cert, &key) {
                    Ok(pair) => {
                        *resolver.current.write().unwrap_or_else(|e| e.into_inner()) = pair;
                        tracing::info!(cert = %cert.display(), "reloaded the TLS certificate");
                    }
                    Err(error) => tracing::warn!(
                        error = %format!("{error:#}"),
                        "the changed TLS files do not load; still serving the previous certificate"
                    ),
                }
            }
        });
    }
}

/// A listener that yields connections whose TLS handshake completed.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, tls: TlsConfig, stop: CancellationToken) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        tls.spawn_reloader(stop.clone());
        let (tx, ready) = mpsc::channel(64);
        let acceptor = tls.acceptor.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = tcp.accept() => accepted,
                };
                let (stream, addr) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::warn!(error = %error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small answers go out at once (no Nagle delay).
                let _ = stream.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(source_addr = %addr, error = %error, "TLS handshake failed")
                        }
                        Err(_) => {
                            tracing::debug!(source_addr = %addr, "TLS handshake timed out")
                        }
                    }
                });
            }
        });
        Ok(TlsListener { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(pair) => pair,
            // The acceptor stopped (shutdown): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
