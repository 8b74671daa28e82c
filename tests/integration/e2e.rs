//! End to end: the built `assay` binary runs as a child process and is driven from outside, the
//! way an operator or a client in another language would, with the real `grpcurl` and a Python
//! client generated from `proto/` at run time.
//!
//! The tools come from the virtualenv that `scripts/test` prepares (`ASSAY_TEST_VENV`); run the
//! suite through that script.

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long the binary may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the binary may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one grpcurl call may take; the server is local.
const GRPCURL_MAX_TIME: &str = "20";

const SETUP_HINT: &str = "run the suite with `scripts/test`, which installs grpcurl, grpcio and \
                          grpcio-tools into .venv and exports ASSAY_TEST_VENV";

/// The `assay serve` binary running as a child process; killed when dropped.
pub(crate) struct Assay {
    child: Option<Child>,
    addr: SocketAddr,
    log: PathBuf,
}

impl Assay {
    /// Starts `assay serve` on a free port of 127.0.0.1 with the SQLite database at `db`, and
    /// waits until it accepts connections.
    pub(crate) fn start(db: &Path) -> Assay {
        Assay::start_with(&format!("sqlite://{}", db.display()), db, &[])
    }

    /// Starts `assay serve` on a free port of 127.0.0.1 with the database at `database` and the
    /// extra flags `args`, logging next to `log_base`, and waits until it accepts connections.
    pub(crate) fn start_with(database: &str, log_base: &Path, args: &[&str]) -> Assay {
        Assay::start_logging(database, log_base, args, "info")
    }

