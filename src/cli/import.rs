//! `fedsync record import`: reads the file twice (`import_file.rs`), first
//! to check every line against the module (nothing is sent if any line is
//! wrong), then to stream batches, each committed by the daemon in its own
//! transaction as it arrives.
//!
//! The CLI streams the records, so the daemon cannot finish an import
//! alone. Ctrl-C stops sending: the request stream ends cleanly, the daemon
//! commits what it received and says how many records that was, and the
//! CLI says which lines are in and how to go on (`--skip N`); exit code
//! 130. A second Ctrl-C while waiting for that answer exits at once.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, anyhow};
use futures::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::GlobalArgs;
use super::client::{RpcError, Target, authorized, resolve};
use super::connect::connect_waiting;
use super::import_file::{check_file, lines_of, local_module, send_batches};
use super::output;
use super::wait::{CtrlC, Interrupted};
use crate::admin::proto::v1;

/// One import: what to send and how to say where it stands.
struct Plan {
    /// The module as the user named it (for the command to go on).
    module: String,
    file: PathBuf,
    /// Records in the file.
    total: u64,
    /// Records skipped (`--skip`), in file order.
    skip: u64,
}

impl Plan {
    /// Records this run sends.
    fn to_send(&self) -> u64 {
        self.total - self.skip
    }
}

/// How the import call ended.
enum Ended {
    /// The daemon answered; no Ctrl-C.
    Answered(Result<v1::ImportRecordsResponse, tonic::Status>),
    /// Ctrl-C stopped the sending; then the daemon answered.
    Stopped(Result<v1::ImportRecordsResponse, tonic::Status>),
    /// A second Ctrl-C came before the daemon's answer.
    Abandoned,
}

pub(super) async fn run(
    global: &GlobalArgs,
    module: &str,
    file: &Path,
    skip: u64,
) -> anyhow::Result<()> {
    let target = resolve(global)?;
    let channel = connect_waiting(&target).await?;
    let mut modules = v1::module_service_client::ModuleServiceClient::new(channel.clone());
    let request = v1::ModuleRef {
        key: module.to_owned(),
    };
    let found = modules
        .get_module(authorized(&target, request)?)
        .await
        .map_err(RpcError::from)?
        .into_inner();
    let total = check_file(&local_module(&found)?, file)?;
    if skip >= total {
        return Err(anyhow!(
            "--skip {skip} leaves nothing to import: {} holds {total} records",
            file.display()
        ));
    }
    let plan = Plan {
        module: module.to_owned(),
        file: file.to_owned(),
        total,
        skip,
    };
    let sent = Arc::new(AtomicU64::new(0));
    let ended = stream(&target, channel, &plan, found.id, sent.clone()).await?;
    let sent = sent.load(Ordering::SeqCst);
    let response = outcome(&plan, ended, sent, &found.handle)?;
    output::imported(global.json, &response, &found.handle);
    Ok(())
}

/// The daemon's answer when every record is in; else what happened, what
/// stays and how to go on.
fn outcome(
    plan: &Plan,
    ended: Ended,
    sent: u64,
    handle: &str,
) -> anyhow::Result<v1::ImportRecordsResponse> {
    match ended {
        Ended::Answered(Ok(response)) if response.imported == plan.to_send() => Ok(response),
        Ended::Answered(Ok(response)) => Err(anyhow!(
            "the daemon imported {} of {} records; check `fedsync record list {handle}`",
            response.imported,
            plan.to_send(),
        )),
        Ended::Answered(Err(status)) if sent == 0 => Err(RpcError::from(status).into()),
        Ended::Answered(Err(status)) => {
            // The cause is said in the text (and so once), and kept for the
            // exit code.
            let error = RpcError::from(status);
            let text = format!("the import did not finish ({error}): {}", cut(plan, sent));
            Err(anyhow::Error::new(error).context(text))
        }
        // Everything was sent before Ctrl-C, and it is all in.
        Ended::Stopped(Ok(response)) if response.imported == plan.to_send() => Ok(response),
        Ended::Stopped(Ok(response)) => Err(stopped(plan, response.imported).into()),
        // Nothing was sent: the daemon refused the empty stream.
        Ended::Stopped(Err(_)) if sent == 0 => Err(stopped(plan, 0).into()),
        Ended::Stopped(Err(status)) => Err(Interrupted {
            message: format!(
                "import stopped by Ctrl-C, and the daemon did not say how many records it committed ({}): {}",
                RpcError::from(status),
                cut(plan, sent)
            ),
        }
        .into()),
        Ended::Abandoned => Err(Interrupted {
            message: format!(
                "import stopped by a second Ctrl-C before the daemon answered: {}",
                cut(plan, sent)
            ),
        }
        .into()),
    }
}

