"""confluent-kafka (bundled librdkafka) and kafka-python against a real weir: produce with keys,
consume by assignment, admin create/list/delete; consumer groups (classic and KIP-848) with
commits, resumption and the group admin APIs. Usage: python3 python_clients.py HOST:PORT
(the broker should run with group.initial.rebalance.delay.ms=0 and a short
group.consumer.heartbeat.interval.ms, as python.sh starts it)."""
import sys
import time

BROKER = sys.argv[1]
DEADLINE = 30


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAIL: {what}")


def confluent():
    from confluent_kafka import Consumer, OFFSET_BEGINNING, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": BROKER})
    futures = admin.create_topics([NewTopic("ck-admin", num_partitions=3, replication_factor=1,
                                            config={"retention.ms": "3600000"})])
    futures["ck-admin"].result(DEADLINE)
    md = admin.list_topics(timeout=DEADLINE)
    check(len(md.topics["ck-admin"].partitions) == 3, "confluent: 3 partitions listed")

    p = Producer({"bootstrap.servers": BROKER, "compression.type": "zstd"})
    for i in range(100):
        p.produce("ck-data", key=f"k{i}", value=f"v{i}")
    check(p.flush(DEADLINE) == 0, "confluent: all delivered")

    c = Consumer({"bootstrap.servers": BROKER, "group.id": "unused", "enable.auto.commit": False})
    c.assign([TopicPartition("ck-data", 0, OFFSET_BEGINNING)])
    got, end = [], time.time() + DEADLINE
    while len(got) < 100 and time.time() < end:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append((m.key().decode(), m.value().decode()))
    c.close()
    check(got == [(f"k{i}", f"v{i}") for i in range(100)], f"confluent: consumed {len(got)} in order")

    from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource,
                                       ResourceType)
    from confluent_kafka import KafkaException

    # IncrementalAlterConfigs: SET, APPEND to a list, DELETE; an invalid value is INVALID_CONFIG.
    res = ConfigResource(ResourceType.TOPIC, "ck-admin", incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
    ])
    admin.incremental_alter_configs([res])[res].result(DEADLINE)
    described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, "ck-admin")])
    configs = list(described.values())[0].result(DEADLINE)
    check(configs["retention.ms"].value == "7200000", "confluent: incremental SET applied")
    check(configs["cleanup.policy"].value == "delete,compact", "confluent: incremental APPEND applied")
    res = ConfigResource(ResourceType.TOPIC, "ck-admin", incremental_configs=[
        ConfigEntry("retention.ms", "", incremental_operation=AlterConfigOpType.DELETE)])
    admin.incremental_alter_configs([res])[res].result(DEADLINE)
    configs = list(admin.describe_configs([ConfigResource(ResourceType.TOPIC, "ck-admin")]).values())[0].result(DEADLINE)
    check(configs["retention.ms"].value == "604800000", "confluent: incremental DELETE restored the default")
    bad = ConfigResource(ResourceType.TOPIC, "ck-admin", incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    try:
        admin.incremental_alter_configs([bad])[bad].result(DEADLINE)
        check(False, "confluent: an invalid value is refused")
    except KafkaException as e:
        check(e.args[0].code() == 40, f"confluent: INVALID_CONFIG, got {e}")

    missing = ConfigResource(ResourceType.TOPIC, "no-such-topic")
    try:
        admin.describe_configs([missing])[missing].result(DEADLINE)
        check(False, "confluent: describing an unknown topic fails")
    except KafkaException as e:
        check(e.args[0].code() == 3, f"confluent: UNKNOWN_TOPIC_OR_PARTITION, got {e}")

    cluster = admin.describe_cluster().result(DEADLINE)
    check(len(cluster.nodes) == 1 and cluster.controller.id == 0, "confluent: describe_cluster")

    admin.delete_topics(["ck-admin"])["ck-admin"].result(DEADLINE)
    check("ck-admin" not in admin.list_topics(timeout=DEADLINE).topics, "confluent: topic deleted")


def kafka_python():
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=BROKER)
    admin.create_topics([NewTopic("kp-admin", num_partitions=2, replication_factor=1)])
    check("kp-admin" in admin.list_topics(), "kafka-python: topic listed")

    p = KafkaProducer(bootstrap_servers=BROKER, compression_type="gzip")
    for i in range(100):
        p.send("kp-data", key=f"k{i}".encode(), value=f"v{i}".encode())
    p.flush(DEADLINE)

    c = KafkaConsumer(bootstrap_servers=BROKER, group_id=None, enable_auto_commit=False)
    tp = TopicPartition("kp-data", 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got, end = [], time.time() + DEADLINE
    while len(got) < 100 and time.time() < end:
        for records in c.poll(timeout_ms=500).values():
            got.extend((r.key.decode(), r.value.decode()) for r in records)
    c.close()
    check(got == [(f"k{i}", f"v{i}") for i in range(100)], f"kafka-python: consumed {len(got)} in order")

    admin.delete_topics(["kp-admin"])
    check("kp-admin" not in admin.list_topics(), "kafka-python: topic deleted")
    admin.close()


def confluent_classic_group():
    """Two classic-protocol consumers split a 4-partition topic, read 200 records exactly once
    between them and commit; the group admin APIs see the group, its members and offsets."""
    from confluent_kafka import (Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions,
                                 Producer)
    from confluent_kafka.admin import AdminClient, NewTopic

    topic, group = "ck-group", "ck-classic"
    admin = AdminClient({"bootstrap.servers": BROKER})
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(DEADLINE)
    conf = {"bootstrap.servers": BROKER, "group.id": group, "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest",
            "enable.auto.commit": False}
    consumers = [Consumer(conf), Consumer(conf)]

    def owned(c):
        return {tp.partition for tp in c.assignment()}

    # The first member alone gets all four partitions; the second one joining rebalances the
    # group (the first learns of it from its heartbeat and rejoins).
    consumers[0].subscribe([topic])
    end = time.time() + DEADLINE
    while owned(consumers[0]) != {0, 1, 2, 3} and time.time() < end:
        consumers[0].poll(0.2)
    check(owned(consumers[0]) == {0, 1, 2, 3},
          f"confluent classic: a lone member owns all 4 partitions, got {owned(consumers[0])}")
    consumers[1].subscribe([topic])

    # Both members rejoined and synced: non-empty, disjoint, together all four partitions.
    end = time.time() + DEADLINE
    while time.time() < end:
        for c in consumers:
            c.poll(0.2)
        a, b = owned(consumers[0]), owned(consumers[1])
        if a and b and not a & b and a | b == {0, 1, 2, 3}:
            break
    a, b = owned(consumers[0]), owned(consumers[1])
    check(a and b and not a & b and a | b == {0, 1, 2, 3},
          f"confluent classic: two members split 4 partitions, got {sorted(a)} / {sorted(b)}")

    p = Producer({"bootstrap.servers": BROKER})
    for i in range(200):
        p.produce(topic, key=f"k{i}", value=f"v{i}")
    check(p.flush(DEADLINE) == 0, "confluent classic: all delivered")

    seen, end = [], time.time() + DEADLINE
    while len(seen) < 200 and time.time() < end:
        for n, c in enumerate(consumers):
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                seen.append((n, m.partition(), m.key().decode()))
    check(len(seen) == 200 and {k for _, _, k in seen} == {f"k{i}" for i in range(200)},
          f"confluent classic: 200 records seen exactly once, got {len(seen)} "
          f"({len({k for _, _, k in seen})} distinct)")
    check(all(part in (a if n == 0 else b) for n, part, _ in seen),
          "confluent classic: each member read only its own partitions")
    for c in consumers:
        c.commit(asynchronous=False)

    # Described while both members are live: Stable, two members holding all four partitions.
    desc = admin.describe_consumer_groups([group])[group].result(DEADLINE)
    check(desc.group_id == group and desc.state == ConsumerGroupState.STABLE,
          f"confluent classic: described Stable, got {desc.state}")
    check(len(desc.members) == 2, f"confluent classic: 2 members described, got {len(desc.members)}")
    described = [{(tp.topic, tp.partition) for tp in m.assignment.topic_partitions}
                 for m in desc.members]
    check(sorted(map(sorted, described)) == sorted([sorted((topic, x) for x in a),
                                                    sorted((topic, x) for x in b)]),
          f"confluent classic: described assignments match the members', got {described}")

    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(DEADLINE)
    offsets = {tp.partition: tp.offset for tp in res.topic_partitions if tp.topic == topic}
    check(set(offsets) == {0, 1, 2, 3} and sum(offsets.values()) == 200,
          f"confluent classic: committed offsets sum to 200, got {offsets}")

    for c in consumers:
        c.close()

    def listed():
        result = admin.list_consumer_groups().result(DEADLINE)
        check(not result.errors, f"confluent classic: list_consumer_groups errors {result.errors}")
        return {g.group_id: g for g in result.valid}

    end = time.time() + DEADLINE
    while time.time() < end:
        groups = listed()
        if group in groups and groups[group].state == ConsumerGroupState.EMPTY:
            break
        time.sleep(0.2)
    check(group in groups and groups[group].state == ConsumerGroupState.EMPTY,
          f"confluent classic: listed as Empty after close, got {groups.get(group)}")
    desc = admin.describe_consumer_groups([group])[group].result(DEADLINE)
    check(desc.state == ConsumerGroupState.EMPTY and not desc.members,
          f"confluent classic: described Empty after close, got {desc.state} {desc.members}")

    admin.delete_consumer_groups([group])[group].result(DEADLINE)
    check(group not in listed(), "confluent classic: group gone after delete_consumer_groups")
    admin.delete_topics([topic])[topic].result(DEADLINE)


def confluent_consumer_protocol():
    """KIP-848 (group.protocol=consumer): a member consumes and commits, and the next member of
    the group resumes exactly after the commit; the live group is described."""
    from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupType, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic, group = "ck-848", "ck-848-group"
    admin = AdminClient({"bootstrap.servers": BROKER})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(DEADLINE)
    p = Producer({"bootstrap.servers": BROKER})

    def produce(lo, hi):
        for i in range(lo, hi):
            p.produce(topic, key=f"k{i}", value=f"v{i}")
        check(p.flush(DEADLINE) == 0, "confluent 848: all delivered")

    def consume(c, n):
        got, end = [], time.time() + DEADLINE
        while len(got) < n and time.time() < end:
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                got.append(m.value().decode())
        return got

    conf = {"bootstrap.servers": BROKER, "group.id": group, "group.protocol": "consumer",
            "auto.offset.reset": "earliest", "enable.auto.commit": False}
    produce(0, 50)
    c = Consumer(conf)
    c.subscribe([topic])
    got = consume(c, 50)
    check(sorted(got) == sorted(f"v{i}" for i in range(50)),
          f"confluent 848: first member read the 50 records, got {len(got)}")
    c.commit(asynchronous=False)

    desc = admin.describe_consumer_groups([group])[group].result(DEADLINE)
    check(desc.type == ConsumerGroupType.CONSUMER and desc.state == ConsumerGroupState.STABLE,
          f"confluent 848: described a Stable consumer-type group, got {desc.type} {desc.state}")
    check(len(desc.members) == 1 and
          {(tp.topic, tp.partition) for tp in desc.members[0].assignment.topic_partitions}
          == {(topic, 0), (topic, 1)},
          f"confluent 848: the member holds both partitions, got {desc.members}")
    c.close()

    produce(50, 100)
    c = Consumer(conf)
    c.subscribe([topic])
    got = consume(c, 50)
    c.close()
    check(sorted(got) == sorted(f"v{i}" for i in range(50, 100)),
          f"confluent 848: second member resumed after the commit, got {len(got)}: {sorted(got)[:5]}")
    admin.delete_topics([topic])[topic].result(DEADLINE)


def kafka_python_group():
    """kafka-python (classic protocol): consume with a group, commit, reopen and resume after the
    committed offsets; the admin client lists the group and its offsets."""
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    topic, group = "kp-group-data", "kp-group"
    admin = KafkaAdminClient(bootstrap_servers=BROKER)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    p = KafkaProducer(bootstrap_servers=BROKER)

    def produce(lo, hi):
        for i in range(lo, hi):
            p.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
        p.flush(DEADLINE)

    def consume_and_commit(n):
        c = KafkaConsumer(topic, bootstrap_servers=BROKER, group_id=group,
                          auto_offset_reset="earliest", enable_auto_commit=False)
        got, end = [], time.time() + DEADLINE
        while len(got) < n and time.time() < end:
            for records in c.poll(timeout_ms=200).values():
                got.extend(r.value.decode() for r in records)
        c.commit()
        c.close()
        return got

    def committed():
        offsets = admin.list_group_offsets({group: None})[group]
        return {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == topic}

    produce(0, 60)
    got = consume_and_commit(60)
    check(sorted(got) == sorted(f"v{i}" for i in range(60)),
          f"kafka-python group: first consumer read the 60 records, got {len(got)}")
    check(sum(committed().values()) == 60, f"kafka-python group: committed 60, got {committed()}")

    produce(60, 100)
    got = consume_and_commit(40)
    check(sorted(got) == sorted(f"v{i}" for i in range(60, 100)),
          f"kafka-python group: reopened consumer resumed after the commit, got {len(got)}: {sorted(got)[:5]}")
    offsets = committed()
    check(set(offsets) == {0, 1} and sum(offsets.values()) == 100,
          f"kafka-python group: committed offsets sum to 100, got {offsets}")

    groups = admin.list_groups()
    check(group in {g["group_id"] for g in groups}, f"kafka-python group: group listed, got {groups}")
    admin.delete_topics([topic])
    admin.close()
    p.close()


confluent()
print("confluent-kafka: ok")
kafka_python()
print("kafka-python: ok")
confluent_classic_group()
print("confluent-kafka classic group: ok")
confluent_consumer_protocol()
print("confluent-kafka consumer-protocol group: ok")
kafka_python_group()
print("kafka-python group: ok")
