"""confluent-kafka (bundled librdkafka) and kafka-python against a real weir: produce with keys,
consume by assignment, admin create/list/delete. Usage: python3 python_clients.py HOST:PORT"""
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


confluent()
print("confluent-kafka: ok")
kafka_python()
print("kafka-python: ok")
