"""Real Kafka clients (confluent-kafka, librdkafka) for the sidecar's Kafka tests. Each command
prints one JSON document on stdout; bytes are base64 so that what arrived can be compared byte
for byte.

    client.py produce BOOTSTRAP TOPIC [--codec C] [--count N] [--idempotent]
                      [--transactional] [--acks N] [--traceparent TP] [--key-prefix K]
    client.py consume BOOTSTRAP TOPIC --count N [--group G] [--timeout S]
    client.py group BOOTSTRAP TOPIC --group G --count N   (two members that rebalance)
"""

import argparse
import base64
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def b64(data):
    return None if data is None else base64.b64encode(data).decode()


def record(i, args):
    key = f"{args.key_prefix}{i}".encode()
    # Binary values, not only text: every byte must arrive as it was sent.
    value = json.dumps({"orderId": f"o-{i}", "n": i}).encode() + bytes([0, 255, i % 256])
    headers = [("h", b"1"), ("h", b"2"), ("bin", bytes([0, 1, 254])), ("empty", b"")]
    if args.traceparent:
        headers.append(("traceparent", args.traceparent.encode()))
    return key, value, headers


def produce(args):
    config = {
        "bootstrap.servers": args.bootstrap,
        "compression.type": args.codec,
        "linger.ms": 5,
        "acks": str(args.acks),
        "enable.idempotence": args.idempotent or args.transactional,
        "max.in.flight.requests.per.connection": 5,
        "message.timeout.ms": 30000,
    }
    if args.transactional:
        config["transactional.id"] = f"tx-{args.topic}"
    p = Producer(config)
    sent, failed = [], []

    def done(err, msg):
        if err is not None:
            failed.append(str(err))
        else:
            sent.append({"partition": msg.partition(), "offset": msg.offset()})

    if args.transactional:
        p.init_transactions(30)
        p.begin_transaction()
    for i in range(args.count):
        key, value, headers = record(i, args)
        while True:
            try:
                p.produce(args.topic, value=value, key=key, headers=headers, on_delivery=done)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    if args.transactional:
        p.commit_transaction(30)
    left = p.flush(60)
    print(json.dumps({"sent": len(sent), "failed": failed, "unflushed": left}))


def arrived(msg):
    return {
        "partition": msg.partition(),
        "offset": msg.offset(),
        "key": b64(msg.key()),
        "value": b64(msg.value()),
        "headers": [[k, b64(v)] for k, v in (msg.headers() or [])],
    }


def consume(args):
    c = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "check.crcs": True,
            "enable.auto.commit": True,
            "isolation.level": "read_committed",
        }
    )
    c.subscribe([args.topic])
    got, errors = [], []
    deadline = time.time() + args.timeout
    while len(got) < args.count and time.time() < deadline:
        msg = c.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            errors.append(str(msg.error()))
            continue
        got.append(arrived(msg))
    c.close()
    print(json.dumps({"records": got, "errors": errors}))


def group(args):
    """Two members of one group: the second joins while the first consumes, so the group
    rebalances; together they must see every record."""
    def member():
        return Consumer(
            {
                "bootstrap.servers": args.bootstrap,
                "group.id": args.group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 500,
            }
        )

    assigned = {"a": [], "b": []}
    a, b = member(), member()
    a.subscribe([args.topic], on_assign=lambda _c, ps: assigned["a"].append(len(ps)))
    seen = set()
    deadline = time.time() + args.timeout
    joined = False
    while len(seen) < args.count and time.time() < deadline:
        for name, c in (("a", a),) + ((("b", b),) if joined else ()):
            msg = c.poll(0.1)
            if msg is not None and not msg.error():
                seen.add((msg.partition(), msg.offset()))
        if not joined and assigned["a"]:
            b.subscribe([args.topic], on_assign=lambda _c, ps: assigned["b"].append(len(ps)))
            joined = True
    # Let the second member's assignment settle before reporting it.
    settle = time.time() + 10
    while not assigned["b"] and time.time() < settle:
        a.poll(0.1)
        b.poll(0.1)
    a.close()
    b.close()
    print(json.dumps({"seen": len(seen), "assignments": assigned}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["produce", "consume", "group"])
    ap.add_argument("bootstrap")
    ap.add_argument("topic")
    ap.add_argument("--codec", default="none")
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--idempotent", action="store_true")
    ap.add_argument("--transactional", action="store_true")
    ap.add_argument("--acks", type=int, default=-1)
    ap.add_argument("--traceparent")
    ap.add_argument("--key-prefix", default="k")
    ap.add_argument("--group", default="g1")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    try:
        {"produce": produce, "consume": consume, "group": group}[args.command](args)
    except KafkaException as e:
        print(json.dumps({"error": str(e)}))
        sys.exit(2)


if __name__ == "__main__":
    main()
