//! `fedsync doctor`: checks what usually goes wrong on day one and says
//! what to do: the config, the store and its migrations, the listeners, the
//! public URL, the clock, and for each paired node whether its peer answers
//! and accepts our token (asked of the daemon, which holds the tokens).

use std::time::Duration;

use serde::Serialize;

use super::GlobalArgs;
use super::client::{authorized, resolve};
use super::connect::connect;
use crate::admin::proto::v1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Finding {
    check: String,
    status: Level,
    message: String,
    /// What to do about it (empty when all is well).
    #[serde(skip_serializing_if = "String::is_empty")]
    hint: String,
}

#[derive(Default)]
struct Report(Vec<Finding>);

impl Report {
    fn add(&mut self, check: &str, status: Level, message: impl Into<String>, hint: &str) {
        self.0.push(Finding {
            check: check.to_owned(),
            status,
            message: message.into(),
            hint: hint.to_owned(),
        });
    }
}

/// The most a peer's clock may differ before tokens and `lastSync` suffer.
const MAX_SKEW: i64 = 60;

fn http() -> Option<reqwest::Client> {
    // The CLI has no process-wide crypto provider yet; installing twice is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .ok()
}

/// Runs every check; non-zero exit when one failed.
pub async fn run(global: &GlobalArgs) -> anyhow::Result<()> {
    let mut report = Report::default();
    check(global, &mut report).await;
    let failed = report.0.iter().filter(|f| f.status == Level::Fail).count();
    if global.json {
        super::output::print_json_value(&serde_json::to_value(&report.0)?);
    } else {
        for f in &report.0 {
            let mark = match f.status {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            println!("{mark} {:<10} {}", f.check, f.message);
            if !f.hint.is_empty() {
                println!("     {:<10} -> {}", "", f.hint);
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} check(s) failed");
    }
    Ok(())
}

async fn check(global: &GlobalArgs, report: &mut Report) {
    // Config.
    let config = match super::load_config(global, crate::config::Overrides::default()) {
        Ok(config) => {
            let from = global
                .config
                .as_ref()
                .map_or("defaults and environment".to_owned(), |f| {
                    f.display().to_string()
                });
            report.add("config", Level::Ok, format!("valid ({from})"), "");
            config
        }
        Err(e) => {
            report.add(
                "config",
                Level::Fail,
                super::client::error_text(&e),
                "fix the key named; `fedsync config check` shows the result",
            );
            return;
        }
    };

    // Store and migrations.
    match crate::daemon::open_store(&config).await {
        Ok(store) => {
            match store.ping().await {
                Ok(()) => report.add(
                    "store",
                    Level::Ok,
                    format!("{} answers", store.engine().as_str()),
                    "",
                ),
                Err(e) => report.add(
                    "store",
                    Level::Fail,
                    e.to_string(),
                    "check database.url and that the database server runs",
                ),
            }
            match store.applied_migrations().await {
                Ok(applied) => {
                    let known = store.known_migrations();
                    let pending = known
                        .iter()
                        .filter(|k| !applied.iter().any(|a| a.version == k.version))
                        .count();
                    if pending == 0 {
                        report.add(
                            "migrations",
                            Level::Ok,
                            format!("all {} applied", known.len()),
                            "",
                        );
                    } else {
                        report.add(
                            "migrations",
                            Level::Fail,
                            format!("{pending} of {} not applied", known.len()),
                            "run `fedsync migrate` (or start `fedsync serve`, which migrates)",
                        );
                    }
                }
                Err(e) => report.add(
                    "migrations",
                    Level::Fail,
                    e.to_string(),
                    "run `fedsync migrate`",
                ),
            }
            store.close().await;
        }
        Err(e) => report.add(
            "store",
            Level::Fail,
            super::client::error_text(&e),
            "check database.url and that the database server runs",
        ),
    }

    // The daemon's admin listener.
    let target = match resolve(global) {
        Ok(target) => target,
        Err(e) => {
            report.add(
                "daemon",
                Level::Fail,
                super::client::error_text(&e),
                "start `fedsync serve`, or pass --data-dir / --admin-addr and --token",
            );
            return;
        }
    };
    let channel = match connect(&target).await {
        Ok(channel) => {
            report.add(
                "daemon",
                Level::Ok,
                format!("admin listener answers at {}", target.addr),
                "",
            );
            channel
        }
        Err(e) => {
            report.add(
                "daemon",
                Level::Fail,
                super::client::error_text(&e),
                "start `fedsync serve`; its admin address is in <data-dir>/admin.addr",
            );
            return;
        }
    };
    let http = http();

    // The public URL, as peers reach it.
    let public = config
        .federation
        .public_url
        .trim_end_matches('/')
        .to_owned();
    if public.is_empty() {
        report.add(
            "public URL",
            Level::Warn,
            "federation.public_url is not set",
            "set it to the URL peers use (https://HOST/federation); node URIs name it",
        );
    } else if let Some(http) = &http {
        let probe = format!("{}/readyz", public.trim_end_matches("/federation"));
        match http.get(&probe).send().await {
            Ok(r) if r.status().is_success() => report.add(
                "public URL",
                Level::Ok,
                format!("{public} answers ({probe}: {})", r.status()),
                "",
            ),
            Ok(r) => report.add(
                "public URL",
                Level::Fail,
                format!("{probe} answered {}", r.status()),
                "the daemon is not ready, or the URL leads elsewhere: check the proxy and federation.public_url",
            ),
            Err(e) => report.add(
                "public URL",
                Level::Fail,
                format!("{probe}: {}", error_chain(&e)),
                "peers cannot reach this node: check DNS, the proxy, TLS and the firewall",
            ),
        }
    }

    // Paired nodes: the daemon calls each peer with the token it holds.
    let mut nodes = v1::node_service_client::NodeServiceClient::new(channel);
    let listed = match authorized(
        &target,
        v1::ListNodesRequest {
            status: "paired".into(),
            ..Default::default()
        },
    ) {
        Ok(request) => nodes.list_nodes(request).await,
        Err(e) => {
            report.add("nodes", Level::Fail, super::client::error_text(&e), "");
            return;
        }
    };
    let paired = match listed {
        Ok(list) => list.into_inner().nodes,
        Err(status) => {
            report.add(
                "nodes",
                Level::Fail,
                status.message().to_owned(),
                "the admin token was refused: mint one with `fedsync token admin`",
            );
            return;
        }
    };
    if paired.is_empty() {
        report.add("nodes", Level::Ok, "no paired node yet", "");
    }
    for node in paired {
        let what = format!("node {} ({}, {})", node.id, node.name, node.base_url);
        let Ok(request) = authorized(&target, v1::NodeRef { id: node.id }) else {
            continue;
        };
        match nodes.check_node(request).await {
            Ok(check) if check.get_ref().ok => {
                report.add("peer", Level::Ok, format!("{what}: {}", check.get_ref().message), "")
            }
            Ok(check) => report.add(
                "peer",
                Level::Fail,
                format!("{what}: {}", check.get_ref().message),
                "if the peer is down, wait or ask its admin; if it refuses our token, pair again (`fedsync node uri ID` on the inviter)",
            ),
            Err(status) => report.add(
                "peer",
                Level::Fail,
                format!("{what}: {}", status.message()),
                "see `fedsync node show ID`",
            ),
        }
        // The clock, against the peer's.
        if let Some(http) = &http
            && let Ok(response) = http.get(&node.base_url).send().await
            && let Some(date) = response
                .headers()
                .get(http::header::DATE)
                .and_then(|d| d.to_str().ok())
                .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
        {
            let skew = (chrono::Utc::now() - date.with_timezone(&chrono::Utc)).num_seconds();
            if skew.abs() > MAX_SKEW {
                report.add(
                    "clock",
                    Level::Warn,
                    format!("{skew:+} s against node {}", node.id),
                    "synchronise the clocks (NTP): tokens and lastSync depend on them",
                );
            } else {
                report.add(
                    "clock",
                    Level::Ok,
                    format!("within {MAX_SKEW} s of node {} ({skew:+} s)", node.id),
                    "",
                );
            }
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
