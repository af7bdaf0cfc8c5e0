//! `fedsync demo`: two nodes in this process, on loopback, with temporary
//! storage; every step through the admin gRPC interface a real admin uses,
//! told in plain words. Nothing is left behind.

use std::time::Instant;

use anyhow::{Context, anyhow};
use tokio::net::TcpListener;
use tonic::transport::Channel;

use super::client::{Target, authorized};
use super::connect::connect;
use crate::admin::proto::v1;
use crate::config::{Config, Overrides};
use crate::daemon::RunningDaemon;

struct DemoNode {
    label: &'static str,
    daemon: Option<RunningDaemon>,
    channel: Channel,
    target: Target,
}

impl DemoNode {
    async fn start(label: &'static str, root: &std::path::Path) -> anyhow::Result<DemoNode> {
        let data_dir = root.join(label);
        let federation = TcpListener::bind("127.0.0.1:0").await?;
        let admin = TcpListener::bind("127.0.0.1:0").await?;
        let federation_addr = federation.local_addr()?;
        let mut overrides = Overrides::default();
        overrides
            .set("data_dir", data_dir.display().to_string())
            .set("federation.listen", federation_addr.to_string())
            .set("admin.listen", admin.local_addr()?.to_string())
            .set(
                "federation.public_url",
                format!("http://{federation_addr}/federation"),
            )
            .set("federation.label", format!("node{label}"))
            // Loopback peers over plain http: for this demo only.
            .set("federation.allow_insecure_peers", true)
            .set("daemon.shutdown_grace", "2s")
            // The demo runs each sync itself, and counts what each pull brings:
            // no schedule and no live changes pull behind its back.
            .set("sync.structure_every", "1h")
            .set("sync.data_every", "1h")
            .set("sync.live_changes", false);
        let config = Config::load(None, Vec::new(), &overrides)?;
        let daemon = crate::daemon::start_with_listeners(config, federation, admin).await?;
        let token = std::fs::read_to_string(data_dir.join("admin.token"))
            .context("the demo node wrote no admin token")?
            .trim()
            .to_owned();
        let target = Target {
            addr: daemon.admin_addr.to_string(),
            token,
        };
        let channel = connect(&target).await?;
        println!(
            "node {label}: started on http://{federation_addr}/federation, SQLite in {}",
            data_dir.display()
        );
        Ok(DemoNode {
            label,
            daemon: Some(daemon),
            channel,
            target,
        })
    }

    fn ask<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        authorized(&self.target, message)
    }

    fn nodes(&self) -> v1::node_service_client::NodeServiceClient<Channel> {
        v1::node_service_client::NodeServiceClient::new(self.channel.clone())
    }

    fn modules(&self) -> v1::module_service_client::ModuleServiceClient<Channel> {
        v1::module_service_client::ModuleServiceClient::new(self.channel.clone())
    }

    fn records(&self) -> v1::record_service_client::RecordServiceClient<Channel> {
        v1::record_service_client::RecordServiceClient::new(self.channel.clone())
    }

    fn sync(&self) -> v1::sync_service_client::SyncServiceClient<Channel> {
        v1::sync_service_client::SyncServiceClient::new(self.channel.clone())
    }

    /// The live records of a module.
    async fn list(&self, module: &str) -> anyhow::Result<Vec<v1::Record>> {
        let mut stream = self
            .records()
            .list_records(self.ask(v1::ListRecordsRequest {
                module: module.into(),
                include_deleted: false,
                ..Default::default()
            })?)
            .await?
            .into_inner();
        let mut out = Vec::new();
        while let Some(record) = stream.message().await? {
            out.push(record);
        }
        Ok(out)
    }

    async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(daemon) = self.daemon.take() {
            daemon.stop().await?;
            println!("node {}: stopped", self.label);
        }
        Ok(())
    }
}

fn field(name: &str, kind: &str) -> v1::Field {
    v1::Field {
        name: name.into(),
        kind: kind.into(),
        label: String::new(),
        is_multi: false,
    }
}

fn value(name: &str, text: &str) -> v1::RecordValue {
    v1::RecordValue {
        name: name.into(),
        values: vec![text.into()],
        multi: false,
    }
}

