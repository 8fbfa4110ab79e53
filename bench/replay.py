"""Policy replay benchmark: a three-rule draft replayed over 1,000,000 recorded gate decisions.

    .venv/bin/python bench/replay.py [--quick] [--decisions N] [--reuse] [--bare-rows N]

Creates the database tollgate_bench_replay afresh, migrates, publishes policies/billing.invoice_adjustment.yaml
and loads N decisions of it with COPY (varied outputs, inputs, confidences and values at risk; a fifth of the held
ones get a resolved item, so the replay joins human judgements as it does in production), then VACUUM ANALYZE.
``--reuse`` keeps the decisions of an earlier run of the same size.

Then:
1. "replay": exceptions_app.services.replay.policy_replay with a three-rule draft (other thresholds, one rule
   changed) over the whole window: server-side cursor, the gate's policy_evaluate per decision, the tally.
2. "bare": the limit. The same compiled CEL rules of the same draft, evaluated in a plain loop over the same rows
   already decoded in memory (one cel.Context per row, as the gate builds it, and each rule executed): no
   database, no JSON decoding, no schema check, no tally. Holding a million decoded rows would take about a
   gigabyte on a shared machine, so the loop runs over the first --bare-rows of them (all of them in quick mode).

Target (issue 21): 1,000,000 decisions in under 60 s on this 2-core machine, i.e. at least 16,667 decisions/s;
the replay's rate is also given as a ratio of the bare loop's. The machine is shared: the load average before and
after is recorded. Prints a table and writes bench/results/replay.json (with a "summary" for bench/run.py).
"""

import argparse
import io
import os
import random
import sys
import time
from pathlib import Path

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datetime import UTC

from bench import common

DATABASE = "tollgate_bench_replay"
REDIS_DB = 14  # the benches' Redis database (they run one after another)
POLICY = common.ROOT / "policies" / "billing.invoice_adjustment.yaml"
TARGET_PER_S = 1_000_000 / 60
COPY_CHUNK = 50_000
KEYS = ("seconds", "cpu_s", "per_s")
DECISION_COLUMNS = (
    "workflow_id, policy_version_id, agent_id, verdict, confidence, reasons, output, input, context, "
    "correlation_id, value_at_risk, callback_url, request_fingerprint, created_at"
)


def draft_document() -> dict:
    """The billing policy as a three-rule draft: other thresholds, one rule changed, one dropped."""
    import yaml

    document = yaml.safe_load(POLICY.read_text())
    document["thresholds"] = {"auto_approve": 0.85, "auto_reject": 0.25}
    rules = {rule["code"]: rule for rule in document["rules"]}
    rules["large_adjustment"]["when"] = "output.amount > 8000.0"
    document["rules"] = [rules[code] for code in ("large_adjustment", "credit_exceeds_invoice", "currency_mismatch")]
    return document


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _row(rng: random.Random, index: int, ids: dict, created_at: str) -> str:
    confidence = round(rng.choice((rng.random(), rng.uniform(0.8, 1.0), rng.uniform(0.9, 1.0))), 4)
    output = {
        "invoice_id": f"INV-{index}",
        "type": rng.choice(("credit", "refund", "rerate")),
        "amount": round(rng.choice((rng.uniform(1, 900), rng.uniform(100, 15_000))), 2),
        "currency": "EUR" if rng.random() < 0.9 else "USD",
        "reason": "tariff change",
    }
    input_data = {"invoice_total": round(rng.uniform(100, 12_000), 2), "currency": "EUR"}
    # The recorded verdict, as the published policy's thresholds give it (rules aside: a benchmark of speed).
    if confidence < 0.2:
        verdict, reasons = "reject", [{"code": "below_auto_reject", "confidence": confidence, "threshold": 0.2}]
    elif confidence < 0.9 or output["amount"] > 10_000:
        verdict, reasons = "hold", [{"code": "low_confidence", "severity": "medium"}]
    else:
        verdict, reasons = "proceed", []
    value_at_risk = f"{rng.uniform(0, 20_000):.2f}" if rng.random() < 0.5 else "\\N"
    context = '{"channel": "email"}' if rng.random() < 0.3 else "\\N"
    return "\t".join(
        (
            str(ids["workflow"]),
            str(ids["version"]),
            str(ids["agent"]),
            verdict,
            repr(confidence),
            _escape(orjson.dumps(reasons).decode()),
            _escape(orjson.dumps(output).decode()),
            _escape(orjson.dumps(input_data).decode()),
            context,
            f"bench-{index}",
            value_at_risk,
            "",
            "",
            created_at,
        )
    )


