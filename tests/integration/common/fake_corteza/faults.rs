//! How the fake behaves under load and fault, for the tests of concurrent
//! writes: creates that take a while (so that concurrent ones overlap, and
//! how many did is counted), creates held past a budget until released (a
//! daemon stopped with a page half written), creates made but answered 502
//! (a lost answer), 429s for a while, and values refused as invalid.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;

use super::handle::answer;
use super::{FakeCorteza, World};

/// What requests share besides the world.
#[derive(Clone)]
pub(super) struct Shared {
    pub world: Arc<Mutex<World>>,
    /// Creates past the budget wait here until released.
    pub gate: Arc<tokio::sync::Semaphore>,
    /// Records made by creates so far.
    pub created: Arc<tokio::sync::watch::Sender<usize>>,
}

/// The fault settings and counters of the world.
#[derive(Default)]
pub(super) struct Faults {
    pub create_delay: Duration,
    pub creates_in_flight: usize,
    pub most_creates_in_flight: usize,
    /// Creates taken before the next ones are held; `None`: all taken.
    pub create_budget: Option<usize>,
    /// The next creates are made, then answered 502.
    pub made_then_502: usize,
    /// The next record creates are answered 429.
    pub throttled: usize,
    /// Creates holding one of these values are refused as invalid.
    pub refused_values: Vec<String>,
    pub created: usize,
}

/// One less create in flight when dropped (the request may be cancelled).
struct InFlight(Arc<Mutex<World>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().unwrap().faults.creates_in_flight -= 1;
    }
}

pub(super) async fn serve_request(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if method != Method::POST || !uri.path().ends_with("/record/") {
        return answer(&shared.world, method, uri, query, headers, body);
    }
    let (delay, held) = {
        let mut w = shared.world.lock().unwrap();
        let f = &mut w.faults;
        f.creates_in_flight += 1;
        f.most_creates_in_flight = f.most_creates_in_flight.max(f.creates_in_flight);
        let held = match f.create_budget {
            Some(0) => true,
            Some(n) => {
                f.create_budget = Some(n - 1);
                false
            }
            None => false,
        };
        (f.create_delay, held)
    };
    let _in_flight = InFlight(shared.world.clone());
    if held {
        shared.gate.acquire().await.unwrap().forget();
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = answer(&shared.world, method, uri, query, headers, body);
    let created = shared.world.lock().unwrap().faults.created;
    shared.created.send_replace(created);
    response
}

impl FakeCorteza {
    /// Each record create takes `delay`.
    pub fn create_delay(&self, delay: Duration) {
        self.world.lock().unwrap().faults.create_delay = delay;
    }

    /// The most record creates it held at once.
    pub fn most_creates_at_once(&self) -> usize {
        self.world.lock().unwrap().faults.most_creates_in_flight
    }

    /// Takes `n` more creates, then holds the next ones unanswered until
    /// `release_creates`.
    pub fn hold_creates_after(&self, n: usize) {
        self.world.lock().unwrap().faults.create_budget = Some(n);
    }

    /// Takes every create again, the held ones too (those whose client is
    /// still there).
    pub fn release_creates(&self) {
        self.world.lock().unwrap().faults.create_budget = None;
        self.gate
            .add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    }

    /// Waits until `n` records were made by creates in all.
    pub async fn created_at_least(&self, n: usize) {
        let mut created = self.created.subscribe();
        tokio::time::timeout(Duration::from_secs(60), created.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} records made in time"))
            .unwrap();
    }

    /// The next `n` creates are made, then answered 502 (the answer lost).
    pub fn make_then_fail(&self, n: usize) {
        self.world.lock().unwrap().faults.made_then_502 = n;
    }

    /// The next `n` record creates are answered 429.
    pub fn throttle(&self, n: usize) {
        self.world.lock().unwrap().faults.throttled = n;
    }

    /// How many of the 429s set by `throttle` are still to come.
    pub fn throttles_left(&self) -> usize {
        self.world.lock().unwrap().faults.throttled
    }

    /// Creates holding `value` are refused as invalid values.
    pub fn refuse_value(&self, value: &str) {
        self.world
            .lock()
            .unwrap()
            .faults
            .refused_values
            .push(value.to_owned());
    }

    pub fn accept_all_values(&self) {
        self.world.lock().unwrap().faults.refused_values.clear();
    }
}
