"""What tracing costs the intake: bench/intake.py with the server untraced, then traced, compared.

    .venv/bin/python bench/tracing_overhead.py [--repeat N] [--traced on|all] [intake.py arguments, default --quick]

Runs ``bench/intake.py --tracing off`` and ``--tracing on`` alternately ``--repeat`` times (traced: OTLP
to a local sink, sampling ratio 1, Celery's instrumentation, and with ``--traced all`` Django's and
psycopg's too; bench/tracing.py), keeps each run's results, and compares the medians per payload
profile and verdict: server CPU per decision (gunicorn + PostgreSQL, the figure that stays meaningful
when other work shares the machine), single and batch throughput, single p95. Target (issue 22):
under 10% more CPU per decision with tracing on. Writes bench/results/tracing_overhead.json.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

TARGET = 0.10


def _intake(mode: str, arguments: list[str]) -> dict:
    command = [sys.executable, "bench/intake.py", *arguments, "--tracing", mode]
    print(f"$ {' '.join(command)}", file=sys.stderr)
    subprocess.run(command, cwd=common.ROOT, check=False)  # a missed intake target is not our failure
    results = json.loads((common.RESULTS_DIR / "intake.json").read_text())
    assert results["parameters"]["tracing"] == mode, "intake.py wrote no results for this run"
    return results


def _server_cpu(run: dict) -> float:
    return run["cpu"]["gunicorn_ms_per_decision"] + run["cpu"]["postgres_ms_per_decision"]


def _figures(results: dict) -> dict:
    """Per payload profile and verdict (intake.py's runs): CPU per decision and rates, single and batch."""
    figures = {"tracing_row": next(row["figure"] for row in results["rows"] if row["name"] == "tracing")}
    for run in results["runs"]:
        name = f"{run['profile']}.{run['verdict']}"
        single, batch = run["single"], run["batch"]
        figures[name] = {
            "single_cpu_ms": _server_cpu(single),
            "batch_cpu_ms": _server_cpu(batch),
            "single_rate": single["rate_per_s"],
            "batch_rate": batch["rate_per_s"],
            "single_p95_ms": single["p95_ms"],
        }
    return figures


MEASURES = (
    ("single_cpu_ms", "single: server CPU ms per decision", True),
    ("batch_cpu_ms", "batch: server CPU ms per decision", True),
    ("single_rate", "single: decisions/s", False),
    ("batch_rate", "batch: decisions/s", False),
    ("single_p95_ms", "single: p95 ms", True),
)


def compare(off: list[dict], on: list[dict]) -> list[dict]:
    """Medians of the off runs against the traced ones; CPU per decision is held to the target."""
    rows = []
    for name in [key for key in off[0] if key != "tracing_row"]:
        for key, label, more_is_worse in MEASURES:
            untraced = statistics.median(figures[name][key] for figures in off)
            traced = statistics.median(figures[name][key] for figures in on)
            cost = (traced - untraced) / untraced if more_is_worse else (untraced - traced) / untraced
            held = key.endswith("cpu_ms")
            rows.append(
                {
                    "name": f"{name}.{key}",
                    "workload": label,
                    "figure": f"off {untraced:.3f}, on {traced:.3f}: {100 * cost:+.1f}%",
                    "target": f"< {100 * TARGET:.0f}%" if held else "(report)",
                    "result": ("PASS" if cost < TARGET else "FAIL") if held else "info",
                    "overhead": round(cost, 4),
                }
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="off/on pairs, alternated; medians compared")
    parser.add_argument("--database", default="tollgate_bench", help="intake.py's bench database (recreated)")
    parser.add_argument("--traced", choices=["on", "all"], default="on", help="what the traced runs trace")
    args, intake_arguments = parser.parse_known_args()
    intake_arguments = [*(intake_arguments or ["--quick"]), "--database", args.database]
    loadavg_before = os.getloadavg()
    off, on = [], []
    for _ in range(args.repeat):
        off.append(_figures(_intake("off", intake_arguments)))
        on.append(_figures(_intake(args.traced, intake_arguments)))
    rows = compare(off, on)
    machine = {**common.machine_info(args.database), "loadavg_before": loadavg_before, "loadavg_end": os.getloadavg()}
    print(f"\ntraced: {on[-1]['tracing_row']}")
    common.table_print([{key: row[key] for key in ("name", "workload", "figure", "target", "result")} for row in rows])
    path = common.results_write(
        "tracing_overhead",
        {
            "benchmark": "tracing_overhead",
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine,
            "parameters": {"repeat": args.repeat, "traced": args.traced, "intake_arguments": intake_arguments},
            "off": off,
            "on": on,
            "rows": rows,
        },
    )
    return common.results_exit_code(path, rows)


if __name__ == "__main__":
    sys.exit(main())
