"""The benchmark suite: every benchmark in bench/, one table, limits measured in the same run.

    .venv/bin/python bench/run.py [--quick | --full] [--only intake,claim,...]
    make bench            # quick: the whole suite in under 5 minutes on 2 cores
    make bench FULL=1     # full size (about an hour), plus the API fuzz test with 500 examples per operation

Each benchmark runs as its own subprocess (one crash does not stop the others), writes its full results to
bench/results/<name>.json with a "summary" list, and its output to bench/results/<name>.log. This prints one
table of the summaries (name, workload, figure, target, limit, our figure as a ratio of the limit, met?) and
writes bench/results/suite-<timestamp>.json. Missed targets are reported, not fatal: the exit status is 1 only
when a benchmark crashed or wrote no results. Limits are measured by each benchmark in the same run, on the same
database and broker, so a ratio survives a noisy machine where an absolute rate does not.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

# name -> (script, quick arguments, full arguments). Quick sizes keep the suite under 5 minutes on 2 cores.
BENCHMARKS = {
    "intake": ("bench/intake.py", ["--quick"], []),  # 3 s of singles and 6 batches per profile and verdict
    "claim": ("bench/claim.py", ["--quick", "--items", "20000", "--duration", "3", "--claimers", "8"], []),
    "delivery": ("bench/delivery.py", ["--quick", "--duration", "5"], []),
    "pages": ("bench/pages.py", ["--quick", "--sizes", "10000", "--repeat", "8", "--snapshot-days", "1"], []),
    "soak": ("bench/soak.py", ["--quick"], []),
    "capacity": ("bench/capacity.py", ["--quick", "--repeat", "15"], []),
    "waits": ("bench/waits.py", ["--quick"], []),
    "replay": ("bench/replay.py", ["--quick", "--decisions", "50000"], []),
    # issue 18: the operator's loop in Chromium, key to next item (needs /usr/bin/chromium)
    "console_loop": ("bench/console_loop.py", ["--items", "30"], ["--items", "60"]),
    # issue 22: tracing's cost, traced and untraced servers side by side (full: 10 rounds, both verdicts)
    "tracing_paired": (
        "bench/tracing_paired.py",
        ["--rounds", "4", "--slice", "2", "--verdicts", "hold"],
        ["--rounds", "10"],
    ),
}
TIMEOUT_S = {"quick": 300, "full": 3 * 3600}
FUZZ_TEST = common.ROOT / "tests" / "test_api_fuzz.py"
FUZZ_EXAMPLES = 500
FUZZ_DATABASE = "tollgate_bench_fuzz"
COLUMNS = ["name", "workload", "figure", "target", "limit", "ratio", "met"]


def _run_bounded(command: list[str], out, timeout: float, env: dict | None = None) -> int | str:
    """Run ``command`` with its output to ``out``; past ``timeout``, SIGTERM (the benchmarks stop their servers
    and workers in a finally block), then SIGKILL. The exit code, or "timeout"."""
    process = subprocess.Popen(command, cwd=common.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        return "timeout"


def benchmark_run(name: str, mode: str) -> dict:
    """One benchmark as a subprocess; its summary from the JSON it wrote (if it wrote one during this run)."""
    script, quick, full = BENCHMARKS[name]
    command = [sys.executable, script, *(quick if mode == "quick" else full)]
    log = common.RESULTS_DIR / f"{name}.log"
    results = common.RESULTS_DIR / f"{name}.json"
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(command[1:])} (log {log.relative_to(common.ROOT)})")
    started, began = time.time(), time.monotonic()
    with log.open("wb") as out:
        exit_code = _run_bounded(command, out, TIMEOUT_S[mode])
    seconds = round(time.monotonic() - began, 1)
    data = None
    if results.exists() and results.stat().st_mtime >= started:
        data = json.loads(results.read_text())
    summary = (data or {}).get("summary")
    if summary is None:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        summary = [common.summary_row(name, "", f"crashed (exit {exit_code}): {tail[0][:100]}", "results", met=False)]
    print(f"[{time.strftime('%H:%M:%S')}] {name}: exit {exit_code} after {seconds} s")
    return {
        "exit_code": exit_code,
        "seconds": seconds,
        "crashed": data is None,
        "results": str(results.relative_to(common.ROOT)) if data is not None else None,
        "log": str(log.relative_to(common.ROOT)),
        "summary": summary,
    }


def fuzz_run(examples: int = FUZZ_EXAMPLES) -> dict:
    """The schemathesis fuzz test with more examples, the way `make test` runs tests (full mode only)."""
    if not FUZZ_TEST.exists():
        print(f"fuzz: {FUZZ_TEST.relative_to(common.ROOT)} does not exist yet; skipped")
        row = common.summary_row("api.fuzz", "", "skipped: no tests/test_api_fuzz.py", f"{examples} examples")
        return {"skipped": True, "summary": [row]}
    env = dict(os.environ)
    env.update(
        TOLLGATE_FUZZ_EXAMPLES=str(examples),
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{FUZZ_DATABASE}",
        REDIS_URL="redis://127.0.0.1:6379/14",
    )
    log = common.RESULTS_DIR / "fuzz.log"
    began = time.monotonic()
    print(f"[{time.strftime('%H:%M:%S')}] fuzz: make test tests/test_api_fuzz.py, {examples} examples")
    with log.open("wb") as out:
        command = ["make", "test", "PYTEST_ARGS=-q -p no:cacheprovider tests/test_api_fuzz.py"]
        exit_code = _run_bounded(command, out, TIMEOUT_S["full"], env=env)
    lines = [line for line in log.read_text(errors="replace").splitlines() if re.search(r"\d+ (passed|failed)", line)]
    outcome = lines[-1].strip("= ") if lines else f"exit {exit_code}"
    row = common.summary_row(
        "api.fuzz", f"{examples} examples per operation", outcome, "no failures", met=exit_code == 0
    )
    seconds = round(time.monotonic() - began, 1)
    return {"exit_code": exit_code, "seconds": seconds, "log": str(log.relative_to(common.ROOT)), "summary": [row]}


def _cell(row: dict, column: str) -> str:
    value = row.get(column)
    if column == "ratio":
        return "-" if value is None else f"{value:.2f}"
    if column == "met":
        return {True: "yes", False: "NO", None: "-"}[value]
    return "-" if value in (None, "") else str(value)


def table_print(rows: list[dict]) -> None:
    cells = [[_cell(row, column) for column in COLUMNS] for row in rows]
    widths = [max(len(column), *(len(line[n]) for line in cells)) for n, column in enumerate(COLUMNS)]
    print(" | ".join(column.ljust(widths[n]) for n, column in enumerate(COLUMNS)))
    print("-|-".join("-" * width for width in widths))
    for line in cells:
        print(" | ".join(cell.ljust(widths[n]) for n, cell in enumerate(line)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes, under 5 minutes in all (the default)")
    size.add_argument("--full", action="store_true", help="full sizes, and the API fuzz test")
    parser.add_argument("--only", help=f"comma-separated benchmarks of {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    mode = "full" if args.full else "quick"
    names = [name.strip() for name in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; known: {', '.join(BENCHMARKS)}")

    common.RESULTS_DIR.mkdir(exist_ok=True)
    stamp, began = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), time.monotonic()
    load_before = os.getloadavg()
    print(f"benchmark suite, {mode} mode: {', '.join(names)}; load average {load_before[0]:.2f}")
    runs = {name: benchmark_run(name, mode) for name in names}
    if mode == "full":
        runs["fuzz"] = fuzz_run()
    wall = round(time.monotonic() - began, 1)
    rows = [row for run in runs.values() for row in run["summary"]]

    print(f"\nsuite ({mode}), {wall} s wall, load average {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}\n")
    table_print(rows)
    machine = {
        "nproc": os.cpu_count(),
        "cpu_calibration_ms": common.cpu_calibration_ms(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "code": common.code_revision(),
    }
    path = common.results_write(
        f"suite-{stamp}",
        {"suite": mode, "when": stamp, "wall_s": wall, "machine": machine, "runs": runs, "table": rows},
    )
    print(f"\nresults: {path.relative_to(common.ROOT)} (and each benchmark's own JSON beside it)")
    crashed = [name for name, run in runs.items() if run.get("crashed")]
    if crashed:
        print(f"crashed or wrote no results: {', '.join(crashed)} (see their logs)", file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
