"""Load and soak: the whole system under steady mixed load for a bounded time, loopback only.

    .venv/bin/python bench/soak.py [--quick] [--rate 200] [--duration 600] [--operators 10]

Creates the database tollgate_bench_soak afresh (migrate, seed_demo: the five example workflows, their queues
and teams), flushes Redis db 14, and starts gunicorn (4 gthread workers x 2 threads), two Celery workers (one
process each, every queue), Celery beat, and a webhook receiver in its own process that records every arrival
by webhook-id. Then, through the real HTTP API only:

- agents (a forked process of paced threads) submit the demo scenarios' outputs to all five workflows at
  ``--rate`` decisions per second, open loop, each with callback_url = the receiver: ``--batch-share`` of them
  (default 0.8) in batches of ``--batch-size`` (default 20) through POST /decisions/batch, the rest one at a time;
- ``--operators`` simulated operators (a forked process, one thread and one token each; half team finance, half
  team operations) claim-next across the queues their team works and resolve what they get (9 in 10 approved,
  1 in 10 rejected with a reason code) after a short think time, or wait when every queue is empty;
- a sampler reads GET /api/v1/queues (as a supervisor) every few seconds: queue depth over time.

Full: 10 minutes at 200 decisions/s; quick: 60 s at 20/s. After the load stops it waits (bounded) until every
webhook delivery in the database is delivered or dead, then reports: errors (non-2xx answers, transport errors,
and error lines in the server and worker logs: must be 0), p50/p95 of every API call, the achieved rate against
the offered one, queue depth over time, deliveries lost (in the database but never received: must be 0) and
duplicated (a webhook-id received twice), and each process's resident memory after the warm-up and at the end
(growth must stay under 10%). Prints a table and writes bench/results/soak.json (with a "summary" for
bench/run.py). Only loopback; every loop is bounded in time; only tollgate_bench_soak and Redis db 14 are reset.
"""

import argparse
import json
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psutil
import psycopg

from bench import common
from bench.delivery import CELERY_QUEUES, Receiver
from exceptions_app.simulation.scenarios import SCENARIOS, proposal

DATABASE = "tollgate_bench_soak"
REDIS_DB = 14
WORKFLOWS = sorted(SCENARIOS)
TEAMS = ("finance", "operations")
REJECT_SHARE = 0.1
MEMORY_GROWTH_LIMIT = 0.10
EMPTY_WAIT_S = 0.5  # an operator who found every queue empty waits this long
SAMPLE_EVERY_S = 2.0
MAX_CALLS = 10_000_000  # caps every loop's count, whatever the clock says

TOKENS_SCRIPT = """
import json
from exceptions_app.services.tokens import principal_ensure, token_create

def token(name, **kwargs):
    return token_create(principal=principal_ensure(name=name, **kwargs))[1]

teams = {teams!r}
print(json.dumps({{
    "agent": token("soak-agent", role="agent", workflows={workflows!r}),
    "supervisor": token("soak-supervisor", role="supervisor"),
    "operators": [
        token(f"soak-operator-{{n:02d}}", role="operator", teams=[teams[n % len(teams)]]) for n in range({operators})
    ],
}}))
"""


# --- the load: agents and operators, each group in its own forked process ---------------------------------------


