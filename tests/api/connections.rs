//! Slow and idle clients over real sockets: header, body and keep-alive timeouts, the connection
//! cap, and graceful shutdown of the server loop.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use mmt_sidecar::app::{self, AppState};
use poem::listener::{Acceptor, Listener, TcpListener};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
    task::JoinHandle,
};

use crate::helpers::{RunningServer, TestDb};

/// Added to every timeout before a test calls the server late: the suite runs tests in parallel.
const SLACK: Duration = Duration::from_secs(2);

async fn server(db: &TestDb, extra: &[(&str, &str)]) -> RunningServer {
    RunningServer::start(db.state_with(extra)).await
}

async fn send(stream: &mut TcpStream, bytes: &str) {
    stream.write_all(bytes.as_bytes()).await.unwrap();
}

/// Reads until the server closes the connection; panics if that takes longer than `limit`.
/// Returns what arrived and when the connection closed.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Instant) {
    let mut received = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&received).into_owned();
    assert!(read.is_ok(), "the connection was still open after {limit:?}; received so far: {text:?}");
    (text, Instant::now())
}

/// Reads one HTTP/1.1 response with a `content-length` body; the connection stays open.
async fn response(stream: &mut TcpStream) -> (u16, String, String) {
    tokio::time::timeout(SLACK * 2, async {
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&received).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let head = text[..end].to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                    })
                    .map_or(0, |v| v.parse().unwrap());
                if received.len() >= end + 4 + length {
                    let status = head[9..12].parse().unwrap();
                    let body = String::from_utf8_lossy(&received[end + 4..end + 4 + length]).into_owned();
                    return (status, head, body);
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed mid-response: {text:?}");
            received.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("a response in time")
}

