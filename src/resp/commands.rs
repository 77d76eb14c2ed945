//! The Redis commands weir answers, with Redis's replies and error messages: connection and
//! administration (PING, HELLO, AUTH, CLIENT, COMMAND, INFO, CONFIG GET, ...) and pub/sub
//! over topics (PUBLISH, SUBSCRIBE, PSUBSCRIBE, ...). One [`Session`] per connection.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::pubsub::{glob_match, Registry, Subscriptions};
use super::{Protocol, Reply};
use crate::broker::{now_ms, Broker, TopicError};
use crate::log::batch::BatchBuilder;
use crate::log::TopicPartition;

/// Shared state of the RESP port: pub/sub counts and the connected clients (CLIENT LIST).
#[derive(Debug, Default)]
pub struct RespState {
    pub registry: Registry,
    clients: Mutex<BTreeMap<u64, ClientInfo>>,
}

/// What CLIENT LIST shows about a connection.
#[derive(Debug, Clone, Default)]
struct ClientInfo {
    addr: String,
    user: String,
    name: String,
    lib_name: String,
    lib_ver: String,
    resp: u8,
    created_ms: i64,
    last_command: &'static str,
}

impl ClientInfo {
    fn line(&self, id: u64, now: i64) -> String {
        format!(
            "id={id} addr={} laddr= fd=0 name={} age={} idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
            self.addr,
            self.name,
            (now - self.created_ms).max(0) / 1000,
            self.last_command,
            self.user,
            self.resp,
            self.lib_name,
            self.lib_ver
        )
    }
}

/// One connection's state.
#[derive(Debug)]
pub struct Session {
    pub id: u64,
    pub protocol: Protocol,
    pub authenticated: bool,
    pub subscriptions: Subscriptions,
    info: ClientInfo,
}

/// What the connection does with a command's result.
#[derive(Debug)]
pub enum Outcome {
    Reply(Reply),
    /// Several replies (SUBSCRIBE answers once per channel).
    Replies(Vec<Reply>),
    /// Reply, then close (QUIT).
    Close(Reply),
}

impl Session {
    pub fn new(id: u64, peer: SocketAddr, broker: &Broker) -> Session {
        let info = ClientInfo {
            addr: peer.to_string(),
            user: "default".to_owned(),
            resp: 2,
            created_ms: now_ms(),
            ..ClientInfo::default()
        };
        broker.resp.clients.lock().unwrap_or_else(|p| p.into_inner()).insert(id, info.clone());
        Session {
            id,
            protocol: Protocol::Resp2,
            authenticated: !auth_required(broker),
            subscriptions: Subscriptions::default(),
            info,
        }
    }

    /// The connection is gone: drop its subscriptions and its CLIENT LIST entry.
    pub fn close(&mut self, broker: &Broker) {
        self.subscriptions.clear(&broker.resp.registry);
        broker.resp.clients.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }

    /// Authenticated as `user` (AUTH, HELLO ... AUTH): CLIENT LIST shows it.
    fn log_in(&mut self, broker: &Broker, user: &[u8]) {
        self.authenticated = true;
        self.info.user = text(user);
        self.publish_info(broker);
    }

    fn publish_info(&self, broker: &Broker) {
        broker.resp.clients.lock().unwrap_or_else(|p| p.into_inner()).insert(self.id, self.info.clone());
    }
}

/// One entry of the command table: Redis's arity (n: exactly n arguments including the name;
/// -n: at least n), flags, and key positions — what COMMAND reports.
struct Spec {
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    first_key: i64,
    last_key: i64,
    step: i64,
    group: &'static str,
    summary: &'static str,
}

const fn spec(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    keys: (i64, i64, i64),
    group: &'static str,
    summary: &'static str,
) -> Spec {
    Spec { name, arity, flags, first_key: keys.0, last_key: keys.1, step: keys.2, group, summary }
}

const NO_KEYS: (i64, i64, i64) = (0, 0, 0);

