"""Intake benchmark: the gate at real payload sizes, single decisions and batches, against gunicorn + PostgreSQL +
Redis on loopback, with the database's limit for the same rows measured in the same run (issue 25).

    .venv/bin/python bench/intake.py [--quick] [--duration S] [--batches N] [--profiles small,typical,large]
                                     [--tracing off|on|all]

Creates the database tollgate_bench afresh, loads policies/, makes an agent token and starts gunicorn on a free
127.0.0.1 port. Then, for each payload profile (bench/intake_payloads.py: ``small`` ~0.5 KB, ``typical`` ~2 KB
with 10 line items and a short trace, ``large`` ~20 KB of trace) and each verdict (``proceed``, ``hold``): single
decisions from ``--clients`` keep-alive clients for ``--duration`` seconds, then batches from 2 clients (1,000
entries, 200 for ``large`` so a batch stays under the 5 MiB body limit). It checks every answer and the rows
stored (one decision per recorded entry, one held item per hold), and reports rates, latencies and the CPU each
decision costs (gunicorn workers, PostgreSQL backends), which stays meaningful when other work shares the machine.

The limit (bench/intake_limit.py): every row the batches wrote (decisions, items, audit events, outbox rows) is
read back as COPY text and written again by 2 client processes, one batch's rows per transaction, with raw COPY and
ids from the sequences: the same rows, without parsing, validation or policy. The batch rate is reported as a
ratio of it. Targets (issue 25), for ``typical`` held: batch >= 0.5 of that COPY and >= 7,500/s; single decisions
<= 1.5 ms of gunicorn CPU each with p95 < 20 ms from 8 clients. A last open-loop run offers 500 small decisions/s
(issue 3). Writes bench/results/intake.json.
"""

# The SQL below is assembled from this file's own constants and the tables' column names (no outside input).
# ruff: noqa: S608

import argparse
import http.client
import json
import multiprocessing
import os
import random
import resource
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, intake_limit, tracing
from bench import intake_payloads as payloads

DATABASE = "tollgate_bench"
WORKFLOW = "billing.invoice_adjustment"
SINGLE, BATCH = "/api/v1/decisions", "/api/v1/decisions/batch"
MAX_RATE = 20_000  # requests per second per client: caps every loop's count, whatever the clock says


def decision(rng: random.Random, serial: int) -> dict:
    """A billing adjustment: ~70% proceed, ~25% hold (low confidence, large or mismatched), ~5% reject."""
    kind, currency = rng.choice(["credit", "refund", "rerate"]), rng.choice(["USD", "EUR", "GBP"])
    amount, invoice_currency, roll = round(rng.uniform(5, 2500), 2), currency, rng.random()
    confidence = rng.uniform(0.90, 0.999)
    if roll < 0.05:
        confidence = rng.uniform(0.01, 0.19)
    elif roll < 0.30:
        cause = rng.random()
        if cause < 0.6:
            confidence = rng.uniform(0.40, 0.89)
        elif cause < 0.85:
            amount = round(rng.uniform(10_001, 60_000), 2)
        else:
            invoice_currency = "CHF"
    return payloads.billing_body(
        rng,
        serial,
        kind=kind,
        currency=currency,
        amount=amount,
        confidence=confidence,
        invoice_currency=invoice_currency,
    )


