//! End-to-end benchmark: a real `weir serve` (release build) driven by librdkafka, client and
//! broker on the same machine. Reports msgs/s, MB/s, latency percentiles, and the broker's
//! CPU seconds (from /proc) and anonymous memory.
//!
//! `cargo bench --bench e2e` (all scenarios), or name some:
//! `cargo bench --bench e2e -- produce-100B-acks1-p1 consume-100B consume-batched-100B latency`
//! Consumer groups: `consume-group-100B` (subscribe instead of assign, against
//! `consume-100B-p8`), `commit` (OffsetCommit latency at 1,000 commits/s) and `rebalance`
//! (3 members, from the last JoinGroup to the last SyncGroup answer).
//! Sizes: `WEIR_E2E_MESSAGES` (default 1,000,000), `WEIR_E2E_LATENCY_SECS` (default 30).
//! Consumers: `consume-*` take one message per `poll` (the rdkafka crate's API);
//! `consume-batched-*` take up to 1,000 per call through librdkafka's
//! `rd_kafka_consume_batch_queue`, with the same (default) configuration. Why both: with
//! default settings librdkafka fetches 100 B records faster than a per-message `poll` loop
//! (about 1 M msgs/s) drains them, so its local queue reaches `queued.min.messages`
//! (100,000) and `fetch.queue.backoff.ms` (default 1,000) stops fetching for a second, against
//! any broker. An application that drains in batches keeps the queue short and sees what the
//! broker can serve.
//! Extra consumer settings: `WEIR_E2E_CONSUMER="fetch.queue.backoff.ms=10,..."`.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

struct Broker {
    child: Child,
    _dir: tempfile::TempDir,
    bootstrap: String,
}

/// Broker settings from `WEIR_E2E_SET` (whitespace-separated `key=value`), to compare
/// configurations: `WEIR_E2E_SET="num.network.threads=2" cargo bench --bench e2e -- latency`.
fn extra_settings() -> impl Iterator<Item = String> {
    let set = std::env::var("WEIR_E2E_SET").unwrap_or_default();
    set.split_whitespace().map(str::to_owned).collect::<Vec<_>>().into_iter()
}

impl Broker {
    fn start() -> Broker {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
        let data = dir.path().join("data");
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["serve", "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--resp-addr", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&data)
            .args(["--set", "group.initial.rebalance.delay.ms=0"])
            .args(extra_settings().flat_map(|kv| ["--set".to_owned(), kv]))
            .env("WEIR_LOG", std::env::var("WEIR_E2E_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn weir");
        let runtime = data.join("runtime.json");
        let deadline = Instant::now() + Duration::from_secs(30);
        let bootstrap = loop {
            if let Ok(text) = std::fs::read_to_string(&runtime) {
                let v: serde_json::Value = serde_json::from_str(&text).expect("runtime.json");
                if v["pid"].as_u64() == Some(u64::from(child.id())) {
                    break v["kafka_addr"].as_str().expect("addr").to_owned();
                }
            }
            assert!(Instant::now() < deadline, "broker did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Broker { child, _dir: dir, bootstrap }
    }

    /// Broker CPU seconds so far (user + system), from /proc/<pid>/stat.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("stat");
        let fields: Vec<&str> = stat.rsplit_once(')').expect("comm").1.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
        ticks / 100.0 // CLK_TCK is 100 on Linux
    }

    /// The broker's anonymous resident memory (heap and the like, not the page cache).
    fn rss_anon_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0.0);
        kb / 1024.0
    }

    fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &self.bootstrap).create().expect("admin");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(
            admin.create_topics([&NewTopic::new(name, partitions, TopicReplication::Fixed(1))], &AdminOptions::new()),
        )
        .expect("create")[0]
            .as_ref()
            .expect("created");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    failed: AtomicU64,
}

struct Ctx(Arc<Counts>);
impl ClientContext for Ctx {}
impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let c = if result.is_ok() { &self.0.delivered } else { &self.0.failed };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

fn report(name: &str, n: u64, size: usize, elapsed: Duration, cpu: f64) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{name:<28} {n:>9} msgs in {secs:>6.2} s: {:>10.0} msgs/s {:>8.1} MB/s   broker CPU {cpu:>6.2} s ({:.3} s per million)",
        n as f64 / secs,
        n as f64 * size as f64 / secs / 1e6,
        cpu / (n as f64 / 1e6),
    );
}

