"""Where one single-decision POST spends its time: pyinstrument over in-process requests (Django's test Client,
no network, no gunicorn) against a fresh bench database.

    .venv/bin/python bench/profile_intake.py [--requests 300]

Creates tollgate_bench_profile afresh (migrate, apply_policies policies/, an agent token), posts 50 warm-up
decisions (imports, caches, prepared connections), then profiles ``--requests`` POST /api/v1/decisions with the
intake benchmark's billing bodies (~70% proceed, 25% hold, 5% reject) at a 0.1 ms sampling interval. One request
takes a few milliseconds, too short for a sampling profiler alone; many of the same kind give a stable picture
of one. Prints the call tree (time per request = total / requests; PROFILE_SHOW_ALL=1 for every frame) and
writes bench/results/profile-intake.txt and .html. Loopback only; only tollgate_bench_profile is dropped.
"""

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench import intake_payloads as payloads
from bench.intake import SINGLE, WORKFLOW, decision

DATABASE = "tollgate_bench_profile"
WARMUP = 50


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="profiled requests")
    parser.add_argument("--batch", type=int, default=0, help="profile batches of this many decisions instead")
    parser.add_argument(
        "--time-only", action="store_true", help="no profiler: time the requests (to sample from outside, e.g. py-spy)"
    )
    parser.add_argument(
        "--payload", choices=payloads.PROFILES, help="bodies of this profile (bench/intake_payloads.py), not the mix"
    )
    parser.add_argument("--verdict", choices=payloads.VERDICTS, default="hold", help="with --payload: the verdict")
    parser.add_argument("--database", default=DATABASE, help="the profile's database (recreated)")
    args = parser.parse_args()

    env = common.bench_env(args.database)
    env["TOLLGATE_CALLBACK_ALLOW"] = "127.0.0.1"
    env["ALLOWED_HOSTS"] = "testserver,127.0.0.1"
    common.database_prepare(env, args.database, ("apply_policies", "policies/"))
    token = common.manage(env, "create_token", "bench-agent", "--role", "agent", "--workflows", WORKFLOW).strip()
    os.environ.update(env)

    import django

    django.setup()
    from django.test import Client
    from pyinstrument import Profiler

    client = Client(headers={"Authorization": f"Bearer {token}"})
    rng = random.Random(20250301)
    path, name = ("/api/v1/decisions/batch", "profile-intake-batch") if args.batch else (SINGLE, "profile-intake")
    warmup = 3 if args.batch else WARMUP
    make = decision
    if args.payload:
        name += f"-{args.payload}-{args.verdict}"

        def make(rng, serial):
            return payloads.decision(rng, serial, profile=args.payload, verdict=args.verdict)

    if args.batch:
        serial = iter(range(10**9))
        batches = [[make(rng, next(serial)) for _ in range(args.batch)] for _ in range(warmup + args.requests)]
        bodies = [json.dumps({"decisions": batch}) for batch in batches]
    else:
        bodies = [json.dumps(make(rng, n)) for n in range(warmup + args.requests)]

    from exceptions_app.gc_tuning import GC_PAUSED_PATHS, collector_pause, collector_resume

    def post(body: str) -> None:
        # As under gunicorn (gunicorn.conf.py's hooks): the collector is paused around a batch. Without
        # the pause, collections land in whatever allocates (building instances) and mislead the profile.
        paused = path in GC_PAUSED_PATHS
        if paused:
            collector_pause()
        try:
            response = client.post(path, body, content_type="application/json")
        finally:
            if paused:
                collector_resume()
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.content[:500]!r}")

    for body in bodies[:warmup]:
        post(body)
    kind = f"batch ({args.batch} decisions) POSTs" if args.batch else "single-decision POSTs"
    if args.time_only:
        began, cpu = time.perf_counter(), time.process_time()
        for body in bodies[warmup:]:
            post(body)
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        print(
            f"{args.requests} {kind}: {1000 * elapsed / args.requests:.2f} ms each, "
            f"{1000 * cpu / args.requests:.2f} ms CPU"
        )
        return 0
    profiler = Profiler(interval=0.0001)
    began = time.perf_counter()
    profiler.start()
    for body in bodies[warmup:]:
        post(body)
    profiler.stop()
    elapsed = time.perf_counter() - began
    text = profiler.output_text(unicode=False, color=False, show_all=bool(os.environ.get("PROFILE_SHOW_ALL")))
    header = f"{args.requests} {kind} in {elapsed:.2f} s: {1000 * elapsed / args.requests:.2f} ms each\n"
    common.RESULTS_DIR.mkdir(exist_ok=True)
    (common.RESULTS_DIR / f"{name}.txt").write_text(header + text)
    (common.RESULTS_DIR / f"{name}.html").write_text(profiler.output_html())
    print(header + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
