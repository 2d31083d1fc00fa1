//! Test support: every test gets its own database on the private MariaDB that `scripts/test.sh`
//! started, loaded from `schema/` and `openemr-fixtures/` exactly as the demo is.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use mmt_sidecar::{
    app::{self, AppState},
    config::Config,
    storage::{self, mmt::migrations},
};
use poem::{
    listener::{Acceptor, Listener, TcpListener},
    test::TestClient,
};
use sqlx::{MySqlPool, mysql::MySqlConnectOptions};

/// The app as the tests reach it: every status an operation answers must be one its spec lists,
/// so the whole suite checks the spec's responses (a 408 for a stalled body is any request's).
pub fn documented_app(state: AppState) -> impl poem::Endpoint {
    use poem::{Endpoint, EndpointExt, IntoResponse};
    app::build_app(state).around(|ep, req| async move {
        let (path, method) = (req.uri().path().to_string(), req.method().to_string());
        let response = ep.call(req).await?.into_response();
        let status = response.status().as_u16();
        if let Some(op) = mmt_sidecar::http::docs::routes().operation(&path, &method) {
            assert!(
                op.responses.contains(&status) || status == 408,
                "{method} {path} ({}) answered {status}, which its spec does not list ({:?})",
                op.id,
                op.responses
            );
        }
        Ok(response)
    })
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The master key of every test configuration: 32 bytes, base64.
pub const TEST_MASTER_KEY: &str = "dGVzdCBtYXN0ZXIga2V5IG9mIG1tdC1zaWRlY2FyISE=";

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_mmt-sidecar")
}

/// `mysql://user:pass@host:port` of the private test server, without a database.
pub fn server_url() -> String {
    std::env::var("MMT_TEST_SERVER_URL").expect(
        "MMT_TEST_SERVER_URL is not set: run the tests with scripts/test.sh, which starts a private MariaDB",
    )
}

/// A lazy pool on a test database. Tests create whole OpenEMR schemas on the shared server while
/// others run, which can stall it for seconds on a loaded two-core machine; a request under test
/// waits that out instead of being told 503 as production would after `MMT_DB_ACQUIRE_TIMEOUT_MS`.
pub fn test_pool(options: MySqlConnectOptions) -> MySqlPool {
    storage::lazy_pool(options.timezone(None), Duration::from_secs(15), 32)
}

/// `redis://host:port/db` of the private test Redis.
pub fn redis_url() -> String {
    std::env::var("MMT_TEST_REDIS_URL").expect(
        "MMT_TEST_REDIS_URL is not set: run the tests with scripts/test.sh, which starts a private Redis",
    )
}

fn sql_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_path(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: MySqlPool,
}

