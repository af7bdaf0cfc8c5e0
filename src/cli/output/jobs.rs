//! The jobs a `sync now --no-wait` or `sync reset --no-wait` started.

use super::print_json;
use super::status::{JobJson, job_json};
use crate::admin::proto::v1;

/// With `--json` a bare array of jobs (as `sync status` prints them), else
/// one line per job saying how to watch it.
pub fn started_jobs(json: bool, node_id: u64, jobs: &[v1::Job]) {
    if json {
        let rows: Vec<JobJson> = jobs.iter().map(job_json).collect();
        return print_json(&rows);
    }
    if jobs.is_empty() {
        return println!("no job of node {node_id} was started");
    }
    for job in jobs {
        println!("{}", started_line(node_id, job));
    }
}

fn started_line(node_id: u64, job: &v1::Job) -> String {
    let shared = match job.shared_module_id {
        0 => String::new(),
        id => format!(" (shared module {id})"),
    };
    format!(
        "started the {} job {} of node {node_id}{shared}; watch it with `fedsync sync status {node_id}`",
        job.kind, job.id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_job_is_named_with_its_shared_module_and_how_to_watch_it() {
        let data = v1::Job {
            id: 123,
            kind: "data".into(),
            shared_module_id: 456,
            ..Default::default()
        };
        assert_eq!(
            started_line(7, &data),
            "started the data job 123 of node 7 (shared module 456); watch it with `fedsync sync status 7`"
        );
        let structure = v1::Job {
            id: 122,
            kind: "structure".into(),
            ..Default::default()
        };
        assert_eq!(
            started_line(7, &structure),
            "started the structure job 122 of node 7; watch it with `fedsync sync status 7`"
        );
    }
}
