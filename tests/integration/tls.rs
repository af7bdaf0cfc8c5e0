//! https peers: verified against the system roots plus `--peer-ca-file`
//! (a real Corteza hands out only https URIs, so tests use a CA of their
//! own); a certificate nothing vouches for, or for another name, is refused
//! before any byte of the request (federation-security 4.3 C8).

use std::net::{IpAddr, Ipv4Addr};

use fedsync::admin::proto::v1;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::common::fake_peer::FakePeer;
use crate::common::{TestDaemon, add_node_uri, spawn_node_with, with_token};

const OTT: &str = "Tls0Tls0Tls0Tls0Tls0Tls0Tls0Tls0";

struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn test_ca() -> TestCa {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem_path = dir.path().join("ca.pem");
    std::fs::write(&pem_path, issuer.pem()).unwrap();
    TestCa {
        issuer,
        pem_path,
        _dir: dir,
    }
}

/// A server certificate for `names` (and 127.0.0.1) signed by `ca`.
fn server_cert(
    ca: &TestCa,
    names: &[&str],
    with_ip: bool,
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    if with_ip {
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (vec![cert.der().clone()], key)
}

async fn pair_with(b: &TestDaemon, peer: &FakePeer) -> Result<v1::Node, tonic::Status> {
    let uri = format!(
        "https://42:{OTT}@127.0.0.1:{}/federation?name=tls",
        peer.addr.port()
    );
    let id = add_node_uri(b, uri).await;
    b.nodes()
        .await
        .pair_node(with_token(v1::NodeRef { id }, &b.admin_token()))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn an_https_peer_vouched_for_by_the_peer_ca_file_pairs() {
    let ca = test_ca();
    let (chain, key) = server_cert(&ca, &["localhost"], true);
    let peer = FakePeer::start_tls(chain, key).await;
    let ca_file = ca.pem_path.display().to_string();
    let mut b = spawn_node_with("B", |o| {
        o.set("federation.peer_ca_file", ca_file.as_str());
    })
    .await;
    let node = pair_with(&b, &peer).await.unwrap();
    assert_eq!(node.status, "pair_requested");
    let sent = &peer.requests()[0];
    assert_eq!(sent.path, "/federation/nodes/42/handshake");
    assert_eq!(sent.json()["pairToken"], OTT);
    b.stop().await;
}

#[tokio::test]
async fn an_unknown_ca_or_a_wrong_name_is_refused_before_sending_anything() {
    let ca = test_ca();
    // Valid for the address, but nothing this node trusts signed it.
    let (chain, key) = server_cert(&ca, &["localhost"], true);
    let untrusted = FakePeer::start_tls(chain, key).await;
    let mut plain = spawn_node_with("B", |_| {}).await;
    let err = pair_with(&plain, &untrusted).await.unwrap_err();
    assert!(
        err.message()
            .contains("invalid peer certificate: UnknownIssuer"),
        "{}",
        err.message()
    );
    assert!(
        untrusted.requests().is_empty(),
        "no request, no token, went out"
    );
    plain.stop().await;

    // Trusted CA, but the certificate names another host.
    let (chain, key) = server_cert(&ca, &["peer.example.com"], false);
    let wrong_name = FakePeer::start_tls(chain, key).await;
    let ca_file = ca.pem_path.display().to_string();
    let mut b = spawn_node_with("B", |o| {
        o.set("federation.peer_ca_file", ca_file.as_str());
    })
    .await;
    let err = pair_with(&b, &wrong_name).await.unwrap_err();
    assert!(
        err.message().contains("invalid peer certificate"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("not valid for name"),
        "{}",
        err.message()
    );
    assert!(wrong_name.requests().is_empty());
    b.stop().await;
}

#[tokio::test]
async fn a_peer_ca_file_that_is_not_pem_stops_the_daemon_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("ca.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let out = crate::common::run_cli(&[
        "serve",
        "--data-dir",
        &dir.path().join("data").display().to_string(),
        "--federation-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--peer-ca-file",
        &bogus.display().to_string(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = crate::common::stderr(&out);
    assert!(
        err.contains("federation.peer_ca_file") && err.contains("no certificate"),
        "{err}"
    );
}

// ------------------------------------------------ TLS on our own listener

/// A client that trusts only `ca` (and speaks TLS with ring).
fn client_trusting(ca: &TestCa) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca.issuer.der().clone())
        .expect("the test CA is a root");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap()
}

/// Writes a certificate for 127.0.0.1 signed by `ca` and its key as PEM.
fn write_server_pem(ca: &TestCa, cert: &std::path::Path, key: &std::path::Path) {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let pair = KeyPair::generate().unwrap();
    let signed = params.signed_by(&pair, &ca.issuer).unwrap();
    // Replaced whole, as a renewal tool would (write, then rename).
    let tmp = cert.with_extension("tmp");
    std::fs::write(&tmp, pair.serialize_pem()).unwrap();
    std::fs::rename(&tmp, key).unwrap();
    std::fs::write(&tmp, signed.pem()).unwrap();
    std::fs::rename(&tmp, cert).unwrap();
}

#[tokio::test]
async fn the_federation_listener_serves_tls_and_picks_up_a_renewed_certificate() {
    let first = test_ca();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    write_server_pem(&first, &cert, &key);
    let mut node = spawn_node_with("A", |o| {
        o.set("federation.tls_cert", cert.display().to_string())
            .set("federation.tls_key", key.display().to_string());
    })
    .await;
    let url = format!("https://{}/readyz", node.running().federation_addr);
    let answer = client_trusting(&first).get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    // Plain http gets no answer from a TLS listener.
    let plain = crate::common::http()
        .get(format!("http://{}/readyz", node.running().federation_addr))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");

    // A renewed certificate from another CA: served without a restart.
    let second = test_ca();
    assert!(client_trusting(&second).get(&url).send().await.is_err());
    write_server_pem(&second, &cert, &key);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        // A fresh client each time: a new connection, a new handshake.
        if let Ok(answer) = client_trusting(&second).get(&url).send().await {
            assert_eq!(answer.status(), 200);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed certificate was not picked up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        client_trusting(&first).get(&url).send().await.is_err(),
        "the old certificate is gone"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_key_that_does_not_match_the_certificate_stops_the_daemon_at_start() {
    let ca = test_ca();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    write_server_pem(&ca, &cert, &key);
    std::fs::write(&key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let out = crate::common::run_cli(&[
        "serve",
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
        "--federation-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ])
    .await;
    assert!(!out.status.success());
    let stderr = crate::common::stderr(&out);
    assert!(
        stderr.contains("federation.tls_cert") && stderr.contains("do not go together"),
        "{stderr}"
    );
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    // A refused handshake is audited with the client's address.
    async fn refused_from(trusted: &str) -> String {
        let mut node = spawn_node_with("A", |o| {
            o.set("federation.trusted_proxies", trusted);
        })
        .await;
        let answer = crate::common::http()
            .post(node.federation_url("/federation/nodes/42/handshake"))
            .header("x-forwarded-for", "198.51.100.9, 203.0.113.7")
            .json(&serde_json::json!({
                "pairToken": "Wrong0Wrong0Wrong0Wrong0Wrong012",
                "sharedNodeID": "42",
                "authToken": "x"
            }))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_client_error());
        let audit = node.audit().await;
        node.stop().await;
        audit
            .iter()
            .find(|e| e.event.starts_with("handshake"))
            .map(|e| e.source_addr.clone())
            .expect("the refusal is audited")
    }
    // The right-most address not a trusted proxy is the client.
    assert!(
        refused_from("127.0.0.1/32")
            .await
            .starts_with("203.0.113.7")
    );
    assert!(
        refused_from("127.0.0.1, 203.0.113.0/24")
            .await
            .starts_with("198.51.100.9")
    );
    // From anyone else the header is ignored.
    assert!(refused_from("").await.starts_with("127.0.0.1"));
    assert!(refused_from("10.0.0.0/8").await.starts_with("127.0.0.1"));
}