class Calls:
    """Latency and status of every API call of a process, by call name; merged by the parent."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.samples: list[str] = []

    def call(self, client: httpx.Client, name: str, method: str, path: str, ok: tuple, **kwargs):
        """One request; the response, or None after a transport error (counted)."""
        started = time.perf_counter()
        try:
            response = client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            self.record(name, time.perf_counter() - started, type(error).__name__, f"{name}: {error!r}")
            return None
        status = response.status_code
        self.record(name, time.perf_counter() - started, status, "" if status in ok else f"{name}: {response.text}")
        return response

    def record(self, name: str, seconds: float, status, sample: str) -> None:
        with self.lock:
            self.latency[name].append(seconds)
            self.statuses[name][str(status)] += 1
            if sample and len(self.samples) < 10:
                self.samples.append(sample[:500])

    def dump(self) -> dict:
        return {"latency": dict(self.latency), "statuses": dict(self.statuses), "samples": self.samples}


def _client(url: str, token: str) -> httpx.Client:
    # gunicorn closes a keep-alive connection idle for 2 s: the client drops it first, or a request sent just as
    # the server closes fails with a reset (a client artefact, not a server error).
    limits = httpx.Limits(keepalive_expiry=1.0)
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0, limits=limits)


def agents_main(
    url: str,
    token: str,
    callback: str,
    rate: float,
    duration: float,
    batch_share: float,
    batch_size: int,
    out_path: str,
) -> None:
    """Submit ``rate`` decisions per second for ``duration`` s, open loop: ``batch_share`` of them in batches of
    ``batch_size`` (POST /decisions/batch), the rest one at a time (POST /decisions). Each schedule's tick n is due
    at start + n / its rate, handed to thread n mod its threads; a tick more than one second late is counted and
    skipped (no catch-up bursts)."""
    calls, verdicts, late, counts = Calls(), Counter(), Counter(), Counter()
    batch_rate = rate * batch_share / batch_size if batch_size else 0.0
    single_rate = rate - batch_rate * batch_size
    start = time.monotonic() + 0.5

    def body(rng: random.Random, serial: int) -> dict:
        workflow = WORKFLOWS[serial % len(WORKFLOWS)]
        entry = {"workflow": workflow, **proposal(workflow, rng, serial), "callback_url": callback}
        entry["correlation_id"] = f"soak-{serial}"
        return entry

    def schedule(index: int, threads: int, per_s: float, send) -> None:
        rng = random.Random(index)
        with _client(url, token) as client:
            for tick in range(index, min(int(per_s * duration), MAX_CALLS), threads):
                due = start + tick / per_s
                time.sleep(max(0.0, due - time.monotonic()))
                if time.monotonic() - due > 1.0:
                    late[send.__name__] += 1
                    continue
                send(client, rng, tick)

    def single(client: httpx.Client, rng: random.Random, tick: int) -> None:
        response = calls.call(client, "POST /decisions", "POST", "/api/v1/decisions", (200, 201), json=body(rng, tick))
        if response is not None and response.status_code in (200, 201):
            verdicts[response.json()["verdict"]] += 1
            counts["accepted"] += 1

    def batch(client: httpx.Client, rng: random.Random, tick: int) -> None:
        first = 10_000_000 + tick * batch_size  # serials apart from the single decisions'
        entries = [body(rng, first + n) for n in range(batch_size)]
        path = "/api/v1/decisions/batch"
        response = calls.call(client, "POST /decisions/batch", "POST", path, (200,), json={"decisions": entries})
        if response is None or response.status_code != 200:
            return
        answer = response.json()
        counts["accepted"] += answer["recorded"]
        counts["batch_entries_failed"] += answer["failed"]
        for result in answer["results"]:
            if "error" in result:
                calls.record("batch entry", 0.0, result["error"]["code"], f"batch entry: {result['error']}")
            else:
                verdicts[result["verdict"]] += 1

    workers = []
    for per_s, send in ((single_rate, single), (batch_rate, batch)):
        if per_s <= 0:
            continue
        threads = max(4, min(64, int(per_s / 3)))  # enough in flight at a few hundred ms per call
        workers += [
            threading.Thread(target=schedule, args=(n, threads, per_s, send), daemon=True) for n in range(threads)
        ]
    began = time.time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(duration + 120)
    elapsed = time.time() - began
    result = {**calls.dump(), "verdicts": dict(verdicts), "late_skipped": dict(late), "threads": len(workers)}
    result.update(
        offered=int(single_rate * duration) + int(batch_rate * duration) * batch_size,
        single_per_s=round(single_rate, 2),
        batches_per_s=round(batch_rate, 2),
        batch_size=batch_size,
        accepted=counts["accepted"],
        batch_entries_failed=counts["batch_entries_failed"],
        elapsed_s=round(elapsed, 3),
    )
    Path(out_path).write_text(json.dumps(result))


def operators_main(url: str, tokens: list[str], duration: float, think_s: tuple, out_path: str) -> None:
    """Each operator: claim-next over its team's queues in turn, resolve what it got after a think time."""
    calls, resolved = Calls(), Counter()
    deadline = time.monotonic() + duration

    def operator(index: int, token: str) -> None:
        rng = random.Random(1000 + index)
        with _client(url, token) as client:
            listing = calls.call(client, "GET /queues", "GET", "/api/v1/queues", (200,))
            queues = [queue["name"] for queue in listing.json()] if listing is not None and listing.is_success else []
            if not queues:
                return
            rng.shuffle(queues)
            empty_in_a_row = 0
            for turn in range(MAX_CALLS):
                if time.monotonic() >= deadline:
                    break
                name = queues[turn % len(queues)]
                path = f"/api/v1/queues/{name}/claim-next"
                response = calls.call(client, "POST /queues/{name}/claim-next", "POST", path, (200, 204))
                if response is None or response.status_code != 200:
                    empty_in_a_row += 1
                    if empty_in_a_row >= len(queues):
                        time.sleep(EMPTY_WAIT_S)
                        empty_in_a_row = 0
                    continue
                empty_in_a_row = 0
                item = response.json()
                time.sleep(rng.uniform(*think_s))
                if rng.random() < REJECT_SHARE:
                    decision = {"action": "reject", "reason_code": "soak_rejected", "note": "soak test"}
                else:
                    decision = {"action": "approve"}
                path = f"/api/v1/exceptions/{item['id']}/resolve"
                answer = calls.call(client, "POST /exceptions/{id}/resolve", "POST", path, (200,), json=decision)
                if answer is not None and answer.status_code == 200:
                    resolved[decision["action"]] += 1

    workers = [threading.Thread(target=operator, args=(n, token), daemon=True) for n, token in enumerate(tokens)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(duration + 120)
    Path(out_path).write_text(json.dumps({**calls.dump(), "resolved": dict(resolved)}))


class LoadProcess:
    """A forked process running one of the *_main functions; its results come back as a JSON file."""

    def __init__(self, target, *args):
        self.out_path = tempfile.mkstemp(prefix="tollgate-bench-soak-", suffix=".json")[1]
        context = multiprocessing.get_context("fork")
        self.process = context.Process(target=target, args=(*args, self.out_path), daemon=True)

    def start(self) -> None:
        self.process.start()

    def result(self, timeout: float) -> dict:
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)
        text = Path(self.out_path).read_text()
        Path(self.out_path).unlink(missing_ok=True)
        return json.loads(text) if text else {"latency": {}, "statuses": {}, "samples": ["no result: process died"]}


