// ioredis (npm) against weir's RESP port: its connection handshake (INFO ready check),
// strings, hashes, and pub/sub over topics. Usage: node ioredis_check.js PORT
const Redis = require("ioredis");
const port = Number(process.argv[2]);
const check = (cond, what) => { if (!cond) { throw new Error(`FAIL: ${what}`); } };
(async () => {
  const r = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
  check((await r.ping()) === "PONG", "ping");
  check((await r.set("io-key", "v")) === "OK" && (await r.get("io-key")) === "v", "set/get");
  check((await r.hset("io-hash", "f", "1")) === 1, "hset");
  check(JSON.stringify(await r.hgetall("io-hash")) === JSON.stringify({ f: "1" }), "hgetall");
  const sub = new Redis({ port });
  await sub.subscribe("io-chan");
  const got = new Promise((resolve) => sub.on("message", (channel, message) => resolve([channel, message])));
  check((await r.publish("io-chan", "hi")) === 1, "publish reaches the subscriber");
  const [channel, message] = await got;
  check(channel === "io-chan" && message === "hi", "message");
  r.disconnect();
  sub.disconnect();
  console.log("ioredis: ok");
})().catch((e) => { console.error(e); process.exit(1); });
