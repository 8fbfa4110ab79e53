"""Waiting agents benchmark: many agents waiting on their held items while the gate takes decisions.

    .venv/bin/python bench/waits.py [--quick] [--waiters N] [--duration S]

Creates the database tollgate_bench_waits afresh, loads policies/, and runs, on loopback:
1. intake (single decisions, 8 clients) against the earlier serving set-up (gunicorn gthread, 2 x 8 threads,
   exceptions_app.wsgi) and against the Procfile's (gunicorn with uvicorn workers, exceptions_app.asgi), both
   up at once and loaded in turns, ABBA: the new one's rate as a ratio of the old one's (target: no
   regression over 10%);
2. holds N items, then opens N waiting connections
   (``GET /api/v1/exceptions/{id}?wait=300``) from one asyncio process, reconnecting after a reset as
   TollgateClient does; counts the kernel's listen-queue overflows while they are admitted, and measures the
   web workers' memory per waiter and the database's transactions per second while they wait and nothing
   else happens (target: about 0);
3. intake with the N waiters present, in turns (ABBA) with a twin server on the same database that no waiter
   reaches: its p95 as a ratio of the twin's (target: at most 1.5); each ratio held to a target is the
   median over the rounds of one server's turn against the other's turn of the same round;
4. resolves a sample of the waited items at a steady pace and measures, for each, the time from the resolving
   transaction's commit to its waiter receiving the answer (target: p95 under 500 ms).
Writes bench/results/waits.json.
"""

import argparse
import asyncio
import multiprocessing
import os
import random
import resource
import signal
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench import common, intake

DATABASE = "tollgate_bench_waits"
OPERATORS = ("bench-operator", "bench-checker")  # two people: four-eyes items need both
WORKFLOW = "billing.invoice_adjustment"
WAIT_SECONDS = 300
PROCFILE = dict(workers=2, threads=8)
RECONNECTS = 20  # per waiter, before it gives up


def listen_overflows() -> int:
    """The kernel's count of handshakes dropped because a listen queue was full (TcpExt ListenOverflows)."""
    header, values = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()[:2]]
    return int(dict(zip(header, values, strict=True)).get("ListenOverflows", 0))


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def transactions(database: str) -> int:
    with psycopg.connect(common.database_url(database), connect_timeout=10, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", [database]
        ).fetchone()[0]