    /// [`Assay::start_with`], logging what the `ASSAY_LOG` filter `filter` lets through.
    pub(crate) fn start_logging(
        database: &str,
        log_base: &Path,
        args: &[&str],
        filter: &str,
    ) -> Assay {
        // The port is chosen by binding :0 and releasing it; another process could take it in
        // between, so a start that exits early is tried again on a new port.
        let mut last_log = String::new();
        for attempt in 0..3 {
            let addr = free_port();
            let log = log_base.with_extension(format!("serve-{attempt}-{}.log", addr.port()));
            let child = Command::new(env!("CARGO_BIN_EXE_assay"))
                .arg("serve")
                .arg("--listen")
                .arg(addr.to_string())
                .arg("--database")
                .arg(database)
                .args(args)
                .env("ASSAY_LOG", filter)
                .env_remove("ASSAY_LISTEN")
                .env_remove("ASSAY_DATABASE_URL")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).expect("create the server log"))
                .spawn()
                .expect("spawn the assay binary");
            let mut server = Assay {
                child: Some(child),
                addr,
                log,
            };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(status) => {
                    last_log = server.log_text();
                    eprintln!("assay exited before serving ({status}); trying another port");
                }
            }
        }
        panic!("assay serve did not start; its log:\n{last_log}");
    }

    /// Polls until the port accepts; `Err` with the exit status when the child died first.
    fn wait_ready(&mut self) -> Result<(), ExitStatus> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child_mut().try_wait().expect("poll the child") {
                self.child = None;
                return Err(status);
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                panic!(
                    "assay did not accept connections on {} within {START_TIMEOUT:?}; its log:\n{}",
                    self.addr,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("the server is running")
    }

    /// `host:port`, as grpcurl and the Python client take it.
    pub(crate) fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Kills the process with SIGKILL, like a crash or the OOM killer, and reaps it.
    pub(crate) fn kill(mut self) {
        let mut child = self.child.take().expect("the server is running");
        child.kill().expect("SIGKILL the server");
        child.wait().expect("reap the server");
    }

    /// What the server logged so far.
    pub(crate) fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub(crate) fn terminate(mut self) -> ExitStatus {
        let pid = self.child_mut().id();
        let kill = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(kill.success(), "kill -TERM {pid} failed: {kill}");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child_mut().try_wait().expect("poll the child") {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "assay did not exit within {STOP_TIMEOUT:?} of SIGTERM; its log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Assay {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr")
}

/// The virtualenv prepared by `scripts/test`, when the suite runs through it.
fn test_venv() -> Option<PathBuf> {
    std::env::var_os("ASSAY_TEST_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The grpcurl binary: the virtualenv's, else one on PATH.
pub(crate) fn grpcurl_path() -> PathBuf {
    if let Some(venv) = test_venv() {
        let path = venv.join("bin").join("grpcurl");
        if path.is_file() {
            return path;
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let path = dir.join("grpcurl");
            if path.is_file() {
                return path;
            }
        }
    }
    panic!("grpcurl not found (neither $ASSAY_TEST_VENV/bin/grpcurl nor on PATH): {SETUP_HINT}");
}

/// Runs `grpcurl -plaintext <args...>`.
fn grpcurl(args: &[&str]) -> Output {
    Command::new(grpcurl_path())
        .args(["-plaintext", "-max-time", GRPCURL_MAX_TIME])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run grpcurl")
}

/// Runs grpcurl and returns its stdout, failing the test (with both outputs) unless it succeeded.
fn grpcurl_ok(args: &[&str]) -> String {
    let out = grpcurl(args);
    assert!(
        out.status.success(),
        "grpcurl {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("grpcurl prints UTF-8")
}

/// Runs a unary call with a JSON request and parses the JSON response.
fn call(addr: &str, method: &str, request: &str) -> Value {
    let stdout = grpcurl_ok(&["-d", request, addr, method]);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{method} printed no JSON ({e}): {stdout}"))
}

const CREATE_PARIS: &str =
    r#"{"metric": {"name": "mentions-paris", "contains": {"values": ["Paris"]}}}"#;

#[test]
fn grpcurl_lists_every_service_through_reflection() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Assay::start(&dir.path().join("e2e.db"));
    let listed = grpcurl_ok(&[&server.addr(), "list"]);
    let services: Vec<&str> = listed.lines().map(str::trim).collect();
    for expected in crate::fixtures::SERVICES {
        assert!(
            services.contains(expected),
            "{expected} missing from `grpcurl list`:\n{listed}"
        );
    }
}

#[test]
fn grpcurl_health_check_says_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Assay::start(&dir.path().join("e2e.db"));
    let health = call(&server.addr(), "grpc.health.v1.Health/Check", "{}");
    assert_eq!(health["status"], "SERVING", "{health}");
    let service = call(
        &server.addr(),
        "grpc.health.v1.Health/Check",
        r#"{"service": "assay.v1.TestExecutionService"}"#,
    );
    assert_eq!(service["status"], "SERVING", "{service}");
}

#[test]
fn grpcurl_creates_a_metric_and_reads_it_back_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Assay::start(&dir.path().join("e2e.db"));
    let addr = server.addr();
    let created = call(&addr, "assay.v1.MetricService/CreateMetric", CREATE_PARIS);
    let id = created["id"]
        .as_str()
        .expect("created metric has an id")
        .to_string();
    assert!(!id.is_empty());
    assert_eq!(created["name"], "mentions-paris", "{created}");

    let got = call(
        &addr,
        "assay.v1.MetricService/GetMetric",
        r#"{"metric": "mentions-paris"}"#,
    );
    assert_eq!(got["id"], id.as_str(), "{got}");
    assert_eq!(got["name"], "mentions-paris", "{got}");
    assert_eq!(got["scoreType"], "SCORE_TYPE_BINARY", "{got}");
    assert_eq!(
        got["contains"]["values"],
        serde_json::json!(["Paris"]),
        "{got}"
    );

    let by_id = call(
        &addr,
        "assay.v1.MetricService/GetMetric",
        &format!(r#"{{"metric": "{id}"}}"#),
    );
    assert_eq!(by_id["name"], "mentions-paris", "{by_id}");
}

#[test]
fn grpcurl_streams_an_import_that_stores_all_or_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Assay::start(&dir.path().join("e2e.db"));
    let addr = server.addr();
    let method = "assay.v1.TestSetService/ImportTests";

    // Three messages: the new test set, then two pieces of tests.
    let imported = call(
        &addr,
        method,
        r#"{"newTestSet": {"name": "imported"}}
           {"tests": [{"prompt": "capital of Spain?", "expectedResponse": "Madrid"}]}
           {"tests": [{"prompt": "3 + 3?"}, {"prompt": "2 + 2?"}]}"#,
    );
    assert_eq!(imported["importedCount"], "3", "{imported}");
    assert_eq!(imported["testSet"]["testCount"], 3, "{imported}");
    let listed = call(
        &addr,
        "assay.v1.TestSetService/ListTests",
        r#"{"testSet": "imported"}"#,
    );
    let prompts: Vec<&str> = listed["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .map(|t| t["prompt"].as_str().expect("prompt"))
        .collect();
    assert_eq!(prompts, ["capital of Spain?", "3 + 3?", "2 + 2?"]);

    // A bad test in the last message: nothing is stored, not even the test set.
    let out = grpcurl(&[
        "-d",
        r#"{"newTestSet": {"name": "doomed"}} {"tests": [{"prompt": "fine"}]} {"tests": [{"prompt": ""}]}"#,
        &addr,
        method,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("InvalidArgument") && stderr.contains("tests[1].prompt"),
        "{stderr}"
    );
    let out = grpcurl(&[
        "-d",
        r#"{"testSet": "doomed"}"#,
        &addr,
        "assay.v1.TestSetService/GetTestSet",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotFound"),
        "the failed import left its test set behind"
    );
}

#[test]
fn grpcurl_shows_invalid_argument_naming_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Assay::start(&dir.path().join("e2e.db"));
    let out = grpcurl(&[
        "-d",
        r#"{"metric": {"name": "", "contains": {"values": ["Paris"]}}}"#,
        &server.addr(),
        "assay.v1.MetricService/CreateMetric",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "an empty name was accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("InvalidArgument"),
        "no InvalidArgument in:\n{stderr}"
    );
    assert!(
        stderr.contains("metric.name"),
        "the field is not named in:\n{stderr}"
    );
}

#[test]
fn grpcurl_describe_shows_the_proto_doc_comments() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Assay::start(&dir.path().join("e2e.db"));
    let described = grpcurl_ok(&[&server.addr(), "describe", "assay.v1.MetricService"]);
    assert!(described.contains("rpc CreateMetric"), "{described}");
    assert!(
        described.contains("CreateMetric stores a new metric"),
        "doc comments missing:\n{described}"
    );
    let message = grpcurl_ok(&[&server.addr(), "describe", "assay.v1.Metric"]);
    assert!(
        message.contains("Server-assigned UUID"),
        "doc comments missing:\n{message}"
    );
}

#[test]
fn sigterm_stops_the_server_cleanly_and_the_data_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("e2e.db");
    let server = Assay::start(&db);
    let created = call(
        &server.addr(),
        "assay.v1.MetricService/CreateMetric",
        CREATE_PARIS,
    );
    let id = created["id"].as_str().expect("id").to_string();

    let log = server.log.clone();
    let status = server.terminate();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "assay exited with {status} after SIGTERM; its log:\n{text}"
    );

    let again = Assay::start(&db);
    let got = call(
        &again.addr(),
        "assay.v1.MetricService/GetMetric",
        r#"{"metric": "mentions-paris"}"#,
    );
    assert_eq!(got["id"], id.as_str(), "{got}");
    assert_eq!(got["scoreType"], "SCORE_TYPE_BINARY", "{got}");
}

#[test]
fn python_client_generated_from_the_protos_works() {
    let Some(venv) = test_venv() else {
        panic!("ASSAY_TEST_VENV is not set: {SETUP_HINT}");
    };
    let python = venv.join("bin").join("python");
    assert!(
        python.is_file(),
        "{} missing: {SETUP_HINT}",
        python.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/client_test.py");

    let dir = tempfile::tempdir().expect("temp dir");
    let server = Assay::start(&dir.path().join("e2e.db"));
    let out = Command::new(&python)
        .arg(&script)
        .arg(server.addr())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run the Python client test");
    assert!(
        out.status.success(),
        "{} failed ({}):\nstdout:\n{}\nstderr:\n{}\nserver log:\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
}
