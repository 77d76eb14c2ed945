//! Helpers shared by the integration tests.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use weir::log::batch::BatchBuilder;

/// The `weir` binary built for this test run.
pub fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// Runs `weir` with `args`, returning its output (never panics on a non-zero exit).
pub fn run_weir(args: &[&str]) -> Output {
    weir().args(args).output().expect("run the weir binary")
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64
}

/// A batch of `n` records whose values encode `seed` and the record index, so that a reader
/// can check every record's content.
pub fn numbered_batch(seed: u64, n: usize, value_size: usize, timestamp: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        let mut value = format!("{seed}:{i}:").into_bytes();
        value.resize(value_size.max(value.len()), b'.');
        b.record(timestamp, Some(format!("k{i}").as_bytes()), Some(&value), &[]);
    }
    b.build()
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

/// A real `weir serve` process on port 0 with a temporary data directory. Prints its log if
/// the test panics; SIGTERMs it on drop.
pub struct TestBroker {
    child: Option<std::process::Child>,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    pub kafka_addr: std::net::SocketAddr,
    pub http_addr: std::net::SocketAddr,
    pub resp_addr: std::net::SocketAddr,
}

#[derive(serde::Deserialize)]
struct RuntimeInfo {
    pid: u32,
    kafka_addr: std::net::SocketAddr,
    http_addr: std::net::SocketAddr,
    resp_addr: std::net::SocketAddr,
}

impl TestBroker {
    /// Starts a broker with `--set key=value` settings.
    pub fn start(settings: &[&str]) -> TestBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        let extra = settings.iter().map(|s| s.to_string()).collect();
        let unbound: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let mut b = TestBroker { child: None, dir, extra, kafka_addr: unbound, http_addr: unbound, resp_addr: unbound };
        b.spawn();
        b
    }

    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.path().join("weir.log")
    }

    fn spawn(&mut self) {
        let runtime = self.data_dir().join("runtime.json");
        let _ = std::fs::remove_file(&runtime);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("log file");
        let mut cmd = weir();
        cmd.args(["serve", "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--resp-addr", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(self.data_dir())
            .env("WEIR_LOG", std::env::var("WEIR_TEST_LOG").unwrap_or_else(|_| "info,weir=debug".into()))
            .stdout(std::process::Stdio::null())
            .stderr(log);
        for s in &self.extra {
            cmd.args(["--set", s]);
        }
        let child = cmd.spawn().expect("spawn weir serve");
        let pid = child.id();
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&runtime) {
                if let Ok(info) = serde_json::from_str::<RuntimeInfo>(&text) {
                    if info.pid == pid {
                        self.kafka_addr = info.kafka_addr;
                        self.http_addr = info.http_addr;
                        self.resp_addr = info.resp_addr;
                        return;
                    }
                }
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.dump_log();
                panic!("weir serve exited during startup: {status}");
            }
            assert!(std::time::Instant::now() < deadline, "weir serve did not write runtime.json within 30 s");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn bootstrap(&self) -> String {
        self.kafka_addr.to_string()
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn dump_log(&self) {
        eprintln!("----- weir log ({}) -----\n{}\n----- end of weir log -----", self.log_path().display(), self.log());
    }

    /// Sends `signal` and waits for the process to exit (30 s deadline). Returns its status.
    #[allow(unsafe_code)] // kill(2): std offers only SIGKILL
    fn signal_and_wait(&mut self, signal: i32) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, signal) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("weir did not exit within 30 s of signal {signal}");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Graceful stop (SIGTERM); asserts a clean exit.
    pub fn stop(&mut self) {
        let status = self.signal_and_wait(libc::SIGTERM).expect("running");
        if !status.success() {
            self.dump_log();
            panic!("weir exited with {status} after SIGTERM");
        }
    }

    /// SIGKILL: no shutdown at all.
    pub fn kill(&mut self) {
        self.signal_and_wait(libc::SIGKILL);
    }

    /// Starts the process again on the same data directory (new ports).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill first");
        self.spawn();
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_log();
        }
        if self.child.is_some() {
            self.signal_and_wait(libc::SIGTERM);
        }
    }
}

/// A librdkafka member speaking KIP-848 (`group.protocol=consumer`), subscribed to `topic`.
pub fn kip848_member(
    broker: &TestBroker,
    group: &str,
    topic: &str,
    client_id: &str,
) -> rdkafka::consumer::BaseConsumer {
    let c: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .set("group.protocol", "consumer")
        .set("client.id", client_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    rdkafka::consumer::Consumer::subscribe(&c, &[topic]).expect("subscribe");
    c
}
