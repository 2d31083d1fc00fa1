//! Live-update fan-out latency across replicas. Starts a private MariaDB (scripts/db.sh) and a
//! private Redis on free ports, applies the sidecar's migrations, and builds two replicas in this
//! process sharing both: replica B serves HTTP on loopback with BENCH_CLIENTS SSE clients
//! (`GET /api/events/`, reqwest) connected to it; replica A, which no client is connected to,
//! publishes BENCH_EVENTS `job.progress` events, each written to `mmt_events` (autocommit) and
//! then fanned out through Redis. For every event and client, the time from the commit of the
//! event's row to the client parsing it off the stream is one sample. Two runs: paced at
//! BENCH_RATE events per second, then a burst (each publish right after the previous commit).
//! Prints p50/p99/max over all deliveries and any event a client never got. Then chat: BENCH_ROOMS
//! rooms (about an appointment) of 4 members each, every member subscribed on replica B; members
//! post BENCH_CHAT_MESSAGES messages through the chat service on replica A, round-robin over the
//! rooms, paced at BENCH_CHAT_RATE per second and then back to back; a sample is the time from a
//! post returning (committed and published) to a member's subscription yielding it. Everything it
//! starts it stops.
//!
//!   cargo bench --bench event_fanout
//!
//! BENCH_CLIENTS (default 50), BENCH_EVENTS (2000), BENCH_RATE (500), BENCH_ROOMS (50),
//! BENCH_CHAT_MESSAGES (2000), BENCH_CHAT_RATE (100). Needs `redis-server`
//! (Debian's redis-server package; scripts/test.sh installs it). BENCH_KEEP_DIR keeps the MariaDB
//! data directory.

#[path = "support/mod.rs"]
mod support;

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    time::Duration,
};

use futures_util::StreamExt;
use mmt_sidecar::{
    app::{self, AppState},
    config::Config,
    domain::{
        chat::RoomInput,
        event::{NewEvent, TopicFilter},
        user::{Caller, SignInMethod, UserId},
    },
    service::{
        chat::{conversation, rooms},
        events,
        sign_in::{self, LoginAttempt},
    },
    storage::{lazy_pool, mmt::migrations},
};
use poem::listener::{Acceptor, Listener, TcpListener};
use support::{Guard, free_ports, machine, sql};
use tokio::{
    sync::mpsc,
    time::{Instant, sleep_until, timeout},
};

/// A client that has not received every event this long after the last publish gives up.
const SETTLE: Duration = Duration::from_secs(30);

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A private `redis-server`, stopped when dropped.
struct Redis(Child);

impl Redis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package; scripts/test.sh installs it)");
        let redis = Self(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {port}");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn replica(database_url: &str, redis_url: &str) -> AppState {
    let vars = [
        ("DATABASE_URL", database_url),
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("MMT_REDIS_URL", redis_url),
        ("MMT_MASTER_KEY", support::MASTER_KEY),
    ];
    let config = Config::from_lookup(|key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string()))
        .expect("bench config is valid");
    let options: sqlx::mysql::MySqlConnectOptions = database_url.parse().unwrap();
    AppState::new(lazy_pool(options.timezone(None), config.db_acquire_timeout, config.db_pool_size), config)
}

/// One SSE client: reports when its stream is open, then records when each event id arrives
/// until it has `expected` of them (or the stream goes quiet for [`SETTLE`]).
async fn client(url: String, token: String, expected: usize, ready: mpsc::Sender<()>) -> Vec<(u64, Instant)> {
    let resp = reqwest::Client::new().get(url).bearer_auth(token).send().await.expect("SSE request");
    assert_eq!(resp.status(), 200);
    ready.send(()).await.unwrap();
    let mut body = resp.bytes_stream();
    let mut buffer = String::new();
    let mut arrivals = Vec::with_capacity(expected);
    while arrivals.len() < expected {
        let Ok(Some(chunk)) = timeout(SETTLE, body.next()).await else { break };
        let arrived = Instant::now();
        buffer.push_str(std::str::from_utf8(&chunk.expect("SSE chunk")).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if let Some(id) = block.lines().find_map(|l| l.strip_prefix("id:")) {
                arrivals.push((id.trim().parse().unwrap(), arrived));
            }
        }
    }
    arrivals
}

