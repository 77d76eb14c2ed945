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
