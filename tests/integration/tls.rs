//! https peers: verified against the system roots plus `--peer-ca-file`
//! (a real Corteza hands out only https URIs, so tests use a CA of their
//! own); a certificate nothing vouches for, or for another name, is refused
//! before any byte of the request (federation-security 4.3 C8).

use std::net::{IpAddr, Ipv4Addr};

use fedsync::admin::proto::v1;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::common::fake_peer::FakePeer;
use crate::common::{TestDaemon, spawn_node_with, with_token};

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
    let id = b
        .nodes()
        .await
        .add_node_from_uri(with_token(
            v1::AddNodeFromUriRequest { node_uri: uri },
            &b.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner()
        .node
        .unwrap()
        .id;
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
