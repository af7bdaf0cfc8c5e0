//! Admin client commands: connect to a daemon's admin listener over gRPC with
//! an admin token, call, print.

use std::path::PathBuf;

use anyhow::anyhow;
use tonic::Code;
use tonic::metadata::MetadataValue;

use super::connect::{connect, connect_waiting};
use super::output;
use super::wait::{Interrupted, Work, wait_for};
use super::{GlobalArgs, NodeCommand, load_config};
use crate::admin::proto::v1;
use crate::config::Overrides;
use crate::daemon::keys::{ADMIN_ADDR_FILE, ADMIN_TOKEN_FILE, read_private_file};

/// Where and how to reach the admin interface.
pub(super) struct Target {
    pub(super) addr: String,
    pub(super) token: String,
}

/// A failed RPC, kept as a typed error so `exit_code` can map it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", code_name(*.code), .message)]
pub struct RpcError {
    pub code: Code,
    pub message: String,
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Unauthenticated => "unauthenticated",
        Code::PermissionDenied => "permission denied",
        Code::NotFound => "not found",
        Code::InvalidArgument => "invalid argument",
        Code::AlreadyExists => "already exists",
        Code::FailedPrecondition => "failed precondition",
        Code::Unavailable => "unavailable",
        Code::DeadlineExceeded => "deadline exceeded",
        Code::Unimplemented => "unimplemented (is the daemon older than this CLI?)",
        _ => "error",
    }
}

impl From<tonic::Status> for RpcError {
    fn from(status: tonic::Status) -> RpcError {
        RpcError {
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}

/// The process exit code for an error: 3 for credentials, 4 for not found,
/// 5 when the daemon is unreachable or unavailable, 130 when Ctrl-C stopped
/// the wait (as a shell reports SIGINT), 1 otherwise.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<Interrupted>().is_some() {
        return 130;
    }
    match error.downcast_ref::<RpcError>().map(|e| e.code) {
        Some(Code::Unauthenticated | Code::PermissionDenied) => 3,
        Some(Code::NotFound) => 4,
        Some(Code::Unavailable) => 5,
        _ if error.downcast_ref::<tonic::transport::Error>().is_some() => 5,
        _ => 1,
    }
}

/// An error and its causes on one line, each said once: many errors end
/// their own text with their cause's (`{error:#}` printed "tcp connect
/// error: tcp connect error: ..." and "(os error 2): No such file or
/// directory (os error 2)").
pub fn error_text(error: &anyhow::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if said.iter().any(|s| s.contains(&text)) {
            continue;
        }
        match said.last_mut() {
            // The cause repeats the line so far and says more: it replaces it.
            Some(last) if text.starts_with(last.as_str()) => *last = text,
            _ => said.push(text),
        }
    }
    said.join(": ")
}

pub(super) fn resolve(global: &GlobalArgs) -> anyhow::Result<Target> {
    let needs_config = global.admin_addr.is_none() || global.token.is_none();
    let config = if needs_config {
        Some(load_config(global, Overrides::default())?)
    } else {
        None
    };
    let data_dir: Option<PathBuf> = config.as_ref().map(|c| c.data_dir());
    let addr = match &global.admin_addr {
        Some(addr) => addr.clone(),
        None => {
            let data_dir = data_dir.as_ref().expect("config loaded when addr missing");
            let recorded = std::fs::read_to_string(data_dir.join(ADMIN_ADDR_FILE))
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty());
            match recorded {
                Some(addr) => addr,
                None => {
                    let listen = config.as_ref().expect("config loaded").admin.listen;
                    if listen.ip().is_unspecified() {
                        format!("127.0.0.1:{}", listen.port())
                    } else {
                        listen.to_string()
                    }
                }
            }
        }
    };
    let token = match &global.token {
        Some(token) => token.clone(),
        None => {
            let path = data_dir
                .as_ref()
                .expect("config loaded when token missing")
                .join(ADMIN_TOKEN_FILE);
            read_private_file(&path)?
                .map(|t| t.trim().to_owned())
                .ok_or_else(|| {
                    anyhow!(
                        "no admin token: pass --token or FEDSYNC_ADMIN_TOKEN, or --data-dir of a daemon on this host ({} does not exist)",
                        path.display()
                    )
                })?
        }
    };
    Ok(Target { addr, token })
}

pub(super) fn authorized<T>(target: &Target, message: T) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {}", target.token).parse().map_err(|_| {
        anyhow!("the admin token contains characters that cannot be sent in a header")
    })?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

pub(super) fn parse_id(text: &str) -> anyhow::Result<u64> {
    text.parse::<crate::domain::Id>()
        .map(|id| id.get())
        .map_err(|e| anyhow!("{e}"))
}