static COMMANDS: &[Spec] = &[
    spec("ping", -1, &["fast"], NO_KEYS, "connection", "Returns the server's liveliness response."),
    spec("echo", 2, &["fast"], NO_KEYS, "connection", "Returns the given string."),
    spec(
        "hello",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        NO_KEYS,
        "connection",
        "Handshakes with the Redis server.",
    ),
    spec(
        "auth",
        -2,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        NO_KEYS,
        "connection",
        "Authenticates the connection.",
    ),
    spec("select", 2, &["loading", "stale", "fast"], NO_KEYS, "connection", "Changes the selected database."),
    spec("client", -2, &[], NO_KEYS, "connection", "A container for client connection commands."),
    spec("command", -1, &["loading", "stale"], NO_KEYS, "server", "Returns detailed information about all commands."),
    spec("info", -1, &["loading", "stale"], NO_KEYS, "server", "Returns information and statistics about the server."),
    spec("config", -2, &[], NO_KEYS, "server", "A container for server configuration commands."),
    spec(
        "quit",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        NO_KEYS,
        "connection",
        "Closes the connection.",
    ),
    spec(
        "reset",
        1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        NO_KEYS,
        "connection",
        "Resets the connection.",
    ),
    spec(
        "publish",
        3,
        &["pubsub", "loading", "stale", "fast"],
        NO_KEYS,
        "pubsub",
        "Posts a message to a channel (a topic).",
    ),
    spec(
        "subscribe",
        -2,
        &["pubsub", "noscript", "loading", "stale"],
        NO_KEYS,
        "pubsub",
        "Listens for messages published to channels (topics).",
    ),
    spec(
        "psubscribe",
        -2,
        &["pubsub", "noscript", "loading", "stale"],
        NO_KEYS,
        "pubsub",
        "Listens for messages published to channels that match patterns.",
    ),
    spec(
        "unsubscribe",
        -1,
        &["pubsub", "noscript", "loading", "stale"],
        NO_KEYS,
        "pubsub",
        "Stops listening to messages posted to channels.",
    ),
    spec(
        "punsubscribe",
        -1,
        &["pubsub", "noscript", "loading", "stale"],
        NO_KEYS,
        "pubsub",
        "Stops listening to messages published to channels that match patterns.",
    ),
    spec("pubsub", -2, &[], NO_KEYS, "pubsub", "A container for Pub/Sub commands."),
    spec("get", 2, &["readonly", "fast"], (1, 1, 1), "string", "Returns the string value of a key."),
    spec(
        "mget",
        -2,
        &["readonly", "fast"],
        (1, -1, 1),
        "string",
        "Atomically returns the string values of one or more keys.",
    ),
    spec("strlen", 2, &["readonly", "fast"], (1, 1, 1), "string", "Returns the length of a string value."),
    spec(
        "set",
        -3,
        &["write", "denyoom"],
        (1, 1, 1),
        "string",
        "Sets the string value of a key (a record in the kv topic).",
    ),
    spec(
        "mset",
        -3,
        &["write", "denyoom"],
        (1, -1, 2),
        "string",
        "Atomically creates or modifies the string values of one or more keys.",
    ),
    spec("del", -2, &["write"], (1, -1, 1), "generic", "Deletes one or more keys (tombstones)."),
    spec("unlink", -2, &["write", "fast"], (1, -1, 1), "generic", "Deletes one or more keys (tombstones)."),
    spec("exists", -2, &["readonly", "fast"], (1, -1, 1), "generic", "Determines whether one or more keys exist."),
    spec("type", 2, &["readonly", "fast"], (1, 1, 1), "generic", "Determines the type of value stored at a key."),
    spec(
        "ttl",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "Returns the expiration time in seconds of a key (-1: keys do not expire).",
    ),
    spec(
        "pttl",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "Returns the expiration time in milliseconds of a key.",
    ),
    spec("keys", 2, &["readonly"], NO_KEYS, "generic", "Returns all key names that match a pattern."),
    spec("scan", -2, &["readonly"], NO_KEYS, "generic", "Iterates over the key names in the database."),
    spec("dbsize", 1, &["readonly", "fast"], NO_KEYS, "server", "Returns the number of keys in the database."),
    spec(
        "hget",
        3,
        &["readonly", "fast"],
        (1, 1, 1),
        "hash",
        "Returns the value of a field in a hash (a compacted topic).",
    ),
    spec("hmget", -3, &["readonly", "fast"], (1, 1, 1), "hash", "Returns the values of all fields in a hash."),
    spec("hexists", 3, &["readonly", "fast"], (1, 1, 1), "hash", "Determines whether a field exists in a hash."),
    spec("hstrlen", 3, &["readonly", "fast"], (1, 1, 1), "hash", "Returns the length of the value of a field."),
    spec("hlen", 2, &["readonly", "fast"], (1, 1, 1), "hash", "Returns the number of fields in a hash."),
    spec("hkeys", 2, &["readonly"], (1, 1, 1), "hash", "Returns all fields in a hash."),
    spec("hvals", 2, &["readonly"], (1, 1, 1), "hash", "Returns all values in a hash."),
    spec("hgetall", 2, &["readonly"], (1, 1, 1), "hash", "Returns all fields and values in a hash."),
    spec("hscan", -3, &["readonly"], (1, 1, 1), "hash", "Iterates over fields and values of a hash."),
    spec(
        "hset",
        -4,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "hash",
        "Creates or modifies the value of a field in a hash.",
    ),
    spec("hmset", -4, &["write", "denyoom", "fast"], (1, 1, 1), "hash", "Sets the values of multiple fields."),
    spec("hdel", -3, &["write", "fast"], (1, 1, 1), "hash", "Deletes one or more fields and their values from a hash."),
];

