//! The RESP port with the `redis` crate against the real binary: handshakes, errors that
//! keep the connection, hostile bytes that close only their connection, authentication, and
//! pub/sub over topics in both directions with Kafka clients.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use redis::Value;

use crate::util::TestBroker;

fn connect(broker: &TestBroker) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{}/", broker.resp_addr)).expect("client");
    client.get_connection_with_timeout(Duration::from_secs(10)).expect("connect")
}

#[test]
fn connection_commands_answer_like_redis() {
    let broker = TestBroker::start(&[]);
    let mut c = connect(&broker);
    assert_eq!(redis::cmd("PING").query::<String>(&mut c).expect("ping"), "PONG");
    assert_eq!(redis::cmd("ECHO").arg("héllo").query::<String>(&mut c).expect("echo"), "héllo");
    assert_eq!(redis::cmd("SELECT").arg(0).query::<String>(&mut c).expect("select"), "OK");
    let e = redis::cmd("SELECT").arg(1).query::<String>(&mut c).expect_err("db 1");
    assert!(e.to_string().contains("DB index is out of range"), "{e}");
    redis::cmd("CLIENT").arg("SETNAME").arg("tester").query::<()>(&mut c).expect("setname");
    assert_eq!(redis::cmd("CLIENT").arg("GETNAME").query::<String>(&mut c).expect("getname"), "tester");
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut c).expect("id");
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).expect("list");
    assert!(list.contains(&format!("id={id} ")) && list.contains("name=tester"), "{list}");
    let count: i64 = redis::cmd("COMMAND").arg("COUNT").query(&mut c).expect("count");
    assert!(count > 10);
    let info: String = redis::cmd("INFO").arg("server").query(&mut c).expect("info");
    assert!(info.contains("redis_version:") && info.contains("# Server"), "{info}");
    let cfg: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("save").query(&mut c).expect("config");
    assert_eq!(cfg, ["save", ""]);
    // Errors are Redis's, and the connection stays usable.
    let e = redis::cmd("NOSUCHCMD").arg("a").query::<String>(&mut c).expect_err("unknown");
    assert!(e.to_string().contains("unknown command 'NOSUCHCMD', with args beginning with: 'a'"), "{e}");
    let e = redis::cmd("ECHO").query::<String>(&mut c).expect_err("arity");
    assert!(e.to_string().contains("wrong number of arguments for 'echo' command"), "{e}");
    assert_eq!(redis::cmd("PING").arg("still").query::<String>(&mut c).expect("ping"), "still");
    // HELLO 3 switches to RESP3 and answers with a map.
    let hello: Value = redis::cmd("HELLO").arg(3).query(&mut c).expect("hello");
    assert!(matches!(hello, Value::Map(_)), "{hello:?}");
    let e = redis::cmd("HELLO").arg(4).query::<Value>(&mut c).expect_err("proto 4");
    assert!(e.to_string().contains("NOPROTO"), "{e}");
}

#[test]
fn pipelined_and_inline_commands_are_answered_in_order() {
    let broker = TestBroker::start(&[]);
    let mut s = std::net::TcpStream::connect(broker.resp_addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(b"PING\r\n*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\nECHO \"x y\"\r\n").expect("write");
    let want = b"+PONG\r\n$3\r\nabc\r\n$3\r\nx y\r\n";
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got).expect("read");
    assert_eq!(&got[..], want);
    // One pipeline mixing runs of GETs (answered together) with SETs and DELs: every reply in
    // order, and each GET sees the writes before it in the pipeline.
    let mut pipeline = Vec::new();
    for args in [
        &["GET", "a"][..],
        &["SET", "a", "1"],
        &["SET", "b", "22"],
        &["GET", "a"],
        &["GET", "b"],
        &["GET", "c"],
        &["DEL", "a"],
        &["GET", "a"],
        &["get", "b"],
        &["GET", "b", "extra"],
    ] {
        pipeline.extend(frame(args));
    }
    s.write_all(&pipeline).expect("write pipeline");
    let want = "$-1\r\n+OK\r\n+OK\r\n$1\r\n1\r\n$2\r\n22\r\n$-1\r\n:1\r\n$-1\r\n$2\r\n22\r\n\
                -ERR wrong number of arguments for 'get' command\r\n";
    assert_eq!(String::from_utf8_lossy(&read_until(&mut s, b"command\r\n")), want);
}