# --- observation: queue depth, memory, deliveries -------------------------------------------------------------


class DepthSampler:
    """GET /api/v1/queues as a supervisor every few seconds (depth per queue), and the Celery queues in Redis."""

    def __init__(self, url: str, token: str, calls: Calls):
        import redis

        self.client, self.calls = _client(url, token), calls
        self.redis = redis.Redis(host=common.HOST, port=6379, db=REDIS_DB, socket_timeout=5)
        self.samples: list[dict] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        began = time.monotonic()
        while not self.stop_event.is_set() and len(self.samples) < 100_000:
            sample = {"t_s": round(time.monotonic() - began, 1)}
            response = self.calls.call(self.client, "GET /queues", "GET", "/api/v1/queues", (200,))
            if response is not None and response.is_success:
                depths = {queue["name"]: _depth(queue) for queue in response.json()}
                sample.update(open_items=sum(depths.values()), by_queue={k: v for k, v in depths.items() if v})
            try:
                sample["celery_deliveries"] = self.redis.llen("deliveries")
            except Exception:  # a sample lost is a sample lost
                sample["celery_deliveries"] = None
            self.samples.append(sample)
            self.stop_event.wait(SAMPLE_EVERY_S)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> list[dict]:
        self.stop_event.set()
        self.thread.join(30)
        self.client.close()
        self.redis.close()
        return self.samples


