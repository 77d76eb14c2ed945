#!/usr/bin/env bash
# PyPI's confluent-kafka (a current librdkafka) and kafka-python against a real weir.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -c "import confluent_kafka, kafka" 2>/dev/null || pip install -q confluent-kafka kafka-python
source tests/clients/start-broker.sh
python3 tests/clients/python_clients.py "$BROKER"
CLIENT_TEST_OK=1
echo "python clients: 2 passed, 0 failed"