#[test]
fn garbage_and_oversized_requests_close_only_their_connection() {
    let broker = TestBroker::start(&["resp.proto-max-bulk-len=1024"]);
    let mut healthy = connect(&broker);
    for bad in [&b"*1\r\n$99999999999\r\n"[..], b"*2\r\n$4\r\nECHO\r\n$2000\r\n", b"*1\r\nxyz\r\n", b"\"unbalanced\r\n"]
    {
        let mut s = std::net::TcpStream::connect(broker.resp_addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        s.write_all(bad).expect("write");
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply); // the server closes after its error reply
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("-ERR Protocol error"), "{bad:?} -> {reply:?}");
    }
    assert_eq!(redis::cmd("PING").query::<String>(&mut healthy).expect("ping"), "PONG");
}

#[test]
fn a_password_is_enforced_with_redis_errors() {
    let broker = TestBroker::start(&["resp.requirepass=s3cret"]);
    let mut c = connect(&broker);
    let e = redis::cmd("PING").query::<String>(&mut c).expect_err("noauth");
    assert!(e.to_string().contains("NOAUTH"), "{e}");
    let e = redis::cmd("AUTH").arg("wrong").query::<String>(&mut c).expect_err("wrongpass");
    assert!(e.to_string().contains("WRONGPASS"), "{e}");
    assert_eq!(redis::cmd("AUTH").arg("s3cret").query::<String>(&mut c).expect("auth"), "OK");
    assert_eq!(redis::cmd("PING").query::<String>(&mut c).expect("ping"), "PONG");
    // HELLO with AUTH on a fresh connection, and a URL with the password.
    let mut s = std::net::TcpStream::connect(broker.resp_addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(b"HELLO 3 AUTH default s3cret\r\nPING\r\n").expect("write");
    let mut buf = vec![0u8; 512];
    let mut got = Vec::new();
    while !got.ends_with(b"+PONG\r\n") {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"%7\r\n"), "{}", String::from_utf8_lossy(&got));
    let client = redis::Client::open(format!("redis://:s3cret@{}/", broker.resp_addr)).expect("client");
    let mut c = client.get_connection().expect("connect with password");
    assert_eq!(redis::cmd("PING").query::<String>(&mut c).expect("ping"), "PONG");
}

