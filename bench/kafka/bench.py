"""What the sidecar's Kafka proxy costs a Kafka client: produce and consume throughput and
produce latency, direct to the broker and through a `flowmesh proxy` in the same run, against
the same broker, with the same client (confluent-kafka, librdkafka). Prints human-readable
lines on stderr and one JSON line on stdout.

    python3 bench/kafka/bench.py [--records N] [--size BYTES] [--samples N] [--rounds N]
                                 [--flowmesh PATH] [--bootstrap HOST:PORT]

Without --bootstrap, the broker is librdkafka's mock cluster (tests/kafka/mock_cluster.py).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cpu_seconds(pid):
    """User + system CPU time of a process so far (from /proc, 10 ms resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def say(*parts):
    print(*parts, file=sys.stderr, flush=True)


def start_cluster():
    child = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tests/kafka/mock_cluster.py"), "3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = child.stdout.readline().strip()
    if ":" not in line:
        sys.exit(f"the mock cluster did not start: {line!r}")
    return child, line


def start_sidecar(flowmesh, bootstrap, workdir):
    config = os.path.join(workdir, "sidecar.toml")
    with open(config, "w") as f:
        f.write(
            f"""service = "bench"
data_dir = "{workdir}/data"
[app]
address = "127.0.0.1:9"
[listen]
local = "127.0.0.1:0"
inbound = "127.0.0.1:0"
outbound = "127.0.0.1:0"
mesh = "127.0.0.1:0"
kafka = "127.0.0.1:0"
[telemetry]
otlp_endpoint = "none"
[kafka]
bootstrap = "{bootstrap}"
"""
        )
    child = subprocess.Popen(
        [flowmesh, "proxy", "--config", config],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in child.stderr:
        if ", kafka " in line:
            address = line.rsplit(", kafka ", 1)[1].strip()
            # Keep reading so that the sidecar never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in child.stderr], daemon=True).start()
            return child, address
    sys.exit("the sidecar stopped before it listened")


# The mock cluster keeps about 5 MiB per partition (4 per topic): a run's records are spread
# over this many topics so that all of them are still there when they are consumed.
SPREAD = 8
CONSUME_PASSES = 6


def topics(base):
    return [f"{base}-{k}" for k in range(SPREAD)]


def produce_throughput(bootstrap, topic, records, size):
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "batch.size": 256 * 1024,
            "enable.idempotence": True,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    value = os.urandom(size)
    spread = topics(topic)
    failed = []

    def done(err, _msg):
        if err is not None:
            failed.append(err)

    start = time.perf_counter()
    for i in range(records):
        while True:
            try:
                p.produce(spread[i % SPREAD], value=value, key=str(i).encode(), on_delivery=done)
                break
            except BufferError:
                p.poll(0.001)
        if i % 1000 == 0:
            p.poll(0)
    p.flush(120)
    took = time.perf_counter() - start
    if failed:
        sys.exit(f"{len(failed)} records failed: {failed[0]}")
    return records / took, records * size / took / 1e6


def produce_latency(bootstrap, topic, samples, size):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all"})
    value = os.urandom(size)
    p.produce(topic, value=value)
    p.flush(30)  # connections and metadata are warm before the first sample
    took = []
    for _ in range(samples):
        start = time.perf_counter()
        p.produce(topic, value=value)
        p.flush(30)
        took.append((time.perf_counter() - start) * 1000)
    took.sort()
    return took[len(took) // 2], took[int(len(took) * 0.99) - 1]


def consume_throughput(bootstrap, topic, records, size):
    """From assigning every partition at its start to the last record: no group join in the
    figure, only fetching."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "fetch.max.bytes": 52428800,
        }
    )
    assignment = []
    for t in topics(topic):
        for p in c.list_topics(t, timeout=30).topics[t].partitions:
            assignment.append(TopicPartition(t, p, OFFSET_BEGINNING))
    start = time.perf_counter()
    c.assign(assignment)
    seen = 0
    deadline = time.time() + 120
    while seen < records and time.time() < deadline:
        # A call waits its whole timeout for a batch it cannot fill (the last records): a
        # short one keeps that wait out of the rate.
        for m in c.consume(10000, 0.02):
            if m.error() is None:
                seen += 1
    took = time.perf_counter() - start
    c.close()
    if seen < records:
        sys.exit(f"consumed {seen} of {records} records")
    return seen / took, seen * size / took / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--flowmesh", default=os.path.join(ROOT, "target/release/flowmesh"))
    ap.add_argument("--bootstrap")
    args = ap.parse_args()

    cluster = None
    if args.bootstrap:
        broker = args.bootstrap
    else:
        cluster, broker = start_cluster()
    workdir = tempfile.mkdtemp(prefix="flowmesh-bench-kafka-")
    sidecar, through = start_sidecar(args.flowmesh, broker.split(",")[0], workdir)
    say(f"broker {broker}, sidecar {through}")
    figures = {"direct": [], "sidecar": []}
    untraced = []
    cpu_us = []
    try:
        # Rounds interleave the two ways so that a slow spell of the machine hits both alike.
        for r in range(args.rounds):
            ways = (("direct", broker), ("sidecar", through))
            produced = {}
            # The ways take turns going first: the cluster holds more records with each run,
            # and a fixed order would give the second way a fuller cluster every round.
            for way, bootstrap in ways if r % 2 == 0 else reversed(ways):
                topic = f"bench-{way}-{r}-{uuid.uuid4().hex[:6]}"
                cpu = cpu_seconds(sidecar.pid)
                produced[way] = (topic, *produce_throughput(bootstrap, topic, args.records, args.size))
                if way == "sidecar":
                    cpu_produce = cpu_seconds(sidecar.pid) - cpu
            # Both ways consume the same records, those produced through the sidecar (with the
            # traceparent it adds, as every record in a mesh has): the ratio is what relaying
            # costs a consumer, not what a longer record costs. Records produced directly are
            # consumed too, directly, to show that second cost on its own.
            # One pass over 100 MB takes a quarter of a second here, too short to stand for a
            # rate on its own: each way reads them CONSUME_PASSES times, the ways taking turns
            # (with 3 passes a round's consume ratio still ranged 0.86-1.85 over runs).
            traced = produced["sidecar"][0]
            seconds = {"direct": 0.0, "sidecar": 0.0}
            cpu_consume = 0.0
            for k in range(CONSUME_PASSES):
                for way, bootstrap in ways if (r + k) % 2 == 0 else reversed(ways):
                    cpu = cpu_seconds(sidecar.pid)
                    rps, _ = consume_throughput(bootstrap, traced, args.records, args.size)
                    seconds[way] += args.records / rps
                    if way == "sidecar":
                        cpu_consume += cpu_seconds(sidecar.pid) - cpu
            cpu_consume /= CONSUME_PASSES
            consumed = {
                way: (
                    CONSUME_PASSES * args.records / t,
                    CONSUME_PASSES * args.records * args.size / t / 1e6,
                )
                for way, t in seconds.items()
            }
            untraced.append(consume_throughput(broker, produced["direct"][0], args.records, args.size)[0])
            cpu_us.append((cpu_produce * 1e6 / args.records, cpu_consume * 1e6 / args.records))
            for way, bootstrap in ways:
                _, prps, pmbs = produced[way]
                crps, cmbs = consumed[way]
                p50, p99 = produce_latency(bootstrap, f"{traced}-lat-{way}", args.samples, args.size)
                figures[way].append((prps, pmbs, crps, cmbs, p50, p99))
                say(
                    f"round {r} {way:7}: produce {prps:9.0f} rec/s {pmbs:6.1f} MB/s, "
                    f"consume {crps:9.0f} rec/s {cmbs:6.1f} MB/s, produce p50 {p50:.3f} ms p99 {p99:.3f} ms"
                )
            say(f"round {r} direct : consume {untraced[-1]:9.0f} rec/s of records produced directly")
    finally:
        sidecar.terminate()
        sidecar.wait(10)
        if cluster:
            cluster.stdin.close()
            cluster.wait(10)

    def med(way, i):
        return statistics.median(f[i] for f in figures[way])

    out = {
        "records": args.records,
        "record_bytes": args.size,
        "rounds": args.rounds,
        "broker": "librdkafka mock cluster" if cluster else broker,
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
    }
    for way in ("direct", "sidecar"):
        out[f"{way}_produce_rps"] = round(med(way, 0))
        out[f"{way}_produce_mbps"] = round(med(way, 1), 1)
        out[f"{way}_consume_rps"] = round(med(way, 2))
        out[f"{way}_consume_mbps"] = round(med(way, 3), 1)
        out[f"{way}_produce_p50_ms"] = round(med(way, 4), 3)
        out[f"{way}_produce_p99_ms"] = round(med(way, 5), 3)
    out["sidecar_cpu_us_per_produced_record"] = round(statistics.median(c[0] for c in cpu_us), 2)
    out["sidecar_cpu_us_per_consumed_record"] = round(statistics.median(c[1] for c in cpu_us), 2)
    # Each round's two ways ran back to back: the ratio is the median of the rounds' own
    # ratios, which a slow spell in one round moves less than a ratio of medians.
    def paired(i):
        return round(
            statistics.median(s[i] / d[i] for d, s in zip(figures["direct"], figures["sidecar"])),
            3,
        )

    out["produce_ratio"] = paired(0)
    out["consume_ratio"] = paired(2)
    out["direct_consume_untraced_rps"] = round(statistics.median(untraced))
    out["traceparent_consume_ratio"] = round(
        out["direct_consume_rps"] / out["direct_consume_untraced_rps"], 3
    )
    out["added_produce_p99_ms"] = round(out["sidecar_produce_p99_ms"] - out["direct_produce_p99_ms"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
