"""Delivery benchmark: resolution committed -> signed webhook received, through the outbox, Celery and Redis.

    .venv/bin/python bench/delivery.py [--quick] [--duration S]

Creates the database tollgate_bench_delivery afresh, migrates, loads policies/, makes an agent and a supervisor,
flushes Redis db 14, starts one Celery worker (the Procfile's flags, concurrency 2) and beat (deliveries sweep
every second), and a loopback webhook receiver in its own process (so the resolver threads' GIL never delays an
arrival timestamp). Held items are made beforehand (decisions_submit_batch, confidence 0.5, callback_url = the
receiver) and claimed (item_claim); then this process resolves them with item_resolve(action="approve"):

1. "limit": a bare Celery round trip on the same broker and worker: exceptions_app.tasks.health.worker_ping
   (one UPDATE of a WorkerPing row), from just before delay() to the row's completed_at, one at a time;
2. "idle": one resolution every 200 ms (quick 30, full 100);
3. "load": 100 resolutions/s paced open-loop by 8 threads in one forked process (``--resolver-processes``;
   quick 10 s, full 60 s); the resolvers' achieved rate and their lag behind the schedule are reported.

Latency = receiver arrival (time.time() once the body is read) - time.time() when item_resolve returned (the
commit and the on_commit publish are done by then). Also reported: resolved_at -> delivered_at from the
database, and where the time goes (resolve tail, queue wait until the attempt started, attempt start -> arrival,
arrival -> delivered_at recorded) from Delivery / DeliveryAttempt rows. Every delivery must arrive exactly once
(webhook-id duplicates are counted), none lost, every signature valid.

Target (from the issue): resolution to webhook received p95 < 500 ms, idle and under 100 resolutions/s.
Prints a table and writes bench/results/delivery.json. Only loopback; every loop is bounded in count and time.
"""

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from exceptions_app.simulation.local_server import LocalHTTPServer

DATABASE = "tollgate_bench_delivery"
REDIS_DB = 14  # the benches' Redis database (they run one after another; this one is flushed)
WORKFLOW = "billing.invoice_adjustment"
TARGET_P95_MS = 500.0
LOAD_RATE = 100  # resolutions per second
RESOLVER_THREADS = 8
IDLE_SPACING_S = 0.2
PING_SPACING_S = 0.1
WARMUP_RESOLUTIONS = 10
BATCH = 500  # decisions per decisions_submit_batch call while making items
CELERY_QUEUES = ("default", "deliveries", "periodic")


# --- the webhook receiver (its own process) ----------------------------------------------------------------


def receiver_main(port, count, stop, out_path: str) -> None:
    """Answer 200 at once; record (arrival, webhook-id, timestamp, signature, body); dump them on ``stop``."""
    arrivals: list = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would
        disable_nagle_algorithm = True  # headers and body go out at once: no Nagle / delayed-ACK stall

        def do_POST(self):
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(min(length, 1 << 20))
            arrived = time.time()
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            headers = self.headers
            entry = (arrived, headers.get("webhook-id", ""), headers.get("webhook-timestamp", ""))
            with lock:
                arrivals.append((*entry, headers.get("webhook-signature", ""), body.decode(errors="replace")))
            with count.get_lock():
                count.value += 1

        def log_message(self, *args) -> None:
            pass

    server = LocalHTTPServer((common.HOST, 0), Handler)
    port.value = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    stop.wait(timeout=7200)
    server.shutdown()
    server.server_close()
    with lock:
        Path(out_path).write_text(json.dumps(arrivals))


class Receiver:
    def __init__(self):
        context = multiprocessing.get_context("fork")  # forked before Django, threads or connections exist
        self.port, self.count, self.stop_event = context.Value("i", 0), context.Value("q", 0), context.Event()
        self.out_path = tempfile.mkstemp(prefix="tollgate-bench-receiver-", suffix=".json")[1]
        self.process = context.Process(
            target=receiver_main, args=(self.port, self.count, self.stop_event, self.out_path), daemon=True
        )

    def start(self, timeout: float = 10) -> None:
        self.process.start()
        deadline = time.monotonic() + timeout
        while self.port.value == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.port.value == 0:
            raise RuntimeError("the receiver did not start")
        self.url = f"http://{common.HOST}:{self.port.value}/hooks/tollgate"

    def received(self) -> int:
        return self.count.value

    def stop(self, timeout: float = 20) -> list:
        self.stop_event.set()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
            return []
        text = Path(self.out_path).read_text()
        return json.loads(text) if text else []


# --- CPU by component ----------------------------------------------------------------------------------------