/// A RESP request as clients write it: an array of bulk strings.
fn frame(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Reads from `s` until what was read ends with `end`.
fn read_until(s: &mut std::net::TcpStream, end: &[u8]) -> Vec<u8> {
    let (mut buf, mut got) = (vec![0u8; 4096], Vec::new());
    while !got.ends_with(end) {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed after: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// With several RESP threads, connections are spread over them and each sees the others'
/// writes (the views are shared).
#[test]
fn connections_on_several_resp_threads_share_one_keyspace() {
    let broker = TestBroker::start(&["resp.io-threads=3"]);
    let mut conns: Vec<_> = (0..7).map(|_| connect(&broker)).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        redis::cmd("SET").arg(format!("k{i}")).arg(i).query::<()>(c).expect("set");
    }
    for c in &mut conns {
        let id: i64 = redis::cmd("CLIENT").arg("ID").query(c).expect("client id");
        assert!(id > 0);
        for i in 0..7 {
            let v: i64 = redis::cmd("GET").arg(format!("k{i}")).query(c).expect("get");
            assert_eq!(v, i as i64);
        }
    }
}

/// go-redis v9's connection set-up (`baseClient.initConn`), frame for frame — Go cannot be
/// fetched on the CI machines, so its handshake is replayed: HELLO 3 with AUTH and SETNAME,
/// then a pipeline with CLIENT SETNAME, then a pipeline of the two CLIENT SETINFO calls.
#[test]
fn go_redis_v9_handshake_is_answered() {
    let broker = TestBroker::start(&["resp.requirepass=s3cret"]);
    let mut s = std::net::TcpStream::connect(broker.resp_addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(&frame(&["hello", "3", "auth", "default", "s3cret", "setname", "orders-svc"])).expect("hello");
    let hello = read_until(&mut s, b"modules\r\n*0\r\n");
    assert!(hello.starts_with(b"%7\r\n"), "{}", String::from_utf8_lossy(&hello));
    s.write_all(&frame(&["client", "setname", "orders-svc"])).expect("setname");
    assert_eq!(read_until(&mut s, b"\r\n"), b"+OK\r\n");
    let mut setinfo = frame(&["client", "setinfo", "LIB-NAME", "go-redis(,go1.22.5)"]);
    setinfo.extend(frame(&["client", "setinfo", "LIB-VER", "9.7.0"]));
    s.write_all(&setinfo).expect("setinfo");
    assert_eq!(read_until(&mut s, b"+OK\r\n+OK\r\n"), b"+OK\r\n+OK\r\n");
    // The connection is ready: RESP3 replies, and CLIENT INFO shows what go-redis set.
    s.write_all(&frame(&["get", "nothing-here"])).expect("get");
    assert_eq!(read_until(&mut s, b"\r\n"), b"_\r\n");
    s.write_all(&frame(&["client", "info"])).expect("client info");
    let info = String::from_utf8(read_until(&mut s, b"\n\r\n")).expect("utf-8");
    for field in ["name=orders-svc", "lib-name=go-redis(,go1.22.5)", "lib-ver=9.7.0", "resp=3"] {
        assert!(info.contains(field), "{field} missing: {info}");
    }
}

/// Named users (`resp.users`): each authenticates with its own password, the default user
/// is off without requirepass, and CLIENT LIST shows who is connected.
#[test]
fn named_users_authenticate_with_their_own_passwords() {
    let broker = TestBroker::start(&["resp.users=alice:a1:x,bob:b2"]);
    let mut c = connect(&broker);
    let e = redis::cmd("GET").arg("k").query::<Option<String>>(&mut c).expect_err("noauth");
    assert!(e.to_string().contains("NOAUTH"), "{e}");
    for (user, password) in [("alice", "wrong"), ("default", "anything"), ("carol", "a1:x"), ("bob", "a1:x")] {
        let e = redis::cmd("AUTH").arg(user).arg(password).query::<String>(&mut c).expect_err("wrongpass");
        assert!(e.to_string().contains("WRONGPASS"), "{user}: {e}");
    }
    let e = redis::cmd("AUTH").arg("a1:x").query::<String>(&mut c).expect_err("default user is off");
    assert!(e.to_string().contains("WRONGPASS"), "{e}");
    assert_eq!(redis::cmd("AUTH").arg("alice").arg("a1:x").query::<String>(&mut c).expect("auth"), "OK");
    assert_eq!(redis::cmd("SET").arg("k").arg("v").query::<String>(&mut c).expect("set"), "OK");
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).expect("client list");
    assert!(list.contains("user=alice"), "{list}");
    // A client URL with user and password (HELLO 3 AUTH or AUTH user password underneath).
    let client = redis::Client::open(format!("redis://bob:b2@{}/", broker.resp_addr)).expect("client");
    let mut b = client.get_connection().expect("connect as bob");
    assert_eq!(redis::cmd("GET").arg("k").query::<String>(&mut b).expect("get"), "v");
    // A bad entry is refused at start-up with the key's name.
    let out = crate::util::run_weir(&["serve", "--set", "resp.users=alice", "--data-dir", "/nonexistent/weir"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("resp.users"), "{}", String::from_utf8_lossy(&out.stderr));
}

fn kafka_consumer(broker: &TestBroker, topic: &str) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "resp-test")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).expect("tpl");
    c.assign(&tpl).expect("assign");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_runs_over_topics_in_both_directions() {
    let broker = TestBroker::start(&[]);
    // A Redis subscriber on a channel and on a pattern.
    let mut sub_conn = connect(&broker);
    let mut sub = sub_conn.as_pubsub();
    sub.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    sub.subscribe("news").expect("subscribe");
    sub.psubscribe("sport.*").expect("psubscribe");
    let mut c = connect(&broker);
    // PUBSUB sees the subscriber.
    let numsub: Vec<Value> = redis::cmd("PUBSUB").arg("NUMSUB").arg("news").query(&mut c).expect("numsub");
    assert_eq!(numsub.get(1), Some(&Value::Int(1)));
    let channels: Vec<String> = redis::cmd("PUBSUB").arg("CHANNELS").query(&mut c).expect("channels");
    assert_eq!(channels, ["news"]);
    // Redis → Redis and Redis → Kafka.
    let receivers: i64 = redis::cmd("PUBLISH").arg("news").arg("hello").query(&mut c).expect("publish");
    assert_eq!(receivers, 1);
    let m = sub.get_message().expect("message");
    assert_eq!((m.get_channel_name(), m.get_payload::<String>().expect("payload")), ("news", "hello".to_owned()));
    let consumer = kafka_consumer(&broker, "news");
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        assert!(Instant::now() < deadline, "the Kafka consumer never saw the PUBLISHed message");
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            break m.payload().map(|p| String::from_utf8_lossy(p).into_owned());
        }
    };
    assert_eq!(got.as_deref(), Some("hello"));
    // Kafka → Redis, on a topic that did not exist when the pattern subscription began.
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("producer");
    producer
        .send(FutureRecord::<(), str>::to("sport.tennis").payload("ace"), Duration::from_secs(20))
        .await
        .map_err(|(e, _)| e)
        .expect("produce");
    let m = sub.get_message().expect("pmessage");
    assert_eq!(m.get_pattern::<String>().expect("pattern"), "sport.*");
    assert_eq!((m.get_channel_name(), m.get_payload::<String>().expect("payload")), ("sport.tennis", "ace".to_owned()));
    sub.unsubscribe("news").expect("unsubscribe");
    let receivers: i64 = redis::cmd("PUBLISH").arg("news").arg("again").query(&mut c).expect("publish");
    assert_eq!(receivers, 0);
}