fn get<'a>(record: &'a v1::Record, name: &str) -> &'a str {
    record
        .values
        .iter()
        .find(|v| v.name == name)
        .and_then(|v| v.values.first())
        .map_or("", String::as_str)
}

const CITIES: &[&str] = &["Ljubljana", "Zagreb", "Vienna", "Trieste", "Graz"];

/// Runs the demo; `records` sample records go from A to B.
pub async fn run(records: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let root = tempfile::Builder::new()
        .prefix("fedsync-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    println!("Two fedsync nodes, A and B, in this process, on loopback.\n");
    let mut a = DemoNode::start("A", root.path()).await?;
    let mut b = DemoNode::start("B", root.path()).await?;
    let outcome = steps(&a, &b, records).await;
    // Whatever happened, the nodes stop and the directory goes.
    let stopped_a = a.stop().await;
    let stopped_b = b.stop().await;
    let path = root.path().display().to_string();
    root.close()
        .with_context(|| format!("cannot remove {path}"))?;
    outcome?;
    stopped_a?;
    stopped_b?;
    println!(
        "\nDone in {:.1} s; {path} is removed.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn steps(a: &DemoNode, b: &DemoNode, records: usize) -> anyhow::Result<()> {
    println!("\n1. Pairing");
    let b_base = format!(
        "http://{}/federation",
        b.daemon
            .as_ref()
            .map(|d| d.federation_addr)
            .ok_or_else(|| anyhow!("B stopped"))?
    );
    let invited = a
        .nodes()
        .create_node(a.ask(v1::CreateNodeRequest {
            name: "Node B".into(),
            base_url: b_base,
            contact: String::new(),
        })?)
        .await?
        .into_inner();
    let a_for_b = invited.node.as_ref().map(|n| n.id).unwrap_or_default();
    println!("   A registers B and gets a node URI (a one-time secret) for B's admin");
    let added = b
        .nodes()
        .add_node_from_uri(b.ask(v1::AddNodeFromUriRequest {
            node_uri: invited.node_uri,
        })?)
        .await?
        .into_inner();
    let b_for_a = added.node.as_ref().map(|n| n.id).unwrap_or_default();
    println!("   B adds A from that URI and sends its handshake request");
    b.nodes()
        .pair_node(b.ask(v1::NodeRef { id: b_for_a })?)
        .await?;
    let paired = a
        .nodes()
        .confirm_node(a.ask(v1::NodeRef { id: a_for_b })?)
        .await?
        .into_inner();
    println!(
        "   A's admin approves: the nodes are {} (they hold each other's tokens)",
        paired.status
    );

    println!("\n2. Sharing a module");
    a.modules()
        .create_module(a.ask(v1::CreateModuleRequest {
            handle: "Contact".into(),
            name: "Contact".into(),
            fields: vec![
                field("Name", "String"),
                field("Email", "Email"),
                field("City", "String"),
                field("Notes", "String"),
            ],
        })?)
        .await?;
    v1::exposure_service_client::ExposureServiceClient::new(a.channel.clone())
        .expose_module(a.ask(v1::ExposeRequest {
            node_id: a_for_b,
            module: "Contact".into(),
            fields: vec!["Name".into(), "Email".into(), "City".into()],
        })?)
        .await?;
    println!(
        "   A creates `Contact` (Name, Email, City, Notes) and exposes Name, Email, City to B"
    );
    let structure = b
        .sync()
        .sync_now(b.ask(v1::SyncNowRequest {
            node_id: b_for_a,
            kind: "structure".into(),
            no_wait: false,
        })?)
        .await?
        .into_inner();
    let shared_status = structure
        .runs
        .first()
        .map_or("no run", |r| r.status.as_str())
        .to_owned();
    println!("   B pulls A's structure: {shared_status}; it now sees `Contact` with 3 fields");
    b.modules()
        .create_module(b.ask(v1::CreateModuleRequest {
            handle: "Person".into(),
            name: "Person".into(),
            fields: vec![
                field("FullName", "String"),
                field("Email", "Email"),
                field("Town", "String"),
            ],
        })?)
        .await?;
    let pair = |origin: &str, destination: &str| v1::FieldPair {
        origin: origin.into(),
        destination: destination.into(),
    };
    v1::mapping_service_client::MappingServiceClient::new(b.channel.clone())
        .set_mapping(b.ask(v1::SetMappingRequest {
            node_id: b_for_a,
            shared: "Contact".into(),
            module: "Person".into(),
            fields: vec![
                pair("Name", "FullName"),
                pair("Email", "Email"),
                pair("City", "Town"),
            ],
        })?)
        .await?;
    println!("   B maps it onto its own `Person`: Name -> FullName, Email -> Email, City -> Town");

    println!("\n3. Records");
    let rows: Vec<v1::ImportRow> = (0..records)
        .map(|i| v1::ImportRow {
            values: vec![
                value("Name", &format!("Person {i:04}")),
                value("Email", &format!("person{i}@a.example")),
                value("City", CITIES[i % CITIES.len()]),
                value("Notes", "stays on A"),
            ],
        })
        .collect();
    let batches: Vec<v1::ImportRecordsRequest> = rows
        .chunks(500)
        .enumerate()
        .map(|(i, chunk)| v1::ImportRecordsRequest {
            module: if i == 0 {
                "Contact".into()
            } else {
                String::new()
            },
            rows: chunk.to_vec(),
        })
        .collect();
    a.records()
        .import_records(a.ask(tokio_stream::iter(batches))?)
        .await?;
    println!("   A imports {records} sample contacts");
    let runs = data_sync(b, b_for_a).await?;
    println!("   B pulls the records: {runs}");
    let on_a = a.list("Contact").await?;
    let on_b = b.list("Person").await?;
    println!(
        "   A has {} contacts, B has {} people (Notes never left A)",
        on_a.len(),
        on_b.len()
    );

    println!("\n4. Changes flow too");
    let mut by_name = on_a.clone();
    by_name.sort_by(|x, y| get(x, "Name").cmp(get(y, "Name")));
    let (first, second) = match by_name.as_slice() {
        [first, second, ..] => (first.clone(), second.clone()),
        _ => return Err(anyhow!("the demo needs at least two records")),
    };
    a.records()
        .update_record(a.ask(v1::WriteRecordRequest {
            module: "Contact".into(),
            id: first.id,
            values: vec![value("City", "Maribor")],
        })?)
        .await?;
    a.records()
        .delete_record(a.ask(v1::RecordRef {
            module: "Contact".into(),
            id: second.id,
        })?)
        .await?;
    println!(
        "   On A, `{}` moves to Maribor and `{}` is deleted",
        get(&first, "Name"),
        get(&second, "Name")
    );
    let runs = data_sync(b, b_for_a).await?;
    println!("   B pulls again: {runs}");
    let on_b = b.list("Person").await?;
    let moved = on_b
        .iter()
        .find(|r| get(r, "FullName") == get(&first, "Name"))
        .map_or("(missing)", |r| get(r, "Town"));
    let gone = !on_b
        .iter()
        .any(|r| get(r, "FullName") == get(&second, "Name"));
    println!(
        "   On B, `{}` now lives in {moved}; `{}` is {}",
        get(&first, "Name"),
        get(&second, "Name"),
        if gone { "gone" } else { "still there" }
    );
    println!(
        "   A has {} contacts, B has {} people",
        a.list("Contact").await?.len(),
        on_b.len()
    );
    if moved != "Maribor" || !gone {
        return Err(anyhow!("the changes did not arrive on B"));
    }
    Ok(())
}

/// Runs B's data sync; a line about what it did.
async fn data_sync(b: &DemoNode, node: u64) -> anyhow::Result<String> {
    let runs = b
        .sync()
        .sync_now(b.ask(v1::SyncNowRequest {
            node_id: node,
            kind: "data".into(),
            no_wait: false,
        })?)
        .await?
        .into_inner()
        .runs;
    let run = runs.first().ok_or_else(|| anyhow!("no data run"))?;
    if run.status != "succeeded" {
        return Err(anyhow!("the data sync failed: {}", run.error));
    }
    let pages = if run.pages == 1 { "page" } else { "pages" };
    Ok(format!(
        "{} {pages}, {} created, {} updated, {} deleted",
        run.pages, run.created, run.updated, run.deleted
    ))
}
