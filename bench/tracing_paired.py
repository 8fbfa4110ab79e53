"""Tracing's cost measured side by side: two servers at once, one untraced and one traced, with the
load sent to each in turn, in short alternated slices.

    .venv/bin/python bench/tracing_paired.py [--rounds 6] [--slice 3] [--profiles typical] [--traced on|all]

Why: CPU per decision moves by ±10% or more between runs on a shared host (docs/benchmarks.md), as
much as the effect measured. Here both servers live through the same minutes: each round sends
``--slice`` seconds of single decisions (8 clients) and then 2 batches to one server, then the same
to the other, the order swapped every round (ABBA), so drift in the host's speed falls on both
alike. Each server has its own database and Redis database, so the CPU of its PostgreSQL backends
is its own. Traced is as in bench/tracing.py (OTLP over HTTP to a local sink, sampling ratio 1),
except that the span processor exports every 200 ms instead of every 5 s, so that each turn's spans
are exported, and their CPU counted, within the turn.

Figures per payload profile, verdict and kind (singles, batches): server CPU per decision (gunicorn
+ PostgreSQL) of each turn; the traced turn against the untraced turn of the same round; the median
of those rounds is held to the target (issue 22: under 10%), with its quartiles. Also the pooled
figure over each whole block. Writes bench/results/tracing_paired.json.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, intake, tracing
from bench import intake_payloads as payloads

TARGET = 0.10
MODES = ("off", "on")
EXPORT_EVERY_MS = 200
SETTLE_S = 2.0  # well over EXPORT_EVERY_MS: the last spans are exported inside the block


def _server(mode: str, traced: str, database: str, redis_db: int, sink) -> tuple[common.Gunicorn, str]:
    env = {**common.bench_env(database, redis_db), "TOLLGATE_CALLBACK_ALLOW": "127.0.0.1"}
    common.database_prepare(env, database, ("apply_policies", str(common.ROOT / "policies")), redis_db=redis_db)
    token = common.manage(env, "create_token", "bench-agent", "--role", "agent", "--workflows", intake.WORKFLOW)
    served = tracing.server_env(env, traced if mode == "on" else "off", sink)
    if mode == "on":
        # Export every 200 ms instead of every 5 s, so that a turn's spans are sent (and their CPU counted)
        # within its turn: smaller, more frequent exports than a deployment's, so if anything a higher cost.
        served["OTEL_BSP_SCHEDULE_DELAY"] = str(EXPORT_EVERY_MS)
    server = common.Gunicorn(served, workers=3, threads=2)
    return server, token.strip()


def _slice(server, token, database, kind: str, bodies: list[bytes], slice_s: float) -> dict:
    """One server's turn: ``slice_s`` seconds of single decisions from 8 clients, or 2 batches from each of 2."""
    intake.DATABASE = database  # load_run's own CpuMeter reads it; the block's meters are the ones compared
    if kind == "single":
        options = dict(clients=8, processes=2, duration=slice_s, max_requests=int(slice_s * intake.MAX_RATE))
        return intake.load_run(server, token, intake.SINGLE, bodies, **options)
    return intake.load_run(
        server, token, intake.BATCH, bodies, clients=2, processes=2, duration=600, max_requests=2, reconnect=True
    )


def block(servers, tokens, databases, profile: str, verdict: str, kind: str, *, rounds: int, slice_s: float) -> dict:
    """All rounds of one profile, verdict and kind (single or batch); per server, the CPU over the whole
    block and the decisions recorded."""
    singles, batches = intake._bodies(profile, verdict, seed=20261207)
    bodies = singles if kind == "single" else batches
    meters = {mode: common.CpuMeter(servers[mode], databases[mode]) for mode in MODES}
    counted = {mode: {"decisions": 0, "p95_ms": [], "turn_ms_per_decision": []} for mode in MODES}
    for meter in meters.values():
        meter.start()
    for _, mode in common.abba(rounds, *MODES):
        run = _slice(servers[mode], tokens[mode], databases[mode], kind, bodies, slice_s)
        counted[mode]["decisions"] += run["recorded"]
        counted[mode]["p95_ms"].append(run["p95_ms"])
        turn_cpu = run["cpu"]["gunicorn_ms_per_decision"] + run["cpu"]["postgres_ms_per_decision"]
        counted[mode]["turn_ms_per_decision"].append(turn_cpu)
    time.sleep(SETTLE_S)
    result = {}
    for mode in MODES:
        cpu, decisions = meters[mode].stop(), counted[mode]["decisions"]
        server_s = cpu["gunicorn_cpu_s"] + cpu["postgres_cpu_s"]
        result[mode] = {
            **cpu,
            **counted[mode],
            "server_ms_per_decision": round(1000 * server_s / max(1, decisions), 4),
            "gunicorn_ms_per_decision": round(1000 * cpu["gunicorn_cpu_s"] / max(1, decisions), 4),
        }
    off, on = result["off"]["server_ms_per_decision"], result["on"]["server_ms_per_decision"]
    result["overhead_pooled"] = round((on - off) / off, 4) if off else None
    # Each round's traced turn against its untraced turn, next to it in time: the median of those is the
    # figure held to the target, since the host's speed drifts between rounds but little within one.
    ratios = common.paired_ratios(result["on"]["turn_ms_per_decision"], result["off"]["turn_ms_per_decision"])
    result["round_overheads"] = [round(ratio - 1, 4) for ratio in ratios]
    result["overhead"] = round(statistics.median(ratios) - 1, 4) if ratios else None
    return result