fn assert_between(elapsed: Duration, low: Duration, high: Duration, what: &str) {
    assert!(
        elapsed >= low && elapsed <= high,
        "{what} after {elapsed:?}, expected between {low:?} and {high:?}"
    );
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected_after_the_header_timeout() {
    let db = TestDb::empty().await;
    let server =
        server(&db, &[("MMT_HEADER_READ_TIMEOUT_SECS", "1"), ("MMT_KEEP_ALIVE_TIMEOUT_SECS", "30")]).await;

    // Half a request line, then nothing.
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    send(&mut partial, "GET /api/heal").await;
    // Nothing at all.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // A header line every 300 ms, never the blank line: activity does not extend the deadline.
    let mut trickle = TcpStream::connect(server.addr).await.unwrap();
    send(&mut trickle, "GET /api/health/ HTTP/1.1\r\n").await;
    let trickler = tokio::spawn(async move {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if trickle.write_all(format!("x-slow-{i}: y\r\n").as_bytes()).await.is_err() {
                break;
            }
            if i > 40 {
                panic!("the trickling client was never disconnected");
            }
        }
    });

    for stream in [&mut partial, &mut silent] {
        let (received, closed_at) = until_closed(stream, Duration::from_secs(1) + SLACK).await;
        assert_between(
            closed_at - started,
            Duration::from_millis(900),
            Duration::from_secs(1) + SLACK,
            "closed",
        );
        assert!(!received.contains("200 OK"), "{received}");
    }
    tokio::time::timeout(Duration::from_secs(1) + SLACK * 2, trickler)
        .await
        .expect("the trickling client is disconnected")
        .unwrap();
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_and_the_connection_closes() {
    let db = TestDb::empty().await;
    let server =
        server(&db, &[("MMT_BODY_READ_TIMEOUT_SECS", "1"), ("MMT_HEADER_READ_TIMEOUT_SECS", "5")]).await;

    let mut declared = TcpStream::connect(server.addr).await.unwrap();
    send(
        &mut declared,
        "POST /api/auth/login/ HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"usernam",
    )
    .await;
    let mut chunked = TcpStream::connect(server.addr).await.unwrap();
    send(
        &mut chunked,
        "POST /api/auth/login/ HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\na\r\n{\"username\r\n",
    )
    .await;
    let started = Instant::now();

    for stream in [&mut declared, &mut chunked] {
        let (received, closed_at) = until_closed(stream, Duration::from_secs(1) + SLACK).await;
        assert_between(
            closed_at - started,
            Duration::from_millis(900),
            Duration::from_secs(1) + SLACK,
            "closed",
        );
        assert!(received.starts_with("HTTP/1.1 408"), "{received}");
        assert!(received.contains("application/problem+json"), "{received}");
        assert!(received.contains("stopped arriving"), "{received}");
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let db = TestDb::empty().await;
    let server =
        server(&db, &[("MMT_KEEP_ALIVE_TIMEOUT_SECS", "1"), ("MMT_HEADER_READ_TIMEOUT_SECS", "10")]).await;

    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    send(&mut stream, "GET /api/no-such-thing/ HTTP/1.1\r\nhost: t\r\n\r\n").await;
    let (status, head, _) = response(&mut stream).await;
    assert_eq!(status, 404, "{head}");
    let idle_from = Instant::now();
    let (received, closed_at) = until_closed(&mut stream, Duration::from_secs(1) + SLACK).await;
    assert_between(
        closed_at - idle_from,
        Duration::from_millis(900),
        Duration::from_secs(1) + SLACK,
        "closed",
    );
    assert_eq!(received, "");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_header_timeout() {
    let db = TestDb::empty().await;
    let server =
        server(&db, &[("MMT_KEEP_ALIVE_TIMEOUT_SECS", "4"), ("MMT_HEADER_READ_TIMEOUT_SECS", "1")]).await;

    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    send(&mut stream, "GET /api/no-such-thing/ HTTP/1.1\r\nhost: t\r\n\r\n").await;
    assert_eq!(response(&mut stream).await.0, 404);
    tokio::time::sleep(Duration::from_millis(1800)).await;
    send(&mut stream, "GET /api/no-such-thing/ HTTP/1.1\r\nhost: t\r\n\r\n").await;
    assert_eq!(response(&mut stream).await.0, 404, "the idle connection was still usable");
}

#[tokio::test]
async fn hundreds_of_slowloris_connections_do_not_starve_a_real_client() {
    let db = TestDb::migrated().await;
    let server = server(
        &db,
        &[
            ("MMT_MAX_CONNECTIONS", "8"),
            ("MMT_HEADER_READ_TIMEOUT_SECS", "1"),
            ("MMT_KEEP_ALIVE_TIMEOUT_SECS", "5"),
        ],
    )
    .await;

    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        send(&mut stream, "GET /api/health/ HTTP/1.1\r\nhost: t\r\n").await;
        slow.push(stream);
    }

    let started = Instant::now();
    let mut client = TcpStream::connect(server.addr).await.unwrap();
    send(&mut client, "GET /api/health/ HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n").await;
    let (status, head, body) = response(&mut client).await;
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(started.elapsed() < Duration::from_secs(3), "health took {:?}", started.elapsed());

    // None of the stalled connections is held past the header timeout.
    let closing = slow.iter_mut().map(|s| until_closed(s, Duration::from_secs(1) + SLACK));
    for (received, _) in futures_util::future::join_all(closing).await {
        assert!(!received.contains("200 OK"), "{received}");
    }
}

/// `app::launch` with a shutdown switch, and the task running it.
async fn launch(state: AppState) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<std::io::Result<()>>) {
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app::launch(acceptor, state, async move {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_lets_a_request_in_progress_finish() {
    let db = TestDb::empty().await;
    let (addr, stop, task) = launch(db.state_with(&[("MMT_SHUTDOWN_GRACE_SECS", "10")])).await;

    let mut idle = TcpStream::connect(addr).await.unwrap();
    send(&mut idle, "GET /api/no-such-thing/ HTTP/1.1\r\nhost: t\r\n\r\n").await;
    assert_eq!(response(&mut idle).await.0, 404);
    let mut busy = TcpStream::connect(addr).await.unwrap();
    send(
        &mut busy,
        "POST /api/health/ HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    stop.send(()).unwrap();
    let (received, _) = until_closed(&mut idle, SLACK).await;
    assert_eq!(received, "", "the idle connection closes at once");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(TcpStream::connect(addr).await.is_err(), "no new connections once shutting down");
    assert!(!task.is_finished(), "the server waits for the request in progress");

    send(&mut busy, "0\r\n\r\n").await;
    let (received, _) = until_closed(&mut busy, SLACK).await;
    assert!(received.starts_with("HTTP/1.1 405"), "the request in progress got a full answer: {received}");
    tokio::time::timeout(SLACK, task).await.expect("the server stops once it is done").unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_drops_connections_still_open_after_the_grace_period() {
    let db = TestDb::empty().await;
    let (addr, stop, task) =
        launch(db.state_with(&[("MMT_SHUTDOWN_GRACE_SECS", "1"), ("MMT_BODY_READ_TIMEOUT_SECS", "60")]))
            .await;

    let mut stuck = TcpStream::connect(addr).await.unwrap();
    send(
        &mut stuck,
        "POST /api/health/ HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(1) + SLACK, task)
        .await
        .expect("the server stops after the grace period")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900), "stopped after {:?}", started.elapsed());
    until_closed(&mut stuck, SLACK).await;
}
