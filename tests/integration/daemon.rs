//! The running daemon: probes, metrics, gRPC health and reflection, admin
//! authentication, and the same daemon on PostgreSQL.

use fedsync::admin::proto::v1;
use tonic::transport::Channel;

use crate::common::{self, TestDaemon, http, pg::TestDatabase, spawn_daemon};

async fn channel(daemon: &TestDaemon) -> Channel {
    Channel::from_shared(daemon.admin_url(""))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn probes_answer_once_serving() {
    let mut daemon = spawn_daemon().await;
    for path in ["/livez", "/readyz"] {
        let response = http()
            .get(daemon.federation_url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let body: serde_json::Value = http()
        .get(daemon.federation_url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ready");
    daemon.stop().await;
}

#[tokio::test]
async fn admin_routes_never_reach_the_federation_listener() {
    let mut daemon = spawn_daemon().await;
    for path in [
        "/metrics",
        "/fedsync.admin.v1.NodeService/ListNodes",
        "/grpc.health.v1.Health/Check",
    ] {
        let response = http()
            .post(daemon.federation_url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path} on the federation listener");
        let response = http()
            .get(daemon.federation_url(path))
            .send()
            .await
            .unwrap();
        assert!(
            response.status() == 404 || response.status() == 405,
            "{path}"
        );
    }
    daemon.stop().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text_on_the_admin_listener() {
    let mut daemon = spawn_daemon().await;
    // One probe first so a counter has a sample.
    http()
        .get(daemon.federation_url("/livez"))
        .send()
        .await
        .unwrap();
    let response = http()
        .get(daemon.admin_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("# TYPE fedsync_build_info gauge"), "{body}");
    assert!(
        body.contains(r#"fedsync_http_responses_total{listener="federation",code="200"}"#),
        "{body}"
    );
    // Every sample line is `name{labels} value` or `name value`.
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
    }
    let missing = http().get(daemon.admin_url("/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    daemon.stop().await;
}

#[tokio::test]
async fn grpc_health_is_serving_and_open() {
    let mut daemon = spawn_daemon().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel(&daemon).await);
    for service in ["", "fedsync.admin.v1.NodeService"] {
        let response = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            response.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving,
            "service {service:?}"
        );
    }
    daemon.stop().await;
}

#[tokio::test]
async fn reflection_lists_the_admin_services_without_a_token() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let mut daemon = spawn_daemon().await;
    let mut client = ServerReflectionClient::new(channel(&daemon).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"fedsync.admin.v1.NodeService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn admin_rpcs_need_a_valid_registered_token() {
    let mut daemon = spawn_daemon().await;
    let mut client = v1::node_service_client::NodeServiceClient::new(channel(&daemon).await);

    let ok = client
        .list_nodes(with_token(
            v1::ListNodesRequest::default(),
            &daemon.admin_token(),
        ))
        .await
        .unwrap();
    assert!(ok.into_inner().nodes.is_empty());

    let missing = client
        .list_nodes(tonic::Request::new(v1::ListNodesRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::Unauthenticated);
    assert!(
        missing.message().contains("no bearer token"),
        "{}",
        missing.message()
    );

    // Signed by another node's key.
    let mut other = spawn_daemon().await;
    let foreign = client
        .list_nodes(with_token(
            v1::ListNodesRequest::default(),
            &other.admin_token(),
        ))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), tonic::Code::Unauthenticated);
    assert!(
        foreign.message().contains("signature"),
        "{}",
        foreign.message()
    );
    other.stop().await;

    // Every refusal is audited, without the token.
    let store = fedsync::daemon::open_store(&common::test_config(&daemon.data_dir, None))
        .await
        .unwrap();
    let events = store.list_audit(&Default::default()).await.unwrap();
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e.event == "admin.auth_failed")
        .map(|e| e.reason.as_str())
        .collect();
    assert_eq!(reasons, ["bad_signature", "missing"]);
    let dump = format!("{events:?}");
    assert!(
        !dump.contains(&other.admin_token()),
        "no token in audit events"
    );
    store.close().await;
    daemon.stop().await;
}

#[tokio::test]
async fn get_node_names_what_is_wrong() {
    let mut daemon = spawn_daemon().await;
    let mut client = v1::node_service_client::NodeServiceClient::new(channel(&daemon).await);
    let token = daemon.admin_token();
    let missing = client
        .get_node(with_token(v1::GetNodeRequest { id: 42 }, &token))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert!(
        missing.message().contains("node 42"),
        "{}",
        missing.message()
    );
    let zero = client
        .get_node(with_token(v1::GetNodeRequest { id: 0 }, &token))
        .await
        .unwrap_err();
    assert_eq!(zero.code(), tonic::Code::InvalidArgument);
    let bad_status = client
        .list_nodes(with_token(
            v1::ListNodesRequest {
                status: "pairing".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_status.code(), tonic::Code::InvalidArgument);
    assert!(
        bad_status.message().contains("pairing"),
        "{}",
        bad_status.message()
    );
    daemon.stop().await;
}

#[tokio::test]
async fn the_same_daemon_runs_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        eprintln!("skipped: {} is not set", common::pg::ENV);
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = common::test_config(dir.path(), Some(&db.url));
    let mut daemon = common::spawn_daemon_with(config).await;
    let response = http()
        .get(daemon.federation_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let out = common::run_cli(&[
        "node",
        "list",
        "--json",
        "--admin-addr",
        &daemon.admin_addr(),
        "--data-dir",
        &daemon.data_dir.display().to_string(),
    ])
    .await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(common::stdout(&out).trim(), "[]");
    assert!(
        !dir.path().join("fedsync.db").exists(),
        "no SQLite file when on PostgreSQL"
    );
    daemon.stop().await;
    db.drop_database().await;
}

#[tokio::test]
async fn a_revoked_admin_token_is_refused_at_once() {
    let mut daemon = spawn_daemon().await;
    let token = daemon.admin_token();
    let mut client = v1::node_service_client::NodeServiceClient::new(channel(&daemon).await);
    client
        .list_nodes(with_token(v1::ListNodesRequest::default(), &token))
        .await
        .unwrap();

    let store = fedsync::daemon::open_store(&common::test_config(&daemon.data_dir, None))
        .await
        .unwrap();
    let registered = store.list_admin_tokens().await.unwrap();
    assert_eq!(registered.len(), 1, "the local admin token is registered");
    assert_eq!(registered[0].name, "local-admin");
    assert!(
        store
            .revoke_admin_token(registered[0].id, fedsync::domain::now())
            .await
            .unwrap()
    );
    store.close().await;

    let refused = client
        .list_nodes(with_token(v1::ListNodesRequest::default(), &token))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert!(
        refused.message().contains("revoked"),
        "{}",
        refused.message()
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_failed_start_names_the_problem_and_leaves_no_lease() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let start = |overrides: fedsync::config::Overrides| async move {
        let config = fedsync::config::Config::load(None, Vec::new(), &overrides).unwrap();
        match fedsync::daemon::start(config).await {
            Ok(_) => panic!("start must fail"),
            Err(error) => format!("{error:#}"),
        }
    };
    let mut overrides = fedsync::config::Overrides::default();
    overrides
        .set("data_dir", dir.path().display().to_string())
        .set("federation.listen", port.as_str())
        .set("admin.listen", "127.0.0.1:0");
    let error = start(overrides).await;
    assert!(
        error.contains("federation.listen") && error.contains(&port),
        "{error}"
    );

    // A failure after the store was opened and an instance number leased.
    let mut overrides = fedsync::config::Overrides::default();
    overrides
        .set("data_dir", dir.path().display().to_string())
        .set("federation.listen", "127.0.0.1:0")
        .set("admin.listen", "127.0.0.1:0")
        .set("keys.signing_key", "dG9vc2hvcnQ");
    let error = start(overrides).await;
    assert!(error.contains("keys.signing_key"), "{error}");

    let store = fedsync::daemon::open_store(&common::test_config(dir.path(), None))
        .await
        .unwrap();
    let now = fedsync::domain::now();
    let lease = store
        .acquire_instance("probe", now, now + chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        lease.instance_no, 0,
        "the failed start gave its instance number back"
    );
    store.close().await;
}

#[tokio::test]
async fn readyz_fails_when_the_store_stops_answering() {
    let Some(db) = TestDatabase::create().await else {
        eprintln!("skipped: {} is not set", common::pg::ENV);
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut daemon =
        common::spawn_daemon_with(common::test_config(dir.path(), Some(&db.url))).await;
    assert_eq!(
        http()
            .get(daemon.federation_url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Dropping the database cuts the daemon's connections and the database.
    db.drop_database().await;
    let response = http()
        .get(daemon.federation_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "not ready");
    assert!(
        body["reasons"][0].as_str().unwrap().starts_with("store:"),
        "{body}"
    );
    // Liveness is about the process, not its dependencies.
    assert_eq!(
        http()
            .get(daemon.federation_url("/livez"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    daemon.stop().await;
}