def _depth(queue: dict) -> int:
    """Items waiting in a queue, as GET /api/v1/queues reports them: open (``depth``) and claimed."""
    return queue["depth"] + queue["claimed"]


def processes_named(server: common.Gunicorn, workers: list, beat, receiver: Receiver) -> dict[str, int]:
    named = {"gunicorn.master": server.process.pid}
    named.update({f"gunicorn.worker{n}": pid for n, pid in enumerate(server.worker_pids())})
    for n, worker in enumerate(workers):
        for m, pid in enumerate(worker.pids()):
            named[f"celery{n}.{'main' if m == 0 else f'child{m}'}"] = pid
    named.update({f"beat.{n}": pid for n, pid in enumerate(beat.pids())})
    named["receiver"] = receiver.process.pid
    return named


# The benchmark's own webhook receiver keeps every arrival (to count duplicates), so it grows with the run by
# design; the memory criterion is for Tollgate's processes (gunicorn, Celery workers, beat).
HARNESS_PROCESSES = {"receiver"}


class CpuAccount:
    """CPU seconds of each group of processes between start() and stop(): Tollgate's (gunicorn, each Celery
    worker, beat), PostgreSQL's backends of the soak database (plus the children the postmaster reaped meanwhile),
    Redis, the load generators, the receiver, this process, and the rest of the machine. ``groups`` maps a name to
    a callable that lists the group's pids now (processes started during the window count from zero)."""

    def __init__(self, groups: dict):
        self.groups = groups

    def _sample(self) -> dict[str, dict[int, float]]:
        # With the CPU of children each process has reaped: a Celery child replaced after its
        # CELERY_WORKER_MAX_TASKS_PER_CHILD tasks is gone by the end, its CPU in its parent's account.
        return {
            name: {pid: common.cpu_seconds(pid) + common.reaped_children_seconds(pid) for pid in pids()}
            for name, pids in self.groups.items()
        }

    def start(self) -> None:
        self.reaped = common.PostmasterReaped(DATABASE)
        self.reaped.start()
        self.before, self.busy, self.began = self._sample(), common.system_busy_seconds(), time.monotonic()

    def stop(self) -> dict:
        after, busy = self._sample(), common.system_busy_seconds() - self.busy
        elapsed = time.monotonic() - self.began
        seconds = {}
        for name, pids in after.items():
            before = self.before.get(name, {})
            seconds[name] = sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in pids.items())
        seconds["postgres"] = seconds.get("postgres", 0.0) + self.reaped.seconds()
        seconds["rest of the machine"] = max(0.0, busy - sum(seconds.values()))
        return {
            "elapsed_s": round(elapsed, 1),
            "machine_busy_cores": round(busy / elapsed, 2),
            "cpu_s": {name: round(value, 1) for name, value in seconds.items()},
            "cores": {name: round(value / elapsed, 2) for name, value in seconds.items()},
        }


def redis_pids() -> list[int]:
    return [process.pid for process in psutil.process_iter(["name"]) if process.info["name"] == "redis-server"]


def memory_sample(named: dict[str, int]) -> dict[str, int | None]:
    """Resident set size of each process, in bytes (None once it is gone)."""
    sizes = {}
    for name, pid in named.items():
        try:
            sizes[name] = psutil.Process(pid).memory_info().rss
        except psutil.Error:
            sizes[name] = None
    return sizes