def _row(name: str, kind: str, found: dict, *, rounds: int, slice_s: float) -> dict:
    off, on = found["off"], found["on"]
    quartiles = statistics.quantiles(found["round_overheads"], n=4) if len(found["round_overheads"]) > 1 else [0] * 3
    shape = f"{slice_s:.0f} s of singles, 8 clients" if kind == "single" else "2 batches from each of 2 clients"
    return {
        "name": f"tracing.{name}",
        "workload": f"{rounds} ABBA rounds, per server: {shape}",
        "figure": (
            f"server CPU ms per decision off {off['server_ms_per_decision']:.3f}, "
            f"on {on['server_ms_per_decision']:.3f}: {100 * found['overhead_pooled']:+.1f}% pooled; "
            f"rounds' median {100 * found['overhead']:+.1f}% (quartiles {100 * quartiles[0]:+.1f}%, "
            f"{100 * quartiles[2]:+.1f}%); {off['decisions']} / {on['decisions']} decisions"
        ),
        "target": f"< {100 * TARGET:.0f}%",
        "result": "PASS" if found["overhead"] < TARGET else "FAIL",
    }


def span_cost_us(spans: int = 20_000) -> float:
    """CPU of one gate span in this process, from start to its protobuf export, in µs: the SDK with the
    bench's sampler and a batch processor whose exporter encodes each batch as the OTLP exporter does
    (no network). What a traced decision adds, without the server's noise."""
    from opentelemetry import context, trace
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

    class Encoding(SpanExporter):
        def export(self, batch):
            encode_spans(batch).SerializeToString()
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=TraceIdRatioBased(1.0))
    provider.add_span_processor(BatchSpanProcessor(Encoding(), max_queue_size=spans))
    tracer, began = provider.get_tracer("tollgate"), time.process_time()
    for n in range(spans):
        span = tracer.start_span("tollgate.gate.decision", attributes={"tollgate.workflow": intake.WORKFLOW})
        token = context.attach(trace.set_span_in_context(span))
        span.set_attributes({"tollgate.verdict": "hold", "tollgate.decision.id": n, "tollgate.queue": "billing"})
        context.detach(token)
        span.end()
    provider.force_flush()
    cost = (time.process_time() - began) / spans * 1e6
    provider.shutdown()
    return round(cost, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6, help="ABBA rounds per profile and verdict")
    parser.add_argument("--slice", type=float, default=3.0, help="seconds of single decisions per server and round")
    parser.add_argument("--profiles", default="typical", help="payload profiles (bench/intake_payloads.py)")
    parser.add_argument("--verdicts", default=",".join(payloads.VERDICTS))
    parser.add_argument("--traced", choices=["on", "all"], default="on", help="what the traced server traces")
    args = parser.parse_args()
    background, calibration = common.busy_cores(), common.cpu_calibration_ms()
    databases = {"off": "tollgate_bench_trace_off", "on": "tollgate_bench_trace_on"}
    sink = tracing.sink_for("on")
    servers, tokens = {}, {}
    for mode, redis_db in zip(MODES, (14, 15), strict=True):
        servers[mode], tokens[mode] = _server(mode, args.traced, databases[mode], redis_db, sink)
    rows, blocks = [], {}
    try:
        for mode in MODES:
            servers[mode].start()
        mixed = [json.dumps(intake.decision(random.Random(7), n)).encode() for n in range(500)]
        for mode in MODES:  # warm both: imports, connections, caches
            _slice(servers[mode], tokens[mode], databases[mode], "single", mixed, 2.0)
        for profile in args.profiles.split(","):
            for verdict in args.verdicts.split(","):
                for kind in ("single", "batch"):
                    name = f"{profile}.{verdict}.{kind}"
                    print(f"{name}: {args.rounds} rounds", file=sys.stderr)
                    found = blocks[name] = block(
                        servers, tokens, databases, profile, verdict, kind, rounds=args.rounds, slice_s=args.slice
                    )
                    rows.append(_row(name, kind, found, rounds=args.rounds, slice_s=args.slice))
    finally:
        for server in servers.values():
            server.stop()
    per_span = span_cost_us()
    single_ms = min(found["off"]["server_ms_per_decision"] for name, found in blocks.items() if name.endswith("single"))
    rows.append(
        {
            "name": "tracing.span_in_process",
            "workload": "20,000 gate spans, batch processor, OTLP protobuf encoding, no network",
            "figure": f"{per_span} µs CPU per span: {100 * per_span / 1000 / single_ms:.1f}% of an untraced single's",
            "target": "(report)",
            "result": "info",
        }
    )
    rows.append(tracing.report_row(args.traced, sink, sum(found["on"]["decisions"] for found in blocks.values())))
    common.table_print(rows)
    machine = common.machine_at_end(
        databases["off"], busy_cores_before=background, cpu_calibration_ms_before=calibration, loadavg=os.getloadavg()
    )
    summary = [
        common.summary_row(
            f"tracing.{name}",
            f"{args.rounds} ABBA rounds, traced against untraced server",
            f"server CPU per decision {100 * found['overhead']:+.1f}% (rounds' median)",
            f"< {100 * TARGET:.0f}%",
            limit=f"untraced {found['off']['server_ms_per_decision']:.3f} ms",
            ratio=1 + found["overhead"],
            met=found["overhead"] < TARGET,
        )
        for name, found in blocks.items()
    ]
    path = common.results_save(
        "tracing_paired",
        quick=args.rounds < 6,
        machine=machine,
        parameters=vars(args),
        blocks=blocks,
        rows=rows,
        summary=summary,
    )
    return common.results_exit_code(path, rows)


if __name__ == "__main__":
    sys.exit(main())
