//! The accept loop. poem's own `Server` puts no limit on how long a client may take to send a
//! request or how many connections may be open, so a few hundred slow clients could hold every
//! connection; this loop serves the same endpoint through hyper with:
//!
//! - A cap on open connections (`MMT_MAX_CONNECTIONS`). With every slot taken, one more connection
//!   is accepted and room is made for it by closing the waiting connection (no request in
//!   progress) nearest its deadline; if every connection is busy with a request, the new one waits
//!   for a slot. Further clients wait in the kernel's backlog either way, so at most one connection
//!   over the cap is ever open. Without the eviction, a flood of stalled connections would be
//!   served strictly in arrival order, each holding its slot for the whole header timeout.
//! - A watchdog per connection: the first request's head must be complete within the header timeout
//!   (`MMT_HEADER_READ_TIMEOUT_SECS`) of accepting; between requests a connection may stay idle for
//!   the keep-alive timeout (`MMT_KEEP_ALIVE_TIMEOUT_SECS`), and once a next request starts to
//!   arrive its head must be complete within the header timeout; a connection whose client stops
//!   taking the response is dropped once a write has waited for the keep-alive timeout. While a
//!   handler runs, or a streamed response waits for its next piece, the watchdog waits:
//!   `middleware::limit_body` bounds a stalled request body (`MMT_BODY_READ_TIMEOUT_SECS`).
//! - Graceful shutdown: once the shutdown future resolves, the listener closes, idle connections
//!   close, requests in progress finish (their connections then close), and whatever is still open
//!   after the grace period (`MMT_SHUTDOWN_GRACE_SECS`) is dropped.
//!
//! An upgraded connection (a WebSocket) leaves this loop once upgraded: its handler owns the socket,
//! its timeouts and its shutdown. It keeps its slot until the socket closes.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use hyper::{
    body::{Body as HttpBody, Frame, Incoming, SizeHint},
    service::service_fn,
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use poem::{
    Endpoint, EndpointExt, Response,
    endpoint::BoxEndpoint,
    http::{StatusCode, header, uri::Scheme},
    listener::{Acceptor, TcpAcceptor},
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::{Notify, OwnedSemaphorePermit, Semaphore, watch},
    task::{JoinError, JoinSet},
    time::Instant,
};

use crate::config::ConnectionLimits;

/// While every slot is taken by connections busy with requests, how often to look again for a
/// waiting connection to close.
const EVICT_RETRY: Duration = Duration::from_millis(50);
/// At most one "all connection slots in use" warning per this period.
const SATURATION_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Serves `endpoint` on `acceptor` until `shutdown` resolves, then lets requests in progress
/// finish for up to `grace`.
pub async fn serve<E>(
    mut acceptor: TcpAcceptor,
    endpoint: E,
    limits: &ConnectionLimits,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    E: Endpoint + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        endpoint: endpoint.map_to_response().boxed(),
        builder: http_builder(limits),
        timeouts: Timeouts { header: limits.header_read_timeout, keep_alive: limits.keep_alive_timeout },
        registry: Registry::default(),
        stop: stop_rx,
    });
    let max_connections = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut connections = JoinSet::new();
    let mut warned_at: Option<Instant> = None;
    tokio::pin!(shutdown);

    'accept: loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(done) = connections.join_next() => {
                report(done);
                continue;
            }
            accepted = acceptor.accept() => accepted,
        };
        let (io, local, remote, scheme) = match accepted {
            Ok(accepted) => accepted,
            Err(err) if err.kind() == io::ErrorKind::ConnectionAborted => continue,
            Err(err) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(error = %err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if warned_at.is_none_or(|at| at.elapsed() >= SATURATION_WARNING_EVERY) {
                    warned_at = Some(Instant::now());
                    tracing::warn!(
                        max_connections,
                        "all connection slots are in use; closing waiting connections to admit new ones"
                    );
                }
                loop {
                    shared.registry.evict_one();
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break 'accept,
                        slot = slots.clone().acquire_owned() => break slot.expect("the semaphore is never closed"),
                        () = tokio::time::sleep(EVICT_RETRY) => {}
                    }
                }
            }
        };
        connections.spawn(serve_connection(shared.clone(), io, Peer { local, remote, scheme }, slot));
    }

    drop(acceptor);
    let _ = stop_tx.send(true);
    if !connections.is_empty() {
        tracing::info!(
            connections = connections.len(),
            grace_secs = grace.as_secs_f64(),
            "closing idle connections; waiting for requests in progress"
        );
    }
    let drained = tokio::time::timeout(grace, async {
        while let Some(done) = connections.join_next().await {
            report(done);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "grace period over; dropping the remaining connections"
        );
        connections.shutdown().await;
    }
    tracing::info!("server stopped");
    Ok(())
}

