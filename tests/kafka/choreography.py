"""The order demo's choreography as plain Kafka apps, each bootstrapped through its own
sidecar: checkout places orders; payment, inventory and shipping each turn the event they
wait for into the next. The apps forward no trace context: joining each order into one trace
is the sidecars' work. Events are JSON `{type, id, data}` keyed by order id.

    choreography.py checkout BOOTSTRAP TOPIC COUNT
    choreography.py step BOOTSTRAP TOPIC COUNT IN_TYPE OUT_TYPE
"""

import json
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer

TIMEOUT = 90


def producer(bootstrap):
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, "enable.idempotence": True})


def event(kind, data):
    return json.dumps({"type": kind, "id": str(uuid.uuid4()), "data": data}).encode()


def checkout(bootstrap, topic, count):
    p = producer(bootstrap)
    for i in range(count):
        order = f"order-{i}"
        p.produce(topic, key=order, value=event("OrderPlacedEvent", {"orderId": order}))
        p.poll(0)
    left = p.flush(30)
    print(json.dumps({"placed": count, "unflushed": left}))


def step(bootstrap, topic, count, wanted, answer):
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"svc-{answer}",
            "auto.offset.reset": "earliest",
        }
    )
    c.subscribe([topic])
    p = producer(bootstrap)
    done = set()
    deadline = time.time() + TIMEOUT
    while len(done) < count and time.time() < deadline:
        msg = c.poll(0.1)
        if msg is None or msg.error():
            continue
        e = json.loads(msg.value())
        if e.get("type") != wanted:
            continue
        order = e["data"].get("orderId") or e["data"].get("refId")
        if order in done:
            continue
        done.add(order)
        p.produce(topic, key=order, value=event(answer, {"refId": order}))
        p.poll(0)
    left = p.flush(30)
    c.close()
    print(json.dumps({"answered": len(done), "unflushed": left}))


def main():
    role, bootstrap, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if role == "checkout":
        checkout(bootstrap, topic, count)
    else:
        step(bootstrap, topic, count, sys.argv[5], sys.argv[6])


if __name__ == "__main__":
    main()