def table_scans(database: str) -> int:
    """Sequential and index scans started on the app's tables: every query that reads a table counts, while
    autovacuum and the statistics collector do not (they are why transactions alone mislead)."""
    with psycopg.connect(common.database_url(database), connect_timeout=10, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute(
            "SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0) FROM pg_stat_user_tables"
        ).fetchone()[0]


# PostgreSQL 15's backends keep their statistics and report them at most once a second while busy, and
# within PGSTAT_IDLE_INTERVAL (10 s) of going idle. Counting from less than that after the waiters' admission
# counted the admission's own reads as "waiting": 10 to 32 transactions/s in earlier runs, where the statement
# log showed no statement at all from the server while the waiters waited.
STATS_REPORTED_S = 11.0


def idle_scans_per_second(database: str, seconds: float) -> float:
    time.sleep(STATS_REPORTED_S)
    before = table_scans(database)
    time.sleep(seconds)
    return round(max(0, table_scans(database) - before) / seconds, 2)


def database_settle(database: str) -> None:
    """VACUUM ANALYZE after the bulk inserts, so autovacuum does not run inside the idle windows."""
    with psycopg.connect(common.database_url(database), connect_timeout=10, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def workers_idle(server: common.Gunicorn, deadline: float, *, cores: float = 0.03, window: float = 2.0) -> None:
    """Until the web workers together use under ``cores`` of a core over ``window`` seconds (or the deadline)."""
    while time.monotonic() < deadline:
        pids = server.worker_pids()
        before = sum(common.cpu_seconds(pid) for pid in pids)
        time.sleep(window)
        if sum(common.cpu_seconds(pid) for pid in pids) - before < cores * window:
            return


def idle_transactions_per_second(database: str, seconds: float) -> float:
    """Transactions per second in the database while nothing but the waiters is going on (the probe's own
    connection's are subtracted)."""
    time.sleep(STATS_REPORTED_S)
    before = transactions(database)
    time.sleep(seconds)
    after = transactions(database)
    return round(max(0, after - before - 1) / seconds, 2)


# --- the waiting agents: one asyncio process, one raw HTTP/1.1 connection each ----------------------------------


async def _wait_one(port: int, token: str, item_id: int, arrivals: dict, connected: list, retried: Counter) -> None:
    """One agent's long-poll. A connection closed or reset before any answer is tried again after a
    growing, jittered pause, as TollgateClient.wait() does: the kernel resets a handshake the server
    has not accepted in time (counted by listen_overflows), and a real agent would reconnect."""
    request = (
        f"GET /api/v1/exceptions/{item_id}?wait={WAIT_SECONDS} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
    outcome, ever_connected = "no attempt", False
    for attempt in range(RECONNECTS + 1):
        if attempt:
            retried[outcome] += 1
            await asyncio.sleep(random.uniform(0.5, 1.5) * min(attempt, 8))
        try:
            reader, writer = await asyncio.open_connection(common.HOST, port)
        except OSError as error:
            outcome = f"connect: {error.__class__.__name__}"
            continue
        if not ever_connected:
            ever_connected = True
            connected.append(item_id)
        try:
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            if not status_line:
                outcome = "closed before an answer"
                continue
            status = status_line.split(b" ")[1].decode()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            arrivals[item_id] = (time.time(), status)
            return
        except (OSError, asyncio.IncompleteReadError, IndexError) as error:
            outcome = f"error: {error.__class__.__name__}"
            if not isinstance(error, ConnectionResetError):
                break
        finally:
            writer.close()
    arrivals[item_id] = (time.time(), outcome)


async def _waiters(port: int, token: str, item_ids: list[int], control) -> None:
    arrivals: dict = {}
    connected: list = []
    retried: Counter = Counter()
    tasks = []
    for start in range(0, len(item_ids), 500):  # a ramp the accept queue can take
        tasks += [
            asyncio.create_task(_wait_one(port, token, item_id, arrivals, connected, retried))
            for item_id in item_ids[start : start + 500]
        ]
        await asyncio.sleep(0.3)
    while len(connected) + len(arrivals) < len(item_ids):
        await asyncio.sleep(0.1)
    control.send(("connected", len(connected), dict(arrivals)))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, control.recv)  # "report": the parent has resolved what it meant to
    control.send(("arrivals", dict(arrivals), dict(retried)))
    await loop.run_in_executor(None, control.recv)  # "stop"
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def waiters_process(port: int, token: str, item_ids: list[int], control) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    asyncio.run(_waiters(port, token, item_ids, control))


# --- resolving, as an operator, through the services the API calls ----------------------------------------------


def django_setup(env: dict) -> None:
    os.environ.update({key: env[key] for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG")})
    os.environ["DJANGO_SETTINGS_MODULE"] = "exceptions_app.settings"
    import django

    django.setup()


def resolve_paced(item_ids: list[int], rate: float) -> dict[int, float]:
    """Claim and approve each item, ``rate`` a second; the time each resolving transaction committed.
    An item under four eyes (the policies' large amounts) takes a second person's approval."""
    from exceptions_app.models import ItemStatus, Principal
    from exceptions_app.services.items import item_claim, item_resolve

    people = [Principal.objects.get(user__username=name) for name in OPERATORS]
    committed: dict[int, float] = {}
    began = time.monotonic()
    for n, item_id in enumerate(item_ids):
        time.sleep(max(0.0, began + n / rate - time.monotonic()))
        for person in people:
            item_claim(item_id=item_id, principal=person)
            if item_resolve(item_id=item_id, principal=person, action="approve").status == ItemStatus.RESOLVED:
                break
        committed[item_id] = time.time()
    return committed


def hold_items(server: common.Gunicorn, token: str, count: int) -> list[int]:
    import httpx

    rng = random.Random(20261207)
    ids: list[int] = []
    with httpx.Client(base_url=f"http://{common.HOST}:{server.port}", timeout=120) as http:
        for start in range(0, count, 1000):
            entries = [
                {**intake.decision(rng, n), "confidence": 0.3, "idempotency_key": f"wait-{n}"}
                for n in range(start, min(count, start + 1000))
            ]
            answer = http.post(
                "/api/v1/decisions/batch", json={"decisions": entries}, headers={"authorization": f"Bearer {token}"}
            ).json()
            ids += [result["exception"]["id"] for result in answer["results"] if result.get("verdict") == "hold"]
    return ids


def alternated(first, second, token, bodies, duration: float, *, rounds: int) -> tuple[dict, dict]:
    """The intake on two servers in turn, ``rounds`` times in ABBA order, ``duration`` seconds per server
    in all; each server's turns pooled: rate over all its turns, the median of its turns' p95s, server
    CPU per decision. Both live through the same minutes, so drift in a shared host's speed falls on both."""
    turns: dict = {0: [], 1: []}
    for _, side in common.abba(rounds, 0, 1):
        turns[side].append(intake_run((first, second)[side], token, bodies, max(2.0, duration / rounds)))

    def pooled(runs: list[dict]) -> dict:
        recorded, elapsed = sum(run["recorded"] for run in runs), sum(run["elapsed_s"] for run in runs)
        cpu = sum(run["cpu"]["gunicorn_cpu_s"] + run["cpu"]["postgres_cpu_s"] for run in runs)
        return {
            "turns": len(runs),
            "recorded": recorded,
            "errors": sum(run["errors"] for run in runs),
            "rate_per_s": round(recorded / max(elapsed, 1e-9), 1),
            "p95_ms": round(statistics.median(run["p95_ms"] for run in runs), 2),
            "server_cpu_ms_per_decision": round(1000 * cpu / max(1, recorded), 3),
            "turn_rates": [run["rate_per_s"] for run in runs],
            "turn_p95s_ms": [run["p95_ms"] for run in runs],
        }

    return pooled(turns[0]), pooled(turns[1])


def round_ratio(numerator: dict, denominator: dict, key: str) -> float:
    """The median over the rounds of one server's turn against the other's turn of the same round: the
    figure held to a target, as in bench/tracing_paired.py. A single fast or slow turn, which a pooled
    rate follows, moves it little."""
    ratios = common.paired_ratios(numerator[key], denominator[key])
    return round(statistics.median(ratios), 3) if ratios else 0.0


def intake_run(server, token, bodies, duration: float) -> dict:
    return intake.load_run(
        server,
        token,
        intake.SINGLE,
        bodies,
        clients=8,
        processes=2,
        duration=duration,
        max_requests=int(duration * 20_000),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter intake runs (same number of waiters)")
    parser.add_argument("--waiters", type=int, default=10_000)
    parser.add_argument("--duration", type=int, help="seconds of each intake run (quick 6, full 20)")
    parser.add_argument("--rounds", type=int, default=4, help="ABBA rounds of each side-by-side intake comparison")
    parser.add_argument("--resolves", type=int, default=500, help="waited items resolved to time the wake-up")
    parser.add_argument("--resolve-rate", type=float, default=50.0, help="resolutions per second")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    duration = args.duration or (6 if args.quick else 20)
    background = common.busy_cores()
    intake.DATABASE = DATABASE  # intake's CPU meter reads this database's backends

    env = common.bench_env(DATABASE)
    common.database_prepare(env, DATABASE, ("apply_policies", "policies/"), ("seed_demo",))
    token = common.manage(env, "create_token", "bench-agent", "--role", "agent", "--workflows", WORKFLOW).strip()
    for name in OPERATORS:
        common.manage(env, "create_token", name, "--role", "operator", "--teams", "finance")
    django_setup(env)
    rng = random.Random(20261207)
    bodies = [intake.json.dumps(intake.decision(rng, 100_000 + n)).encode() for n in range(2000)]

    results: dict = {"parameters": {**vars(args), "duration_s": duration}}
    # Three servers on the same database: the earlier serving (old), the Procfile's that the waiters will
    # wait on (server), and a twin of it that no waiter ever reaches, to compare the intake with and without
    # the waiters in the same minutes.
    old = common.Gunicorn(env, serving="wsgi", **PROCFILE)
    # gunicorn's default backlog (2048; the kernel caps it at somaxconn), not the other benches' 256: the
    # waiters connect 500 at a time.
    server = common.Gunicorn(env, serving="asgi", backlog=2048, **PROCFILE)
    twin = common.Gunicorn(env, serving="asgi", **PROCFILE)
    waiting = None
    try:
        for each in (old, server, twin):
            each.start()
            intake_run(each, token, bodies, 2)  # warm-up
        results["intake_old"], results["intake_new"] = alternated(
            old, server, token, bodies, duration, rounds=args.rounds
        )
        old.stop()
        print(f"holding {args.waiters} items", file=sys.stderr)
        item_ids = hold_items(server, token, args.waiters)
        time.sleep(2)
        database_settle(DATABASE)
        rss_before = rss_bytes(server.worker_pids())
        idle_before = idle_transactions_per_second(DATABASE, 5)
        scans_before = idle_scans_per_second(DATABASE, 5)

        control, child_end = multiprocessing.Pipe()
        waiting = multiprocessing.get_context("fork").Process(
            target=waiters_process, args=(server.port, token, item_ids, child_end)
        )
        began, overflows_before = time.monotonic(), listen_overflows()
        waiting.start()
        _, connected, early = control.recv()
        results["connected_after_s"] = round(time.monotonic() - began, 1)
        # Each waiter is admitted (authenticated, its item read) on the web threads before it waits: the
        # measurements start once that is over, when the web workers go idle (a waiting request costs no
        # CPU). Earlier runs waited for the database to go quiet instead, which other transactions can hide.
        workers_idle(server, began + 300)
        results["admitted_after_s"] = round(time.monotonic() - began, 1)
        rss_after = rss_bytes(server.worker_pids())
        database_settle(DATABASE)
        idle_with = idle_transactions_per_second(DATABASE, 10)
        scans_with = idle_scans_per_second(DATABASE, 10)
        results["waiters"] = {
            "asked": args.waiters,
            "held_items": len(item_ids),
            "connected": connected,
            "answered_early": len(early),
            "listen_overflows_while_admitting": listen_overflows() - overflows_before,
            "early_statuses": sorted({status for _, status in early.values()})[:5],
            "rss_before_mb": round(rss_before / 2**20, 1),
            "rss_after_mb": round(rss_after / 2**20, 1),
            "kb_per_waiter": round((rss_after - rss_before) / 1024 / max(1, connected), 1),
            "db_transactions_per_s_idle_without": idle_before,
            "db_transactions_per_s_idle_with": idle_with,
            "db_table_scans_per_s_idle_without": scans_before,
            "db_table_scans_per_s_idle_with": scans_with,
        }
        print(f"waiters: {results['waiters']}", file=sys.stderr)
        results["intake_with_waiters"], results["intake_held"] = alternated(
            server, twin, token, bodies, duration, rounds=args.rounds
        )
        sample = random.Random(7).sample(item_ids, min(args.resolves, len(item_ids)))
        committed = resolve_paced(sample, args.resolve_rate)
        time.sleep(2)
        control.send("report")
        _, arrivals, retried = control.recv()
        results["waiters"]["reconnects"] = retried
        latencies = [
            arrivals[i][0] - committed[i]
            for i in sample
            if i in arrivals and arrivals[i][1] == "200" and arrivals[i][0] >= committed[i]
        ]
        results["wake"] = {
            "resolved": len(sample),
            "answered": len(latencies),
            **{f"p{q}_ms": round(common.percentile(latencies, q / 100) * 1000, 1) for q in (50, 95, 99)},
            "max_ms": round(max(latencies, default=0) * 1000, 1),
        }
        # Why a timed waiter gave no figure: no answer yet, an answer before its commit, or another status.
        missed = Counter(
            "no answer"
            if i not in arrivals
            else ("answered before the commit" if arrivals[i][0] < committed[i] else arrivals[i][1])
            for i in sample
            if i not in arrivals or arrivals[i][1] != "200" or arrivals[i][0] < committed[i]
        )
        results["wake"]["not_timed"] = dict(missed)
        results["unresolved_answered"] = sum(1 for i, (_, _) in arrivals.items() if i not in committed)
        control.send("stop")
        waiting.join(30)
    finally:
        if waiting is not None and waiting.is_alive():
            waiting.terminate()
        for each in (old, server, twin):
            each.stop()

    rows, summary = table(results, args)
    common.table_print(rows)
    path = common.results_save(
        "waits",
        quick=args.quick,
        machine=common.machine_at_end(DATABASE, busy_cores_before=background),
        **results,
        rows=rows,
        summary=summary,
    )
    print(f"\nresults: {path}", file=sys.stderr)
    return 0


def table(results: dict, args) -> tuple[list[dict], list[dict]]:
    old, new, loaded = results["intake_old"], results["intake_new"], results["intake_with_waiters"]
    held = results["intake_held"]
    waiters, wake = results["waiters"], results["wake"]
    rate_ratio = round_ratio(new, old, "turn_rates")
    p95_ratio = round_ratio(loaded, held, "turn_p95s_ms")
    n = waiters["connected"]
    shape = (
        f"8 clients, {results['parameters']['duration_s']} s per server in {args.rounds} ABBA rounds, "
        "Procfile's 2 workers x 8 threads"
    )
    rows = [
        _row("intake, old serving (wsgi)", shape, f"{old['rate_per_s']}/s, p95 {old['p95_ms']} ms", "", None),
        _row(
            "intake, new serving (asgi)",
            shape,
            f"{new['rate_per_s']}/s, p95 {new['p95_ms']} ms; rounds' median {rate_ratio:.2f}x old "
            f"(pooled {new['rate_per_s'] / max(old['rate_per_s'], 1e-9):.2f}x), CPU per decision "
            f"{new['server_cpu_ms_per_decision']} against {old['server_cpu_ms_per_decision']} ms",
            ">= 0.9x old",
            rate_ratio >= 0.9,
        ),
        _row(
            "intake, twin server, no waiter",
            shape,
            f"{held['rate_per_s']}/s, p95 {held['p95_ms']} ms",
            "",
            None,
        ),
        _row(
            f"intake with {n} waiters",
            shape,
            f"{loaded['rate_per_s']}/s, p95 {loaded['p95_ms']} ms: rounds' median {p95_ratio:.2f}x the twin's",
            "p95 <= 1.5x without",
            p95_ratio <= 1.5,
        ),
        _row(
            "waiters connected",
            f"{args.waiters} asked",
            f"{n} waiting, {waiters['answered_early']} answered early; "
            f"{waiters['listen_overflows_while_admitting']} listen overflows while admitting, "
            f"reconnects {waiters.get('reconnects') or 0}",
            "all wait",
            n == args.waiters and waiters["answered_early"] == 0,
        ),
        _row("memory per waiter", f"{n} waiters", f"{waiters['kb_per_waiter']} KB", "report", None),
        _row(
            "db queries/s spent on waiting",
            f"{n} waiters, idle, after VACUUM ANALYZE",
            f"{waiters['db_table_scans_per_s_idle_with']} table scans/s "
            f"(without: {waiters['db_table_scans_per_s_idle_without']}); "
            f"{waiters['db_transactions_per_s_idle_with']} tx/s "
            f"(without: {waiters['db_transactions_per_s_idle_without']})",
            "about 0",
            waiters["db_table_scans_per_s_idle_with"] <= waiters["db_table_scans_per_s_idle_without"] + 0.5,
        ),
        _row(
            "resolve to waiter",
            f"{wake['resolved']} resolved at {args.resolve_rate:.0f}/s",
            f"p50 {wake['p50_ms']} ms, p95 {wake['p95_ms']} ms, {wake['answered']} answered"
            + (f", not timed: {wake['not_timed']}" if wake.get("not_timed") else ""),
            "p95 < 500 ms",
            wake["p95_ms"] < 500 and wake["answered"] == wake["resolved"],
        ),
    ]
    summary = [
        common.summary_row(
            "waits.intake_ratio",
            shape,
            f"{new['rate_per_s']}/s vs {old['rate_per_s']}/s",
            ">= 0.9x old",
            limit=f"{old['rate_per_s']}/s (wsgi)",
            ratio=round(rate_ratio, 2),
            met=rate_ratio >= 0.9,
        ),
        common.summary_row(
            "waits.p95_with_waiters",
            f"{n} waiters",
            f"p95 {loaded['p95_ms']} ms",
            "<= 1.5x without",
            limit=f"{held['p95_ms']} ms without",
            ratio=round(p95_ratio, 2),
            met=p95_ratio <= 1.5,
        ),
        common.summary_row(
            "waits.wake_p95",
            f"{wake['resolved']} resolved",
            f"{wake['p95_ms']} ms",
            "< 500 ms",
            met=wake["p95_ms"] < 500,
        ),
        common.summary_row("waits.memory", f"{n} waiters", f"{waiters['kb_per_waiter']} KB/waiter", "report"),
        common.summary_row(
            "waits.idle_db",
            f"{n} waiters",
            f"{waiters['db_table_scans_per_s_idle_with']} table scans/s, "
            f"{waiters['db_transactions_per_s_idle_with']} tx/s",
            "about 0",
            met=rows[6]["result"] == "ok",
        ),
    ]
    return rows, summary


def _row(name: str, workload: str, figure: str, target: str, met: bool | None) -> dict:
    return {
        "name": name,
        "workload": workload,
        "figure": figure,
        "target": target,
        "result": "report" if met is None else ("ok" if met else "FAIL"),
    }


if __name__ == "__main__":
    sys.exit(main())
