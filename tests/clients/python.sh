#!/usr/bin/env bash
# PyPI's confluent-kafka (a current librdkafka) and kafka-python against a real weir.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -c "import confluent_kafka, kafka" 2>/dev/null || pip install -q confluent-kafka kafka-python
# Groups rebalance at once and KIP-848 members heartbeat often, so the group checks are quick.
source tests/clients/start-broker.sh --set group.initial.rebalance.delay.ms=0 \
    --set group.consumer.heartbeat.interval.ms=500
python3 tests/clients/python_clients.py "$BROKER"
CLIENT_TEST_OK=1
echo "python clients: 5 passed, 0 failed"