fn http_builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        // hyper's timer runs from the end of one response until the next request head is
        // complete, so set to the header timeout alone it would also cut idle keep-alive
        // connections short. The watchdog enforces the two limits separately; this is a backstop.
        .header_read_timeout(limits.header_read_timeout.saturating_add(limits.keep_alive_timeout));
    builder.http2().timer(TokioTimer::new());
    builder
}

fn report(done: Result<(), JoinError>) {
    if let Err(err) = done
        && err.is_panic()
    {
        tracing::error!("a connection task panicked");
    }
}

/// What every connection task shares.
struct Shared {
    endpoint: BoxEndpoint<'static, Response>,
    builder: auto::Builder<TokioExecutor>,
    timeouts: Timeouts,
    registry: Registry,
    stop: watch::Receiver<bool>,
}

struct Peer {
    local: LocalAddr,
    remote: RemoteAddr,
    scheme: Scheme,
}

async fn serve_connection(shared: Arc<Shared>, io: TcpStream, peer: Peer, slot: OwnedSemaphorePermit) {
    let tracker = Arc::new(Tracker::new(shared.timeouts));
    let _registration = shared.registry.register(&tracker);
    let remote = peer.remote.clone();
    let service = service_fn({
        let shared = shared.clone();
        let tracker = tracker.clone();
        move |req: hyper::Request<Incoming>| {
            let shared = shared.clone();
            let tracker = tracker.clone();
            let request: poem::Request =
                (req, peer.local.clone(), peer.remote.clone(), peer.scheme.clone()).into();
            async move {
                let response = match tracker.start_request() {
                    Some(handling) => {
                        let response: hyper::Response<_> = shared.endpoint.get_response(request).await.into();
                        let responding = handling.into_responding();
                        response.map(|body| Tracked { body, _responding: Some(responding) })
                    }
                    // Closed to admit another connection just as this request arrived: nothing
                    // has run, so the client may safely retry.
                    None => {
                        let response: hyper::Response<_> = Response::builder()
                            .status(StatusCode::SERVICE_UNAVAILABLE)
                            .header(header::CONNECTION, "close")
                            .finish()
                            .into();
                        response.map(|body| Tracked { body, _responding: None })
                    }
                };
                Ok::<_, Infallible>(response)
            }
        }
    });
    let io = TokioIo::new(Watched { io, tracker: tracker.clone(), _slot: slot });
    let conn = shared.builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let mut stop = shared.stop.clone();
    let mut draining = false;
    loop {
        let deadline = match tracker.verdict(Instant::now()) {
            Verdict::Open(deadline) => deadline,
            Verdict::Close(why) => {
                tracing::debug!(remote = %remote, why, "closing connection");
                break;
            }
        };
        let expiry = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(remote = %remote, error = %err, "connection ended with an error");
                }
                break;
            }
            () = tracker.changed.notified() => {}
            () = expiry => {}
            _ = stop.wait_for(|stopping| *stopping), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Timeouts {
    header: Duration,
    keep_alive: Duration,
}