def decisions_load(ids: dict, count: int) -> dict:
    """``count`` decisions by COPY in chunks, then items for a fifth of the held ones (resolved in turn as
    approve, modify, reject), then VACUUM ANALYZE."""
    rng = random.Random(21)
    began = time.monotonic()
    created_at = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime())
    with psycopg.connect(common.database_url(DATABASE), autocommit=True) as conn:
        for start in range(0, count, COPY_CHUNK):
            buffer = io.StringIO()
            for index in range(start, min(start + COPY_CHUNK, count)):
                buffer.write(_row(rng, index, ids, created_at))
                buffer.write("\n")
            with (
                conn.cursor() as cursor,
                cursor.copy(f"COPY exceptions_app_gatedecision ({DECISION_COLUMNS}) FROM STDIN") as copy,
            ):
                copy.write(buffer.getvalue())
        copied = time.monotonic() - began
        conn.execute(
            """
            INSERT INTO exceptions_app_exceptionitem (
                workflow_id, policy_version_id, decision_id, agent_id, kind, proposal, confidence, input, context,
                model_version, correlation_id, request_fingerprint, reasons, severity, value_at_risk, callback_url,
                status, queue_id, priority, due_at, sla_stage, sla_near_at, resolution, reason_code, resolution_note,
                raised_at, queued_at, resolved_at, updated_at)
            SELECT d.workflow_id, d.policy_version_id, d.id, d.agent_id, 'hold', d.output, d.confidence, d.input,
                   d.context, '', d.correlation_id, '', d.reasons, 'medium', d.value_at_risk, '', 'resolved', %s, 0,
                   d.created_at, 0, d.created_at, (ARRAY['approve', 'modify', 'reject'])[1 + (d.id / 5) %% 3],
                   'wrong_amount', '', d.created_at, d.created_at, d.created_at, d.created_at
            FROM exceptions_app_gatedecision d WHERE d.verdict = 'hold' AND d.id %% 5 = 0
            """,
            (ids["queue"],),
        )
        conn.execute("VACUUM ANALYZE exceptions_app_gatedecision")
        conn.execute("VACUUM ANALYZE exceptions_app_exceptionitem")
        items = conn.execute("SELECT count(*) FROM exceptions_app_exceptionitem").fetchone()[0]
    return {
        "decisions": count,
        "items": items,
        "copy_s": round(copied, 1),
        "load_s": round(time.monotonic() - began, 1),
    }


def loaded_decisions() -> int:
    try:
        return int(common.sql_scalar(DATABASE, "SELECT count(*) FROM exceptions_app_gatedecision"))
    except psycopg.Error:
        return -1


def fixtures_create() -> dict:
    import yaml

    from exceptions_app.models import PolicySource, Queue
    from exceptions_app.services.policies import policy_publish
    from exceptions_app.services.tokens import principal_ensure

    version, _ = policy_publish(document=yaml.safe_load(POLICY.read_text()), source=PolicySource.FILE)
    agent = principal_ensure(name="bench-agent", role="agent", workflows=[version.workflow.name])
    return {
        "workflow": version.workflow_id,
        "version": version.pk,
        "agent": agent.pk,
        "queue": Queue.objects.get(name="billing").pk,
    }


def replay_run() -> dict:
    from datetime import datetime

    from exceptions_app.models import Workflow
    from exceptions_app.services.replay import ReplayWindow, policy_replay

    workflow = Workflow.objects.select_related("current_policy").get(name="billing.invoice_adjustment")
    window = ReplayWindow(since=datetime(2000, 1, 1, tzinfo=UTC))
    cpu_began, began = time.process_time(), time.monotonic()
    answer = policy_replay(workflow=workflow, document=draft_document(), window=window)
    seconds = time.monotonic() - began
    return {
        "seconds": round(seconds, 2),
        "cpu_s": round(time.process_time() - cpu_began, 2),
        "decisions": answer["decisions"],
        "per_s": round(answer["decisions"] / seconds),
        "changed": answer["changed"],
        "would_leak": answer["would_leak"],
        "matrix": answer["matrix"],
        "rules": answer["rules"],
    }