/// Publishes `count` events on `replica` (paced at `rate` per second, or back to back) and
/// returns when each one's row committed.
async fn publish(replica: &AppState, user: UserId, count: u64, rate: Option<u64>) -> HashMap<u64, Instant> {
    let mut conn = replica.pool.acquire().await.unwrap();
    let mut committed = HashMap::new();
    let started = Instant::now();
    for n in 0..count {
        if let Some(rate) = rate {
            sleep_until(started + Duration::from_secs_f64(n as f64 / rate as f64)).await;
        }
        let job = format!("0192f0c3-7c1e-7a55-9d33-{n:012}");
        let event = events::write(&mut conn, NewEvent::job_progress(&job, user, (n % 101) as u8, "step"))
            .await
            .expect("event written");
        committed.insert(event.id, Instant::now());
        events::publish_committed(replica, event);
    }
    committed
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

/// One table row: the samples of every delivery of `committed`'s events (or messages) to the
/// clients (`audience` names them), `expected` deliveries in all.
fn row(
    label: &str,
    committed: &HashMap<u64, Instant>,
    arrivals: &[Vec<(u64, Instant)>],
    audience: &str,
    expected: usize,
) -> String {
    let mut samples: Vec<Duration> = arrivals
        .iter()
        .flatten()
        .filter_map(|(id, at)| committed.get(id).map(|c| at.duration_since(*c)))
        .collect();
    samples.sort_unstable();
    format!(
        "| {label} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |",
        committed.len(),
        audience,
        samples.len(),
        expected - samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        percentile(&samples, 1.0),
    )
}

#[tokio::main]
async fn main() {
    let clients = env_number("BENCH_CLIENTS", 50) as usize;
    let count = env_number("BENCH_EVENTS", 2000);
    let rate = env_number("BENCH_RATE", 500);
    let [db_port, redis_port] = free_ports::<2>();
    let mut guard = Guard::new("mmt-event-fanout");
    let dir = guard.dir.clone();
    guard.start_db(db_port);
    let redis = Redis::start(redis_port);
    let mariadb_version = sql(&dir, "SELECT VERSION()");
    let database_url = format!("mysql://mmt:mmt@127.0.0.1:{db_port}/openemr");
    let redis_url = format!("redis://127.0.0.1:{redis_port}/0");

    let replica_a = replica(&database_url, &redis_url);
    let replica_b = replica(&database_url, &redis_url);
    migrations::run(&replica_a.pool).await.expect("the sidecar's migrations apply");
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app::launch(acceptor, replica_b.clone(), async move {
        let _ = stopped.await;
    }));

    let login =
        LoginAttempt { username: "drgarcia".into(), password: "Physician-Garcia-2".into(), totp_code: None };
    let issued = sign_in::login(&replica_b, login, "127.0.0.1").await.expect("drgarcia signs in");
    let user = issued.caller.user_id;
    let (ready_tx, mut ready) = mpsc::channel(clients);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let url = format!("http://{addr}/api/events/");
            tokio::spawn(client(url, issued.access_token.clone(), 1 + 2 * count as usize, ready_tx.clone()))
        })
        .collect();
    for _ in 0..clients {
        ready.recv().await.unwrap();
    }
    // One unrecorded event, so replica B's Redis subscription and every stream are warm.
    publish(&replica_a, user, 1, None).await;
    sleep_until(Instant::now() + Duration::from_millis(500)).await;

    eprintln!("{clients} SSE clients on replica B; publishing {count} events on replica A at {rate}/s");
    let paced = publish(&replica_a, user, count, Some(rate)).await;
    sleep_until(Instant::now() + Duration::from_secs(1)).await;
    eprintln!("publishing {count} events on replica A back to back");
    let started = Instant::now();
    let burst = publish(&replica_a, user, count, None).await;
    let burst_rate = count as f64 / started.elapsed().as_secs_f64();
    let mut arrivals = Vec::new();
    for task in tasks {
        arrivals.push(task.await.unwrap());
    }
    let chat_rows = chat(&replica_a, &replica_b, &dir, &issued.caller).await;
    let _ = stop.send(());
    let _ = server.await;
    let redis_version = Command::new("redis-server").arg("--version").output().unwrap().stdout;

    println!();
    println!(
        "mmt-sidecar live-update fan-out: 2 replicas in one process, MariaDB {mariadb_version}, {}, {}",
        String::from_utf8_lossy(&redis_version).split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        machine()
    );
    println!(
        "latency from the commit of the event's row on replica A to an SSE client of replica B parsing it; \
         percentiles by nearest rank over every delivery"
    );
    println!();
    println!("| run | events | clients | deliveries | missing | p50 ms | p99 ms | max ms |");
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    let expected = count as usize * clients;
    let audience = clients.to_string();
    println!("{}", row(&format!("paced, {rate}/s"), &paced, &arrivals, &audience, expected));
    println!("{}", row(&format!("burst, {burst_rate:.0}/s"), &burst, &arrivals, &audience, expected));
    println!();
    println!(
        "chat: members subscribed on replica B, posts through the chat service on replica A; latency from \
         the post returning to a member's subscription yielding the message"
    );
    println!();
    println!("| run | messages | rooms × members | deliveries | missing | p50 ms | p99 ms | max ms |");
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    for chat_row in chat_rows {
        println!("{chat_row}");
    }
    drop(redis);
    drop(guard);
}

const MEMBERS: usize = 4;

