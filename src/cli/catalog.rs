//! Commands for the catalog and for syncs: `module`, `expose`, `shared`,
//! `map`, and the arguments of `sync` (run in `sync_cmd.rs`).

use anyhow::anyhow;
use clap::Subcommand;

use super::GlobalArgs;
use super::client::{RpcError, authorized, parse_id, resolve};
use super::connect::connect;
use super::output;
use crate::admin::proto::v1;

#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// Create a module: `--field NAME:KIND[:multi]` for each field.
    Create {
        #[arg(long)]
        handle: String,
        #[arg(long, default_value = "")]
        name: String,
        /// NAME:KIND or NAME:KIND:multi; KIND is String, Number, Bool, DateTime, Email, Url, Select, Record, User, File or Geometry.
        #[arg(long = "field", required = true)]
        fields: Vec<String>,
    },
    List,
    /// Show a module (by id or handle).
    Show {
        module: String,
    },
    /// Change a module; `--field` given replaces the whole field list.
    Update {
        module: String,
        #[arg(long)]
        handle: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "field")]
        fields: Vec<String>,
    },
    /// Remove a module nothing exposes or maps onto.
    Rm {
        module: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExposeCommand {
    /// Expose a module's fields to a node.
    Add {
        node: String,
        module: String,
        #[arg(long = "field", required = true)]
        fields: Vec<String>,
    },
    /// Replace the exposed fields.
    Update {
        node: String,
        module: String,
        #[arg(long = "field", required = true)]
        fields: Vec<String>,
    },
    /// Stop exposing a module to a node.
    Rm { node: String, module: String },
    /// What a node may read.
    List { node: String },
}

#[derive(Debug, Subcommand)]
pub enum SharedCommand {
    /// The modules a node exposes to us.
    List {
        node: String,
        /// Also modules the node stopped exposing.
        #[arg(long)]
        removed: bool,
    },
    /// One shared module (by id, the origin's id, or handle).
    Show { node: String, shared: String },
}

#[derive(Debug, Subcommand)]
pub enum MapCommand {
    /// Map a shared module onto a local module (replaces an existing mapping).
    Set {
        node: String,
        shared: String,
        /// The local module (id or handle).
        #[arg(long)]
        to: String,
        /// ORIGIN=DEST, once per mapped field.
        #[arg(long = "field", required = true)]
        fields: Vec<String>,
    },
    Show {
        node: String,
        shared: String,
    },
    Rm {
        node: String,
        shared: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Run a sync of a node now, wait for it, print its result; non-zero if
    /// it failed. Ctrl-C stops waiting; the sync goes on in the daemon.
    Now {
        node: String,
        #[arg(long, default_value = "structure")]
        kind: String,
        /// Show progress while it runs: a bar on a terminal (records, rate,
        /// ETA), a line per page otherwise; with --json, a JSON object per
        /// line and the finished runs as the last line.
        #[arg(long)]
        follow: bool,
        /// Start the sync and return at once, printing the jobs started.
        #[arg(long, conflicts_with = "follow")]
        no_wait: bool,
    },
    /// Per node: structure and data status, last success, last error, broken mappings.
    Status { node: Option<String> },
    /// Recent runs of a node with their counts.
    Runs {
        node: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Pull every record of a node (or of one shared module) again from the
    /// start; local copies of records the origin no longer has are removed.
    /// Waits for the runs; Ctrl-C stops waiting, the reset goes on.
    Reset {
        node: String,
        /// Shared module: id, origin module id or handle; all when omitted.
        shared: Option<String>,
        /// Start the reset and return at once, printing the jobs started.
        #[arg(long)]
        no_wait: bool,
    },
    /// The per-record problems of a run (values the destination cannot hold, ...).
    Errors { run: String },
}

fn field_spec(spec: &str) -> anyhow::Result<v1::Field> {
    let field = crate::sync::catalog::parse_field_spec(spec).map_err(|e| anyhow!("--field {e}"))?;
    Ok(v1::Field {
        name: field.name,
        kind: field.kind.as_str().to_owned(),
        label: field.label,
        is_multi: field.is_multi,
    })
}

pub async fn module(global: &GlobalArgs, command: &ModuleCommand) -> anyhow::Result<()> {
    let target = resolve(global)?;
    let mut client = v1::module_service_client::ModuleServiceClient::new(connect(&target).await?);
    let json = global.json;
    match command {
        ModuleCommand::Create {
            handle,
            name,
            fields,
        } => {
            let request = v1::CreateModuleRequest {
                handle: handle.clone(),
                name: name.clone(),
                fields: fields
                    .iter()
                    .map(|f| field_spec(f))
                    .collect::<anyhow::Result<_>>()?,
            };
            let module = client
                .create_module(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::module(json, &module.into_inner());
        }
        ModuleCommand::List => {
            let list = client
                .list_modules(authorized(&target, v1::ListModulesRequest {})?)
                .await
                .map_err(RpcError::from)?;
            output::modules(json, &list.into_inner().modules);
        }
        ModuleCommand::Show { module } => {
            let found = client
                .get_module(authorized(
                    &target,
                    v1::ModuleRef {
                        key: module.clone(),
                    },
                )?)
                .await
                .map_err(RpcError::from)?;
            output::module(json, &found.into_inner());
        }
        ModuleCommand::Update {
            module,
            handle,
            name,
            fields,
        } => {
            let request = v1::UpdateModuleRequest {
                key: module.clone(),
                handle: handle.clone(),
                name: name.clone(),
                fields: fields
                    .iter()
                    .map(|f| field_spec(f))
                    .collect::<anyhow::Result<_>>()?,
                replace_fields: !fields.is_empty(),
            };
            let updated = client
                .update_module(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::module(json, &updated.into_inner());
        }
        ModuleCommand::Rm { module } => {
            let removed = client
                .delete_module(authorized(
                    &target,
                    v1::ModuleRef {
                        key: module.clone(),
                    },
                )?)
                .await
                .map_err(RpcError::from)?;
            output::module(json, &removed.into_inner());
        }
    }
    Ok(())
}

pub async fn expose(global: &GlobalArgs, command: &ExposeCommand) -> anyhow::Result<()> {
    let target = resolve(global)?;
    let mut client =
        v1::exposure_service_client::ExposureServiceClient::new(connect(&target).await?);
    let json = global.json;
    match command {
        ExposeCommand::Add {
            node,
            module,
            fields,
        }
        | ExposeCommand::Update {
            node,
            module,
            fields,
        } => {
            let request = v1::ExposeRequest {
                node_id: parse_id(node)?,
                module: module.clone(),
                fields: fields.clone(),
            };
            let exposed = if matches!(command, ExposeCommand::Add { .. }) {
                client.expose_module(authorized(&target, request)?).await
            } else {
                client.update_exposure(authorized(&target, request)?).await
            }
            .map_err(RpcError::from)?;
            output::exposed(json, &exposed.into_inner());
        }
        ExposeCommand::Rm { node, module } => {
            let request = v1::ExposureRef {
                node_id: parse_id(node)?,
                module: module.clone(),
            };
            let removed = client
                .unexpose(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::exposed(json, &removed.into_inner());
        }
        ExposeCommand::List { node } => {
            let list = client
                .list_exposures(authorized(
                    &target,
                    v1::ListExposuresRequest {
                        node_id: parse_id(node)?,
                    },
                )?)
                .await
                .map_err(RpcError::from)?;
            output::exposed_list(json, &list.into_inner().modules);
        }
    }
    Ok(())
}

pub async fn shared(global: &GlobalArgs, command: &SharedCommand) -> anyhow::Result<()> {
    let target = resolve(global)?;
    let mut client =
        v1::shared_module_service_client::SharedModuleServiceClient::new(connect(&target).await?);
    match command {
        SharedCommand::List { node, removed } => {
            let request = v1::ListSharedModulesRequest {
                node_id: parse_id(node)?,
                include_removed: *removed,
            };
            let list = client
                .list_shared_modules(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::shared_list(global.json, &list.into_inner().modules);
        }
        SharedCommand::Show { node, shared } => {
            let request = v1::SharedModuleRef {
                node_id: parse_id(node)?,
                shared: shared.clone(),
            };
            let module = client
                .get_shared_module(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::shared(global.json, &module.into_inner());
        }
    }
    Ok(())
}

pub async fn map(global: &GlobalArgs, command: &MapCommand) -> anyhow::Result<()> {
    let target = resolve(global)?;
    let mut client = v1::mapping_service_client::MappingServiceClient::new(connect(&target).await?);
    let mapping = match command {
        MapCommand::Set {
            node,
            shared,
            to,
            fields,
        } => {
            let pairs = fields
                .iter()
                .map(|f| {
                    crate::mapping::parse_pair(f)
                        .map(|(origin, destination)| v1::FieldPair {
                            origin,
                            destination,
                        })
                        .map_err(|e| anyhow!("--field {e}"))
                })
                .collect::<anyhow::Result<_>>()?;
            let request = v1::SetMappingRequest {
                node_id: parse_id(node)?,
                shared: shared.clone(),
                module: to.clone(),
                fields: pairs,
            };
            client.set_mapping(authorized(&target, request)?).await
        }
        MapCommand::Show { node, shared } => {
            let request = v1::SharedModuleRef {
                node_id: parse_id(node)?,
                shared: shared.clone(),
            };
            client.get_mapping(authorized(&target, request)?).await
        }
        MapCommand::Rm { node, shared } => {
            let request = v1::SharedModuleRef {
                node_id: parse_id(node)?,
                shared: shared.clone(),
            };
            client.delete_mapping(authorized(&target, request)?).await
        }
    }
    .map_err(RpcError::from)?;
    output::mapping(global.json, &mapping.into_inner());
    Ok(())
}