impl TestDb {
    /// A single integer from SQL the test wrote itself.
    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&self.pool).await.unwrap()
    }

    /// Another handle on the same database.
    /// A single text value from SQL the test wrote itself.
    pub async fn scalar_text(&self, sql: &str) -> String {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&self.pool).await.unwrap()
    }

    pub fn clone_handle(&self) -> Self {
        Self { name: self.name.clone(), url: self.url.clone(), pool: self.pool.clone() }
    }

    /// A new, empty database with a unique name.
    pub async fn empty() -> Self {
        // Tests make HTTP clients of their own before any AppState exists.
        app::install_tls_provider();
        let name = format!("mmt_t_{}", uuid::Uuid::new_v4().simple());
        let admin = MySqlPool::connect(&server_url()).await.expect("connect to the private test server");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let url = format!("{}/{name}", server_url());
        let options: MySqlConnectOptions = url.parse().unwrap();
        let pool = test_pool(options);
        Self { name, url, pool }
    }

    /// A database shaped like a demo OpenEMR install: `schema/` plus `openemr-fixtures/`.
    pub async fn openemr() -> Self {
        let db = Self::empty().await;
        let schema = match std::env::var("MMT_TEST_TEMPLATE_DB") {
            Ok(template) => {
                db.copy_real_tables(&template).await;
                Vec::new()
            }
            Err(_) => sql_files("schema"),
        };
        for file in schema.into_iter().chain(sql_files("openemr-fixtures")) {
            let sql = std::fs::read_to_string(&file).unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&db.pool)
                .await
                .unwrap_or_else(|e| panic!("loading {}: {e}", file.display()));
        }
        db
    }

    /// Takes every table `schema/` defines from a database loaded with OpenEMR's real
    /// `database.sql` (definitions and seeded rows), so the suite runs against the real thing.
    async fn copy_real_tables(&self, template: &str) {
        let mut sql = String::new();
        for file in sql_files("schema") {
            let text = std::fs::read_to_string(&file).unwrap();
            for table in text.split("CREATE TABLE `").skip(1).filter_map(|rest| rest.split('`').next()) {
                sql.push_str(&format!(
                    "CREATE TABLE `{0}`.`{table}` LIKE `{template}`.`{table}`; \
                     INSERT INTO `{0}`.`{table}` SELECT * FROM `{template}`.`{table}`;\n",
                    self.name
                ));
            }
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&self.pool)
            .await
            .expect("copy the real OpenEMR tables");
    }

    /// The demo install with the sidecar's migrations applied, as `serve --migrate` leaves it.
    pub async fn migrated() -> Self {
        let db = Self::openemr().await;
        migrations::run(&db.pool).await.expect("migrations apply");
        db
    }

    /// Loads a SQL file with the mariadb client (for dumps with client-side syntax).
    pub fn load_with_client(&self, file: &Path) {
        let url: url_parts::Parts = url_parts::parse(&self.url);
        let input = std::fs::File::open(file).unwrap();
        let status = Command::new("mariadb")
            .args([
                "-h",
                &url.host,
                "-P",
                &url.port,
                "-u",
                &url.user,
                &format!("-p{}", url.password),
                &self.name,
            ])
            .stdin(input)
            .status()
            .expect("mariadb client");
        assert!(status.success(), "loading {} failed", file.display());
    }

    /// The test configuration, with `extra` settings on top (as if set in the environment).
    pub fn config_for(url: &str, extra: &[(&str, &str)]) -> Config {
        let mut vars: std::collections::HashMap<String, String> = [
            ("DATABASE_URL", url),
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("MMT_MAX_BODY_BYTES", "4096"),
            ("MMT_SHUTDOWN_GRACE_SECS", "5"),
            // Every search sweeps the index first, so tests see OpenEMR-side edits at once.
            ("MMT_SEARCH_MAX_STALENESS_MS", "0"),
            ("MMT_MASTER_KEY", TEST_MASTER_KEY),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        vars.retain(|_, v| !v.is_empty());
        Config::from_lookup(move |key| vars.get(key).cloned()).expect("test config is valid")
    }

    pub fn state(&self) -> AppState {
        self.state_with(&[])
    }

    pub fn state_with(&self, extra: &[(&str, &str)]) -> AppState {
        AppState::new(self.pool.clone(), Self::config_for(&self.url, extra))
    }

    /// State for a database this helper did not create; the pool connects lazily.
    pub fn state_for(url: &str) -> AppState {
        let options: MySqlConnectOptions = url.parse().unwrap();
        AppState::new(test_pool(options), Self::config_for(url, &[]))
    }

    pub fn client(&self) -> TestClient<impl poem::Endpoint> {
        TestClient::new(documented_app(self.state()))
    }

    pub fn client_with(&self, extra: &[(&str, &str)]) -> TestClient<impl poem::Endpoint + use<>> {
        TestClient::new(documented_app(self.state_with(extra)))
    }

    /// Environment for running the real binary against this database.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.url.clone()),
            ("LOG_FORMAT", "json".into()),
            ("MMT_MASTER_KEY", TEST_MASTER_KEY.into()),
        ]
    }

    pub fn run_binary(&self, args: &[&str]) -> std::process::Output {
        self.run_binary_with(args, &[])
    }

    /// Runs the binary with `extra` settings on top of this database's.
    pub fn run_binary_with(&self, args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
        Command::new(binary())
            .args(args)
            .env_clear()
            .envs(self.env())
            .envs(extra.iter().copied())
            .output()
            .expect("run mmt-sidecar")
    }
}

pub mod url_parts {
    pub struct Parts {
        pub user: String,
        pub password: String,
        pub host: String,
        pub port: String,
    }

    /// Splits `mysql://user:pass@host:port/db`; test URLs never hold escaped characters.
    pub fn parse(url: &str) -> Parts {
        let rest = url.trim_start_matches("mysql://");
        let (creds, hostpart) = rest.split_once('@').unwrap();
        let (user, password) = creds.split_once(':').unwrap();
        let hostport = hostpart.split('/').next().unwrap();
        let (host, port) = hostport.split_once(':').unwrap();
        Parts { user: user.into(), password: password.into(), host: host.into(), port: port.into() }
    }
}

/// The app on a real socket, for tests that need TCP. Dropping it shuts the server down.
pub struct RunningServer {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl RunningServer {
    pub async fn start(state: AppState) -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
        let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app::launch(acceptor, state, async move {
            let _ = rx.await;
        }));
        Self { addr, _stop: tx }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A MariaDB server of the test's own, which the test may stop and start.
pub struct OwnMariaDb {
    pub dir: PathBuf,
    pub port: u16,
}

impl OwnMariaDb {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("mmt-own-db-{}", uuid::Uuid::new_v4().simple()));
        let port = free_port();
        let db = Self { dir, port };
        db.script(&["start", db.dir.to_str().unwrap(), &port.to_string()]);
        db
    }

    fn script(&self, args: &[&str]) {
        let out = Command::new("bash")
            .arg(repo_path("scripts/db.sh"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success(), "db.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn load(&self, database: &str) {
        self.script(&["load", self.dir.to_str().unwrap(), database]);
    }

    pub fn stop(&self) {
        self.script(&["stop", self.dir.to_str().unwrap()]);
    }

    pub fn restart(&self) {
        self.script(&["start", self.dir.to_str().unwrap(), &self.port.to_string()]);
    }

    pub fn url(&self, database: &str) -> String {
        format!("mysql://mmt:mmt@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for OwnMariaDb {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_path("scripts/db.sh"))
            .args(["stop", self.dir.to_str().unwrap()])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the real binary with `serve` and waits until it answers.
pub async fn spawn_binary(env: Vec<(&'static str, String)>) -> (Child, SocketAddr) {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Command::new(binary())
        .arg("serve")
        .env_clear()
        .envs(env)
        .env("LISTEN_ADDR", addr.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return (child, addr);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!("mmt-sidecar did not start listening on {addr}: {}", String::from_utf8_lossy(&out.stderr));
}