/// The command named `name` (any case), with its place in [`COMMANDS`].
fn lookup(name: &[u8]) -> Option<(usize, &'static Spec)> {
    COMMANDS.iter().enumerate().find(|(_, s)| s.name.as_bytes().eq_ignore_ascii_case(name))
}

/// `weir_resp_commands_total` for each of [`COMMANDS`], then for unknown commands: handles
/// registered once, because looking a labelled counter up costs more than a GET does.
fn command_counters() -> &'static [metrics::Counter] {
    static COUNTERS: std::sync::OnceLock<Vec<metrics::Counter>> = std::sync::OnceLock::new();
    COUNTERS.get_or_init(|| {
        let names = COMMANDS.iter().map(|s| s.name).chain(["unknown"]);
        names.map(|name| metrics::counter!(crate::metrics::RESP_COMMANDS, "command" => name)).collect()
    })
}

/// Counts `n` runs of the command named `name` (one of [`COMMANDS`]) in `/metrics`.
pub fn count_command(name: &str, n: u64) {
    let i = lookup(name.as_bytes()).map_or(COMMANDS.len(), |(i, _)| i);
    command_counters()[i].increment(n);
}

fn bulk(s: impl Into<Bytes>) -> Reply {
    Reply::Bulk(s.into())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn wrong_arity(name: &str) -> Reply {
    Reply::error(format!("ERR wrong number of arguments for '{name}' command"))
}

fn unknown_command(name: &str, args: &[Bytes]) -> Reply {
    let shown: String = args.iter().take(3).map(|a| format!("'{}' ", text(a))).collect();
    Reply::error(format!("ERR unknown command '{name}', with args beginning with: {shown}"))
}

fn unknown_subcommand(sub: &[u8], container: &str) -> Reply {
    Reply::error(format!("ERR unknown subcommand '{}'. Try {container} HELP.", text(sub)))
}

/// Whether `args` is `SET key value` with no options, from a session that may run it: such
/// runs are batched by the connection ([`super::kv::set_run`]).
pub fn is_plain_set(s: &Session, args: &[Bytes]) -> bool {
    args.len() == 3 && args[0].eq_ignore_ascii_case(b"set") && s.authenticated && s.subscriptions.count() == 0
}

/// Whether `args` is `GET key` that the session may run: pipelined GETs are answered as a
/// run ([`super::kv::get_run`]).
pub fn is_plain_get(s: &Session, args: &[Bytes]) -> bool {
    args.len() == 2 && args[0].eq_ignore_ascii_case(b"get") && s.authenticated && s.subscriptions.count() == 0
}

impl Session {
    /// Notes the last command run (CLIENT LIST's `cmd=`) for runs answered outside
    /// [`execute`].
    pub fn ran(&mut self, name: &'static str) {
        self.info.last_command = name;
    }
}

/// Runs one command. `args[0]` is the command name.
pub async fn execute(broker: &Arc<Broker>, s: &mut Session, args: Vec<Bytes>) -> Outcome {
    let Some(first) = args.first() else { return Outcome::Replies(Vec::new()) };
    let found = lookup(first);
    command_counters()[found.map_or(COMMANDS.len(), |(i, _)| i)].increment(1);
    let Some((_, spec)) = found else {
        return Outcome::Reply(unknown_command(&text(first), &args[1..]));
    };
    let n = args.len() as i64;
    if (spec.arity > 0 && n != spec.arity) || (spec.arity < 0 && n < -spec.arity) {
        return Outcome::Reply(wrong_arity(spec.name));
    }
    if !s.authenticated && !spec.flags.contains(&"no_auth") {
        return Outcome::Reply(Reply::error("NOAUTH Authentication required."));
    }
    s.info.last_command = spec.name;
    if s.subscriptions.count() > 0
        && s.protocol == Protocol::Resp2
        && !matches!(spec.name, "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "ping" | "quit" | "reset")
    {
        return Outcome::Reply(Reply::error(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        )));
    }
    let args = &args[1..];
    match spec.name {
        "ping" => Outcome::Reply(ping(s, args)),
        "echo" => Outcome::Reply(bulk(args[0].clone())),
        "hello" => Outcome::Reply(hello(broker, s, args)),
        "auth" => Outcome::Reply(auth(broker, s, args)),
        "select" => Outcome::Reply(match text(&args[0]).parse::<i64>() {
            Ok(0) => Reply::ok(),
            Ok(_) => Reply::error("ERR DB index is out of range"),
            Err(_) => Reply::error("ERR value is not an integer or out of range"),
        }),
        "client" => Outcome::Reply(client(broker, s, args)),
        "command" => Outcome::Reply(command(args)),
        "info" => Outcome::Reply(info(broker, args)),
        "config" => Outcome::Reply(config(broker, args)),
        "quit" => Outcome::Close(Reply::ok()),
        "reset" => {
            s.subscriptions.clear(&broker.resp.registry);
            s.protocol = Protocol::Resp2;
            s.authenticated = !auth_required(broker);
            s.info.user = "default".to_owned();
            s.info.name.clear();
            s.info.resp = 2;
            s.publish_info(broker);
            Outcome::Reply(Reply::simple("RESET"))
        }
        "publish" => Outcome::Reply(publish(broker, &args[0], &args[1]).await),
        "subscribe" | "psubscribe" => Outcome::Replies(subscribe(broker, s, spec.name == "psubscribe", args)),
        "unsubscribe" | "punsubscribe" => Outcome::Replies(unsubscribe(broker, s, spec.name == "punsubscribe", args)),
        "pubsub" => Outcome::Reply(pubsub(broker, args)),
        other => match super::kv::execute(broker, other, args).await {
            Some(reply) => Outcome::Reply(reply),
            None => Outcome::Reply(unknown_command(spec.name, args)),
        },
    }
}

fn ping(s: &Session, args: &[Bytes]) -> Reply {
    if args.len() > 1 {
        return wrong_arity("ping");
    }
    if s.subscriptions.count() > 0 && s.protocol == Protocol::Resp2 {
        return Reply::Array(vec![bulk("pong"), bulk(args.first().cloned().unwrap_or_default())]);
    }
    match args.first() {
        Some(m) => bulk(m.clone()),
        None => Reply::simple("PONG"),
    }
}

/// Whether connections must authenticate: a password for the default user
/// (`resp.requirepass`) or named users (`resp.users`) are configured. Otherwise every
/// connection is the default user from the start, as in Redis without a password.
fn auth_required(broker: &Broker) -> bool {
    broker.config.resp_password.is_some() || !broker.config.resp_users.is_empty()
}

/// Whether `password` is `user`'s. The default user has `resp.requirepass`; with named
/// users but no such password the default user is off (Redis's `user default off`); with
/// neither it takes any password (Redis's `nopass`).
fn check_password(broker: &Broker, user: &[u8], password: &[u8]) -> bool {
    if user == b"default" {
        return match broker.config.resp_password.as_deref() {
            Some(p) => p.as_bytes() == password,
            None => !auth_required(broker),
        };
    }
    broker.config.resp_users.iter().any(|(name, p)| name.as_bytes() == user && p.as_bytes() == password)
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

fn auth(broker: &Broker, s: &mut Session, args: &[Bytes]) -> Reply {
    let (user, password) = match args {
        [password] => (&b"default"[..], password),
        [user, password] => (&user[..], password),
        _ => return Reply::error("ERR syntax error"),
    };
    if !auth_required(broker) && args.len() == 1 {
        return Reply::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        );
    }
    if check_password(broker, user, password) {
        s.log_in(broker, user);
        Reply::ok()
    } else {
        Reply::error(WRONGPASS)
    }
}

fn hello(broker: &Broker, s: &mut Session, args: &[Bytes]) -> Reply {
    let mut proto = None;
    let mut rest = args;
    if let Some(v) = args.first() {
        match text(v).parse::<i64>() {
            Ok(2) => proto = Some(Protocol::Resp2),
            Ok(3) => proto = Some(Protocol::Resp3),
            Ok(_) => return Reply::error("NOPROTO unsupported protocol version"),
            Err(_) => return Reply::error("ERR Protocol version is not an integer or out of range"),
        }
        rest = &args[1..];
    }
    let mut name = None;
    while let Some(opt) = rest.first() {
        match text(opt).to_ascii_lowercase().as_str() {
            "auth" if rest.len() >= 3 => {
                let (user, password) = (&rest[1], &rest[2]);
                if !check_password(broker, user, password) {
                    return Reply::error(WRONGPASS);
                }
                s.log_in(broker, user);
                rest = &rest[3..];
            }
            "setname" if rest.len() >= 2 => {
                name = Some(text(&rest[1]));
                rest = &rest[2..];
            }
            _ => return Reply::error(format!("ERR Syntax error in HELLO option '{}'", text(opt))),
        }
    }
    if !s.authenticated {
        return Reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(p) = proto {
        s.protocol = p;
        s.info.resp = if p == Protocol::Resp3 { 3 } else { 2 };
    }
    if let Some(n) = name {
        s.info.name = n;
    }
    s.publish_info(broker);
    Reply::Map(vec![
        (bulk("server"), bulk("redis")),
        (bulk("version"), bulk(REDIS_VERSION)),
        (bulk("proto"), Reply::Integer(if s.protocol == Protocol::Resp3 { 3 } else { 2 })),
        (bulk("id"), Reply::Integer(s.id as i64)),
        (bulk("mode"), bulk("standalone")),
        (bulk("role"), bulk("master")),
        (bulk("modules"), Reply::Array(Vec::new())),
    ])
}

/// The Redis version weir reports to clients (the command set it follows).
const REDIS_VERSION: &str = "7.2.0";

fn client(broker: &Broker, s: &mut Session, args: &[Bytes]) -> Reply {
    let sub = text(&args[0]).to_ascii_lowercase();
    match (sub.as_str(), &args[1..]) {
        ("setname", [name]) => {
            if name.iter().any(|&c| c <= b' ' || c > b'~') {
                return Reply::error("ERR Client names cannot contain spaces, newlines or special characters.");
            }
            s.info.name = text(name);
            s.publish_info(broker);
            Reply::ok()
        }
        ("getname", []) => {
            if s.info.name.is_empty() {
                Reply::Null
            } else {
                bulk(s.info.name.clone())
            }
        }
        ("id", []) => Reply::Integer(s.id as i64),
        ("setinfo", [attr, value]) => {
            match text(attr).to_ascii_lowercase().as_str() {
                "lib-name" => s.info.lib_name = text(value),
                "lib-ver" => s.info.lib_ver = text(value),
                other => return Reply::error(format!("ERR Unrecognized option '{other}'")),
            }
            s.publish_info(broker);
            Reply::ok()
        }
        ("info", []) => Reply::Verbatim { format: *b"txt", text: format!("{}\n", s.info.line(s.id, now_ms())).into() },
        ("list", []) => {
            let now = now_ms();
            let clients = broker.resp.clients.lock().unwrap_or_else(|p| p.into_inner());
            let lines: String = clients.iter().map(|(id, c)| format!("{}\n", c.line(*id, now))).collect();
            Reply::Verbatim { format: *b"txt", text: lines.into() }
        }
        ("setname" | "getname" | "id" | "setinfo" | "info" | "list", _) => {
            Reply::error(format!("ERR wrong number of arguments for 'client|{sub}' command"))
        }
        _ => unknown_subcommand(&args[0], "CLIENT"),
    }
}

fn command_info(c: &Spec) -> Reply {
    Reply::Array(vec![
        bulk(c.name),
        Reply::Integer(c.arity),
        Reply::Set(c.flags.iter().map(|f| Reply::simple(*f)).collect()),
        Reply::Integer(c.first_key),
        Reply::Integer(c.last_key),
        Reply::Integer(c.step),
        Reply::Set(Vec::new()),
        Reply::Set(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
    ])
}

fn command_docs(c: &Spec) -> Reply {
    Reply::Map(vec![(bulk("summary"), bulk(c.summary)), (bulk("since"), bulk("1.0.0")), (bulk("group"), bulk(c.group))])
}

fn command(args: &[Bytes]) -> Reply {
    let Some(sub) = args.first() else { return Reply::Array(COMMANDS.iter().map(command_info).collect()) };
    let names = || -> Vec<&'static Spec> {
        if args.len() == 1 {
            COMMANDS.iter().collect()
        } else {
            args[1..].iter().filter_map(|n| lookup(n).map(|(_, s)| s)).collect()
        }
    };
    match text(sub).to_ascii_lowercase().as_str() {
        "count" => Reply::Integer(COMMANDS.len() as i64),
        "info" => {
            if args.len() == 1 {
                return Reply::Array(COMMANDS.iter().map(command_info).collect());
            }
            Reply::Array(
                args[1..].iter().map(|n| lookup(n).map(|(_, s)| s).map_or(Reply::NullArray, command_info)).collect(),
            )
        }
        "docs" => Reply::Map(names().into_iter().map(|c| (bulk(c.name), command_docs(c))).collect()),
        "list" => Reply::Array(COMMANDS.iter().map(|c| bulk(c.name)).collect()),
        _ => unknown_subcommand(sub, "COMMAND"),
    }
}

fn info(broker: &Broker, args: &[Bytes]) -> Reply {
    let wanted: Vec<String> = args.iter().map(|a| text(a).to_ascii_lowercase()).collect();
    let all = wanted.is_empty() || wanted.iter().any(|w| w == "all" || w == "everything" || w == "default");
    let want = |s: &str| all || wanted.iter().any(|w| w == s);
    let mut out = String::new();
    if want("server") {
        out.push_str(&format!(
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:{}\r\nweir_version:{}\r\n\r\n",
            std::env::consts::OS,
            std::process::id(),
            broker.config.resp_addr.port(),
            env!("CARGO_PKG_VERSION")
        ));
    }
    if want("clients") {
        let n = broker.resp.clients.lock().unwrap_or_else(|p| p.into_inner()).len();
        out.push_str(&format!("# Clients\r\nconnected_clients:{n}\r\nblocked_clients:0\r\n\r\n"));
    }
    if want("stats") {
        out.push_str(&format!(
            "# Stats\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\n\r\n",
            broker.resp.registry.channels(None).len(),
            broker.resp.registry.numpat()
        ));
    }
    if want("keyspace") {
        let keys = keyspace_size(broker);
        out.push_str("# Keyspace\r\n");
        if keys > 0 {
            out.push_str(&format!("db0:keys={keys},expires=0,avg_ttl=0\r\n"));
        }
        out.push_str("\r\n");
    }
    Reply::Verbatim { format: *b"txt", text: out.into() }
}

/// Keys in the kv topic's views as they stand (INFO does not wait for them to catch up).
fn keyspace_size(broker: &Broker) -> usize {
    let Some(t) = broker.topic(&broker.config.kv_topic) else { return 0 };
    (0..t.partitions).filter_map(|p| broker.kv_views.peek(&TopicPartition::new(&t.name, p))).sum()
}

fn config(broker: &Broker, args: &[Bytes]) -> Reply {
    let sub = text(&args[0]).to_ascii_lowercase();
    if sub != "get" {
        return match sub.as_str() {
            "set" | "resetstat" | "rewrite" => {
                Reply::error(format!("ERR CONFIG {} is not supported by weir", sub.to_uppercase()))
            }
            _ => unknown_subcommand(&args[0], "CONFIG"),
        };
    }
    if args.len() < 2 {
        return Reply::error("ERR wrong number of arguments for 'config|get' command");
    }
    let settings: [(&str, String); 8] = [
        ("save", String::new()),
        ("appendonly", "no".into()),
        ("databases", "1".into()),
        ("maxmemory", "0".into()),
        ("maxmemory-policy", "noeviction".into()),
        ("proto-max-bulk-len", broker.config.resp_max_bulk_len.to_string()),
        ("port", broker.config.resp_addr.port().to_string()),
        ("timeout", "0".into()),
    ];
    let mut pairs = Vec::new();
    for (k, v) in &settings {
        if args[1..].iter().any(|p| glob_match(&p.to_ascii_lowercase(), k.as_bytes())) {
            pairs.push((bulk(*k), bulk(v.clone())));
        }
    }
    Reply::Map(pairs)
}

/// The topic a channel names, if it is a valid topic name.
fn channel_topic(channel: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(channel).ok()?;
    crate::log::validate_topic_name(name).ok()?;
    Some(name.to_owned())
}

async fn publish(broker: &Arc<Broker>, channel: &Bytes, message: &Bytes) -> Reply {
    let Some(topic) = channel_topic(channel) else {
        return Reply::error("ERR invalid channel: a channel is a topic name (1-249 of [A-Za-z0-9._-])");
    };
    if broker.topic(&topic).is_none() {
        let (b, t) = (Arc::clone(broker), topic.clone());
        match tokio::task::spawn_blocking(move || b.create_topic(&t, -1, -1, BTreeMap::new(), false)).await {
            Ok(Ok(_)) | Ok(Err(TopicError::AlreadyExists(_))) => {}
            Ok(Err(e)) => return Reply::error(format!("ERR cannot create topic {topic}: {e}")),
            Err(_) => return Reply::error("ERR broker is shutting down"),
        }
    }
    let Some(partition) = broker.partition_named(&topic, 0) else {
        return Reply::error(format!("ERR topic {topic} has no partition 0"));
    };
    let mut b = BatchBuilder::new();
    b.record(now_ms(), None, Some(message), &[]);
    match broker.append(&partition, &b.build()).await {
        Ok(_) => Reply::Integer(broker.resp.registry.receivers(channel) as i64),
        Err(e) => Reply::error(format!("ERR publish failed: {e}")),
    }
}

fn subscription_reply(s: &Session, kind: &'static str, name: Option<Bytes>) -> Reply {
    let items = vec![bulk(kind), name.map_or(Reply::Null, Reply::Bulk), Reply::Integer(s.subscriptions.count() as i64)];
    match s.protocol {
        Protocol::Resp3 => Reply::Push(items),
        Protocol::Resp2 => Reply::Array(items),
    }
}

fn subscribe(broker: &Broker, s: &mut Session, pattern: bool, args: &[Bytes]) -> Vec<Reply> {
    let registry = &broker.resp.registry;
    args.iter()
        .map(|name| {
            if pattern {
                s.subscriptions.psubscribe(registry, broker, name.clone());
                subscription_reply(s, "psubscribe", Some(name.clone()))
            } else {
                s.subscriptions.subscribe(registry, broker, name.clone());
                subscription_reply(s, "subscribe", Some(name.clone()))
            }
        })
        .collect()
}

fn unsubscribe(broker: &Broker, s: &mut Session, pattern: bool, args: &[Bytes]) -> Vec<Reply> {
    let registry = &broker.resp.registry;
    let kind = if pattern { "punsubscribe" } else { "unsubscribe" };
    let names: Vec<Bytes> = if args.is_empty() {
        if pattern {
            s.subscriptions.patterns.iter().cloned().collect()
        } else {
            s.subscriptions.channels.iter().cloned().collect()
        }
    } else {
        args.to_vec()
    };
    if names.is_empty() {
        return vec![subscription_reply(s, kind, None)];
    }
    names
        .into_iter()
        .map(|name| {
            if pattern {
                s.subscriptions.punsubscribe(registry, &name);
            } else {
                s.subscriptions.unsubscribe(registry, &name);
            }
            subscription_reply(s, kind, Some(name))
        })
        .collect()
}

fn pubsub(broker: &Broker, args: &[Bytes]) -> Reply {
    let registry = &broker.resp.registry;
    match (text(&args[0]).to_ascii_lowercase().as_str(), &args[1..]) {
        ("channels", [] | [_]) => {
            Reply::Array(registry.channels(args.get(1).map(|p| &p[..])).into_iter().map(Reply::Bulk).collect())
        }
        ("numsub", channels) => Reply::Array(
            channels.iter().flat_map(|c| [Reply::Bulk(c.clone()), Reply::Integer(registry.numsub(c) as i64)]).collect(),
        ),
        ("numpat", []) => Reply::Integer(registry.numpat() as i64),
        ("channels" | "numpat", _) => Reply::error(format!(
            "ERR wrong number of arguments for 'pubsub|{}' command",
            text(&args[0]).to_ascii_lowercase()
        )),
        _ => unknown_subcommand(&args[0], "PUBSUB"),
    }
}