def _cpu_with_reaped(pid: int) -> float:
    """utime + stime + cutime + cstime: a process plus its children that already exited (recycled workers)."""
    fields = common.process_stat_fields(pid)
    return 0.0 if fields is None else sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds of the worker (tree, reaped children included), beat, receiver, this process and the
    PostgreSQL backends of the bench database, and everything else on the machine, over one phase."""

    def __init__(self, worker, beat, receiver: Receiver):
        self.worker, self.beat, self.receiver = worker, beat, receiver

    def _sample(self) -> dict:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [DATABASE])
            backends = [row[0] for row in cursor.fetchall()]
        worker_pids = self.worker.pids()
        times = os.times()
        return {
            "worker": _cpu_with_reaped(worker_pids[0]) + sum(common.cpu_seconds(p) for p in worker_pids[1:])
            if worker_pids
            else 0.0,
            "beat": sum(_cpu_with_reaped(pid) for pid in self.beat.pids()),
            "receiver": common.cpu_seconds(self.receiver.process.pid),
            "bench": times.user + times.system,
            "postgres": {pid: common.cpu_seconds(pid) for pid in backends},
            "busy": common.system_busy_seconds(),
            "at": time.monotonic(),
        }

    def start(self) -> None:
        self.before = self._sample()

    def stop(self) -> dict:
        after, before = self._sample(), self.before
        pids = set(before["postgres"]) | set(after["postgres"])
        postgres = sum(max(0.0, after["postgres"].get(p, 0.0) - before["postgres"].get(p, 0.0)) for p in pids)
        figures = {name: after[name] - before[name] for name in ("worker", "beat", "receiver", "bench")}
        figures["postgres"] = postgres
        busy, elapsed = after["busy"] - before["busy"], after["at"] - before["at"]
        result = {f"{name}_cpu_s": round(value, 3) for name, value in figures.items()}
        result["other_cpu_s"] = round(max(0.0, busy - sum(figures.values())), 3)
        result["elapsed_s"] = round(elapsed, 3)
        result["machine_busy_cores"] = round(busy / max(elapsed, 1e-9), 2)
        return result


class QueueSampler:
    """Depth of the Celery queues in Redis (and unacked messages) every ``interval`` seconds, in a thread."""

    def __init__(self, interval: float = 0.25, limit: int = 4000):
        import redis

        self.client = redis.Redis(host=common.HOST, port=6379, db=REDIS_DB, socket_timeout=5)
        self.interval, self.limit, self.samples = interval, limit, []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        began = time.monotonic()
        for _ in range(self.limit):
            if self.stop_event.is_set():
                break
            try:
                pipe = self.client.pipeline()
                for queue in CELERY_QUEUES:
                    pipe.llen(queue)
                pipe.hlen("unacked")
                depths = pipe.execute()
            except Exception:  # a sample lost is a sample lost
                depths = [None] * (len(CELERY_QUEUES) + 1)
            self.samples.append([round(time.monotonic() - began, 2), *depths])
            self.stop_event.wait(self.interval)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> dict:
        self.stop_event.set()
        self.thread.join(10)
        self.client.close()
        deliveries = [sample[2] for sample in self.samples if sample[2] is not None]
        unacked = [sample[4] for sample in self.samples if sample[4] is not None]
        return {
            "columns": ["t_s", *CELERY_QUEUES, "unacked"],
            "max_deliveries_queue": max(deliveries, default=0),
            "max_unacked": max(unacked, default=0),
            "samples": self.samples[:: max(1, len(self.samples) // 400)],
        }


# --- setup -----------------------------------------------------------------------------------------------------


def principals_create():
    from exceptions_app.models import Principal
    from exceptions_app.services.tokens import principal_ensure

    agent = principal_ensure(name="bench-agent", role="agent", workflows=[WORKFLOW])
    supervisor = principal_ensure(name="bench-supervisor", role="supervisor")
    return agent, Principal.objects.select_related("user").get(pk=supervisor.pk)


def items_create(agent, callback_url: str, count: int) -> list[int]:
    """``count`` held items (confidence 0.5: between the policy's thresholds, no rule fires) with the callback."""
    from exceptions_app.services.intake import DecisionRequest, decisions_submit_batch

    ids: list[int] = []
    for first in range(0, count, BATCH):
        requests = []
        for n in range(first, min(count, first + BATCH)):
            amount = round(20 + (n % 400) * 1.25, 2)
            output = {
                "invoice_id": f"INV-{2025_000_000 + n}",
                "type": "refund",
                "amount": amount,
                "currency": "USD",
                "reason": f"refund requested by customer: service outage on {n % 28 + 1:02d} March",
                "lines": [{"description": "line 1 of refund", "amount": amount}],
            }
            requests.append(
                DecisionRequest(
                    workflow=WORKFLOW,
                    output=output,
                    confidence=0.5,
                    input={"invoice_total": round(amount * 3, 2), "currency": "USD"},
                    correlation_id=f"bench-delivery-{n}",
                    callback_url=callback_url,
                )
            )
        for outcome in decisions_submit_batch(principal=agent, requests=requests):
            if isinstance(outcome, Exception) or outcome.item is None:
                raise RuntimeError(f"expected a held item, got {outcome!r}")
            ids.append(outcome.item.pk)
    return ids


def items_claim(supervisor, ids: list[int]) -> float:
    from exceptions_app.services.items import item_claim

    started = time.perf_counter()
    for pk in ids:
        item_claim(item_id=pk, principal=supervisor)
    return time.perf_counter() - started


# --- measurements ------------------------------------------------------------------------------------------------


def pings_send(count: int, spacing: float) -> list[tuple[int, float, float]]:
    """``count`` worker_ping tasks, one every ``spacing`` s: (ping id, before delay(), after delay())."""
    from exceptions_app.models import WorkerPing
    from exceptions_app.tasks.health import worker_ping

    sent = []
    began = time.time()
    for n in range(count):
        time.sleep(max(0.0, began + n * spacing - time.time()))
        ping = WorkerPing.objects.create()
        before = time.time()
        worker_ping.delay(ping.pk)
        sent.append((ping.pk, before, time.time()))
    return sent


def pings_collect(sent: list, timeout: float = 60) -> dict:
    from exceptions_app.models import WorkerPing

    ids, done = [pk for pk, _, _ in sent], {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = dict(WorkerPing.objects.filter(pk__in=ids, completed_at__isnull=False).values_list("pk", "completed_at"))
        if len(done) == len(ids):
            break
        time.sleep(0.2)
    from_call = [done[pk].timestamp() - before for pk, before, _ in sent if pk in done]
    from_return = [done[pk].timestamp() - after for pk, _, after in sent if pk in done]
    publish = [after - before for _, before, after in sent]
    return {
        "count": len(sent),
        "completed": len(done),
        **_percentiles_ms(from_call),  # enqueue (before delay()) -> the task ran: the round trip
        "from_return": _percentiles_ms(from_return),  # the task often runs before delay() has returned
        "publish": _percentiles_ms(publish),
    }


def worker_wait_ready(worker, timeout: float = 120) -> float:
    """Until a worker_ping round trip completes: the worker consumes, runs tasks and reaches the database."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if not worker.alive():
            raise RuntimeError(f"the celery worker exited:\n{worker.log_tail()}")
        sent = pings_send(1, 0)
        if pings_collect(sent, timeout=min(5, max(0.5, deadline - time.monotonic())))["completed"]:
            return time.monotonic() - started
    raise RuntimeError(f"the celery worker answered no ping in {timeout:.0f} s:\n{worker.log_tail()}")


def resolve(supervisor, pk: int) -> tuple[float, float]:
    from exceptions_app.services.items import item_resolve

    began = time.time()
    item_resolve(item_id=pk, principal=supervisor, action="approve")
    return began, time.time()


def paced_run(supervisor, ids: list[int], spacing: float) -> list[dict]:
    """One resolution at a time, one every ``spacing`` s (a slow resolution delays the next)."""
    records, began = [], time.time() + 0.2
    for n, pk in enumerate(ids):
        slot = began + n * spacing
        time.sleep(max(0.0, slot - time.time()))
        start, committed = resolve(supervisor, pk)
        records.append({"item": pk, "slot": slot, "began": start, "committed": committed})
    return records


def _load_part(supervisor, ids, slots: list[int], t0: float, rate: float, threads: int, deadline: float) -> dict:
    """One resolver process: ``threads`` threads take this process's due slots in turn (open loop)."""
    records: dict[int, dict] = {}
    errors: Counter = Counter()
    samples: list[str] = []
    lock, cursor = threading.Lock(), [0]

    def run() -> None:
        from django.db import close_old_connections, connection

        try:
            while True:
                with lock:
                    if cursor[0] >= len(slots):
                        return
                    n = slots[cursor[0]]
                    cursor[0] += 1
                if time.time() > deadline:
                    return
                slot = t0 + n / rate
                time.sleep(max(0.0, slot - time.time()))
                try:
                    start, committed = resolve(supervisor, ids[n])
                except Exception as error:  # counted and reported
                    errors[type(error).__name__] += 1
                    if len(samples) < 3:
                        samples.append(f"{type(error).__name__}: {error}"[:500])
                    close_old_connections()
                    continue
                records[n] = {"item": ids[n], "slot": slot, "began": start, "committed": committed}
        finally:
            connection.close()

    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(1.0, deadline - time.time() + 30))
    return {"records": records, "errors": dict(errors), "samples": samples}


def _load_child(part_args: tuple, out_path: str) -> None:
    Path(out_path).write_text(json.dumps(_load_part(*part_args)))


def load_run(supervisor, ids: list[int], rate: float, duration: float, threads: int, processes: int) -> tuple:
    """Open loop: resolution n is due at t0 + n/rate. Slots are dealt to ``processes`` forked resolver
    processes (one Python process alone is held back by its GIL near 90 resolutions/s), each with its share
    of ``threads`` threads."""
    from django.db import connections

    total = min(len(ids), int(rate * duration))
    t0 = time.time() + 1.0
    hard_deadline = t0 + 3 * duration + 30
    # Each child opens its own connections: a pool inherited through fork would share its sockets.
    connections.close_all()
    connections["default"].close_pool()
    context = multiprocessing.get_context("fork")
    children, outputs = [], []
    for part in range(processes):
        handle, out = tempfile.mkstemp(prefix="tollgate-bench-resolver-", suffix=".json")
        os.close(handle)
        slots = list(range(part, total, processes))
        share = max(1, threads // processes)
        child = context.Process(
            target=_load_child, args=((supervisor, ids, slots, t0, rate, share, hard_deadline), out), daemon=True
        )
        child.start()
        children.append(child)
        outputs.append(out)
    for child in children:
        child.join(max(1.0, hard_deadline - time.time() + 60))
        if child.is_alive():
            child.kill()
    records, errors, samples = [], Counter(), []
    for out in outputs:
        path = Path(out)
        part = json.loads(path.read_text() or "{}") if path.exists() else {}
        path.unlink(missing_ok=True)
        records.extend(part.get("records", {}).values())
        errors.update(part.get("errors", {}))
        samples.extend(part.get("samples", []))
    done = sorted(records, key=lambda record: record["slot"])
    last = max((record["committed"] for record in done), default=t0)
    lags = [record["began"] - record["slot"] for record in done]
    durations = [record["committed"] - record["began"] for record in done]
    resolver = {
        "scheduled": total,
        "resolved": len(done),
        "processes": processes,
        "errors": dict(errors),
        "error_samples": samples[:3],
        "elapsed_s": round(last - t0, 3),
        "achieved_per_s": round(len(done) / max(last - t0, 1e-9), 1),
        "lag_behind_schedule": _percentiles_ms(lags),
        "item_resolve": _percentiles_ms(durations),
    }
    return done, resolver


def receiver_drain(receiver: Receiver, expected: int, timeout: float, settle: float = 2.0) -> float:
    """Until ``expected`` webhooks arrived in all (or the timeout); then ``settle`` s for late duplicates."""
    started = time.monotonic()
    deadline = started + timeout
    while receiver.received() < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    waited = time.monotonic() - started
    time.sleep(settle)
    return waited


# --- analysis ------------------------------------------------------------------------------------------------------


def _percentiles_ms(values: list[float]) -> dict:
    return {
        "n": len(values),
        **{f"p{q}_ms": round(common.percentile(values, q / 100) * 1000, 2) for q in (50, 95, 99)},
        "max_ms": round(max(values, default=0.0) * 1000, 2),
    }


def _ts(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment else None


def arrivals_index(arrivals: list) -> dict:
    """item id -> [(arrival time, webhook-id)], signature check, webhook-id duplicates."""
    from standardwebhooks.webhooks import Webhook

    from exceptions_app.models import Workflow

    workflow = Workflow.objects.get(name=WORKFLOW)
    secrets = [secret for secret in (workflow.webhook_secret, workflow.previous_webhook_secret) if secret]
    by_item: dict[int, list] = {}
    ids: Counter = Counter()
    bad_signatures, unparsable = 0, 0
    for arrived, webhook_id, timestamp, signature, body in arrivals:
        ids[webhook_id] += 1
        try:
            payload = json.loads(body)
            moment = datetime.fromtimestamp(int(timestamp), tz=UTC)
        except (ValueError, TypeError):
            unparsable += 1
            continue
        expected = {Webhook(secret).sign(msg_id=webhook_id, timestamp=moment, data=body) for secret in secrets}
        if not expected & set(signature.split()) or payload.get("delivery_id") != webhook_id:
            bad_signatures += 1
        by_item.setdefault(payload.get("item_id"), []).append((arrived, webhook_id))
    return {
        "by_item": by_item,
        "total": len(arrivals),
        "duplicate_webhook_ids": sum(count - 1 for count in ids.values() if count > 1),
        "bad_signatures": bad_signatures,
        "unparsable": unparsable,
    }


def phase_analyse(records: list[dict], index: dict) -> dict:
    """Latency from commit to arrival, exactly-once checks, and the database's view of each delivery."""
    from exceptions_app.models import Delivery, DeliveryAttempt, ExceptionItem

    ids = [record["item"] for record in records]
    by_item = index["by_item"]
    items = {
        pk: (resolved, delivered)
        for pk, resolved, delivered in ExceptionItem.objects.filter(pk__in=ids).values_list(
            "pk", "resolved_at", "delivered_at"
        )
    }
    deliveries = {}
    for row in Delivery.objects.filter(item_id__in=ids).values("pk", "item_id", "public_id", "status", "attempts"):
        deliveries.setdefault(row["item_id"], []).append(row)
    first_attempts = {
        row["delivery__item_id"]: row
        for row in DeliveryAttempt.objects.filter(delivery__item_id__in=ids, number=1).values(
            "delivery__item_id", "started_at", "duration_ms", "outcome"
        )
    }
    latency, from_call, from_resolved_at, db_latency = [], [], [], []
    tail, queue_wait, to_arrival, to_recorded = [], [], [], []
    lost, late, extra_deliveries, retried, item_twice = [], [], 0, 0, 0
    for record in records:
        pk, committed = record["item"], record["committed"]
        got = sorted(by_item.get(pk, []))
        rows = deliveries.get(pk, [])
        extra_deliveries += max(0, len(rows) - 1)
        retried += sum(1 for row in rows if row["attempts"] > 1)
        if len({webhook_id for _, webhook_id in got}) > 1:
            item_twice += 1
        resolved_at, delivered_at = (_ts(moment) for moment in items.get(pk, (None, None)))
        if resolved_at is not None and delivered_at is not None:
            db_latency.append(delivered_at - resolved_at)
        if not got:
            if any(row["status"] == "pending" for row in rows):
                late.append(pk)  # still in the outbox when the drain window closed: late, not lost
            else:
                lost.append(pk)
            continue
        arrived = got[0][0]
        latency.append(arrived - committed)
        from_call.append(arrived - record["began"])
        attempt = first_attempts.get(pk)
        if resolved_at is not None:
            from_resolved_at.append(arrived - resolved_at)
            tail.append(committed - resolved_at)
        if attempt is not None:
            started = attempt["started_at"].timestamp()
            queue_wait.append(started - committed)
            to_arrival.append(arrived - started)
        if delivered_at is not None:
            to_recorded.append(delivered_at - arrived)
    return {
        "resolutions": len(records),
        "arrived": len(latency),
        "lost": len(lost),
        "lost_items": lost[:20],
        "late_still_pending": len(late),
        "items_with_two_delivery_ids": item_twice,
        "extra_delivery_rows": extra_deliveries,
        "deliveries_retried": retried,
        "latency": _percentiles_ms(latency),
        "latency_from_call": _percentiles_ms(from_call),
        "latency_from_resolved_at": _percentiles_ms(from_resolved_at),
        "db_resolved_to_delivered": _percentiles_ms(db_latency),
        "breakdown": {
            "resolved_at_to_return": _percentiles_ms(tail),
            "return_to_attempt_start": _percentiles_ms(queue_wait),
            "attempt_start_to_arrival": _percentiles_ms(to_arrival),
            "arrival_to_delivered_at": _percentiles_ms(to_recorded),
        },
    }


def worker_log_figures(worker) -> dict:
    """Error lines, and drains with the deliveries each attempted when the worker logged at INFO
    (--worker-loglevel INFO)."""
    log = worker.log_tail(20_000_000).splitlines()
    drains, attempted = 0, 0
    for line in log:
        if "exceptions_app.tasks.delivery.deliveries_drain[" in line and "succeeded in" in line:
            drains += 1
            attempted += int(line.rsplit(":", 1)[-1].strip().strip("'") or 0)
    errors = [line for line in log if "Traceback" in line or " ERROR" in line or "CRITICAL" in line]
    return {
        "drains": drains,
        "drained_attempts": attempted,
        "error_lines": len(errors),
        "error_samples": errors[:5],
    }


# --- report --------------------------------------------------------------------------------------------------------


def _ratio(value: float, limit: float) -> str:
    return f"{value / limit:.1f}x" if limit > 0 else "-"


def _lat(figures: dict) -> str:
    return f"p50 {figures['p50_ms']} / p95 {figures['p95_ms']} / p99 {figures['p99_ms']} / max {figures['max_ms']} ms"


def _phase_rows(name: str, shape: str, phase: dict, limit_p95: float) -> list[tuple]:
    """The latency, database and breakdown rows of one phase (idle or load)."""
    latency, db = phase["latency"], phase["db_resolved_to_delivered"]
    db_ratio = _ratio(db["p95_ms"], limit_p95)
    return [
        (
            f"{name}.latency",
            shape,
            _lat(latency),
            f"p95 < {TARGET_P95_MS:.0f} ms",
            _ratio(latency["p95_ms"], limit_p95),
            latency["p95_ms"] < TARGET_P95_MS and phase["arrived"] > 0,
        ),
        (f"{name}.db", shape, f"resolved_at->delivered_at {_lat(db)}", "(report)", db_ratio, None),
        (f"{name}.breakdown", shape, _breakdown(phase) + " ms p50/p95", "(report)", "-", None),
    ]


def _breakdown(phase: dict) -> str:
    names = {
        "resolved_at_to_return": "commit+publish",
        "return_to_attempt_start": "queue wait",
        "attempt_start_to_arrival": "attempt->arrival",
        "arrival_to_delivered_at": "record",
    }
    return ", ".join(
        f"{label} {phase['breakdown'][key]['p50_ms']}/{phase['breakdown'][key]['p95_ms']}"
        for key, label in names.items()
    )


def table(
    limit: dict, idle: dict, load: dict, resolver: dict, queues: dict, index: dict, logs: dict, shapes: dict
) -> list[dict]:
    limit_p95 = limit["p95_ms"]
    rows = [
        ("celery.round_trip", shapes["limit"], _lat(limit), "(the limit)", "1.0x", None),
        *_phase_rows("idle", shapes["idle"], idle, limit_p95),
        (
            "load.rate",
            shapes["load"],
            f"{resolver['achieved_per_s']}/s resolved ({resolver['resolved']} of {resolver['scheduled']}), "
            f"lag p95 {resolver['lag_behind_schedule']['p95_ms']} ms, item_resolve p95 "
            f"{resolver['item_resolve']['p95_ms']} ms",
            f">= {0.99 * shapes['rate']:.0f}/s",
            "-",
            resolver["achieved_per_s"] >= 0.99 * shapes["rate"] and not resolver["errors"],
        ),
        *_phase_rows("load", shapes["load"], load, limit_p95),
        (
            "load.queue",
            shapes["load"],
            f"max {queues['max_deliveries_queue']} messages waiting in 'deliveries' for {load['resolutions']} "
            f"resolutions; drained {load['drain_wait_s']} s after the last",
            "(report)",
            "-",
            None,
        ),
    ]
    lost, late = idle["lost"] + load["lost"], idle["late_still_pending"] + load["late_still_pending"]
    twice = index["duplicate_webhook_ids"] + idle["items_with_two_delivery_ids"] + load["items_with_two_delivery_ids"]
    received = idle["arrived"] + load["arrived"]
    rows += [
        (
            "delivery.exactly_once",
            "idle + load",
            f"{received} received of {idle['resolutions'] + load['resolutions']}, {lost} lost, "
            f"{late} late (still pending after the drain window), "
            f"{index['duplicate_webhook_ids']} duplicate webhook-ids, {twice - index['duplicate_webhook_ids']} "
            f"items with 2 ids, {idle['deliveries_retried'] + load['deliveries_retried']} retried",
            "all, once",
            "-",
            lost == 0 and late == 0 and twice == 0,
        ),
        (
            "delivery.signatures",
            "all",
            f"{index['bad_signatures']} bad, {index['unparsable']} unparsable of {index['total']}",
            "0",
            "-",
            index["bad_signatures"] == 0 and index["unparsable"] == 0,
        ),
        ("worker.errors", "all", f"{logs['error_lines']} error lines in worker/beat logs", "0", "-", None),
    ]
    result = {True: "PASS", False: "FAIL", None: "info"}
    names = ("name", "workload", "figure", "target", "ratio", "result")
    return [dict(zip(names, (*row[:5], result[row[5]]), strict=True)) for row in rows]


def summary_build(limit: dict, idle: dict, load: dict, resolver: dict, index: dict, shapes: dict) -> list[dict]:
    """The suite's rows: resolution -> webhook latency beside a bare Celery round trip on the same broker."""
    round_trip = f"p95 {limit['p95_ms']:.1f} ms Celery round trip"
    lost = idle["lost"] + load["lost"] + idle["late_still_pending"] + load["late_still_pending"]
    twice = index["duplicate_webhook_ids"] + idle["items_with_two_delivery_ids"] + load["items_with_two_delivery_ids"]
    rows = []
    for name, phase, shape in (("delivery.idle", idle, shapes["idle"]), ("delivery.load", load, shapes["load"])):
        latency = phase["latency"]
        rows.append(
            common.summary_row(
                name,
                shape,
                f"p50 {latency['p50_ms']:.0f} / p95 {latency['p95_ms']:.0f} ms",
                f"p95 < {TARGET_P95_MS:.0f} ms",
                limit=round_trip,
                ratio=latency["p95_ms"] / (limit["p95_ms"] or 1.0),
                met=phase["arrived"] > 0 and latency["p95_ms"] < TARGET_P95_MS,
            )
        )
    rows.append(
        common.summary_row(
            "delivery.load.rate",
            shapes["load"],
            f"{resolver['achieved_per_s']}/s resolved",
            f">= {0.99 * shapes['rate']:.0f}/s",
            met=resolver["achieved_per_s"] >= 0.99 * shapes["rate"] and not resolver["errors"],
        )
    )
    rows.append(
        common.summary_row(
            "delivery.exactly_once",
            "idle + load",
            f"{lost} lost or late, {twice} duplicated, {index['bad_signatures']} bad signatures",
            "0",
            met=lost == 0 and twice == 0 and index["bad_signatures"] == 0,
        )
    )
    return rows


# --- main ------------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="30 pings, 30 idle resolutions, 10 s of load")
    parser.add_argument("--rate", type=float, default=LOAD_RATE, help="resolutions per second under load")
    parser.add_argument("--threads", type=int, default=RESOLVER_THREADS, help="resolver threads under load")
    parser.add_argument("--resolver-processes", type=int, default=1, help="processes the resolver threads run in")
    parser.add_argument("--worker-loglevel", default="WARNING", help="INFO also counts drains")
    parser.add_argument("--sweep-seconds", type=int, default=1, help="TOLLGATE_DELIVERY_SWEEP_SECONDS for beat")
    parser.add_argument("--json", help="write the results here instead of bench/results/delivery.json")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="worker processes (the Procfile uses 2)")
    parser.add_argument("--duration", type=float, help="seconds of load (overrides the mode's: quick 10, full 60)")
    args = parser.parse_args()
    pings, idle_count, duration = (30, 30, 10) if args.quick else (100, 100, 60)
    duration = args.duration or duration
    load_count = int(args.rate * duration)
    background = os.getloadavg()
    if background[0] > 0.5:
        print(f"warning: load average {background[0]:.2f} before start; latencies will be noisy", file=sys.stderr)

    env = common.bench_env(DATABASE, redis_db=REDIS_DB)
    env.update(
        TOLLGATE_CALLBACK_ALLOW="127.0.0.1",
        TOLLGATE_DELIVERY_SWEEP_SECONDS=str(args.sweep_seconds),
        TOLLGATE_DATA_DIR=tempfile.mkdtemp(prefix="tollgate-bench-delivery-"),
    )
    common.database_prepare(env, DATABASE, ("apply_policies", "policies/"), redis_db=REDIS_DB)

    receiver = Receiver()
    receiver.start()  # before Django, threads or connections exist in this process: it is forked
    common.django_setup(env)
    worker = common.CeleryProcess(
        env,
        "worker",
        "--queues",
        ",".join(CELERY_QUEUES),
        "--concurrency",
        str(args.worker_concurrency),
        "--loglevel",
        args.worker_loglevel,
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        "bench-delivery@%h",
        name="worker",
    )
    beat = common.CeleryProcess(
        env,
        "beat",
        "--loglevel",
        "WARNING",
        "--schedule",
        str(Path(env["TOLLGATE_DATA_DIR"]) / "celerybeat-schedule"),
        name="beat",
    )
    arrivals: list = []
    try:
        agent, supervisor = principals_create()
        started = time.perf_counter()
        ids = items_create(agent, receiver.url, WARMUP_RESOLUTIONS + idle_count + load_count)
        print(f"{len(ids)} held items in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        warm_ids, idle_ids = ids[:WARMUP_RESOLUTIONS], ids[WARMUP_RESOLUTIONS : WARMUP_RESOLUTIONS + idle_count]
        load_ids = ids[WARMUP_RESOLUTIONS + idle_count :]

        worker.start()
        beat.start()
        ready = worker_wait_ready(worker)
        print(f"worker ready in {ready:.1f} s (log {worker.log}); beat log {beat.log}", file=sys.stderr)
        meter = CpuMeter(worker, beat, receiver)

        claim_s = items_claim(supervisor, warm_ids + idle_ids)
        print(f"claimed {len(warm_ids) + len(idle_ids)} items in {claim_s:.1f} s", file=sys.stderr)
        paced_run(supervisor, warm_ids, 0.05)  # both worker children: DB connection, httpx client
        receiver_drain(receiver, len(warm_ids), 30)

        print(f"limit: {pings} worker_ping round trips", file=sys.stderr)
        meter.start()
        limit = pings_collect(pings_send(pings, PING_SPACING_S))
        cpu_limit = meter.stop()

        print(f"idle: {idle_count} resolutions, one every {IDLE_SPACING_S * 1000:.0f} ms", file=sys.stderr)
        meter.start()
        idle_records = paced_run(supervisor, idle_ids, IDLE_SPACING_S)
        idle_wait = receiver_drain(receiver, len(warm_ids) + len(idle_records), 30)
        cpu_idle = meter.stop()

        claim_s = items_claim(supervisor, load_ids)
        print(f"claimed {len(load_ids)} items in {claim_s:.1f} s", file=sys.stderr)
        print(
            f"load: {args.rate:.0f} resolutions/s for {duration} s, {args.threads} threads"
            f" in {args.resolver_processes} processes",
            file=sys.stderr,
        )
        sampler = QueueSampler()
        sampler.start()
        meter.start()
        load_records, resolver = load_run(
            supervisor, load_ids, args.rate, duration, args.threads, args.resolver_processes
        )
        expected = len(warm_ids) + len(idle_records) + len(load_records)
        load_wait = receiver_drain(receiver, expected, 120)
        cpu_load = meter.stop()
        queues = sampler.stop()
        print(f"load: drained {load_wait:.1f} s after the last resolution", file=sys.stderr)
    finally:
        beat.stop()
        worker.stop()
        arrivals = receiver.stop()

    index = arrivals_index(arrivals)
    idle = phase_analyse(idle_records, index)
    load = phase_analyse(load_records, index)
    worker_logs = worker_log_figures(worker)
    beat_errors = [line for line in beat.log_tail(2_000_000).splitlines() if "Traceback" in line or " ERROR" in line]
    logs = {
        "error_lines": worker_logs["error_lines"] + len(beat_errors),
        "worker": worker_logs,
        "beat_error_samples": beat_errors[:5],
    }
    shapes = {
        "limit": f"{pings} worker_ping, 1 per {PING_SPACING_S * 1000:.0f} ms",
        "idle": f"{idle_count} resolutions, 1 per {IDLE_SPACING_S * 1000:.0f} ms",
        "load": f"{args.rate:.0f}/s x {duration} s, {args.threads} threads x {args.resolver_processes} procs",
        "rate": args.rate,
    }
    load["drain_wait_s"] = round(load_wait, 3)
    rows = table(limit, idle, load, resolver, queues, index, logs, shapes)
    common.table_print_columns(rows, ["name", "workload", "figure", "target", "ratio", "result"])
    if logs["error_lines"]:
        print(f"\nworker log ({worker.log}):\n{worker.log_tail()}", file=sys.stderr)
    machine = {**common.machine_info(DATABASE), "loadavg_before": background, "loadavg_end": os.getloadavg()}
    index_summary = {key: value for key, value in index.items() if key != "by_item"}
    results = {
        "benchmark": "delivery",
        "mode": "quick" if args.quick else "full",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine,
        "parameters": {
            **vars(args),
            "pings": pings,
            "idle_resolutions": idle_count,
            "load_duration_s": duration,
            "worker": " ".join(worker.command[2:]),
            "beat": " ".join(beat.command[2:]),
            "target_p95_ms": TARGET_P95_MS,
        },
        "limit": {**limit, "cpu": cpu_limit},
        "idle": {**idle, "drain_wait_s": round(idle_wait, 3), "cpu": cpu_idle},
        "load": {**load, "resolver": resolver, "cpu": cpu_load},
        "queues_during_load": queues,
        "arrivals": index_summary,
        "logs": logs,
        "rows": rows,
        "summary": summary_build(limit, idle, load, resolver, index, shapes),
    }
    if args.json:
        path = Path(args.json)
        path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    else:
        path = common.results_write("delivery", results)
    return common.results_exit_code(path, rows)


if __name__ == "__main__":
    sys.exit(main())
