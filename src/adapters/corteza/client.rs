//! Calls to Corteza's compose REST API: one request with the API token
//! (re-read from the token file on every request), under the adaptive
//! limit and the optional cap of `limiter`; reads retried while Corteza may
//! come back; every page of a list; and how a failure is classified
//! (`CallError`), and what it tells the limiter.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use zeroize::Zeroizing;

use super::json::set;
use super::limiter::{Kind, Signal};
use super::{CortezaData, CortezaToken};
use crate::sync::ports::LocalError;

/// A failed call to Corteza.
#[derive(Debug)]
pub(super) enum CallError {
    /// Corteza could not be asked or answered 5xx/429: try again later.
    /// `signal` is what the answer told of Corteza's load.
    Unavailable { message: String, signal: Signal },
    /// Corteza answered with an error of this type (`notFound`...).
    Refused { kind: String, message: String },
}

impl CallError {
    pub(super) fn not_found(&self) -> bool {
        matches!(self, CallError::Refused { kind, .. } if kind == "notFound" || kind == "http404")
    }

    fn unreached(message: String) -> CallError {
        CallError::Unavailable {
            message,
            signal: Signal::Unreached,
        }
    }

    /// What the limiter learns from this outcome.
    fn signal(&self) -> Signal {
        match self {
            CallError::Unavailable { signal, .. } => *signal,
            CallError::Refused { .. } => Signal::Answered,
        }
    }
}

impl From<CallError> for LocalError {
    fn from(error: CallError) -> LocalError {
        match error {
            CallError::Unavailable { message, .. } => LocalError::Unavailable(message),
            CallError::Refused { message, kind } if kind.starts_with("notAllowed") => {
                LocalError::Invalid(format!(
                    "Corteza refused: {message} (give the token's user the permission)"
                ))
            }
            CallError::Refused { message, .. } => {
                LocalError::Invalid(format!("Corteza refused: {message}"))
            }
        }
    }
}

/// The load signal of an HTTP status Corteza answered with, if any.
fn status_signal(status: u16) -> Option<Signal> {
    match status {
        429 => Some(Signal::Throttled),
        502..=504 => Some(Signal::Overloaded(status)),
        500..=599 => Some(Signal::ServerError(status)),
        _ => None,
    }
}

/// What a request was, for comparing latencies: a record write, another
/// write, a GET of one object, or a list of so many records.
fn kind_of(method: &Method, path: &str, answer: &Result<Value, CallError>) -> Kind {
    if method != Method::GET {
        return if path.contains("/record/") {
            Kind::Write
        } else {
            Kind::OtherWrite
        };
    }
    match answer.as_ref().ok().and_then(|v| v.get("set")) {
        Some(Value::Array(items)) => Kind::list(items.len()),
        _ => Kind::One,
    }
}

impl CortezaData {
    fn token(&self) -> Result<Zeroizing<String>, CallError> {
        match &self.settings.token {
            CortezaToken::Inline(token) => Ok(token.clone()),
            CortezaToken::File(path) => {
                let mut last = self.last_token.lock().expect("token lock");
                match std::fs::read_to_string(path) {
                    Ok(text) if !text.trim().is_empty() => {
                        let token = Zeroizing::new(text.trim().to_owned());
                        *last = Some(token.clone());
                        Ok(token)
                    }
                    read => last.clone().ok_or_else(|| {
                        CallError::unreached(match read {
                            Ok(_) => format!("the Corteza token file {} is empty", path.display()),
                            Err(e) => format!(
                                "cannot read the Corteza token file {}: {e}",
                                path.display()
                            ),
                        })
                    }),
                }
            }
        }
    }