fn member(id: i64, username: String) -> Caller {
    Caller {
        user_id: UserId(id),
        username,
        first_name: "Chat".into(),
        last_name: "Bench".into(),
        auth_group: "Default".into(),
        facility_id: 0,
        facility: None,
        provider: false,
        method: SignInMethod::Password,
        token_family: None,
        credential: None,
    }
}

/// Collects when each `chat.message` reaches one member, until it has `expected` of them.
async fn member_feed(replica: AppState, caller: Caller, expected: usize) -> Vec<(u64, Instant)> {
    let topics = TopicFilter::parse(["chat"]).unwrap();
    let mut feed = events::subscribe(&replica, caller, None, topics).await.expect("subscribed");
    let mut arrivals = Vec::with_capacity(expected);
    while arrivals.len() < expected {
        let Ok(Ok(Some(event))) = timeout(SETTLE, feed.next()).await else { break };
        if event.kind.as_str() == "chat.message" {
            arrivals.push((event.data["id"].as_u64().unwrap(), Instant::now()));
        }
    }
    arrivals
}

/// Members post `count` messages round-robin over `rooms`, paced at `rate` per second or back to
/// back; returns when each post returned, by message id.
async fn post_all(
    replica: &AppState,
    rooms: &[(u64, Vec<Caller>)],
    count: u64,
    rate: Option<u64>,
) -> HashMap<u64, Instant> {
    let mut committed = HashMap::new();
    let started = Instant::now();
    for n in 0..count as usize {
        if let Some(rate) = rate {
            sleep_until(started + Duration::from_secs_f64(n as f64 / rate as f64)).await;
        }
        let (room, members) = &rooms[n % rooms.len()];
        let author = &members[n / rooms.len() % MEMBERS];
        let posted =
            conversation::post(replica, author, *room, &format!("message {n}")).await.expect("posted");
        committed.insert(posted.id, Instant::now());
    }
    committed
}

/// The chat fan-out runs; their table rows.
async fn chat(
    replica_a: &AppState,
    replica_b: &AppState,
    dir: &std::path::Path,
    opener: &Caller,
) -> Vec<String> {
    let room_count = env_number("BENCH_ROOMS", 50) as usize;
    let count = env_number("BENCH_CHAT_MESSAGES", 2000);
    let rate = env_number("BENCH_CHAT_RATE", 100);
    let values: Vec<String> =
        (0..room_count * MEMBERS).map(|i| format!("('chatbench{i}', 'Chat', 'Bench', 1, 1)")).collect();
    sql(
        dir,
        &format!(
            "INSERT INTO users (username, fname, lname, active, authorized) VALUES {}",
            values.join(",")
        ),
    );
    let users: Vec<Caller> =
        sql(dir, "SELECT id, username FROM users WHERE username LIKE 'chatbench%' ORDER BY id")
            .lines()
            .map(|l| {
                let (id, name) = l.split_once('\t').unwrap();
                member(id.parse().unwrap(), name.into())
            })
            .collect();
    let eid: i64 =
        sql(dir, "SELECT pc_eid FROM openemr_postcalendar_events WHERE pc_pid = '' LIMIT 1").parse().unwrap();
    let mut rooms = Vec::new();
    for members in users.chunks(MEMBERS) {
        let input = RoomInput {
            pid: None,
            appointment_id: Some(eid),
            title: None,
            members: members.iter().map(|m| m.username.clone()).collect(),
        };
        let room = rooms::create(replica_a, opener, input).await.expect("room opened");
        let id = room.row.id;
        rooms::remove_member(replica_a, opener, id, &opener.username).await.expect("opener leaves");
        rooms.push((id, members.to_vec()));
    }
    let per_member = 2 * count as usize / room_count;
    let feeds: Vec<_> =
        users.iter().map(|u| tokio::spawn(member_feed(replica_b.clone(), u.clone(), per_member))).collect();
    sleep_until(Instant::now() + Duration::from_millis(500)).await;
    eprintln!(
        "{room_count} rooms × {MEMBERS} members on replica B; posting {count} messages on replica A at {rate}/s"
    );
    let paced = post_all(replica_a, &rooms, count, Some(rate)).await;
    sleep_until(Instant::now() + Duration::from_secs(1)).await;
    eprintln!("posting {count} messages on replica A back to back");
    let started = Instant::now();
    let burst = post_all(replica_a, &rooms, count, None).await;
    let burst_rate = count as f64 / started.elapsed().as_secs_f64();
    let mut arrivals = Vec::new();
    for feed in feeds {
        arrivals.push(feed.await.unwrap());
    }
    let shape = format!("{room_count} × {MEMBERS}");
    let expected = count as usize * MEMBERS;
    [("paced", rate as f64, &paced), ("burst", burst_rate, &burst)]
        .into_iter()
        .map(|(run, per_sec, committed)| {
            row(&format!("{run}, {per_sec:.0}/s"), committed, &arrivals, &shape, expected)
        })
        .collect()
}