/// Streams the batches; Ctrl-C ends the stream cleanly. `sent` counts the
/// records handed to the connection.
async fn stream(
    target: &Target,
    channel: Channel,
    plan: &Plan,
    module_id: u64,
    sent: Arc<AtomicU64>,
) -> anyhow::Result<Ended> {
    let mut client = v1::record_service_client::RecordServiceClient::new(channel);
    let mut ctrl_c = CtrlC::listen();
    let (tx, rx) = mpsc::channel(2);
    let stop = Arc::new(Notify::new());
    let stop_sending = {
        let stop = stop.clone();
        async move { stop.notified().await }
    };
    let requests = ReceiverStream::new(rx).take_until(stop_sending).inspect(
        move |m: &v1::ImportRecordsRequest| {
            sent.fetch_add(m.rows.len() as u64, Ordering::SeqCst);
        },
    );
    let (path, skip) = (plan.file.clone(), plan.skip);
    let module_key = module_id.to_string();
    let reader = tokio::task::spawn_blocking(move || send_batches(&path, &module_key, skip, tx));
    let request = authorized(target, requests)?;
    let ended = {
        let mut call = std::pin::pin!(client.import_records(request));
        tokio::select! {
            biased;
            () = ctrl_c.pressed() => {
                stop.notify_one();
                if std::io::stderr().is_terminal() {
                    eprintln!(
                        "stopping: the daemon commits the batches it received, then says how many \
                         (Ctrl-C again stops waiting)"
                    );
                }
                tokio::select! {
                    biased;
                    () = ctrl_c.pressed() => return Ok(Ended::Abandoned),
                    answer = &mut call => Ended::Stopped(answer.map(tonic::Response::into_inner)),
                }
            }
            answer = &mut call => Ended::Answered(answer.map(tonic::Response::into_inner)),
        }
    };
    reader.await.context("the import reader stopped")??;
    Ok(ended)
}

/// What a cut import leaves.
fn cut(plan: &Plan, sent: u64) -> String {
    format!(
        "the batches the daemon committed stay (at most {sent} of {} records were sent); \
         `fedsync record list {}` shows what arrived",
        plan.to_send(),
        shell_word(&plan.module)
    )
}

/// Ctrl-C stopped the import after the daemon committed `committed`
/// records: which lines are in, and how to go on.
fn stopped(plan: &Plan, committed: u64) -> Interrupted {
    let file = plan.file.display().to_string();
    let of = if plan.skip == 0 {
        format!("{} records", plan.total)
    } else {
        format!(
            "the {} records after the first {}",
            plan.to_send(),
            plan.skip
        )
    };
    let done = if committed == 0 {
        format!("none of {of} were committed")
    } else {
        let lines = lines_of(&plan.file, plan.skip, plan.skip + committed)
            .map(|(first, last)| format!(" (lines {first}-{last} of {file})"))
            .unwrap_or_default();
        format!("{committed} of {of} were committed{lines}")
    };
    let next = plan.skip + committed;
    let mut command = format!(
        "fedsync record import {} {}",
        shell_word(&plan.module),
        shell_word(&file)
    );
    if next > 0 {
        command.push_str(&format!(" --skip {next}"));
    }
    Interrupted {
        message: format!("import stopped by Ctrl-C: {done}; to go on, run `{command}`"),
    }
}

/// A word as a POSIX shell reads it back: quoted when it must be.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(dir: &Path, text: &str, skip: u64) -> Plan {
        let file = dir.join("in.jsonl");
        std::fs::write(&file, text).unwrap();
        let total = text.lines().filter(|l| !l.trim().is_empty()).count() as u64;
        Plan {
            module: "Account".into(),
            file,
            total,
            skip,
        }
    }

    #[test]
    fn a_stopped_import_names_the_lines_in_and_how_to_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let text = "{}\n\n{}\n{}\n{}\n";
        let first = plan(dir.path(), text, 0);
        let file = first.file.display().to_string();
        assert_eq!(
            stopped(&first, 2).message,
            format!(
                "import stopped by Ctrl-C: 2 of 4 records were committed (lines 1-3 of {file}); \
                 to go on, run `fedsync record import Account {file} --skip 2`"
            )
        );
        let again = plan(dir.path(), text, 2);
        assert_eq!(
            stopped(&again, 1).message,
            format!(
                "import stopped by Ctrl-C: 1 of the 2 records after the first 2 were committed \
                 (lines 4-4 of {file}); to go on, run `fedsync record import Account {file} --skip 3`"
            )
        );
        assert_eq!(
            stopped(&first, 0).message,
            format!(
                "import stopped by Ctrl-C: none of 4 records were committed; \
                 to go on, run `fedsync record import Account {file}`"
            )
        );
    }

    #[test]
    fn words_the_shell_would_split_are_quoted() {
        assert_eq!(shell_word("/tmp/a-b_c.jsonl"), "/tmp/a-b_c.jsonl");
        assert_eq!(shell_word("my file"), "'my file'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