    /// One request; returns Corteza's `response`.
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        if let Some(cap) = &self.cap {
            cap.wait().await;
        }
        let permit = self.limiter.acquire().await;
        let answer = self.send(method.clone(), path, query, body).await;
        let signal = match &answer {
            Ok(_) => Signal::Answered,
            Err(e) => e.signal(),
        };
        permit.done(kind_of(&method, path, &answer), signal);
        answer
    }

    /// One request, at once.
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let mut url = url::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| CallError::unreached(format!("bad Corteza URL {}: {e}", self.base)))?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        let token = self.token()?;
        let mut request = self
            .http
            .request(method.clone(), url)
            .header("Accept", "application/json")
            .bearer_auth(token.as_str());
        if let Some(body) = body {
            request = request.json(body);
        }
        let where_ = || format!("Corteza at {}", self.base);
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                CallError::Unavailable {
                    message: format!(
                        "{} did not answer within {}s",
                        where_(),
                        self.settings.timeout.as_secs()
                    ),
                    signal: Signal::TimedOut,
                }
            } else {
                CallError::unreached(format!("cannot reach {}: {}", where_(), root_cause(&e)))
            }
        })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| CallError::Unavailable {
            message: format!("{}: {}", where_(), root_cause(&e)),
            signal: if e.is_timeout() {
                Signal::TimedOut
            } else {
                Signal::Unreached
            },
        })?;
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        let message = parsed
            .as_ref()
            .and_then(|v| v.pointer("/error/message"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(signal) = status_signal(status.as_u16()) {
            return Err(CallError::Unavailable {
                message: format!(
                    "{} answered HTTP {}{}",
                    where_(),
                    status.as_u16(),
                    message.map(|m| format!(": {m}")).unwrap_or_default()
                ),
                signal,
            });
        }
        if status.as_u16() == 401 {
            return Err(CallError::Refused {
                kind: "unauthorized".into(),
                message: format!(
                    "{} does not accept the token (HTTP 401{}); check local.corteza_token_file",
                    where_(),
                    message.map(|m| format!(": {m}")).unwrap_or_default()
                ),
            });
        }
        if !status.is_success() {
            return Err(CallError::Refused {
                kind: format!("http{}", status.as_u16()),
                message: message.unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
            });
        }
        let Some(value) = parsed else {
            return Err(CallError::unreached(format!(
                "{} answered {} {path} with something that is not JSON",
                where_(),
                method
            )));
        };
        if let Some(error) = value.get("error") {
            return Err(CallError::Refused {
                kind: error
                    .pointer("/meta/type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                message: message.unwrap_or_else(|| error.to_string()),
            });
        }
        Ok(value.get("response").cloned().unwrap_or(value))
    }

    /// A read, tried up to three times when Corteza may come back.
    pub(super) async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, CallError> {
        retry_unavailable(3, || self.call(Method::GET, path, query, None)).await
    }

    /// Every page of a list, following Corteza's `filter.nextPage`.
    pub(super) async fn list_all(
        &self,
        path: &str,
        query: &[(&str, String)],
        mut each: impl FnMut(&Value) -> Result<(), LocalError>,
    ) -> Result<(), LocalError> {
        let mut cursor: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("limit", self.settings.page_size.to_string()));
            if let Some(c) = &cursor {
                q.push(("pageCursor", c.clone()));
            }
            let page = self.get(path, &q).await?;
            for item in set(&page) {
                each(item)?;
            }
            match page
                .pointer("/filter/nextPage")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
            {
                Some(next) if set(&page).is_empty() || !seen.insert(next.to_owned()) => {
                    return Err(LocalError::Unavailable(format!(
                        "Corteza's list {path} loops (the same page cursor twice)"
                    )));
                }
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(()),
            }
        }
    }
}

/// `call` tried again while Corteza does not answer it, `tries` times in
/// all: 200 ms before the second, four times longer before each next.
pub(super) async fn retry_unavailable<T, F, Fut>(tries: usize, call: F) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CallError>>,
{
    use backon::Retryable;
    call.retry(
        backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_factor(4.0)
            .with_max_delay(Duration::from_secs(60))
            .with_max_times(tries.saturating_sub(1)),
    )
    .when(|e| matches!(e, CallError::Unavailable { .. }))
    .await
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut source = error;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
