"""Claim-next benchmark: 16 concurrent claimers on a queue of 1,000,000 open items in PostgreSQL.

    .venv/bin/python bench/claim.py [--quick] [--reuse] [--items N] [--duration S] [--claimers 16]

Creates the database tollgate_bench_claim afresh, migrates, publishes policies/billing.invoice_adjustment.yaml,
makes an agent and 16 operators in a team that works queue "billing", and loads the open items straight into
the table with one INSERT ... SELECT generate_series per chunk (then VACUUM ANALYZE). ``--reuse`` keeps the
items of an earlier run with the same size instead. Then, each run on a freshly reset queue (claimed rows back
to open, VACUUM ANALYZE), 16 spawned processes with one connection each:

1. EXPLAIN (ANALYZE, BUFFERS) of the claim SELECT that item_claim_next issues, at full depth;
2. "django": each process calls exceptions_app.services.items.item_claim_next in a closed loop; then the
   checks (no id claimed twice, one 'claimed' audit event per item, the claimed set is exactly the head of the
   queue in claim order), and EXPLAIN again on the churned table, with n_dead_tup;
3. "django.paced": the same at 2 claims/s per process (open loop): latency below saturation;
4. "sql.limit": the statement item_claim_next sends on PostgreSQL for an operator (services/items.py
   ``claim_next_sql``: check the operator's teams, lock the head with SKIP LOCKED, mark it claimed, insert its
   audit event) run straight from psycopg, prepared, in autocommit, by the same number of processes in a tight
   loop: the same work without Django's raw query, client-side binding and model building. Our rates are
   given as its ratio (issue 9: claim-next >= 0.5 of the limit).

Prints a table and writes bench/results/claim.json (with a "summary" for bench/run.py). Targets: p95 < 10 ms
(issue 4), no double claims, throughput >= 0.5 of the raw statement's (issue 9).
Only loopback; every loop is bounded in time and count; only the bench database is dropped. The server is
shared: each run records the CPU other processes used and the oldest transaction holding an xid, which pins
the xmin horizon and makes every claim walk the dead index entries of earlier claims.
"""

import argparse
import multiprocessing
import os
import re
import sys
import time
from array import array
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench import common

DATABASE = "tollgate_bench_claim"
REDIS_DB = 14  # the benches' Redis database (they run one after another)
WORKFLOW = "billing.invoice_adjustment"
QUEUE = "billing"
TEAM = "bench-billing"
POLICY = common.ROOT / "policies" / "billing.invoice_adjustment.yaml"
ITEM_TABLE = "exceptions_app_exceptionitem"
CLAIMERS = 16  # --claimers changes it (in the main process: the claimers themselves never read it)
WARMUP_CLAIMS = 20  # per claimer, before the start line: connection, imports, prepared plans
MAX_RATE = 50_000  # claims per second per claimer: caps every loop's count, whatever the clock says
LOAD_CHUNK = 100_000
TREND_WINDOW_S = 5
PACE_S = 0.5  # the paced run: each claimer claims every 0.5 s (16 x 2 = 32 claims/s offered), open loop
P95_TARGET_MS = 10.0
EXPLAIN_BUFFER_LIMIT = 16  # "a handful": btree descent plus the heap page of the head

# The items, built in SQL: the fields intake's _item_build fills, with billing-like values. Priorities follow
# services/priority.py (severity points + 20 per decade of value at risk + 5 per fired rule: ~120-510), due
# times follow the policy's 1 h SLA from arrivals spread over the last 6 h (so some are past due).
LOAD_SQL = """
INSERT INTO exceptions_app_exceptionitem (
    kind, proposal, confidence, input, context, trace, model_version, correlation_id, idempotency_key,
    request_fingerprint, reasons, severity, value_at_risk, callback_url, status, priority, due_at, expires_at,
    sla_stage, sla_near_at, resolution, reason_code, resolution_note, raised_at, queued_at, updated_at,
    policy_version_id, agent_id, queue_id, workflow_id
)
SELECT
    'hold',
    jsonb_build_object(
        'invoice_id', 'INV-' || (2025000000 + g),
        'type', kind,
        'amount', amount,
        'currency', currency,
        'reason', kind || ' requested by customer: service outage on ' || lpad((mod(g, 28) + 1)::text, 2, '0')
            || ' March, ticket T-' || (700000 + mod(g, 90000)) || ', account reviewed by billing assistant',
        'lines', jsonb_build_array(
            jsonb_build_object('description', 'line 1 of ' || kind, 'amount', round(amount / 2, 2)),
            jsonb_build_object('description', 'line 2 of ' || kind, 'amount', amount - round(amount / 2, 2))
        )
    ),
    confidence,
    jsonb_build_object('invoice_total', round(amount * 2.5, 2), 'currency', currency),
    jsonb_build_object('customer_id', 'C-' || lpad(mod(g, 5000)::text, 5, '0'), 'channel', 'portal'),
    NULL, 'bench-model-1', 'bench-' || g, NULL, md5(g::text) || md5((g + 1)::text),
    jsonb_build_array(jsonb_build_object('code', 'low_confidence', 'severity', severity, 'message', '')),
    severity, amount, '', 'open',
    points + round(20 * log(1 + amount))::int + 5 * rules,
    raised + interval '3600 seconds',
    raised + interval '86400 seconds',
    0, raised + interval '2700 seconds', '', '', '', raised, raised, raised,
    %(policy_version)s, %(agent)s, %(queue)s, %(workflow)s
FROM (
    SELECT
        g,
        (ARRAY['credit', 'refund', 'rerate'])[1 + mod(g, 3)::int] AS kind,
        (ARRAY['USD', 'EUR', 'GBP'])[1 + mod(g / 3, 3)::int] AS currency,
        round((5 + random() * 2495)::numeric, 2) AS amount,
        round((0.4 + random() * 0.49)::numeric, 3)::float8 AS confidence,
        CASE WHEN s < 0.10 THEN 'low' WHEN s < 0.70 THEN 'medium' WHEN s < 0.95 THEN 'high' ELSE 'critical' END
            AS severity,
        CASE WHEN s < 0.10 THEN 100 WHEN s < 0.70 THEN 200 WHEN s < 0.95 THEN 300 ELSE 400 END AS points,
        floor(random() * 3)::int AS rules,
        now() - random() * interval '6 hours' AS raised
    FROM (SELECT g, random() AS s FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g OFFSET 0) AS base
    OFFSET 0
) AS v
"""