fn produce(broker: &Broker, topic: &str, n: u64, size: usize, acks: &str, partitions: i32) {
    let counts = Arc::new(Counts::default());
    let p: ThreadedProducer<Ctx> = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("acks", acks)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(Ctx(counts.clone()))
        .expect("producer");
    let payload = vec![b'x'; size];
    let cpu0 = broker.cpu_seconds();
    let start = Instant::now();
    for i in 0..n {
        let partition = (i % partitions as u64) as i32;
        loop {
            match p.send(BaseRecord::<(), [u8]>::to(topic).payload(&payload[..]).partition(partition)) {
                Ok(()) => break,
                Err((_, _)) => std::thread::sleep(Duration::from_micros(200)), // queue full
            }
        }
    }
    p.flush(Duration::from_secs(120)).expect("flush");
    let elapsed = start.elapsed();
    assert_eq!(counts.failed.load(Ordering::Relaxed), 0, "deliveries failed");
    assert_eq!(counts.delivered.load(Ordering::Relaxed), n);
    report(&format!("produce-{size}B-acks{acks}-p{partitions}"), n, size, elapsed, broker.cpu_seconds() - cpu0);
}

/// A consumer with the bench's settings plus `WEIR_E2E_CONSUMER`'s.
fn consumer(broker: &Broker, group: &str) -> BaseConsumer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &broker.bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    for pair in std::env::var("WEIR_E2E_CONSUMER").unwrap_or_default().split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').expect("WEIR_E2E_CONSUMER takes key=value,...");
        c.set(k, v);
    }
    c.create().expect("consumer")
}

fn consume(broker: &Broker, topic: &str, n: u64, size: usize, partitions: i32) {
    let c = consumer(broker, "bench");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        // From the group's committed offset, none here, so from auto.offset.reset=earliest:
        // how applications start. (An explicit Offset::Beginning reads the same records, but
        // librdkafka 2.12 then hands them to the application at about 1 M msgs/s while its
        // fetch queue holds tens of thousands waiting: a client-side path, not the broker.)
        tpl.add_partition_offset(topic, p, Offset::Stored).expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let cpu0 = broker.cpu_seconds();
    let start = Instant::now();
    let mut got = 0u64;
    while got < n {
        match c.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => {
                assert_eq!(m.payload().map(<[u8]>::len), Some(size));
                got += 1;
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => panic!("no message within 10 s after {got}"),
        }
    }
    report(&format!("consume-{size}B-p{partitions}"), n, size, start.elapsed(), broker.cpu_seconds() - cpu0);
}

/// Like [`consume`], but the application takes messages in batches of up to 1,000 through
/// librdkafka's `rd_kafka_consume_batch_queue` (the call confluent-kafka's `consume(n)` makes)
/// instead of one `poll` per message. Same client configuration.
#[allow(unsafe_code)] // FFI: the rdkafka crate does not wrap librdkafka's batch consume
fn consume_batched(broker: &Broker, topic: &str, n: u64, size: usize, partitions: i32) {
    use rdkafka::bindings as rd;
    let c = consumer(broker, "bench-batched");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Stored).expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    // SAFETY: the queue handle comes from the live consumer `c` and is destroyed before it.
    let queue = unsafe { rd::rd_kafka_queue_get_consumer(c.client().native_ptr()) };
    assert!(!queue.is_null(), "consumer queue");
    let mut batch = vec![std::ptr::null_mut::<rd::rd_kafka_message_t>(); 1000];
    let cpu0 = broker.cpu_seconds();
    let start = Instant::now();
    let mut got = 0u64;
    while got < n {
        // SAFETY: `batch` has room for `batch.len()` pointers; each returned message is read
        // and then destroyed exactly once.
        let count = unsafe { rd::rd_kafka_consume_batch_queue(queue, 10_000, batch.as_mut_ptr(), batch.len()) };
        assert!(count > 0, "no message within 10 s after {got} (returned {count})");
        for &m in &batch[..count as usize] {
            // SAFETY: librdkafka returned `m` as a valid message it owns until destroyed.
            unsafe {
                assert_eq!((*m).err, rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR, "consume error");
                assert_eq!((*m).len, size);
                rd::rd_kafka_message_destroy(m);
            }
        }
        got += count as u64;
    }
    let elapsed = start.elapsed();
    // SAFETY: the handle from rd_kafka_queue_get_consumer, released once.
    unsafe { rd::rd_kafka_queue_destroy(queue) };
    report(&format!("consume-batched-{size}B-p{partitions}"), n, size, elapsed, broker.cpu_seconds() - cpu0);
}

