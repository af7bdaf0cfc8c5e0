//! Clients of the fake compose API that are not fedsync: a plain client
//! creating records from some connections and listing a module page by
//! page (what Corteza can give at best), and a user reading one record
//! every 50 ms (what fedsync's load costs Corteza's users).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Result;
use crate::report::{Latency, latency};

fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().no_proxy().build()?)
}

/// Corteza's `response`, or the error it answered.
async fn answer(response: reqwest::Response) -> Result<Value> {
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() || body.get("error").is_some() {
        return Err(format!("the fake compose API answered {status}: {body}").into());
    }
    Ok(body["response"].clone())
}

/// Records created a second by `connections` clients, each on a
/// connection of its own, creating `n` records in all (`values(i)` is the
/// `values` of record `i`).
pub(super) async fn plain_writes(
    url: &str,
    token: &str,
    connections: usize,
    n: u64,
    values: Arc<dyn Fn(u64) -> Value + Send + Sync>,
) -> Result<f64> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (http, url, token) = (client()?, url.to_owned(), token.to_owned());
        let (next, values) = (next.clone(), values.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, Box<dyn std::error::Error + Send + Sync>>(());
                }
                let body = json!({ "values": values(i) });
                answer(
                    http.post(&url)
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await?,
                )
                .await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// A whole module listed page by page (`limit`, `pageCursor`): (records,
/// seconds, requests).
pub(super) async fn plain_list(url: &str, token: &str, limit: u32) -> Result<(u64, f64, u64)> {
    let http = client()?;
    let started = Instant::now();
    let (mut records, mut requests) = (0, 0);
    let mut cursor: Option<String> = None;
    loop {
        let mut page_url = url::Url::parse(url)?;
        page_url
            .query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        if let Some(c) = cursor.take() {
            page_url.query_pairs_mut().append_pair("pageCursor", &c);
        }
        let page = answer(http.get(page_url).bearer_auth(token).send().await?).await?;
        requests += 1;
        records += page["set"].as_array().map_or(0, Vec::len) as u64;
        match page["filter"]["nextPage"].as_str() {
            Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
            _ => break,
        }
    }
    Ok((records, started.elapsed().as_secs_f64(), requests))
}

/// A user of Corteza reading one record every 50 ms, on a thread, runtime
/// and connection of its own (a browser is not fedsync's neighbour).
pub(super) struct User {
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<Vec<f64>>>,
}

impl User {
    pub(super) fn start(url: String, token: String) -> User {
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let thread = std::thread::spawn(move || -> Result<Vec<f64>> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let http = client()?;
                let mut ticker = tokio::time::interval(Duration::from_millis(50));
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut ms = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    ticker.tick().await;
                    let started = Instant::now();
                    answer(http.get(&url).bearer_auth(&token).send().await?).await?;
                    ms.push(started.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(ms)
            })
        });
        User { done, thread }
    }

    pub(super) fn finish(self) -> Result<Latency> {
        self.done.store(true, Ordering::SeqCst);
        let ms = self
            .thread
            .join()
            .map_err(|_| "the user panicked")?
            .map_err(|e| format!("the user: {e}"))?;
        Ok(latency(ms))
    }

    /// The user's latency with nothing else going on, over `secs`.
    pub(super) async fn idle(url: String, token: String, secs: f64) -> Result<Latency> {
        let user = User::start(url, token);
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        user.finish()
    }
}