def memory_growth(start: dict, end: dict) -> dict:
    rows = {}
    for name, before in start.items():
        after = end.get(name)
        growth = None if not before or after is None else (after - before) / before
        rows[name] = {
            "start_mb": None if before is None else round(before / 2**20, 1),
            "end_mb": None if after is None else round(after / 2**20, 1),
            "growth": None if growth is None else round(growth, 4),
        }
    return rows


def deliveries_state() -> dict:
    with psycopg.connect(common.database_url(DATABASE), connect_timeout=10) as conn:
        rows = conn.execute("SELECT public_id, status FROM exceptions_app_delivery WHERE kind = 'webhook'").fetchall()
        resolved = conn.execute(
            "SELECT count(*) FROM exceptions_app_exceptionitem WHERE status = 'resolved'"
        ).fetchone()[0]
    return {"by_id": dict(rows), "items_closed": resolved}


def deliveries_wait(receiver: Receiver, timeout: float) -> tuple[dict, float]:
    """Until no webhook delivery is pending and the receiver has one arrival per delivered one, or the timeout."""
    began = time.monotonic()
    while True:
        state = deliveries_state()
        statuses = Counter(state["by_id"].values())
        if statuses.get("pending", 0) == 0 and receiver.received() >= statuses.get("delivered", 0):
            return state, time.monotonic() - began
        if time.monotonic() - began >= timeout:
            return state, time.monotonic() - began
        time.sleep(1.0)


def deliveries_check(state: dict, arrivals: list) -> dict:
    received = Counter(arrival[1] for arrival in arrivals)
    statuses = Counter(state["by_id"].values())
    lost = [pk for pk in state["by_id"] if pk not in received]
    return {
        "webhook_deliveries": len(state["by_id"]),
        "statuses": dict(statuses),
        "received": len(arrivals),
        "distinct_received": len(received),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "still_pending": statuses.get("pending", 0),
        "dead": statuses.get("dead", 0),
        "duplicated": sum(1 for count in received.values() if count > 1),
        "unknown_ids": sum(1 for webhook_id in received if webhook_id not in state["by_id"]),
    }


# --- report --------------------------------------------------------------------------------------------------


def calls_merge(*parts: dict) -> dict:
    latency, statuses, samples = defaultdict(list), defaultdict(Counter), []
    for part in parts:
        for name, values in part["latency"].items():
            latency[name] += values
        for name, counts in part["statuses"].items():
            statuses[name].update(counts)
        samples += part["samples"]
    figures = {}
    for name in sorted(latency):
        values = latency[name]
        figures[name] = {
            "calls": len(values),
            "statuses": dict(statuses[name]),
            "p50_ms": round(common.percentile(values, 0.50) * 1000, 1),
            "p95_ms": round(common.percentile(values, 0.95) * 1000, 1),
            "max_ms": round(max(values, default=0.0) * 1000, 1),
        }
    return {"by_call": figures, "error_samples": samples[:10]}


CALL_LABELS = {
    "POST /decisions": "submit",
    "POST /decisions/batch": "batch",
    "POST /queues/{name}/claim-next": "claim-next",
    "POST /exceptions/{id}/resolve": "resolve",
    "GET /queues": "queues",
}
EXPECTED_STATUSES = {"POST /queues/{name}/claim-next": {"200", "204"}}


def errors_count(calls: dict) -> int:
    total = 0
    for name, figures in calls["by_call"].items():
        expected = EXPECTED_STATUSES.get(name, {"200", "201"})
        total += sum(count for status, count in figures["statuses"].items() if status not in expected)
    return total


def log_errors(*processes) -> list[str]:
    lines = []
    for process in processes:
        text = process.log_tail(20_000_000)
        lines += [line for line in text.splitlines() if "Traceback" in line or " ERROR" in line or "CRITICAL" in line]
    return lines