def bare_run(rows: int) -> dict:
    """The same compiled rules over the first ``rows`` rows, decoded into memory first (not timed)."""
    from django.db import connection

    from exceptions_app.policy.evaluation import policy_build, rule_variables

    policy = policy_build(draft_document())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT output, input, context, confidence, value_at_risk FROM exceptions_app_gatedecision "
            "ORDER BY id LIMIT %s",
            [rows],
        )
        loaded = [
            (
                orjson.loads(output),
                orjson.loads(input_data) if input_data else None,
                orjson.loads(context) if context else None,
                confidence,
                float(value_at_risk) if value_at_risk is not None else None,
            )
            for output, input_data, context, confidence, value_at_risk in cursor.fetchall()
        ]
    fired = 0
    cpu_began, began = time.process_time(), time.monotonic()
    for output, input_data, context, confidence, value_at_risk in loaded:
        # What policy_evaluate hands CEL: the variables the draft's rules read, in one context per row.
        variables = rule_variables(
            policy,
            output=output,
            confidence=confidence,
            input_data=input_data,
            context=context,
            value_at_risk=value_at_risk,
        )
        for rule in policy.rules:
            try:
                fired += rule.program.execute(variables) is True
            except (KeyError, TypeError, ValueError, RuntimeError):
                fired += 1
    seconds = time.monotonic() - began
    return {
        "rows": len(loaded),
        "seconds": round(seconds, 2),
        "cpu_s": round(time.process_time() - cpu_began, 2),
        "per_s": round(len(loaded) / seconds),
        "fired": fired,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 decisions (full: 1,000,000)")
    parser.add_argument("--decisions", type=int, help="decisions to load and replay (overrides the mode's)")
    parser.add_argument("--bare-rows", type=int, help="rows the bare loop holds in memory (default: up to 200,000)")
    parser.add_argument("--reuse", action="store_true", help="keep the decisions an earlier run loaded (same size)")
    args = parser.parse_args()
    args.decisions = args.decisions or (100_000 if args.quick else 1_000_000)
    args.bare_rows = min(args.bare_rows or 200_000, args.decisions)
    load_before = os.getloadavg()

    env = common.bench_env(DATABASE, redis_db=REDIS_DB)
    reused = args.reuse and loaded_decisions() == args.decisions
    if not reused:
        common.database_prepare(env, DATABASE)
    common.django_setup(env)
    if reused:
        load = {"reused": True, "decisions": args.decisions}
    else:
        print(f"loading {args.decisions:,} decisions with COPY", file=sys.stderr)
        load = decisions_load(fixtures_create(), args.decisions)
    print(f"  {load}", file=sys.stderr)

    print("replaying the three-rule draft", file=sys.stderr)
    replay = replay_run()
    print(f"  {replay['decisions']:,} decisions in {replay['seconds']} s ({replay['per_s']:,}/s)", file=sys.stderr)
    print(f"bare loop over {args.bare_rows:,} rows in memory", file=sys.stderr)
    bare = bare_run(args.bare_rows)
    load_after = os.getloadavg()
    ratio = replay["per_s"] / bare["per_s"]
    met = replay["per_s"] >= TARGET_PER_S
    workload = f"{replay['decisions']:,} decisions, 3-rule draft"
    summary = [
        common.summary_row(
            "replay",
            workload,
            f"{replay['seconds']} s (CPU {replay['cpu_s']} s), {replay['per_s']:,} decisions/s",
            "1M in < 60 s (>= 16,667/s)",
            limit=f"bare CEL loop {bare['per_s']:,}/s ({bare['rows']:,} rows)",
            ratio=ratio,
            met=met,
        )
    ]
    rows = [
        {"name": name, "decisions": run.get("decisions", run.get("rows")), **{key: run[key] for key in KEYS}}
        for name, run in (("replay", replay), ("bare", bare))
    ]
    # Wall and CPU seconds: on a shared machine the process's CPU time says what it needs, the wall what it got.
    common.table_print_columns(rows, ["name", "decisions", *KEYS])
    print(f"\nratio replay / bare loop: {ratio:.2f}; target met: {met}; load average {load_before} -> {load_after}")
    path = common.results_save(
        "replay",
        quick=args.quick,
        machine={**common.machine_info(DATABASE), "loadavg_before": load_before, "loadavg_after": load_after},
        code=common.code_revision(),
        parameters=vars(args),
        draft=draft_document(),
        load=load,
        replay=replay,
        bare=bare,
        ratio_to_bare=round(ratio, 3),
        summary=summary,
    )
    print(f"results: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
