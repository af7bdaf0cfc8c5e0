//! The limiter on tokio's paused clock: a simulated Corteza answers after
//! a latency that depends on the requests it holds; nothing sleeps for
//! real.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A Corteza of `workers` workers sharing their time between the
/// requests they hold: a request costing `cost` of a worker takes
/// `cost × max(1, held / workers)`.
struct Simulated {
    workers: usize,
    cost: Duration,
    held: AtomicUsize,
    most_held: AtomicUsize,
}

impl Simulated {
    fn new(workers: usize, cost: Duration) -> Arc<Simulated> {
        Arc::new(Simulated {
            workers,
            cost,
            held: AtomicUsize::new(0),
            most_held: AtomicUsize::new(0),
        })
    }

    async fn request(&self) {
        let held = self.held.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_held.fetch_max(held, Ordering::SeqCst);
        let share = (held as f64 / self.workers as f64).max(1.0);
        tokio::time::sleep(self.cost.mul_f64(share)).await;
        self.held.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `callers` tasks each sending `each` requests through the limiter.
async fn load(limiter: &Arc<Limiter>, corteza: &Arc<Simulated>, callers: usize, each: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (limiter, corteza) = (limiter.clone(), corteza.clone());
        tasks.spawn(async move {
            for _ in 0..each {
                let permit = limiter.acquire().await;
                corteza.request().await;
                permit.done(Kind::Write, Signal::Answered);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn the_limit_grows_to_its_bound_while_latency_stays_at_its_lowest() {
    let limiter = Arc::new(Limiter::new(16));
    assert_eq!(limiter.status().limit, 4);
    // Sixty-four workers: sixteen requests at once queue nowhere.
    let corteza = Simulated::new(64, Duration::from_millis(5));
    load(&limiter, &corteza, 32, 40).await;
    let status = limiter.status();
    assert_eq!(status.limit, 16, "{status:?}");
    assert_eq!(corteza.most_held.load(Ordering::SeqCst), 16);
    assert_eq!(status.cuts, 0);
    assert_eq!(status.requests, 32 * 40);
    assert_eq!(status.p50_latency, Some(Duration::from_millis(5)));
}

#[tokio::test(start_paused = true)]
async fn the_limit_settles_where_corteza_starts_to_queue() {
    let limiter = Arc::new(Limiter::new(64));
    // Two workers: past two requests at once, latency rises with each.
    let corteza = Simulated::new(2, Duration::from_millis(5));
    load(&limiter, &corteza, 32, 60).await;
    let status = limiter.status();
    assert!(
        (2..=4).contains(&status.limit),
        "settles near the two workers: {status:?}"
    );
    assert!(corteza.most_held.load(Ordering::SeqCst) <= 6, "{status:?}");
}

#[tokio::test(start_paused = true)]
async fn throttling_halves_the_limit_once_a_burst_then_it_recovers() {
    let limiter = Arc::new(Limiter::new(16));
    let corteza = Simulated::new(64, Duration::from_millis(5));
    load(&limiter, &corteza, 32, 20).await;
    assert_eq!(limiter.status().limit, 16);
    // A burst of 429s: one cut.
    for _ in 0..10 {
        limiter.acquire().await.done(Kind::Write, Signal::Throttled);
    }
    let status = limiter.status();
    assert_eq!((status.limit, status.throttled, status.cuts), (8, 10, 1));
    // Later ones cut again, to 1 at least.
    for _ in 0..5 {
        tokio::time::sleep(CUT_GAP).await;
        limiter
            .acquire()
            .await
            .done(Kind::Write, Signal::Overloaded(503));
    }
    assert_eq!(limiter.status().limit, 1);
    tokio::time::sleep(CUT_GAP).await;
    limiter.acquire().await.done(Kind::Write, Signal::TimedOut);
    let status = limiter.status();
    assert_eq!((status.limit, status.timeouts), (1, 1));
    // Corteza is fine again: the limit grows back.
    load(&limiter, &corteza, 32, 20).await;
    assert_eq!(limiter.status().limit, 16);
}

#[tokio::test(start_paused = true)]
async fn a_server_error_or_an_unreached_corteza_is_no_load_signal() {
    let limiter = Limiter::new(8);
    for signal in [Signal::ServerError(500), Signal::Unreached] {
        limiter.acquire().await.done(Kind::Write, signal);
    }
    let status = limiter.status();
    assert_eq!((status.limit, status.server_errors, status.cuts), (4, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_request_waits_for_a_place_under_the_limit() {
    let limiter = Arc::new(Limiter::new(1));
    let first = limiter.acquire().await;
    let waiting = tokio::spawn({
        let limiter = limiter.clone();
        async move {
            let started = Instant::now();
            let _second = limiter.acquire().await;
            started.elapsed()
        }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(limiter.status().in_flight, 1);
    // Dropped without an answer (its caller left): the place is freed.
    drop(first);
    assert_eq!(waiting.await.unwrap(), Duration::from_millis(30));
    assert_eq!(limiter.status().in_flight, 0);
}

/// Lists of different sizes have their own lowest latency: a long list
/// after short ones is no latency rise.
#[tokio::test(start_paused = true)]
async fn lists_are_compared_with_lists_of_their_size() {
    let limiter = Limiter::new(16);
    for _ in 0..20 {
        for (items, latency) in [(0, 1), (200, 60)] {
            let permit = limiter.acquire().await;
            tokio::time::sleep(Duration::from_millis(latency)).await;
            permit.done(Kind::list(items), Signal::Answered);
        }
    }
    assert_eq!(limiter.status().cuts, 0);
    assert_ne!(Kind::list(0), Kind::list(200));
    assert_eq!(Kind::list(150), Kind::list(200));
}

#[tokio::test(start_paused = true)]
async fn the_optional_cap_paces_requests_to_its_rate() {
    let pace = Pace::per_second(5);
    let start = Instant::now();
    for _ in 0..10 {
        pace.wait().await;
    }
    // Ten requests at five a second: the tenth goes 1.8 s after the first.
    assert_eq!(start.elapsed(), Duration::from_millis(1800));
    // An idle spell is not saved up for a burst.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle = Instant::now();
    pace.wait().await;
    pace.wait().await;
    assert_eq!(idle.elapsed(), Duration::from_millis(200));
}

/// A limit cut to one grows back with one caller waiting at a time too.
#[tokio::test(start_paused = true)]
async fn a_limit_cut_to_one_grows_back() {
    let limiter = Arc::new(Limiter::new(16));
    limiter.acquire().await.done(Kind::Write, Signal::Throttled);
    tokio::time::sleep(CUT_GAP).await;
    limiter.acquire().await.done(Kind::Write, Signal::Throttled);
    assert_eq!(limiter.status().limit, 1);
    // A module write is fast: record writes are not compared with it.
    let module = limiter.acquire().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    module.done(Kind::OtherWrite, Signal::Answered);
    let corteza = Simulated::new(64, Duration::from_millis(20));
    load(&limiter, &corteza, 16, 20).await;
    assert!(limiter.status().limit >= 8, "{:?}", limiter.status());
}