def summary_build(report: dict, shape: str) -> list[dict]:
    calls, agents = report["calls"]["by_call"], report["agents"]
    achieved, offered = agents["achieved_per_s"], agents["offered_per_s"]
    growth = report["memory_worst"]
    latency = "; ".join(
        f"{label} {calls[name]['p50_ms']:.0f}/{calls[name]['p95_ms']:.0f}"
        for name, label in CALL_LABELS.items()
        if name in calls
    )
    deliveries, depth = report["deliveries"], report["depth"]
    return [
        common.summary_row("soak.errors", shape, str(report["errors"]), "0", met=report["errors"] == 0),
        common.summary_row(
            "soak.rate",
            shape,
            f"{achieved:.0f} decisions/s submitted",
            f">= 0.95 x {offered:.0f}/s offered",
            met=achieved >= 0.95 * offered,
        ),
        common.summary_row("soak.latency", shape, latency + " ms p50/p95", "(report)"),
        common.summary_row(
            "soak.queue_depth",
            shape,
            f"open items start {depth['first']}, max {depth['max']}, end {depth['last']}",
            "(report)",
        ),
        common.summary_row(
            "soak.deliveries",
            shape,
            f"{deliveries['lost']} lost of {deliveries['webhook_deliveries']}, {deliveries['duplicated']} duplicated",
            "0 lost",
            met=deliveries["lost"] == 0 and deliveries["webhook_deliveries"] > 0,
        ),
        common.summary_row(
            "soak.memory",
            shape,
            f"worst growth {100 * growth['growth']:.1f}% ({growth['name']})",
            f"< {100 * MEMORY_GROWTH_LIMIT:.0f}% per process",
            met=growth["growth"] < MEMORY_GROWTH_LIMIT,
        ),
    ]


def table_rows(report: dict, shape: str) -> list[dict]:
    rows = []
    for row in summary_build(report, shape):
        result = {True: "PASS", False: "FAIL", None: "info"}[row["met"]]
        rows.append({**{key: row[key] for key in ("name", "workload", "figure", "target")}, "result": result})
    for name, figures in report["calls"]["by_call"].items():
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(figures["statuses"].items()))
        rows.append(
            {
                "name": f"call {name}",
                "workload": f"{figures['calls']} calls",
                "figure": f"p50 {figures['p50_ms']} / p95 {figures['p95_ms']} / max {figures['max_ms']} ms "
                f"({statuses})",
                "target": "(report)",
                "result": "info",
            }
        )
    for name, cores in report["cpu"]["cores"].items():
        per_decision = report["cpu_ms_per_accepted_decision"][name]
        rows.append(
            {
                "name": f"cpu {name}",
                "workload": f"{report['cpu']['elapsed_s']:g} s after warm-up",
                "figure": f"{cores:.2f} cores, {per_decision:.2f} ms per accepted decision",
                "target": "(report)",
                "result": "info",
            }
        )
    for name, figures in report["memory"].items():
        growth = figures["growth"]
        rows.append(
            {
                "name": f"memory {name}",
                "workload": "after warm-up -> end",
                "figure": f"{figures['start_mb']} -> {figures['end_mb']} MB"
                + ("" if growth is None else f" ({100 * growth:+.1f}%)"),
                "target": "(harness: keeps every arrival)"
                if name in HARNESS_PROCESSES
                else f"< {100 * MEMORY_GROWTH_LIMIT:.0f}%",
                "result": "info"
                if growth is None or name in HARNESS_PROCESSES
                else ("PASS" if growth < MEMORY_GROWTH_LIMIT else "FAIL"),
            }
        )
    return rows


