//! Test fixtures: a data directory, a running server process, and a JSON client.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::http_client::Connection;

pub fn custodia() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custodia"));
    cmd.env_remove("CUSTODIA_ROOT_KEY")
        .env_remove("CUSTODIA_DATABASE_URL")
        .env_remove("CUSTODIA_DATA_DIR");
    cmd
}

/// The PostgreSQL server for tests, if any (see the store crate's suite for the CI rule).
pub fn postgres_url() -> Option<String> {
    std::env::var("CUSTODIA_TEST_POSTGRES_URL").ok()
}

/// A fresh database on the test PostgreSQL server.
pub fn fresh_postgres_database(url: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "custodia_it_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let out = Command::new("psql")
        .arg(url)
        .arg("-qc")
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("psql must be installed to run the PostgreSQL tests");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// A data directory initialised by `custodia init --json`.
pub struct Vault {
    pub dir: tempfile::TempDir,
    pub token: String,
    pub database_url: Option<String>,
    /// The audit checkpoint key init printed (what an operator pins).
    pub audit_key: String,
}

impl Vault {
    pub fn init() -> Self {
        Self::init_with(None)
    }

    pub fn init_with(database_url: Option<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = custodia();
        cmd.args(["init", "--json", "--data-dir"]).arg(dir.path());
        if let Some(url) = &database_url {
            cmd.args(["--database-url", url]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let token = v["admin_token"].as_str().unwrap().to_owned();
        let audit_key = v["audit_public_key"].as_str().unwrap().to_owned();
        Self {
            dir,
            token,
            database_url,
            audit_key,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Makes the SQLite audit log refuse every entry, from outside the server (as a full disk
    /// or a broken replica would), until `mend_audit_log`; returns the connection used, for
    /// the test's own queries.
    pub async fn break_audit_log(&self) -> sqlx::SqlitePool {
        let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", self.path().join("custodia.db").display()))
            .await
            .unwrap();
        sqlx::query(
            "CREATE TRIGGER injected_failure BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        )
        .execute(&db)
        .await
        .unwrap();
        db
    }

    /// Undoes [`Vault::break_audit_log`].
    pub async fn mend_audit_log(db: &sqlx::SqlitePool) {
        sqlx::query("DROP TRIGGER injected_failure").execute(db).await.unwrap();
    }

    pub fn serve(&self) -> Server {
        Server::start(self.path(), self.database_url.as_deref())
    }

    /// A server with these environment variables set.
    pub fn serve_with_env(&self, envs: &[(&str, &str)]) -> Server {
        Server::start_with(
            self.path(),
            self.database_url.as_deref(),
            &[],
            Box::new(std::io::stderr()),
            "info",
            envs,
        )
        .unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// A server whose log (stderr, at `CUSTODIA_LOG=filter`) goes to `log`.
    pub fn serve_logged(&self, log: &Path, filter: &str) -> Server {
        let file = std::fs::File::create(log).unwrap();
        Server::start_with(
            self.path(),
            self.database_url.as_deref(),
            &[],
            Box::new(file),
            filter,
            &[],
        )
        .unwrap_or_else(|e| panic!("server did not start: {e}"))
    }
}

/// A `custodia serve` process; killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// Kept open so the server never writes to a closed pipe.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Server {
    pub fn start(data_dir: &Path, database_url: Option<&str>) -> Self {
        Self::try_start(data_dir, database_url, &[]).unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// Starts `custodia serve` with `extra` arguments; `Err` holds what it printed when it
    /// refused to start. Its log goes on to the test's own output, so a failing test shows it.
    pub fn try_start(data_dir: &Path, database_url: Option<&str>, extra: &[&str]) -> Result<Self, String> {
        Self::start_with(data_dir, database_url, extra, Box::new(std::io::stderr()), "info", &[])
    }

    /// [`Self::try_start`] with the log (at `info`) written to `log`.
    pub fn try_start_logged(data_dir: &Path, extra: &[&str], log: &Path) -> Result<Self, String> {
        let file = std::fs::File::create(log).map_err(|e| e.to_string())?;
        Self::start_with(data_dir, None, extra, Box::new(file), "info", &[])
    }

    /// Starts `custodia serve`, its log (at `filter`) copied to `log`.
    fn start_with(
        data_dir: &Path,
        database_url: Option<&str>,
        extra: &[&str],
        mut log: Box<dyn std::io::Write + Send>,
        filter: &str,
        envs: &[(&str, &str)],
    ) -> Result<Self, String> {
        let mut cmd = custodia();
        cmd.env("CUSTODIA_LOG", filter);
        cmd.envs(envs.iter().copied());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra);
        if let Some(url) = database_url {
            cmd.args(["--database-url", url]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stderr, &mut buf) {
                if n == 0 {
                    break;
                }
                let _ = log.write_all(&buf[..n]);
                let _ = log.flush();
                all.extend_from_slice(&buf[..n]);
            }
            let _ = tx.send(String::from_utf8_lossy(&all).into_owned());
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::parse);
        let Some(Ok(addr)) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            let printed = rx.recv().unwrap_or_default();
            return Err(format!("{line}{printed}"));
        };
        Ok(Self {
            child,
            addr,
            _stdout: stdout,
        })
    }

    /// The next line the server printed after its address (e.g. a second listener's).
    pub fn next_line(&mut self) -> String {
        let mut line = String::new();
        self._stdout.read_line(&mut line).unwrap();
        line
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the process to stop (SIGTERM) and waits: a graceful shutdown.
    pub fn terminate(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// Asks the process to stop (SIGTERM) and waits at most `limit`: whether it stopped
    /// (it is killed if not).
    pub fn terminate_within(mut self, limit: std::time::Duration) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let until = std::time::Instant::now() + limit;
        while std::time::Instant::now() < until {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    /// Ends the process with SIGKILL, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn client(&self, token: &str) -> Client {
        Client {
            conn: Connection::open(self.addr).await.unwrap(),
            token: Some(token.to_owned()),
        }
    }

    pub async fn anonymous(&self) -> Client {
        Client {
            conn: Connection::open(self.addr).await.unwrap(),
            token: None,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON client on one connection.
pub struct Client {
    conn: Connection,
    pub token: Option<String>,
}

impl Client {
    /// A client of any HTTP server (a witness), without a key.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self {
            conn: Connection::open(addr).await.unwrap(),
            token: None,
        }
    }

    /// A request with a text body; the answer as text.
    pub async fn text(&mut self, method: &str, path: &str, body: &str) -> (u16, String) {
        let reply = self
            .conn
            .send(method, path, self.token.as_deref(), Some(body.as_bytes().to_vec()), &[])
            .await
            .unwrap();
        (reply.status, String::from_utf8_lossy(&reply.body).into_owned())
    }

    pub async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.raw(method, path, body).await
    }

    pub async fn raw(&mut self, method: &str, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
        let reply = self
            .conn
            .send(method, path, self.token.as_deref(), body, &[])
            .await
            .unwrap();
        let value = if reply.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&reply.body).unwrap_or_else(|_| {
                panic!(
                    "non-JSON answer {}: {}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                )
            })
        };
        assert!(reply.status < 500, "{method} {path} answered {}: {value}", reply.status);
        if reply.status >= 400 {
            assert!(
                value["error"]["code"].is_string() && value["error"]["message"].is_string(),
                "error shape: {value}"
            );
        }
        (reply.status, value)
    }

    pub async fn get_with_headers(&mut self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        self.send_with_headers("GET", path, None, headers).await
    }

    pub async fn post_with_headers(&mut self, path: &str, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
        self.send_with_headers("POST", path, Some(body), headers).await
    }

    pub async fn send_with_headers(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        let reply = self
            .conn
            .send(method, path, self.token.as_deref(), body, headers)
            .await
            .unwrap();
        let value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        assert!(reply.status < 500, "{method} {path} answered {}: {value}", reply.status);
        (reply.status, value)
    }

    /// A request whose answer may be a 5xx (for fail-closed tests).
    pub async fn raw_unchecked(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        let reply = self
            .conn
            .send(method, path, self.token.as_deref(), body, &[])
            .await
            .unwrap();
        (reply.status, serde_json::from_slice(&reply.body).unwrap_or(Value::Null))
    }

    /// A request with any body and headers; the answer's status, headers and text (for the
    /// web pages).
    pub async fn page(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, hyper::HeaderMap, String) {
        let reply = self
            .conn
            .send(
                method,
                path,
                self.token.as_deref(),
                body.map(|b| b.as_bytes().to_vec()),
                headers,
            )
            .await
            .unwrap();
        assert!(reply.status < 500, "{method} {path} answered {}", reply.status);
        (
            reply.status,
            reply.headers,
            String::from_utf8_lossy(&reply.body).into_owned(),
        )
    }

    /// The decisions (`allow`, `deny`) of the audit log's latest 100 entries of `action`,
    /// read with this client's key (which needs `read_audit`).
    pub async fn audit_decisions(&mut self, action: &str) -> Vec<String> {
        let (status, events) = self.get(&format!("/v1/audit/events?action={action}&limit=100")).await;
        assert_eq!(status, 200, "{events}");
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["entry"]["decision"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn get(&mut self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    pub async fn post(&mut self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body)).await
    }

    /// Creates a principal with `roles` and returns its API key.
    pub async fn principal(&mut self, name: &str, roles: &[&str]) -> String {
        let (status, v) = self
            .post("/v1/principals", serde_json::json!({"name": name, "roles": roles}))
            .await;
        assert_eq!(status, 201, "{v}");
        v["api_key"].as_str().unwrap().to_owned()
    }
}

/// Every file of a directory, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