RESET_SQL = """
UPDATE exceptions_app_exceptionitem
SET status = 'open', claimed_by_id = NULL, claimed_at = NULL, claim_expires_at = NULL, first_claimed_at = NULL
WHERE queue_id = %s AND status = 'claimed'
"""

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- measurements taken inside the claimer processes ------------------------------------------------------


def _proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a local process (the claimer's PostgreSQL backend), or None if unreadable."""
    fields = common.process_stat_fields(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / CLK_TCK


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _timed_claims(claim, backend_pid: int, timing: tuple, barrier) -> dict:
    """One claimer's loop (``timing``: duration, pace, offset), with the CPU its database backend spent."""
    server_before = _proc_cpu_seconds(backend_pid)
    result = _claim_loop(claim, timing[0], barrier, pace=timing[1], offset=timing[2])
    return {**result, "server_cpu_s": _server_cpu_delta(backend_pid, server_before), "backend_pid": backend_pid}


def _fatal_report(index: int, error: BaseException, barrier, out) -> None:
    """Tell the parent why this claimer stopped, and release the others waiting at the barrier."""
    out.put((index, {"fatal": f"{type(error).__name__}: {error}"[:2000]}))
    barrier.abort()


def _claim_loop(claim, duration: float, barrier, *, pace: float | None = None, offset: float = 0.0) -> dict:
    """Call ``claim()`` (-> id or None) until the deadline or the count cap; latencies and ids.

    Closed loop when ``pace`` is None; otherwise one call every ``pace`` seconds from ``offset`` (open loop,
    no catch-up bursts: a call that starts more than one interval late counts as ``late``)."""
    ids, latencies, finished = array("q"), array("d"), array("f")
    errors: Counter = Counter()
    samples: list[str] = []
    empty = late = 0
    barrier.wait(timeout=600)
    began = time.time()
    cpu_before = _own_cpu_seconds()
    start = time.perf_counter()
    deadline = start + duration
    next_at = start + offset
    for _ in range(int(duration * MAX_RATE)):
        if pace is not None:
            time.sleep(max(0.0, min(next_at, deadline) - time.perf_counter()))
            if time.perf_counter() - next_at > pace:
                late += 1
                next_at = time.perf_counter()
            next_at += pace
        if time.perf_counter() >= deadline:
            break
        started = time.perf_counter()
        try:
            claimed = claim()
        except Exception as error:  # counted and reported; the loop is bounded
            errors[type(error).__name__] += 1
            if len(samples) < 3:
                samples.append(f"{type(error).__name__}: {error}"[:500])
            continue
        now = time.perf_counter()
        latencies.append(now - started)
        finished.append(now - start)
        if claimed is None:
            empty += 1
        else:
            ids.append(claimed)
    return {
        "ids": ids,
        "latencies": latencies,
        "finished": finished,
        "errors": dict(errors),
        "error_samples": samples,
        "empty": empty,
        "late": late,
        "began": began,
        "ended": time.time(),
        "client_cpu_s": _own_cpu_seconds() - cpu_before,
    }


def _server_cpu_delta(backend_pid: int, before: float | None) -> float | None:
    after = _proc_cpu_seconds(backend_pid)
    return None if before is None or after is None else after - before


def django_claimer(index: int, operator_id: int, queue_id: int, timing: tuple, barrier, out, extra=None) -> None:
    """A process calling item_claim_next in a loop (spawned: a fresh interpreter, its own Django and pool)."""
    try:
        import django

        django.setup()
        from django.db import close_old_connections, connection
        from django.test.utils import CaptureQueriesContext

        from exceptions_app.models import Principal, Queue
        from exceptions_app.services.items import item_claim_next

        principal = Principal.objects.select_related("user").get(pk=operator_id)
        queue = Queue.objects.get(pk=queue_id)

        def claim() -> int | None:
            try:
                item = item_claim_next(queue=queue, principal=principal)
            except Exception:
                close_old_connections()
                raise
            return None if item is None else item.pk

        warm = [claim() for _ in range(WARMUP_CLAIMS)]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend_pid = cursor.fetchone()[0]
        result = _timed_claims(claim, backend_pid, timing, barrier)
        extra = [pk for pk in warm if pk is not None]
        if index == 0:  # what one claim sends, for the report
            with CaptureQueriesContext(connection) as captured:
                extra.append(claim())
            result["queries"] = [query["sql"] for query in captured.captured_queries]
        result["extra_ids"] = [pk for pk in extra if pk is not None]
        out.put((index, result))
    except BaseException as error:
        _fatal_report(index, error, barrier, out)
        raise


def raw_claimer(index: int, user: tuple, queue_id: int, timing: tuple, barrier, out, extra=None) -> None:
    """A process running the service's claim statement (``extra``: its SQL and the lease in seconds) straight over
    psycopg (autocommit, prepared) in a loop; ``user`` is (user id, username, principal id)."""
    try:
        sql, lease_seconds = extra
        params = {"queue": queue_id, "user": user[0], "label": user[1], "principal": user[2]}
        with psycopg.connect(common.database_url(DATABASE), autocommit=True, connect_timeout=10) as conn:
            cursor = conn.cursor()

            def claim() -> int | None:
                now = datetime.now(UTC)
                lease = now + timedelta(seconds=lease_seconds)
                values = {**params, "now": now, "lease": lease, "lease_text": lease.isoformat()}
                row = cursor.execute(sql, values, prepare=True).fetchone()
                return None if row is None else row[0]

            warm = [claim() for _ in range(WARMUP_CLAIMS)]
            backend_pid = conn.info.backend_pid
            result = _timed_claims(claim, backend_pid, timing, barrier)
            result["extra_ids"] = [pk for pk in warm if pk is not None]
        out.put((index, result))
    except BaseException as error:
        _fatal_report(index, error, barrier, out)
        raise


def _cpu_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def claim_run(target, principals: list, queue_id: int, duration: float, pace: float | None = None, extra=None) -> dict:
    """Spawn one claimer process per principal; start them together; merge their figures. With ``pace``,
    each claims once every ``pace`` seconds, the claimers' ticks spread evenly over the interval."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(principals) + 1)
    out = context.Queue()
    processes = [
        context.Process(
            target=target,
            args=(n, principal, queue_id, (duration, pace, (pace or 0.0) * n / len(principals)), barrier, out, extra),
            daemon=True,
        )
        for n, principal in enumerate(principals)
    ]
    for process in processes:
        process.start()
    parts: dict[int, dict] = {}
    try:
        barrier.wait(timeout=600)
        busy_before, load_before = _cpu_busy(), os.getloadavg()[0]
        time.sleep(duration)
        busy_after, load_after = _cpu_busy(), os.getloadavg()[0]
        deadline = time.monotonic() + duration + 300
        while len(parts) < len(processes) and time.monotonic() < deadline:
            index, part = out.get(timeout=max(1.0, deadline - time.monotonic()))
            parts[index] = part
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
    fatal = [part["fatal"] for part in parts.values() if "fatal" in part]
    if fatal or len(parts) < len(processes):
        raise RuntimeError(f"{len(parts)} of {len(processes)} claimers reported; failures: {fatal[:3]}")
    machine = {
        "busy": (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1]),
        "busy_cpu_s": (busy_after[0] - busy_before[0]) / CLK_TCK,
        "window_s": duration,
        "loadavg_1m": [round(load_before, 2), round(load_after, 2)],
    }
    return _merge([parts[n] for n in sorted(parts)], machine)


def _merge(parts: list[dict], machine: dict) -> dict:
    latencies: list[float] = []
    for part in parts:
        latencies.extend(part["latencies"])
    measured_ids = [pk for part in parts for pk in part["ids"]]
    all_ids = measured_ids + [pk for part in parts for pk in part["extra_ids"]]
    seen: set[int] = set()
    twice = {pk for pk in all_ids if pk in seen or seen.add(pk)}
    claims = len(measured_ids)
    elapsed = max(part["ended"] for part in parts) - min(part["began"] for part in parts)
    errors: Counter = Counter()
    for part in parts:
        errors.update(part["errors"])
    server = [part["server_cpu_s"] for part in parts]
    per_claim = 1000 / claims if claims else 0.0
    own_cpu_s = sum(part["client_cpu_s"] for part in parts) + sum(value or 0.0 for value in server)
    ncpu = os.cpu_count() or 1
    window = TREND_WINDOW_S
    buckets = [0] * max(1, int(machine["window_s"] // window + 1))
    slow = [[] for _ in buckets]
    for part in parts:
        for offset, latency in zip(part["finished"], part["latencies"], strict=True):
            bucket = min(len(buckets) - 1, int(offset // window))
            buckets[bucket] += 1
            slow[bucket].append(latency)
    whole = int(machine["window_s"] // window)  # the last partial window is dropped from the trend
    figures = {
        "claims": claims,
        "trend_window_s": window,
        "trend_claims_per_s": [round(count / window, 1) for count in buckets[:whole]],
        "trend_p95_ms": [round(common.percentile(values, 0.95) * 1000, 2) for values in slow[:whole]],
        "claims_total_with_warmup": len(all_ids),
        "elapsed_s": round(elapsed, 3),
        "claims_per_s": round(claims / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(common.percentile(latencies, 0.50) * 1000, 3),
        "p95_ms": round(common.percentile(latencies, 0.95) * 1000, 3),
        "p99_ms": round(common.percentile(latencies, 0.99) * 1000, 3),
        "max_ms": round(max(latencies, default=0.0) * 1000, 3),
        "mean_ms": round(sum(latencies) / len(latencies) * 1000, 3) if latencies else 0.0,
        "empty": sum(part["empty"] for part in parts),
        "late": sum(part["late"] for part in parts),
        "errors": dict(errors),
        "error_samples": [sample for part in parts for sample in part["error_samples"]][:5],
        "ids_claimed_twice": len(twice),
        "per_claimer_claims": [len(part["ids"]) for part in parts],
        "client_cpu_ms_per_claim": round(sum(part["client_cpu_s"] for part in parts) * per_claim, 3),
        "server_cpu_ms_per_claim": round(sum(server) * per_claim, 3) if None not in server else None,
        "machine_busy": round(machine["busy"], 3),
        # CPU the machine spent on anything but our claimers and their backends (other sessions, autovacuum...)
        "other_cpu_cores": round(max(0.0, machine["busy_cpu_s"] - own_cpu_s) / machine["window_s"], 2),
        "own_cpu_cores": round(own_cpu_s / machine["window_s"], 2),
        "cpu_cores": ncpu,
        "loadavg_1m": machine["loadavg_1m"],
        "queries_per_claim": next((part["queries"] for part in parts if "queries" in part), None),
    }
    return figures


# --- setup, load, plans and checks in the main process ------------------------------------------------------


def fixtures_create() -> dict:
    """Workflow, policy version and queues (policy_publish), an agent, and operators whose team works the queue."""
    import yaml

    from exceptions_app.models import PolicySource, Queue, Team
    from exceptions_app.services.policies import policy_publish
    from exceptions_app.services.tokens import principal_ensure

    version, _ = policy_publish(document=yaml.safe_load(POLICY.read_text()), source=PolicySource.FILE)
    queue = Queue.objects.get(name=QUEUE)
    agent = principal_ensure(name="bench-agent", role="agent", workflows=[WORKFLOW])
    operators = [
        principal_ensure(name=f"bench-operator-{n:02d}", role="operator", teams=[TEAM]) for n in range(CLAIMERS)
    ]
    queue.teams.add(Team.objects.get(name=TEAM))
    return {
        "workflow": version.workflow_id,
        "policy_version": version.pk,
        "queue": queue.pk,
        "agent": agent.pk,
        "operators": [operator.pk for operator in operators],
        "operator_users": [(operator.user_id, operator.user.get_username(), operator.pk) for operator in operators],
    }


def items_load(ids: dict, count: int) -> dict:
    """``count`` open items in the queue, in chunks of one INSERT ... SELECT each; then VACUUM ANALYZE."""
    params = {key: ids[key] for key in ("policy_version", "agent", "queue", "workflow")}
    started = time.perf_counter()
    with psycopg.connect(common.database_url(DATABASE), autocommit=True, connect_timeout=10) as conn:
        conn.execute("SET statement_timeout = '30min'")
        for first in range(1, count + 1, LOAD_CHUNK):
            last = min(count, first + LOAD_CHUNK - 1)
            conn.execute(LOAD_SQL, {**params, "first": first, "last": last})
            print(f"  loaded {last:,} items ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
        inserted = time.perf_counter() - started
        conn.execute("VACUUM ANALYZE exceptions_app_exceptionitem")
        vacuumed = time.perf_counter() - started
        conn.execute("CHECKPOINT")
        stats = conn.execute(
            "SELECT count(*), avg(octet_length(proposal::text)), min(priority), max(priority), "
            "min(due_at) < now(), pg_total_relation_size('exceptions_app_exceptionitem'), "
            "pg_relation_size('item_claim_order') "
            "FROM exceptions_app_exceptionitem WHERE queue_id = %s AND status = 'open'",
            (ids["queue"],),
        ).fetchone()
    return {
        "items": stats[0],
        "insert_s": round(inserted, 2),
        "vacuum_analyze_s": round(vacuumed - inserted, 2),
        "total_s": round(vacuumed, 2),
        "rows_per_s": round(count / inserted),
        "proposal_bytes_avg": round(float(stats[1])),
        "priority_range": [stats[2], stats[3]],
        "some_past_due": stats[4],
        "table_total_bytes": stats[5],
        "claim_index_bytes": stats[6],
    }


def loaded_items() -> int | None:
    """Items in the bench queue left by an earlier run, or None when there is no such database."""
    try:
        return common.sql_scalar(
            DATABASE,
            "SELECT count(*) FROM exceptions_app_exceptionitem AS item "
            "JOIN exceptions_app_queue AS queue ON queue.id = item.queue_id WHERE queue.name = 'billing'",
        )
    except psycopg.Error:
        return None


def claim_select_sql(queue_id: int) -> tuple[str, tuple]:
    """The SELECT item_claim_next sends, built the way it builds it (mirrors services/items.py)."""
    from django.db import transaction

    from exceptions_app.models import ExceptionItem, ItemStatus
    from exceptions_app.services.items import _lock_for_claim

    with transaction.atomic():
        candidates = ExceptionItem.objects.filter(queue_id=queue_id, status=ItemStatus.OPEN).order_by(
            "-priority", "due_at", "id"
        )
        sql, params = _lock_for_claim(candidates)[:1].query.sql_with_params()
    return sql, tuple(params)


def explain(sql: str, params: tuple) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) in a transaction that is rolled back (ANALYZE really locks the head)."""
    with psycopg.connect(common.database_url(DATABASE), connect_timeout=10) as conn:
        conn.execute("SET LOCAL statement_timeout = '60s'")
        # Django binds on the client (values inlined), so the planner sees literals, as here.
        cursor = psycopg.ClientCursor(conn)
        text = "\n".join(row[0] for row in cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall())
        conn.rollback()
    buffers = re.search(r"Buffers: shared((?: \w+=\d+)+)", text)
    counts = dict(re.findall(r"(\w+)=(\d+)", buffers.group(1))) if buffers else {}
    touched = int(counts.get("hit", 0)) + int(counts.get("read", 0))
    execution = re.search(r"Execution Time: ([\d.]+) ms", text)
    uses_index = "item_claim_order" in text
    sort = bool(re.search(r"(^|->\s*)\s*(Incremental )?Sort\b", text, re.MULTILINE))
    return {
        "plan": text,
        "uses_item_claim_order": uses_index,
        "has_sort": sort,
        "buffers": touched,
        "buffer_detail": {key: int(value) for key, value in counts.items()},
        "execution_ms": float(execution.group(1)) if execution else None,
        "ok": uses_index and not sort,
    }


def table_stats() -> dict:
    with psycopg.connect(common.database_url(DATABASE), connect_timeout=10) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, last_vacuum, last_autovacuum, autovacuum_count "
            "FROM pg_stat_user_tables WHERE relname = %s",
            (ITEM_TABLE,),
        ).fetchone()
        index_bytes = conn.execute("SELECT pg_relation_size('item_claim_order')").fetchone()[0]
    keys = ("n_live_tup", "n_dead_tup", "n_tup_upd", "n_tup_hot_upd", "last_vacuum", "last_autovacuum")
    return {**dict(zip(keys, row[:6], strict=True)), "autovacuum_count": row[6], "claim_index_bytes": index_bytes}


def old_transactions(min_age_s: int = 5) -> list[dict]:
    """Transactions older than ``min_age_s`` anywhere on the server (other sessions share it). One holding an
    xid in any database pins the xmin horizon of our claimers' snapshots: dead index entries of claimed rows
    then cannot be pruned or marked dead, and every claim walks past all of them."""
    with psycopg.connect(common.database_url(DATABASE), connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT datname, state, backend_xid IS NOT NULL, extract(epoch FROM now() - xact_start)::int "
            "FROM pg_stat_activity WHERE (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) "
            "AND pid <> pg_backend_pid() AND xact_start < now() - make_interval(secs => %s) "
            "ORDER BY xact_start LIMIT 5",
            (min_age_s,),
        ).fetchall()
    return [{"database": d, "state": st, "has_xid": x, "age_s": age} for d, st, x, age in rows]


def _horizon(entries: list[dict]) -> str:
    pinning = [entry for entry in entries if entry["has_xid"] or entry["database"] == DATABASE]
    if not pinning:
        return "none"
    oldest = pinning[0]
    return f"{oldest['age_s']} s ({oldest['database']}, {oldest['state']})"


def audit_watermark() -> int:
    """The highest audit event id so far: checks count only the events of the run after it."""
    return common.sql_scalar(DATABASE, "SELECT coalesce(max(id), 0) FROM exceptions_app_auditevent")


def claims_check(queue_id: int, claims: int, *, audit_after: int | None) -> dict:
    """Cross-checks in SQL: claimed rows, audit events per item, and that the claimed set is the queue's head."""
    with psycopg.connect(common.database_url(DATABASE), connect_timeout=10) as conn:
        conn.execute("SET statement_timeout = '300s'")
        claimed = conn.execute(
            "SELECT count(*) FROM exceptions_app_exceptionitem WHERE queue_id = %s AND status = 'claimed'", (queue_id,)
        ).fetchone()[0]
        not_head = conn.execute(
            "SELECT count(*) FROM (SELECT status FROM exceptions_app_exceptionitem WHERE queue_id = %s "
            "ORDER BY priority DESC, due_at, id LIMIT %s) AS head WHERE status <> 'claimed'",
            (queue_id, claims),
        ).fetchone()[0]
        result = {"claimed_rows": claimed, "head_not_claimed": not_head}
        if audit_after is not None:
            events, multi = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE n > 1) FROM (SELECT item_id, count(*) AS n "
                "FROM exceptions_app_auditevent WHERE action = 'claimed' AND id > %s GROUP BY item_id) AS per_item",
                (audit_after,),
            ).fetchone()
            total_events = conn.execute(
                "SELECT count(*) FROM exceptions_app_auditevent WHERE action = 'claimed' AND id > %s", (audit_after,)
            ).fetchone()[0]
            result.update(items_with_claimed_event=events, items_with_several_claimed_events=multi)
            result["claimed_events"] = total_events
    return result