/// Where one connection stands, for its watchdog and for eviction.
struct Tracker {
    timeouts: Timeouts,
    state: Mutex<ConnState>,
    /// Signalled whenever the deadline may have moved earlier or the connection was evicted.
    changed: Notify,
}

struct ConnState {
    /// Requests whose handler is running.
    handling: usize,
    /// Responses whose body hyper is still sending.
    responding: usize,
    /// Whether any request head has been received on this connection.
    served: bool,
    /// Since when the connection has had no request in progress.
    waiting_since: Instant,
    /// When the first bytes of the next request arrived (after the first request).
    head_started: Option<Instant>,
    /// Since when a write has been waiting for the client to take data.
    write_blocked_since: Option<Instant>,
    /// Chosen to be closed to make room for a new connection.
    evicted: bool,
}

enum Verdict {
    Open(Option<Instant>),
    Close(&'static str),
}

impl ConnState {
    fn waiting(&self) -> bool {
        self.handling == 0 && self.responding == 0
    }

    fn deadline(&self, t: Timeouts) -> Option<(Instant, &'static str)> {
        if self.handling > 0 {
            None
        } else if self.responding > 0 {
            // A streamed response may be quiet for long; only a client not taking data counts.
            self.write_blocked_since
                .map(|since| (since + t.keep_alive, "the client stopped reading the response"))
        } else if !self.served {
            Some((self.waiting_since + t.header, "no complete request head within the header timeout"))
        } else if let Some(started) = self.head_started {
            Some((started + t.header, "no complete request head within the header timeout"))
        } else {
            Some((self.waiting_since + t.keep_alive, "idle for the keep-alive timeout"))
        }
    }
}

impl Tracker {
    fn new(timeouts: Timeouts) -> Self {
        let now = Instant::now();
        Self {
            timeouts,
            state: Mutex::new(ConnState {
                handling: 0,
                responding: 0,
                served: false,
                waiting_since: now,
                head_started: None,
                write_blocked_since: None,
                evicted: false,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn verdict(&self, now: Instant) -> Verdict {
        let state = self.lock();
        if state.evicted && state.waiting() {
            return Verdict::Close("closed to admit a new connection");
        }
        match state.deadline(self.timeouts) {
            Some((deadline, why)) if deadline <= now => Verdict::Close(why),
            deadline => Verdict::Open(deadline.map(|(at, _)| at)),
        }
    }

    fn on_read(&self) {
        let now = Instant::now();
        let mut state = self.lock();
        if state.served && state.waiting() && state.head_started.is_none() {
            state.head_started = Some(now);
            drop(state);
            self.changed.notify_one();
        }
    }

    fn on_write(&self, blocked: bool) {
        let mut state = self.lock();
        if !blocked {
            state.write_blocked_since = None;
        } else if state.write_blocked_since.is_none() {
            state.write_blocked_since = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    /// `None` when the connection was evicted before this request's head arrived.
    fn start_request(self: &Arc<Self>) -> Option<Handling> {
        let mut state = self.lock();
        if state.evicted && state.waiting() {
            return None;
        }
        state.handling += 1;
        state.served = true;
        state.head_started = None;
        Some(Handling(Some(self.clone())))
    }

    /// The deadline of a connection that could be closed to admit another.
    fn evictable(&self) -> Option<Instant> {
        let state = self.lock();
        if state.evicted || !state.waiting() {
            return None;
        }
        state.deadline(self.timeouts).map(|(at, _)| at)
    }

    fn evict(&self) -> bool {
        let mut state = self.lock();
        if state.evicted || !state.waiting() {
            return false;
        }
        state.evicted = true;
        drop(state);
        self.changed.notify_one();
        true
    }

    fn finish(&self, update: impl FnOnce(&mut ConnState)) {
        let mut state = self.lock();
        update(&mut state);
        if state.waiting() {
            state.waiting_since = Instant::now();
        }
        drop(state);
        self.changed.notify_one();
    }
}

/// A request whose handler is running; dropped if the handler is cancelled.
struct Handling(Option<Arc<Tracker>>);

impl Handling {
    fn into_responding(mut self) -> Responding {
        let tracker = self.0.take().expect("taken only here");
        tracker.finish(|state| {
            state.handling -= 1;
            state.responding += 1;
        });
        Responding(tracker)
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        if let Some(tracker) = self.0.take() {
            tracker.finish(|state| state.handling -= 1);
        }
    }
}

/// A response body hyper is still sending.
struct Responding(Arc<Tracker>);

impl Drop for Responding {
    fn drop(&mut self) {
        self.0.finish(|state| state.responding -= 1);
    }
}

/// A response body that tells the watchdog when hyper is done with it.
struct Tracked<B> {
    body: B,
    _responding: Option<Responding>,
}

impl<B: HttpBody + Unpin> HttpBody for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, reporting reads and blocked writes to the watchdog. It holds the
/// connection's slot, so an upgraded connection (a WebSocket), which outlives its hyper connection
/// and this task, keeps counting against the cap until its socket closes.
struct Watched {
    io: TcpStream,
    tracker: Arc<Tracker>,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.tracker.on_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.tracker.on_write(polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.tracker.on_write(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Every open connection, so that one can be chosen to close when all slots are taken.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    live: Mutex<HashMap<u64, Arc<Tracker>>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Tracker>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register<'a>(&'a self, tracker: &Arc<Tracker>) -> Registration<'a> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, tracker.clone());
        Registration { registry: self, id }
    }

    /// Closes the waiting connection nearest its deadline, the one that would close soonest anyway.
    fn evict_one(&self) -> bool {
        let live = self.lock();
        let victim = live
            .values()
            .filter_map(|tracker| tracker.evictable().map(|deadline| (deadline, tracker)))
            .min_by_key(|(deadline, _)| *deadline);
        victim.is_some_and(|(_, tracker)| tracker.evict())
    }
}

struct Registration<'a> {
    registry: &'a Registry,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts { header: Duration::from_secs(10), keep_alive: Duration::from_secs(60) };

    fn fresh(at: Instant) -> ConnState {
        ConnState {
            handling: 0,
            responding: 0,
            served: false,
            waiting_since: at,
            head_started: None,
            write_blocked_since: None,
            evicted: false,
        }
    }

    #[test]
    fn each_phase_has_its_own_deadline() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(5);
        let deadline = |state: &ConnState| state.deadline(T).map(|(at, _)| at);

        let mut state = fresh(t0);
        assert_eq!(deadline(&state), Some(t0 + T.header), "a new connection must send a request head");
        state.handling = 1;
        state.served = true;
        assert_eq!(deadline(&state), None, "a running handler is never cut off");
        state.handling = 0;
        state.responding = 1;
        assert_eq!(deadline(&state), None, "nor is a streamed response waiting for its next piece");
        state.write_blocked_since = Some(later);
        assert_eq!(deadline(&state), Some(later + T.keep_alive), "a client not taking the response is");
        state.responding = 0;
        state.write_blocked_since = None;
        state.waiting_since = later;
        assert_eq!(deadline(&state), Some(later + T.keep_alive), "idle between requests");
        state.head_started = Some(later + Duration::from_secs(30));
        assert_eq!(
            deadline(&state),
            Some(later + Duration::from_secs(30) + T.header),
            "a next request head, once begun, must finish within the header timeout"
        );
    }

    #[test]
    fn only_waiting_connections_are_evicted() {
        let tracker = Arc::new(Tracker::new(T));
        let handling = tracker.start_request().unwrap();
        assert!(tracker.evictable().is_none());
        assert!(!tracker.evict());
        let responding = handling.into_responding();
        assert!(!tracker.evict(), "not while its response is being sent");
        drop(responding);
        assert!(tracker.evictable().is_some());
        assert!(tracker.evict());
        assert!(matches!(tracker.verdict(Instant::now()), Verdict::Close(_)));
        assert!(tracker.start_request().is_none(), "a request arriving after eviction is not run");
    }
}