pub async fn node(global: &GlobalArgs, command: &NodeCommand) -> anyhow::Result<()> {
    let target = resolve(global)?;
    // A handshake waits for the peer as long as it takes.
    let channel = match command {
        NodeCommand::Pair { .. } | NodeCommand::Confirm { .. } => connect_waiting(&target).await?,
        _ => connect(&target).await?,
    };
    let mut client = v1::node_service_client::NodeServiceClient::new(channel);
    let json = global.json;
    match command {
        NodeCommand::List {
            status,
            query,
            deleted,
        } => {
            let request = v1::ListNodesRequest {
                status: status.clone().unwrap_or_default(),
                query: query.clone().unwrap_or_default(),
                include_deleted: *deleted,
            };
            let response = client
                .list_nodes(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::nodes(json, &response.into_inner().nodes);
        }
        NodeCommand::Show { id } => {
            let request = v1::GetNodeRequest { id: parse_id(id)? };
            let node = client
                .get_node(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::node(json, &node.into_inner());
        }
        NodeCommand::Create {
            base_url,
            name,
            contact,
        } => {
            let request = v1::CreateNodeRequest {
                name: name.clone(),
                base_url: base_url.clone(),
                contact: contact.clone(),
            };
            let created = client
                .create_node(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::node_with_uri(json, &created.into_inner(), "created");
        }
        NodeCommand::Uri { id } => {
            let generated = client
                .generate_node_uri(authorized(&target, v1::NodeRef { id: parse_id(id)? })?)
                .await
                .map_err(RpcError::from)?;
            output::node_with_uri(json, &generated.into_inner(), "has a new node URI");
        }
        NodeCommand::AddUri { uri } => {
            let request = v1::AddNodeFromUriRequest {
                node_uri: uri.clone(),
            };
            let added = client
                .add_node_from_uri(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::added_node(json, &added.into_inner());
        }
        NodeCommand::Pair { id } => {
            let id = parse_id(id)?;
            let call = client.pair_node(authorized(&target, v1::NodeRef { id })?);
            let node = wait_for(&Work::handshake(id), call)
                .await?
                .map_err(RpcError::from)?;
            output::node_after(json, &node.into_inner(), "pair");
        }
        NodeCommand::Confirm { id } => {
            let id = parse_id(id)?;
            let call = client.confirm_node(authorized(&target, v1::NodeRef { id })?);
            let node = wait_for(&Work::handshake(id), call)
                .await?
                .map_err(RpcError::from)?;
            output::node_after(json, &node.into_inner(), "confirm");
        }
        NodeCommand::Invite { id, email } => {
            let request = v1::InviteNodeRequest {
                id: parse_id(id)?,
                email: email.clone(),
            };
            let invited = client
                .invite_node(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::invited(json, &invited.into_inner());
        }
        NodeCommand::Refuse { id } => {
            let node = client
                .refuse_node(authorized(&target, v1::NodeRef { id: parse_id(id)? })?)
                .await
                .map_err(RpcError::from)?;
            output::node_after(json, &node.into_inner(), "refuse");
        }
        NodeCommand::Update {
            id,
            name,
            contact,
            base_url,
        } => {
            if name.is_none() && contact.is_none() && base_url.is_none() {
                return Err(anyhow!(
                    "nothing to update: give --name, --contact or --base-url"
                ));
            }
            let request = v1::UpdateNodeRequest {
                id: parse_id(id)?,
                name: name.clone(),
                contact: contact.clone(),
                base_url: base_url.clone(),
            };
            let node = client
                .update_node(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::node_after(json, &node.into_inner(), "update");
        }
        NodeCommand::Rm { id } => {
            let node = client
                .delete_node(authorized(&target, v1::NodeRef { id: parse_id(id)? })?)
                .await
                .map_err(RpcError::from)?;
            output::node_after(json, &node.into_inner(), "rm");
        }
        NodeCommand::Check { id } => {
            let check = client
                .check_node(authorized(&target, v1::NodeRef { id: parse_id(id)? })?)
                .await
                .map_err(RpcError::from)?
                .into_inner();
            output::check(json, &check);
            if !check.ok {
                return Err(anyhow!("the peer check failed: {}", check.message));
            }
        }
        NodeCommand::Schedule {
            id,
            structure,
            data,
        } => {
            if structure.is_none() && data.is_none() {
                return Err(anyhow!("give --structure, --data or both"));
            }
            let mut sync = v1::sync_service_client::SyncServiceClient::new(connect(&target).await?);
            let request = v1::SetScheduleRequest {
                node_id: parse_id(id)?,
                structure: structure.clone(),
                data: data.clone(),
            };
            let status = sync
                .set_schedule(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?
                .into_inner();
            output::node_sync(json, &status);
        }
        NodeCommand::Pause { id } | NodeCommand::Resume { id } => {
            let mut sync = v1::sync_service_client::SyncServiceClient::new(connect(&target).await?);
            let request = v1::SetPausedRequest {
                node_id: parse_id(id)?,
                paused: matches!(command, NodeCommand::Pause { .. }),
            };
            let status = sync
                .set_paused(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?
                .into_inner();
            output::node_sync(json, &status);
        }
    }
    Ok(())
}

pub async fn audit(global: &GlobalArgs, node: Option<&str>, limit: u32) -> anyhow::Result<()> {
    let target = resolve(global)?;
    let channel = connect(&target).await?;
    let mut client = v1::audit_service_client::AuditServiceClient::new(channel);
    let request = v1::ListAuditEventsRequest {
        node_id: node.map(parse_id).transpose()?.unwrap_or(0),
        limit,
    };
    let events = client
        .list_audit_events(authorized(&target, request)?)
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .events;
    output::audit(global.json, &events);
    Ok(())
}

#[cfg(test)]
mod error_text_tests {
    use super::error_text;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);
    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let error = anyhow::Error::new(std::io::Error::new(io.kind(), io.to_string()))
            .context(format!("cannot read config file /x: {io}"));
        assert_eq!(
            error_text(&error),
            format!("cannot read config file /x: {io}")
        );
        let transport = anyhow::Error::new(Layer(
            "transport error",
            Some(Box::new(Layer(
                "tcp connect error",
                Some(Box::new(Layer(
                    "tcp connect error: Connection refused",
                    Some(Box::new(Layer("Connection refused", None))),
                ))),
            ))),
        ))
        .context("cannot reach the admin interface");
        assert_eq!(
            error_text(&transport),
            "cannot reach the admin interface: transport error: tcp connect error: Connection refused"
        );
        let plain = anyhow::anyhow!("outer").context("top");
        assert_eq!(error_text(&plain), "top: outer");
    }
}