#[test]
fn strings_live_in_the_kv_topic() {
    let mut broker = TestBroker::start(&[]);
    let mut c = connect(&broker);
    let mut other = connect(&broker);
    let get = |c: &mut redis::Connection, k: &str| redis::cmd("GET").arg(k).query::<Option<String>>(c).expect("get");
    assert_eq!(redis::cmd("SET").arg("a").arg("1").query::<String>(&mut c).expect("set"), "OK");
    assert_eq!(get(&mut other, "a").as_deref(), Some("1"), "a read on another connection sees the write");
    assert_eq!(
        redis::cmd("SET").arg("a").arg("2").arg("GET").query::<Option<String>>(&mut c).expect("set get").as_deref(),
        Some("1")
    );
    assert_eq!(redis::cmd("SET").arg("a").arg("3").arg("NX").query::<Option<String>>(&mut c).expect("nx"), None);
    assert_eq!(redis::cmd("SET").arg("new").arg("x").arg("XX").query::<Option<String>>(&mut c).expect("xx"), None);
    let e = redis::cmd("SET").arg("a").arg("1").arg("EX").arg(10).query::<String>(&mut c).expect_err("ex");
    assert!(e.to_string().contains("do not expire"), "{e}");
    redis::cmd("MSET").arg("b").arg("20").arg("c").arg("30").query::<()>(&mut c).expect("mset");
    let all: Vec<Option<String>> = redis::cmd("MGET").arg("a").arg("b").arg("c").arg("zz").query(&mut c).expect("mget");
    assert_eq!(all, [Some("2".to_owned()), Some("20".to_owned()), Some("30".to_owned()), None]);
    assert_eq!(redis::cmd("EXISTS").arg("a").arg("b").arg("zz").query::<i64>(&mut c).expect("exists"), 2);
    assert_eq!(redis::cmd("STRLEN").arg("b").query::<i64>(&mut c).expect("strlen"), 2);
    assert_eq!(redis::cmd("TYPE").arg("b").query::<String>(&mut c).expect("type"), "string");
    assert_eq!(redis::cmd("TTL").arg("b").query::<i64>(&mut c).expect("ttl"), -1);
    assert_eq!(redis::cmd("PTTL").arg("zz").query::<i64>(&mut c).expect("pttl"), -2);
    assert_eq!(redis::cmd("DEL").arg("a").arg("zz").query::<i64>(&mut c).expect("del"), 1);
    assert_eq!(get(&mut other, "a"), None);
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut c).expect("dbsize"), 2);
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).expect("keys");
    keys.sort();
    assert_eq!(keys, ["b", "c"]);
    // The view is rebuilt from the log on start.
    broker.stop();
    broker.restart();
    let mut c = connect(&broker);
    assert_eq!(get(&mut c, "b").as_deref(), Some("20"));
    assert_eq!(get(&mut c, "a"), None);
}