# --- main ------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="60 s at 20 decisions/s (full: 600 s at 200/s)")
    parser.add_argument("--rate", type=float, help="decisions per second offered by the agents")
    parser.add_argument("--duration", type=float, help="seconds of load")
    parser.add_argument("--operators", type=int, default=10, help="simulated operators")
    parser.add_argument(
        "--batch-share", type=float, default=0.8, help="share of the decisions submitted in batches (0: all singly)"
    )
    parser.add_argument("--batch-size", type=int, default=20, help="decisions per batch")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (gthread)")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker")
    parser.add_argument("--worker-concurrency", type=int, default=1, help="processes per Celery worker (2 workers)")
    parser.add_argument("--drain-timeout", type=float, help="seconds to wait for deliveries after the load")
    args = parser.parse_args()
    if not 0.0 <= args.batch_share <= 1.0 or not 1 <= args.batch_size <= 1000:
        parser.error("--batch-share must be within 0..1 and --batch-size within 1..1000")
    args.rate = args.rate or (20.0 if args.quick else 200.0)
    args.duration = args.duration or (60.0 if args.quick else 600.0)
    args.drain_timeout = args.drain_timeout or (60.0 if args.quick else 300.0)
    warmup = min(15.0, args.duration / 5)
    think = (0.05, 0.3) if args.quick else (0.02, 0.1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally that stops the servers

    data_dir = tempfile.mkdtemp(prefix="tollgate-bench-soak-")
    env = common.bench_env(DATABASE, redis_db=REDIS_DB)
    env.update(TOLLGATE_CALLBACK_ALLOW="127.0.0.1", TOLLGATE_DATA_DIR=data_dir)
    common.database_prepare(env, DATABASE, ("seed_demo",), redis_db=REDIS_DB)
    script = TOKENS_SCRIPT.format(teams=TEAMS, workflows=WORKFLOWS, operators=args.operators)
    tokens = json.loads(common.manage(env, "shell", "-c", script).strip().splitlines()[-1])

    receiver = Receiver()
    receiver.start()
    server = common.Gunicorn(env, workers=args.workers, threads=args.threads)
    celery_args = ["--queues", ",".join(CELERY_QUEUES), "--concurrency", str(args.worker_concurrency)]
    celery_args += ["--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
    workers = [
        common.CeleryProcess(env, "worker", *celery_args, "--hostname", f"soak{n}@%h", name=f"soak-worker{n}")
        for n in range(2)
    ]
    beat_schedule = str(Path(data_dir) / "celerybeat-schedule")
    beat = common.CeleryProcess(env, "beat", "--loglevel", "WARNING", "--schedule", beat_schedule, name="soak-beat")
    batched = f"{100 * args.batch_share:g}% in batches of {args.batch_size}" if args.batch_share else "all singly"
    shape = (
        f"{args.rate:g}/s ({batched}) x {args.duration:g} s, {args.operators} operators, "
        f"{args.workers}w x {args.threads}t"
    )
    arrivals: list = []
    try:
        server.start()
        for worker in workers:
            worker.start()
        beat.start()
        print(f"gunicorn :{server.port} (log {server.log}); workers {[str(w.log) for w in workers]}", file=sys.stderr)
        url = f"http://{common.HOST}:{server.port}"
        agents = LoadProcess(
            agents_main,
            url,
            tokens["agent"],
            receiver.url,
            args.rate,
            args.duration,
            args.batch_share,
            args.batch_size,
        )
        operators = LoadProcess(operators_main, url, tokens["operators"], args.duration, think)
        sampler_calls = Calls()
        sampler = DepthSampler(url, tokens["supervisor"], sampler_calls)
        print(f"load: {shape}", file=sys.stderr)
        began = time.monotonic()
        agents.start()
        operators.start()
        sampler.start()
        time.sleep(warmup)
        named = processes_named(server, workers, beat, receiver)
        memory_start = memory_sample(named)
        cpu = CpuAccount(
            {
                "gunicorn": lambda: [server.process.pid, *server.worker_pids()],
                **{f"celery{n}": worker.pids for n, worker in enumerate(workers)},
                "beat": beat.pids,
                "postgres": lambda: sorted(common.client_backend_pids(DATABASE)),
                "redis": redis_pids,
                "agents (load)": lambda: [agents.process.pid] if agents.process.is_alive() else [],
                "operators (load)": lambda: [operators.process.pid] if operators.process.is_alive() else [],
                "receiver (harness)": lambda: [receiver.process.pid],
                "soak main and sampler": lambda: [os.getpid()],
            }
        )
        cpu.start()
        time.sleep(max(0.0, began + args.duration - time.monotonic()))
        memory_end = memory_sample(named)
        cpu_used = cpu.stop()
        agents_result = agents.result(timeout=150)
        operators_result = operators.result(timeout=150)
        load_s = time.monotonic() - began
        print(f"load done after {load_s:.0f} s; waiting for deliveries", file=sys.stderr)
        state, drain_s = deliveries_wait(receiver, args.drain_timeout)
        depth_samples = sampler.stop()
        server_errors = log_errors(server)
    finally:
        beat.stop()
        for worker in workers:
            worker.stop()
        server.stop()
        arrivals = receiver.stop()

    calls = calls_merge(agents_result, operators_result, sampler_calls.dump())
    worker_errors = log_errors(*workers, beat)
    errors = errors_count(calls) + len(server_errors) + len(worker_errors)
    deliveries = deliveries_check(state, arrivals)
    memory = memory_growth(memory_start, memory_end)
    worst = max(
        (
            (figures["growth"], name)
            for name, figures in memory.items()
            if figures["growth"] is not None and name not in HARNESS_PROCESSES
        ),
        default=(0.0, "-"),
    )
    accepted = agents_result.get("accepted", 0)
    agents_elapsed = max(agents_result.get("elapsed_s", args.duration), 1e-9)
    open_items = [sample["open_items"] for sample in depth_samples if "open_items" in sample]
    report = {
        "errors": errors,
        "calls": calls,
        "agents": {
            "offered_per_s": args.rate,
            "achieved_per_s": round(accepted / agents_elapsed, 1),
            "accepted": accepted,
            "offered": agents_result.get("offered"),
            "late_skipped": agents_result.get("late_skipped"),
            "verdicts": agents_result.get("verdicts"),
            "single_per_s": agents_result.get("single_per_s"),
            "batches_per_s": agents_result.get("batches_per_s"),
            "batch_size": agents_result.get("batch_size"),
            "batch_entries_failed": agents_result.get("batch_entries_failed"),
            "threads": agents_result.get("threads"),
        },
        "operators": {"resolved": operators_result.get("resolved")},
        "depth": {
            "first": open_items[0] if open_items else None,
            "max": max(open_items, default=None),
            "last": open_items[-1] if open_items else None,
            "samples": depth_samples[:: max(1, len(depth_samples) // 400)],
        },
        "deliveries": {**deliveries, "drain_wait_s": round(drain_s, 1), "items_closed": state["items_closed"]},
        "memory": memory,
        "cpu": cpu_used,
        "cpu_ms_per_accepted_decision": {
            name: round(1000 * value / max(1.0, accepted / agents_elapsed * cpu_used["elapsed_s"]), 2)
            for name, value in cpu_used["cpu_s"].items()
        },
        "memory_worst": {"growth": worst[0], "name": worst[1]},
        "log_errors": {"server": server_errors[:5], "workers": worker_errors[:5]},
    }
    rows = table_rows(report, shape)
    common.table_print(rows)
    if calls["error_samples"]:
        print("\nerror samples:\n" + "\n".join(calls["error_samples"]), file=sys.stderr)
    path = common.results_save(
        "soak",
        quick=args.quick,
        machine=common.machine_at_end(DATABASE),
        parameters={**vars(args), "warmup_s": warmup, "think_s": think, "celery_workers": 2},
        **report,
        rows=rows,
        summary=summary_build(report, shape),
    )
    return common.results_exit_code(path, rows)


if __name__ == "__main__":
    sys.exit(main())
