"""A Kafka-protocol broker for tests: librdkafka's mock cluster, which lives inside a client
process (here the one in the confluent-kafka wheel). Prints the cluster's bootstrap servers
on the first line of stdout, then serves until its stdin closes, so it never outlives the test
that started it.

    python3 mock_cluster.py [BROKERS]
"""

import logging
import re
import sys
import threading

from confluent_kafka import Producer


class Bootstrap(logging.Handler):
    """librdkafka logs the mock cluster's address when it replaces bootstrap.servers."""

    def __init__(self):
        super().__init__()
        self.servers = None

    def emit(self, record):
        found = re.search(r"replaced with ([0-9.:,]+)", record.getMessage())
        if found and self.servers is None:
            self.servers = found.group(1)


def main():
    brokers = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    seen = Bootstrap()
    log = logging.getLogger("mock-cluster")
    log.addHandler(seen)
    log.setLevel(logging.DEBUG)
    holder = Producer(
        {
            "bootstrap.servers": "127.0.0.1:1",
            "test.mock.num.brokers": brokers,
        },
        logger=log,
    )
    for _ in range(100):
        holder.poll(0.05)
        if seen.servers:
            break
    if not seen.servers:
        print("the mock cluster did not report its address", file=sys.stderr)
        sys.exit(1)
    print(seen.servers, flush=True)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    while not done.is_set():
        holder.poll(0.2)


if __name__ == "__main__":
    main()