#[test]
fn scan_returns_every_key_of_ten_thousand() {
    let broker = TestBroker::start(&[]);
    let mut c = connect(&broker);
    let mut pipe = redis::pipe();
    for i in 0..10_000 {
        pipe.cmd("SET").arg(format!("key:{i}")).arg(i).ignore();
    }
    pipe.query::<()>(&mut c).expect("sets");
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_owned();
    let mut calls = 0;
    loop {
        let (next, keys): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("MATCH")
            .arg("key:*")
            .arg("COUNT")
            .arg(500)
            .query(&mut c)
            .expect("scan");
        seen.extend(keys);
        calls += 1;
        // Keys written during the scan do not disturb it.
        redis::cmd("SET").arg(format!("other:{calls}")).arg(1).query::<()>(&mut c).expect("set");
        if next == "0" {
            break;
        }
        cursor = next;
        assert!(calls < 10_000, "SCAN never finished");
    }
    assert_eq!(seen.len(), 10_000, "every key once: {} seen in {calls} calls", seen.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashes_are_compacted_topics_shared_with_kafka_clients() {
    let broker = TestBroker::start(&[]);
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("admin");
    let topic = rdkafka::admin::NewTopic::new("users", 1, rdkafka::admin::TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact");
    admin.create_topics(&[topic], &rdkafka::admin::AdminOptions::new()).await.expect("create");
    // Kafka → Redis.
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("producer");
    for (k, v) in [("u1", "alice"), ("u2", "bob"), ("u1", "alice2")] {
        producer
            .send(FutureRecord::to("users").key(k).payload(v), Duration::from_secs(20))
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
    }
    let mut c = connect(&broker);
    assert_eq!(
        redis::cmd("HGET").arg("users").arg("u1").query::<Option<String>>(&mut c).expect("hget").as_deref(),
        Some("alice2")
    );
    assert_eq!(redis::cmd("HLEN").arg("users").query::<i64>(&mut c).expect("hlen"), 2);
    assert_eq!(redis::cmd("HEXISTS").arg("users").arg("u2").query::<i64>(&mut c).expect("hexists"), 1);
    assert_eq!(redis::cmd("HSTRLEN").arg("users").arg("u2").query::<i64>(&mut c).expect("hstrlen"), 3);
    // Redis → Kafka: HSET is a record, HDEL a tombstone.
    assert_eq!(
        redis::cmd("HSET")
            .arg("users")
            .arg("u3")
            .arg("carol")
            .arg("u2")
            .arg("bobby")
            .query::<i64>(&mut c)
            .expect("hset"),
        1
    );
    assert_eq!(redis::cmd("HDEL").arg("users").arg("u1").arg("nobody").query::<i64>(&mut c).expect("hdel"), 1);
    let all: std::collections::BTreeMap<String, String> =
        redis::cmd("HGETALL").arg("users").query(&mut c).expect("hgetall");
    assert_eq!(
        all,
        [("u2", "bobby"), ("u3", "carol")].map(|(k, v)| (k.to_owned(), v.to_owned())).into_iter().collect()
    );
    let vals: Vec<Option<String>> = redis::cmd("HMGET").arg("users").arg("u1").arg("u3").query(&mut c).expect("hmget");
    assert_eq!(vals, [None, Some("carol".to_owned())]);
    let consumer = kafka_consumer(&broker, "users");
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while records.len() < 6 {
        assert!(Instant::now() < deadline, "consumed {records:?}");
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let s = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
            records.push((s(m.key()), s(m.payload())));
        }
    }
    assert!(records.contains(&(Some("u3".to_owned()), Some("carol".to_owned()))));
    assert_eq!(records.last(), Some(&(Some("u1".to_owned()), None)), "HDEL is a tombstone");
    // A non-compacted topic is not a hash.
    admin
        .create_topics(
            &[rdkafka::admin::NewTopic::new("plain", 1, rdkafka::admin::TopicReplication::Fixed(1))],
            &rdkafka::admin::AdminOptions::new(),
        )
        .await
        .expect("create");
    let e = redis::cmd("HGET").arg("plain").arg("x").query::<Option<String>>(&mut c).expect_err("wrongtype");
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
    assert_eq!(redis::cmd("TYPE").arg("users").query::<String>(&mut c).expect("type"), "hash");
}