/// Like [`consume`], but as a group member (subscribe): the cost of consuming in a group.
fn consume_in_group(broker: &Broker, topic: &str, n: u64, size: usize) {
    let c = consumer(broker, "bench-group");
    c.subscribe(&[topic]).expect("subscribe");
    let start = Instant::now();
    let cpu0 = broker.cpu_seconds();
    let mut got = 0u64;
    let mut last = Instant::now();
    while got < n {
        // poll also returns None after serving a rebalance event.
        match c.poll(Duration::from_secs(1)) {
            Some(Ok(m)) => {
                assert_eq!(m.payload().map(<[u8]>::len), Some(size));
                got += 1;
                last = Instant::now();
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => assert!(last.elapsed() < Duration::from_secs(10), "no message within 10 s after {got}"),
        }
    }
    // Includes joining the group (one JoinGroup/SyncGroup round, no initial delay here).
    report(&format!("consume-group-{size}B"), n, size, start.elapsed(), broker.cpu_seconds() - cpu0);
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    (pct(0.5), pct(0.99), pct(0.999), pct(1.0))
}

/// Synchronous OffsetCommits at `rate`/s for `secs`, each timed from call to answer.
fn commit_latency(broker: &Broker, rate: u64, secs: u64) {
    broker.create_topic("commits", 1);
    let c = consumer(broker, "bench-commit");
    let total = rate * secs;
    let epoch = Instant::now();
    let cpu0 = broker.cpu_seconds();
    let mut latencies = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = Duration::from_nanos(i * 1_000_000_000 / rate);
        while epoch.elapsed() < due {
            std::thread::sleep(Duration::from_micros(50));
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("commits", 0, Offset::Offset(i as i64)).expect("tpl");
        let t = Instant::now();
        c.commit(&tpl, CommitMode::Sync).expect("commit");
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let cpu = broker.cpu_seconds() - cpu0;
    let (p50, p99, p999, max) = percentiles(latencies);
    println!(
        "commit-{rate}/s-{secs}s              p50 {p50:.2} ms  p99 {p99:.2} ms  p99.9 {p999:.2} ms  max {max:.2} ms   broker {:.3} cores",
        cpu / secs as f64
    );
}

/// Three classic members join one group (`group.initial.rebalance.delay.ms=0`): time from
/// the last member's JoinGroup to the last SyncGroup answer, over `rounds` fresh groups.
fn rebalance(broker: &Broker, rounds: usize) {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::{FindCoordinatorRequest, GroupId, JoinGroupRequest, SyncGroupRequest};
    use kafka_protocol::protocol::StrBytes;
    use weir::client::Client;

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let group = GroupId(StrBytes::from_string(format!("rebalance-{round}")));
        let took = rt.block_on(async {
            let mut clients = Vec::new();
            for _ in 0..3 {
                clients.push(Client::connect(&broker.bootstrap).await.expect("connect"));
            }
            let find = FindCoordinatorRequest::default().with_key(group.0.clone());
            clients[0].request(3, &find).await.expect("find coordinator");
            let join = |member: &str| {
                JoinGroupRequest::default()
                    .with_group_id(group.clone())
                    .with_session_timeout_ms(10_000)
                    .with_rebalance_timeout_ms(10_000)
                    .with_member_id(StrBytes::from_string(member.to_owned()))
                    .with_protocol_type(StrBytes::from_static_str("consumer"))
                    .with_protocols(vec![JoinGroupRequestProtocol::default()
                        .with_name(StrBytes::from_static_str("range"))
                        .with_metadata(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0]))])
            };
            // First JoinGroups: each member gets its id (MEMBER_ID_REQUIRED).
            let mut ids = Vec::new();
            for c in &mut clients {
                ids.push(c.request(5, &join("")).await.expect("join").member_id.to_string());
            }
            let started = Arc::new(std::sync::Mutex::new(Instant::now()));
            let mut tasks = Vec::new();
            for (mut c, id) in clients.into_iter().zip(ids.clone()) {
                let join = join(&id);
                let group = group.clone();
                let ids = ids.clone();
                let started = Arc::clone(&started);
                tasks.push(tokio::spawn(async move {
                    *started.lock().expect("lock") = Instant::now(); // the last writer wins
                    let joined = c.request(5, &join).await.expect("join");
                    let assignments = if joined.leader == joined.member_id {
                        ids.iter()
                            .map(|m| {
                                SyncGroupRequestAssignment::default()
                                    .with_member_id(StrBytes::from_string(m.clone()))
                                    .with_assignment(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let sync = SyncGroupRequest::default()
                        .with_group_id(group)
                        .with_generation_id(joined.generation_id)
                        .with_member_id(joined.member_id)
                        .with_assignments(assignments);
                    let synced = c.request(3, &sync).await.expect("sync");
                    assert_eq!(synced.error_code, 0, "sync error");
                    Instant::now()
                }));
            }
            let mut last = None;
            for t in tasks {
                let done = t.await.expect("member task");
                last = Some(last.map_or(done, |l: Instant| l.max(done)));
            }
            let start = *started.lock().expect("lock");
            last.expect("three members").duration_since(start)
        });
        times.push(took.as_secs_f64() * 1e3);
    }
    let (p50, p99, _, max) = percentiles(times);
    println!("rebalance-3-members ({rounds} groups)  p50 {p50:.2} ms  p99 {p99:.2} ms  max {max:.2} ms");
}

/// Steady `rate` msgs/s of 100 B with acks=all and linger 0; end-to-end latency measured by a
/// consumer from the timestamp carried in each payload.
fn latency(broker: &Broker, rate: u64, secs: u64) {
    let topic = "latency";
    broker.create_topic(topic, 1);
    let consumer = consumer(broker, "latency");
    // Warm up: the consumer's assignment, offset lookup and first fetch happen before the
    // timed run, so start-up is not counted as latency.
    let warmup: ThreadedProducer<Ctx> = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create_with_context(Ctx(Arc::new(Counts::default())))
        .expect("producer");
    warmup.send(BaseRecord::<(), [u8]>::to(topic).payload(&[0u8; 8][..])).map_err(|(e, _)| e).expect("warm-up");
    warmup.flush(Duration::from_secs(30)).expect("flush");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).expect("tpl");
    consumer.assign(&tpl).expect("assign");
    match consumer.poll(Duration::from_secs(30)) {
        Some(Ok(_)) => {}
        other => panic!("warm-up message not consumed: {:?}", other.map(|r| r.map(|m| m.offset()))),
    }
    let epoch = Instant::now();
    let total = rate * secs;
    let producer_thread = {
        let bootstrap = broker.bootstrap.clone();
        std::thread::spawn(move || {
            let counts = Arc::new(Counts::default());
            let p: ThreadedProducer<Ctx> = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("acks", "all")
                .set("linger.ms", "0")
                .create_with_context(Ctx(counts))
                .expect("producer");
            let mut payload = [b'x'; 100];
            for i in 0..total {
                let due = Duration::from_nanos(i * 1_000_000_000 / rate);
                while epoch.elapsed() < due {
                    std::thread::sleep(Duration::from_micros(50));
                }
                let sent = epoch.elapsed().as_nanos() as u64;
                payload[..8].copy_from_slice(&sent.to_le_bytes());
                while p.send(BaseRecord::<(), [u8]>::to(topic).payload(&payload[..])).is_err() {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            p.flush(Duration::from_secs(60)).expect("flush");
        })
    };
    let cpu0 = broker.cpu_seconds();
    let mut latencies = Vec::with_capacity(total as usize);
    while (latencies.len() as u64) < total {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => {
                let sent = u64::from_le_bytes(m.payload().expect("payload")[..8].try_into().expect("8 bytes"));
                latencies.push(epoch.elapsed().as_nanos() as u64 - sent);
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => panic!("latency run stalled after {} messages", latencies.len()),
        }
    }
    let cpu = broker.cpu_seconds() - cpu0;
    producer_thread.join().expect("producer");
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)] as f64 / 1e6;
    println!(
        "latency-{rate}/s-{secs}s             p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms   broker {:.3} cores",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0),
        cpu / secs as f64
    );
}

fn main() {
    let selected: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| selected.is_empty() || selected.iter().any(|s| name.starts_with(s.as_str()));
    let n: u64 = std::env::var("WEIR_E2E_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let latency_secs: u64 = std::env::var("WEIR_E2E_LATENCY_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let broker = Broker::start();
    println!(
        "weir e2e benchmark: {} ({} cores)",
        broker.bootstrap,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (acks, partitions) in [("1", 1), ("1", 8), ("all", 1), ("all", 8)] {
        let name = format!("produce-100B-acks{acks}-p{partitions}");
        if wanted(&name)
            || (wanted("consume-100B") || wanted("consume-batched-100B") || wanted("consume-group-100B")) && acks == "1"
        {
            let topic = format!("t100-{acks}-{partitions}");
            broker.create_topic(&topic, partitions);
            produce(&broker, &topic, n, 100, acks, partitions);
            if acks == "1" && wanted("consume-100B") {
                consume(&broker, &topic, n, 100, partitions);
            }
            if acks == "1" && wanted("consume-batched-100B") {
                consume_batched(&broker, &topic, n, 100, partitions);
            }
            if acks == "1" && partitions == 8 && wanted("consume-group-100B") {
                consume_in_group(&broker, &topic, n, 100);
            }
        }
    }
    if wanted("produce-1024B") || wanted("consume-1024B") || wanted("consume-batched-1024B") {
        broker.create_topic("t1k", 1);
        produce(&broker, "t1k", n / 2, 1024, "1", 1);
        if wanted("produce-1024B") || wanted("consume-1024B") {
            consume(&broker, "t1k", n / 2, 1024, 1);
        }
        if wanted("consume-batched-1024B") {
            consume_batched(&broker, "t1k", n / 2, 1024, 1);
        }
    }
    if wanted("latency") {
        latency(&broker, 10_000, latency_secs);
    }
    if wanted("commit") {
        commit_latency(&broker, 1_000, latency_secs.min(10));
    }
    if wanted("rebalance") {
        rebalance(&broker, 20);
    }
    println!("broker RssAnon {:.1} MiB", broker.rss_anon_mib());
}