def reset_claims(queue_id: int) -> dict:
    started = time.perf_counter()
    with psycopg.connect(common.database_url(DATABASE), autocommit=True, connect_timeout=10) as conn:
        conn.execute("SET statement_timeout = '30min'")
        reopened = conn.execute(RESET_SQL, (queue_id,)).rowcount
        conn.execute("VACUUM ANALYZE exceptions_app_exceptionitem")
        conn.execute("CHECKPOINT")
    return {"reopened": reopened, "seconds": round(time.perf_counter() - started, 2)}


def server_settings() -> dict:
    names = (
        "server_version",
        "shared_buffers",
        "synchronous_commit",
        "fsync",
        "autovacuum",
        "max_connections",
        "wal_sync_method",
        "commit_delay",
        "effective_cache_size",
        "random_page_cost",
    )
    with psycopg.connect(common.database_url(DATABASE), connect_timeout=10) as conn:
        rows = conn.execute("SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (list(names),))
        settings = {name: f"{setting}{'' if not unit else ' x ' + unit}" for name, setting, unit in rows}
        options = conn.execute("SELECT reloptions FROM pg_class WHERE relname = %s", (ITEM_TABLE,)).fetchone()[0]
    return {**settings, "item_table_reloptions": options}


# --- report -------------------------------------------------------------------------------------------------


def row(name: str, workload: str, figure: str, target: str, ratio: str, ok: bool) -> dict:
    return {"name": name, "workload": workload, "figure": figure, "target": target, "ratio": ratio, "result": ok}


def _latency(figures: dict) -> str:
    return f"p50 {figures['p50_ms']:.2f} / p95 {figures['p95_ms']:.2f} / p99 {figures['p99_ms']:.2f} ms"


def _cpu(figures: dict) -> str:
    server = figures["server_cpu_ms_per_claim"]
    server_text = "?" if server is None else f"{server:.2f}"
    return (
        f"client {figures['client_cpu_ms_per_claim']:.2f} + server {server_text} ms CPU/claim; "
        f"ours {figures['own_cpu_cores']:.2f}, others {figures['other_cpu_cores']:.2f} of {figures['cpu_cores']} cores"
    )


def _explain_row(name: str, workload: str, result: dict, limit: int | None) -> dict:
    node = "item_claim_order" if result["uses_item_claim_order"] else "NOT item_claim_order"
    figure = (
        f"{node}, {'Sort' if result['has_sort'] else 'no Sort'}, {result['buffers']} buffers, "
        f"{result['execution_ms']} ms"
    )
    if "old_transactions" in result:
        figure += f"; oldest xid-holding xact {_horizon(result['old_transactions'])}"
    target = "index, no Sort" + (f", <= {limit} buffers" if limit else " (buffers: report)")
    ok = result["ok"] and (limit is None or result["buffers"] <= limit)
    return row(name, workload, figure, target, "", ok)


def run_rows(name: str, shape: str, run: dict, check: dict, limit: dict | None, *, gate_latency: bool) -> list[dict]:
    """Throughput, latency, correctness and CPU rows for one run; ratios are to the limit run (if given)."""
    limit = limit or {"claims_per_s": 0.0, "p95_ms": 0.0}
    rate_ratio = run["claims_per_s"] / (limit["claims_per_s"] or 1.0)
    p95_ratio = run["p95_ms"] / (limit["p95_ms"] or 1.0)
    ids = run["claims_total_with_warmup"]
    audited = "claimed_events" in check
    several = check.get("items_with_several_claimed_events", 0)
    rows_equal = check["claimed_rows"] == ids and (not audited or check["claimed_events"] == ids)
    events = f", {check['claimed_events']:,} 'claimed' events" if audited else ""
    return [
        row(
            f"{name}.throughput",
            shape,
            f"{run['claims_per_s']:.0f} claims/s ({run['claims']:,} claims)",
            "(report)" if name != "sql.limit" else "(the limit)",
            f"{rate_ratio:.2f} of limit" if limit["claims_per_s"] else "",
            run["claims"] > 0,
        ),
        row(
            f"{name}.latency",
            shape,
            _latency(run),
            f"p95 < {P95_TARGET_MS:g} ms" if gate_latency else "(report)",
            f"p95 {p95_ratio:.1f}x limit" if limit["p95_ms"] else "",
            0 < run["p95_ms"] < P95_TARGET_MS if gate_latency else True,
        ),
        row(
            f"{name}.double_claims",
            shape,
            f"{run['ids_claimed_twice']} ids twice" + (f", {several} items with >1 'claimed' event" if audited else ""),
            "0",
            "",
            run["ids_claimed_twice"] == 0 and several == 0,
        ),
        row(
            f"{name}.rows",
            shape,
            f"{check['claimed_rows']:,} claimed rows{events} for {ids:,} ids; "
            f"{check['head_not_claimed']} of the head unclaimed",
            "equal; 0",
            "",
            rows_equal and check["head_not_claimed"] == 0,
        ),
        row(
            f"{name}.errors",
            shape,
            f"{sum(run['errors'].values())} errors, {run['empty']} empty, {run['late']} late starts",
            "0",
            "",
            not run["errors"] and run["empty"] == 0,
        ),
        row(
            f"{name}.trend",
            shape,
            f"per {run['trend_window_s']} s: "
            + ", ".join(f"{rate:.0f}" for rate in run["trend_claims_per_s"])
            + " claims/s; p95 "
            + ", ".join(f"{p95:.0f}" for p95 in run["trend_p95_ms"])
            + " ms",
            "(report)",
            "",
            True,
        ),
        row(f"{name}.cpu", shape, _cpu(run), "(report)", "", True),
        row(
            f"{name}.horizon",
            shape,
            f"oldest xid-holding transaction: before {_horizon(run['old_transactions']['before'])}, "
            f"after {_horizon(run['old_transactions']['after'])}",
            "(report)",
            "",
            True,
        ),
    ]


def rows_build(args, load, explains, runs: dict, checks: dict, stats_after: dict) -> list[dict]:
    depth = f"{args.items:,} open"
    shape = f"{CLAIMERS} procs, {args.duration:g} s, {depth}"
    paced = f"{CLAIMERS} procs x {1 / PACE_S:g}/s, {args.duration:g} s, {depth}"
    limit = runs["limit"]
    queries = runs["django"]["queries_per_claim"] or []
    rows = [
        row(
            "load",
            f"{args.items:,} items, INSERT..SELECT",
            f"reused: {load['items']:,} items loaded by an earlier run"
            if load.get("reused")
            else f"{load['insert_s']} s insert + {load['vacuum_analyze_s']} s VACUUM ANALYZE "
            f"({load['rows_per_s']:,} rows/s)",
            "(report)",
            "",
            load["items"] == args.items,
        ),
        _explain_row("explain.before", depth, explains["before"], EXPLAIN_BUFFER_LIMIT),
        *run_rows("django", shape, runs["django"], checks["django"], limit, gate_latency=True),
        row(
            "django.statements",
            "one item_claim_next",
            f"{len(queries)} statements incl. BEGIN/COMMIT",
            "(report)",
            "",
            True,
        ),
        _explain_row("explain.after", f"{depth}, after the django run", explains["after"], None),
        row(
            "table.dead_tuples",
            "after the django run",
            f"n_dead_tup {stats_after['n_dead_tup']:,}, autovacuum_count {stats_after['autovacuum_count']}",
            "(report)",
            "",
            True,
        ),
        *run_rows("django.paced", paced, runs["paced"], checks["paced"], None, gate_latency=True),
        *run_rows("sql.limit", shape, limit, checks["limit"], limit, gate_latency=False),
    ]
    for entry in rows:
        entry["result"] = "PASS" if entry["result"] else "FAIL"
    return rows


def summary_build(args, runs: dict, checks: dict) -> list[dict]:
    """The suite's rows: claim-next against the raw statement (same work, same concurrency, same run)."""
    django, paced, limit = runs["django"], runs["paced"], runs["limit"]
    shape = f"{CLAIMERS} procs, {args.duration:g} s, {args.items:,} open"
    ratio = django["claims_per_s"] / (limit["claims_per_s"] or 1.0)
    twice = sum(
        run["ids_claimed_twice"] + check.get("items_with_several_claimed_events", 0)
        for run, check in ((django, checks["django"]), (paced, checks["paced"]), (limit, checks["limit"]))
    )
    return [
        common.summary_row(
            "claim.throughput",
            shape,
            f"{django['claims_per_s']:.0f} claims/s",
            ">= 0.5 of limit",
            limit=f"{limit['claims_per_s']:.0f}/s raw statement",
            ratio=ratio,
            met=ratio >= 0.5,
        ),
        common.summary_row(
            "claim.latency",
            shape + ", closed loop",
            f"p50 {django['p50_ms']:.1f} / p95 {django['p95_ms']:.1f} ms",
            f"p95 < {P95_TARGET_MS:g} ms",
            limit=f"p95 {limit['p95_ms']:.1f} ms",
            ratio=django["p95_ms"] / (limit["p95_ms"] or 1.0),
            met=0 < django["p95_ms"] < P95_TARGET_MS,
        ),
        common.summary_row(
            "claim.latency.paced",
            f"{CLAIMERS} x {1 / PACE_S:g}/s",
            f"p50 {paced['p50_ms']:.1f} / p95 {paced['p95_ms']:.1f} ms",
            f"p95 < {P95_TARGET_MS:g} ms",
            met=0 < paced["p95_ms"] < P95_TARGET_MS,
        ),
        common.summary_row("claim.double_claims", "all runs", f"{twice}", "0", met=twice == 0),
    ]


def phase(
    name: str, target, principals: list, ids: dict, args, *, audited: bool, pace: float | None = None, extra=None
) -> tuple[dict, dict]:
    """One measured run on a freshly reset queue and its SQL cross-checks."""
    reset = reset_claims(ids["queue"])
    print(f"{name}: reset {reset}; {CLAIMERS} claimers x {args.duration:g} s", file=sys.stderr)
    watermark = audit_watermark() if audited else None
    before = old_transactions()
    run = claim_run(target, principals, ids["queue"], args.duration, pace, extra)
    run["reset_before"] = reset
    run["old_transactions"] = {"before": before, "after": old_transactions()}
    time.sleep(1.5)  # let the exited backends' statistics land
    check = claims_check(ids["queue"], run["claims_total_with_warmup"], audit_after=watermark)
    print(f"  {run['claims_per_s']:.0f} claims/s, p95 {run['p95_ms']:.2f} ms; {check}", file=sys.stderr)
    return run, check


def main() -> int:
    global CLAIMERS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 items and 10 s runs (full: 1,000,000, 30 s)")
    parser.add_argument("--items", type=int, help="open items to load (overrides the mode's)")
    parser.add_argument("--duration", type=float, help="seconds per run (overrides the mode's)")
    parser.add_argument("--claimers", type=int, default=CLAIMERS, help="claimer processes in every run (16)")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the items an earlier run loaded (same --items): skips the load"
    )
    args = parser.parse_args()
    args.items = args.items or (100_000 if args.quick else 1_000_000)
    args.duration = args.duration or (10.0 if args.quick else 30.0)
    CLAIMERS = args.claimers

    env = common.bench_env(DATABASE, redis_db=REDIS_DB)
    reused = args.reuse and loaded_items() == args.items
    if not reused:
        common.database_prepare(env, DATABASE)
    common.django_setup(env)
    from django.conf import settings
    from django.db import connections

    from exceptions_app.services.items import claim_next_sql

    ids = fixtures_create()
    if reused:
        load = {"reused": True, "items": args.items, "reset": reset_claims(ids["queue"])}
    else:
        print(f"loading {args.items:,} open items into queue {QUEUE!r}", file=sys.stderr)
        load = items_load(ids, args.items)
    print(f"  {load}", file=sys.stderr)
    sql, params = claim_select_sql(ids["queue"])
    connections.close_all()

    explains = {"before": explain(sql, params)}
    print(explains["before"]["plan"], file=sys.stderr)
    stats = {"before": table_stats()}
    runs, checks = {}, {}
    runs["django"], checks["django"] = phase("django", django_claimer, ids["operators"], ids, args, audited=True)
    stats["after_django"] = table_stats()
    explains["after"] = {**explain(sql, params), "old_transactions": old_transactions()}
    explains["after_repeat"] = explain(sql, params)
    print(explains["after"]["plan"], file=sys.stderr)
    runs["paced"], checks["paced"] = phase(
        "django.paced", django_claimer, ids["operators"], ids, args, audited=True, pace=PACE_S
    )
    # The operators' statement, team check included: the same work as ours, without Django around it.
    limit_statement = (claim_next_sql(team_check=True), settings.TOLLGATE_CLAIM_LEASE_SECONDS)
    runs["limit"], checks["limit"] = phase(
        "sql.limit", raw_claimer, ids["operator_users"], ids, args, audited=True, extra=limit_statement
    )
    stats["after_limit"] = table_stats()

    rows = rows_build(args, load, explains, runs, checks, stats["after_django"])
    common.table_print_columns(rows, ["name", "workload", "figure", "target", "ratio", "result"])
    print("\nEXPLAIN (ANALYZE, BUFFERS) of the claim SELECT, before the run:\n" + explains["before"]["plan"])
    print("\nthe same after the django run (dead tuples from its claims):\n" + explains["after"]["plan"])
    print(f"\nrepeated at once: {explains['after_repeat']['buffers']} buffers")
    print(f"n_dead_tup after the django run: {stats['after_django']['n_dead_tup']:,}")
    ratio = runs["django"]["claims_per_s"] / (runs["limit"]["claims_per_s"] or 1.0)
    path = common.results_save(
        "claim",
        quick=args.quick,
        machine=common.machine_info(DATABASE),
        server_settings=server_settings(),
        parameters={
            **vars(args),
            "claimers": CLAIMERS,
            "warmup_claims_per_claimer": WARMUP_CLAIMS,
            "paced_interval_s": PACE_S,
            "queue": QUEUE,
            "claim_select_sql": sql,
            "claim_select_params": params,
            "limit_claim_sql": limit_statement[0].strip(),
        },
        load=load,
        explain=explains,
        table_stats=stats,
        runs=runs,
        checks=checks,
        ratio_to_limit={"django": round(ratio, 3)},
        rows=rows,
        summary=summary_build(args, runs, checks),
    )
    return common.results_exit_code(path, rows)


if __name__ == "__main__":
    sys.exit(main())