def _client(
    port, headers, path, bodies, start_at, duration, max_requests, out, pace=None, reconnect=False, offset=0.0
) -> None:
    """One keep-alive connection posting ``bodies`` in turn until the deadline or the request cap (with
    ``reconnect``, a new connection for each request, its setup inside the latency). Closed loop by default;
    with ``pace`` (seconds), open loop: request i is due at start + offset + i * pace and its latency runs from
    that due time, so a slow answer that delays the next send is counted, not hidden (no coordinated omission)."""
    latencies, statuses, verdicts, samples, recorded, failed = [], Counter(), Counter(), [], 0, 0
    conn = http.client.HTTPConnection(common.HOST, port, timeout=60)
    time.sleep(max(0.0, start_at - time.time()))
    began, origin = time.time(), time.perf_counter()
    deadline = origin + duration
    for i in range(max_requests):
        if time.perf_counter() >= deadline:
            break
        started = time.perf_counter()
        if pace is not None:
            due = origin + offset + i * pace
            if due >= deadline:
                break
            time.sleep(max(0.0, due - started))
            started = due
        if reconnect:
            conn.close()
            conn = http.client.HTTPConnection(common.HOST, port, timeout=60)
        try:
            conn.request("POST", path, bodies[i % len(bodies)], headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            statuses[type(error).__name__] += 1
            conn.close()
            conn = http.client.HTTPConnection(common.HOST, port, timeout=60)
            continue
        latencies.append(time.perf_counter() - started)
        statuses[response.status] += 1
        if response.status != 200:
            if len(samples) < 3:
                samples.append(data[:500].decode(errors="replace"))
            continue
        answer = json.loads(data)
        if "results" in answer:
            recorded, failed = recorded + answer["recorded"], failed + answer["failed"]
            verdicts.update(result.get("verdict", "error") for result in answer["results"])
        else:
            recorded += 1
            verdicts[answer["verdict"]] += 1
    conn.close()
    out.append(dict(latencies=latencies, statuses=statuses, verdicts=verdicts, recorded=recorded, failed=failed))
    out[-1].update(samples=samples, began=began, ended=time.time())


def _client_group(
    port,
    token,
    path,
    bodies,
    threads,
    start_at,
    duration,
    max_requests,
    pace=None,
    first_index=0,
    spacing=0.0,
    reconnect=False,
) -> tuple[list, float]:
    """A process of ``threads`` clients (processes keep the clients' GIL out of the measurement)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    out, usage = [], resource.getrusage(resource.RUSAGE_SELF)
    args = (port, headers, path, bodies, start_at, duration, max_requests, out, pace, reconnect)
    workers = [threading.Thread(target=_client, args=(*args, (first_index + n) * spacing)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(duration + 120)
    end = resource.getrusage(resource.RUSAGE_SELF)
    return out, end.ru_utime + end.ru_stime - usage.ru_utime - usage.ru_stime


def _child_signals() -> None:
    """Pool initializer: a forked child must not inherit main()'s SIGTERM handler. With it, the pool's
    terminate() at the end of ``with Pool`` could leave a child blocked on the task queue's lock
    (the handler raises SystemExit instead of ending the process), and the join waited for ever."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def load_run(
    server, token, path, bodies, *, clients, processes, duration, max_requests, rate=None, reconnect=False
) -> dict:
    """``clients`` clients spread over ``processes`` processes; merged figures and CPU. Closed loop, or with
    ``rate`` open loop: together they offer ``rate`` requests per second, evenly spaced."""
    processes, start_at = max(1, min(processes, clients)), time.time() + 1.0
    shares = [clients // processes + (1 if n < clients % processes else 0) for n in range(processes)]
    pace, spacing = (clients / rate, 1.0 / rate) if rate else (None, 0.0)
    firsts = [sum(shares[:n]) for n in range(processes)]
    meter = common.CpuMeter(server, DATABASE)
    meter.start()
    with multiprocessing.get_context("fork").Pool(processes, initializer=_child_signals) as pool:
        args = [
            (server.port, token, path, bodies, n, start_at, duration, max_requests, pace, first, spacing, reconnect)
            for n, first in zip(shares, firsts, strict=True)
        ]
        done = [job.get(timeout=duration + 180) for job in [pool.apply_async(_client_group, a) for a in args]]
    cpu = meter.stop(client_cpu_s=sum(client_cpu for _, client_cpu in done))
    parts = [part for group, _ in done for part in group]
    statuses, verdicts = sum((p["statuses"] for p in parts), Counter()), sum((p["verdicts"] for p in parts), Counter())
    latencies = [latency for part in parts for latency in part["latencies"]]
    elapsed = max(part["ended"] for part in parts) - min(part["began"] for part in parts)
    recorded = sum(part["recorded"] for part in parts)
    per_decision = {
        f"{k[:-6]}_ms_per_decision": round(1000 * v / max(1, recorded), 3) for k, v in cpu.items() if k[-6:] == "_cpu_s"
    }
    return {
        "requests": len(latencies),
        "ok": statuses.get(200, 0),
        "errors": sum(count for status, count in statuses.items() if status != 200),
        "statuses": {str(status): count for status, count in statuses.items()},
        "recorded": recorded,
        "failed": sum(part["failed"] for part in parts),
        "verdicts": dict(verdicts),
        "elapsed_s": round(elapsed, 3),
        "rate_per_s": round(recorded / elapsed, 1) if elapsed > 0 else 0.0,
        **{f"p{q}_ms": round(common.percentile(latencies, q / 100) * 1000, 2) for q in (50, 95, 99)},
        "max_ms": round(max(latencies, default=0.0) * 1000, 2),
        "cpu": {**cpu, **per_decision, "other_cores": round(cpu["other_cpu_s"] / max(cpu["elapsed_s"], 1e-9), 2)},
        "error_samples": [sample for part in parts for sample in part["samples"]][:5],
    }


def policies_for(sampling: str, directory: Path) -> Path:
    """policies/ as shipped ("policy"), without audit sampling ("off"), or sampling every proceed ("all"),
    to measure what sampling costs the intake."""
    import yaml

    if sampling == "policy":
        return common.ROOT / "policies"
    directory.mkdir(parents=True, exist_ok=True)
    for path in sorted((common.ROOT / "policies").glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        document.pop("breaker", None)
        if sampling == "off":
            document.pop("sampling", None)
            document.pop("targets", None)
        else:
            document["sampling"] = {"proceed_rate": 1.0, "reject_rate": 1.0}
        (directory / path.name).write_text(yaml.safe_dump(document))
    return directory


def _cpu_figure(run: dict) -> str:
    cpu = run["cpu"]
    server, cores = cpu["gunicorn_ms_per_decision"] + cpu["postgres_ms_per_decision"], os.cpu_count() or 1
    return (
        f"gunicorn {cpu['gunicorn_ms_per_decision']:.2f} + postgres {cpu['postgres_ms_per_decision']:.2f} ms CPU "
        f"each: at most ~{1000 * cores / max(server, 1e-9):.0f}/s on {cores} cores; "
        f"other load {cpu['other_cores']:.2f} cores"
    )


def _paced_met(paced: dict, rate: float) -> bool:
    return paced["errors"] == 0 and paced["rate_per_s"] >= 0.98 * rate and paced["p95_ms"] < 20


def paced_rows(paced: dict, rate: float, shape: str) -> list[dict]:
    """The open-loop run: what the agents see while ``rate`` decisions a second arrive."""
    figure = (
        f"{paced['rate_per_s']:.0f}/s achieved, p50 {paced['p50_ms']} / p95 {paced['p95_ms']} / p99 "
        f"{paced['p99_ms']} ms (from each request's due time), {paced['errors']} errors"
    )
    result = "PASS" if _paced_met(paced, rate) else "FAIL"
    return [{"name": "single.paced", "workload": shape, "figure": figure, "target": "p95 < 20 ms", "result": result}]


def paced_summary(paced: dict, rate: float, shape: str) -> dict:
    return common.summary_row(
        "intake.single.paced",
        shape,
        f"{paced['rate_per_s']:.0f}/s, p95 {paced['p95_ms']:.1f} ms",
        f">= {rate:.0f}/s, p95 < 20 ms",
        met=_paced_met(paced, rate),
    )


# --- the run: each payload profile and verdict, single and batch, then the limits ---------------------------

PACED_CLIENTS = 16  # each due every 32 ms at 500/s: a slow answer delays only its own client's next send
DECISION_TABLE, ITEM_TABLE = "exceptions_app_gatedecision", "exceptions_app_exceptionitem"
SINGLE_BODIES = 300  # distinct bodies per profile and verdict, sent in turn
BATCH_BODIES = 2


def max_decision_id() -> int:
    return common.sql_scalar(DATABASE, f"SELECT coalesce(max(id), 0) FROM {DECISION_TABLE}")


def _written(after: int, up_to: int) -> dict:
    """What the gate stored for the decisions in (after, up_to]: decisions and held items."""
    decisions = common.sql_scalar(
        DATABASE, f"SELECT count(*) FROM {DECISION_TABLE} WHERE id > {after} AND id <= {up_to}"
    )
    holds = common.sql_scalar(
        DATABASE,
        f"SELECT count(*) FROM {ITEM_TABLE} WHERE kind = 'hold' AND decision_id > {after} AND decision_id <= {up_to}",
    )
    return {"decisions": decisions, "held_items": holds}


def _bodies(profile: str, verdict: str, seed: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(seed)

    def one(serial: int) -> dict:
        return payloads.decision(rng, serial, profile=profile, verdict=verdict)

    singles = [json.dumps(one(n)).encode() for n in range(SINGLE_BODIES)]
    size = payloads.BATCH_SIZE[profile]
    batches = [
        json.dumps({"decisions": [one(10_000 * (b + 1) + n) for n in range(size)]}).encode()
        for b in range(BATCH_BODIES)
    ]
    return singles, batches


def profile_run(server, token, profile: str, verdict: str, *, args, duration: float, batches: int) -> dict:
    """Single decisions (``args.clients`` clients) then batches (2 clients) of one profile and verdict."""
    singles, batch_bodies = _bodies(profile, verdict, seed=hash((profile, verdict)) & 0xFFFF)
    marks = [max_decision_id()]
    single = load_run(
        server,
        token,
        SINGLE,
        singles,
        clients=args.clients,
        processes=args.processes,
        duration=duration,
        max_requests=int(duration * MAX_RATE),
    )
    marks.append(max_decision_id())
    # A new connection per batch: on one kept-alive connection each, the two clients sometimes landed in the same
    # gunicorn worker, whose threads share one GIL (0.85 cores used, half the rate), a coin flip between runs.
    batch = load_run(
        server,
        token,
        BATCH,
        batch_bodies,
        clients=2,
        processes=2,
        duration=600,
        reconnect=True,
        max_requests=batches,
    )
    marks.append(max_decision_id())
    sizes = {"single_body_bytes": round(sum(map(len, singles)) / len(singles))}
    sizes["batch_body_bytes"] = round(sum(map(len, batch_bodies)) / len(batch_bodies))
    return {
        "profile": profile,
        "verdict": verdict,
        **sizes,
        "batch_size": payloads.BATCH_SIZE[profile],
        "single": single,
        "batch": batch,
        "marks": marks,
        "written": {"single": _written(marks[0], marks[1]), "batch": _written(marks[1], marks[2])},
    }


def _checks(run: dict) -> list[str]:
    """Problems with one run's answers and rows (an empty list when all is well)."""
    problems = []
    for kind in ("single", "batch"):
        figures, written = run[kind], run["written"][kind]
        if figures["errors"] or figures["failed"]:
            problems.append(f"{kind}: {figures['errors']} non-200, {figures['failed']} failed entries")
        if written["decisions"] != figures["recorded"]:
            problems.append(f"{kind}: {written['decisions']} decisions stored for {figures['recorded']} recorded")
        holds = figures["verdicts"].get("hold", 0)
        if written["held_items"] != holds:
            problems.append(f"{kind}: {written['held_items']} held items for {holds} holds")
        if set(figures["verdicts"]) - {run["verdict"]}:
            problems.append(f"{kind}: verdicts {figures['verdicts']}, expected {run['verdict']} only")
    return problems


def _typical_hold_met(run: dict) -> dict:
    """The issue's targets, for the typical profile with held verdicts."""
    single, batch = run["single"], run["batch"]
    return {
        "batch_ratio": run["copy_ratio"] >= 0.5,
        "batch_rate": batch["rate_per_s"] >= 7_500,
        "single_cpu": single["cpu"]["gunicorn_ms_per_decision"] <= 1.5,
        "single_p95": single["p95_ms"] < 20,
    }


def table(runs: list[dict]) -> list[dict]:
    """One printed row per profile and verdict: sizes, single, batch, the COPY limit and our ratio of it."""
    rows = []
    for run in runs:
        single, batch, limit = run["single"], run["batch"], run["limit"]
        target, result = "(report)", "info"
        if run["profile"] == "typical" and run["verdict"] == "hold":
            met = _typical_hold_met(run)
            target = "batch >= 0.5 COPY, >= 7,500/s; single <= 1.5 ms CPU, p95 < 20 ms"
            result = "PASS" if all(met.values()) else "FAIL " + ",".join(k for k, v in met.items() if not v)
        if run["problems"]:
            result = "FAIL " + "; ".join(run["problems"])
        rows.append(
            {
                "name": f"{run['profile']}.{run['verdict']}",
                "workload": f"{run['single_body_bytes'] / 1024:.1f} KB; batch {run['batch_size']}",
                "figure": (
                    f"single {single['rate_per_s']:.0f}/s p95 {single['p95_ms']:.1f} ms "
                    f"{single['cpu']['gunicorn_ms_per_decision']:.2f}+{single['cpu']['postgres_ms_per_decision']:.2f}"
                    f" ms CPU | batch {batch['rate_per_s']:.0f}/s "
                    f"{batch['cpu']['gunicorn_ms_per_decision']:.2f}+{batch['cpu']['postgres_ms_per_decision']:.2f}"
                    f" ms CPU | COPY {limit['rate_per_s']:.0f}/s {limit['postgres_ms_per_decision']:.2f} ms CPU"
                    f" | ratio {run['copy_ratio']:.2f}, by CPU {run['copy_cpu_ratio']:.2f}"
                ),
                "target": target,
                "result": result,
            }
        )
    return rows


def summary_build(runs: list[dict], server_errors: list) -> list[dict]:
    """The suite's rows: per profile and verdict, single and batch, the batch as a ratio of raw COPY."""
    rows = []
    for run in runs:
        name, single, batch = f"{run['profile']}.{run['verdict']}", run["single"], run["batch"]
        typical_hold = run["profile"] == "typical" and run["verdict"] == "hold"
        met = _typical_hold_met(run) if typical_hold else {}
        single_cpu = single["cpu"]["gunicorn_ms_per_decision"]
        size = f"{run['single_body_bytes'] / 1024:.1f} KB"
        for kind, workload, figure, target, ratio, targets in (
            (
                "single",
                f"{args_clients} clients, {size}",
                f"{single['rate_per_s']:.0f}/s, p95 {single['p95_ms']:.1f} ms, {single_cpu:.2f} ms gunicorn CPU",
                "<= 1.5 ms CPU, p95 < 20 ms",
                single["rate_per_s"] / (run["limit"]["rate_per_s"] or 1.0),
                ("single_cpu", "single_p95"),
            ),
            (
                "batch",
                f"2 clients x {run['batch_size']}, {size} each",
                f"{batch['rate_per_s']:.0f}/s (by CPU {run['copy_cpu_ratio']:.2f} of COPY)",
                ">= 0.5 of COPY, >= 7,500/s",
                run["copy_ratio"],
                ("batch_ratio", "batch_rate"),
            ),
        ):
            rows.append(
                common.summary_row(
                    f"intake.{kind}.{name}",
                    workload,
                    figure,
                    target if typical_hold else "(report)",
                    limit=f"{run['limit']['rate_per_s']:.0f}/s raw COPY",
                    ratio=ratio,
                    met=all(met[key] for key in targets) if typical_hold else None,
                )
            )
    problems = [f"{run['profile']}.{run['verdict']} {p}" for run in runs for p in run["problems"]]
    rows.append(
        common.summary_row(
            "intake.errors",
            "all runs",
            f"{len(problems)} problems, {len(server_errors)} server error lines",
            "0",
            met=not problems and not server_errors,
        )
    )
    return rows


args_clients = 8  # set from --clients in main(); read by summary_build


def main() -> int:
    global DATABASE, args_clients  # --database; the limit's client processes read it too
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s of single decisions and 6 batches per profile")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (3 x 2 threads: best on 2 cores)")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker")
    parser.add_argument("--clients", type=int, default=8, help="concurrent single-decision clients")
    parser.add_argument("--processes", type=int, default=2, help="client processes the clients are spread over")
    parser.add_argument("--duration", type=float, help="seconds of single decisions per profile (quick 3, full 20)")
    parser.add_argument("--batches", type=int, help="batches per client per profile (quick 3, full 15)")
    parser.add_argument("--profiles", default=",".join(payloads.PROFILES), help="payload profiles to run")
    parser.add_argument("--verdicts", default=",".join(payloads.VERDICTS), help="verdicts to run")
    parser.add_argument(
        "--paced-rate", type=float, default=500.0, help="decisions/s offered in the open-loop run (issue 3's 500/s)"
    )
    parser.add_argument(
        "--sampling",
        choices=["policy", "off", "all"],
        default="policy",
        help="audit sampling: as policies/ say, none, or every proceed and reject (to measure its cost)",
    )
    parser.add_argument("--database", default=DATABASE, help="the bench database (recreated)")
    parser.add_argument("--redis-db", type=int, default=14, help="the Redis database the server uses")
    parser.add_argument("--tracing", choices=tracing.MODES, default="off", help="server traced? (bench/tracing.py)")
    args = parser.parse_args()
    DATABASE, args_clients = args.database, args.clients
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally that stops gunicorn
    duration, batches, warmup = (3.0, 3, 2) if args.quick else (20.0, 15, 5)
    duration, batches = args.duration or duration, args.batches or batches
    profiles, verdicts = args.profiles.split(","), args.verdicts.split(",")
    background, calibration = common.busy_cores(), common.cpu_calibration_ms()
    if background > 0.2:
        print(f"warning: other work keeps {background:.2f} cores busy; rates will be noisy", file=sys.stderr)

    rng = random.Random(20250301)
    mixed = [json.dumps(decision(rng, n)).encode() for n in range(2000)]
    env = {**common.bench_env(DATABASE, args.redis_db), "TOLLGATE_CALLBACK_ALLOW": "127.0.0.1"}
    policies = policies_for(args.sampling, Path(tempfile.mkdtemp(prefix=f"tollgate-policies-{args.sampling}-")))
    common.database_prepare(env, DATABASE, ("apply_policies", str(policies)))
    token = common.manage(env, "create_token", "bench-agent", "--role", "agent", "--workflows", WORKFLOW).strip()

    sink = tracing.sink_for(args.tracing)
    server = common.Gunicorn(tracing.server_env(env, args.tracing, sink), workers=args.workers, threads=args.threads)
    runs = []
    try:
        server.start()
        print(f"gunicorn on port {server.port}, workers {server.worker_pids()}, log {server.log}", file=sys.stderr)
        load_run(server, token, SINGLE, mixed, clients=8, processes=2, duration=warmup, max_requests=warmup * MAX_RATE)
        for profile in profiles:
            for verdict in verdicts:
                run = profile_run(server, token, profile, verdict, args=args, duration=duration, batches=batches)
                print(
                    f"{profile}.{verdict}: single {run['single']['rate_per_s']}/s, batch "
                    f"{run['batch']['rate_per_s']}/s",
                    file=sys.stderr,
                )
                runs.append(run)
        # The issue-3 reading of "500/s with p95 < 20 ms": latency while 500 small decisions/s arrive, open loop.
        paced = load_run(
            server,
            token,
            SINGLE,
            mixed,
            clients=PACED_CLIENTS,
            processes=args.processes,
            duration=duration,
            max_requests=int(duration * MAX_RATE),
            rate=args.paced_rate,
        )
        log = server.log_tail(200_000).splitlines()
        server_errors = [line for line in log if "Traceback" in line or "ERROR" in line]
    finally:
        server.stop()
    print("limit: the same rows again, raw COPY from psycopg", file=sys.stderr)
    for run in runs:
        rows = intake_limit.rows_read(DATABASE, run["marks"][1], run["marks"][2])
        run["limit"] = intake_limit.copy_limit(DATABASE, rows, chunk=run["batch_size"], processes=2)
        run["copy_ratio"] = round(run["batch"]["rate_per_s"] / (run["limit"]["rate_per_s"] or 1.0), 3)
        # The same ratio from CPU per decision (COPY's PostgreSQL against our gunicorn + PostgreSQL): what the rates
        # would give on a machine with nothing else running, read on one that is busy.
        ours = run["batch"]["cpu"]["gunicorn_ms_per_decision"] + run["batch"]["cpu"]["postgres_ms_per_decision"]
        run["copy_cpu_ratio"] = round(run["limit"]["postgres_ms_per_decision"] / (ours or 1e-9), 3)
        run["problems"] = _checks(run)
        print(f"limit {run['profile']}.{run['verdict']}: {run['limit']}", file=sys.stderr)

    rows = table(runs)
    paced_shape = f"{args.paced_rate:.0f}/s offered, {PACED_CLIENTS} clients, {duration:.0f} s, open loop, small mix"
    rows += paced_rows(paced, args.paced_rate, paced_shape)
    rows.append(tracing.report_row(args.tracing, sink, tracing.decisions_of(runs, paced)))
    common.table_print(rows)
    if server_errors:
        print(f"\ngunicorn log ({server.log}):\n{server.log_tail()}", file=sys.stderr)
    else:
        server.log.unlink(missing_ok=True)
    machine = common.machine_at_end(DATABASE, busy_cores_before=background, cpu_calibration_ms_before=calibration)
    path = common.results_save(
        "intake",
        quick=args.quick,
        machine=machine,
        parameters={**vars(args), "duration_s": duration, "batches_per_client": batches},
        runs=runs,
        paced=paced,
        rows=rows,
        summary=[*summary_build(runs, server_errors), paced_summary(paced, args.paced_rate, paced_shape)],
    )
    print(f"\nresults: {path}", file=sys.stderr)
    return 0 if all(not row["result"].startswith("FAIL") for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
