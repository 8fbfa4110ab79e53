"""Shared helpers for the benchmarks: a fresh database, a gunicorn server on loopback, results files.

Everything runs on 127.0.0.1 only, and every wait is bounded in time.
"""

import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
HOST = "127.0.0.1"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BIN = Path(sys.executable).parent


def bench_env(database: str, redis_db: int = 14) -> dict:
    """The server's environment: PostgreSQL and Redis on loopback, no rate limit, quiet logs."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}",
        REDIS_URL=f"redis://127.0.0.1:6379/{redis_db}",
        SECRET_KEY="bench",
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        TOLLGATE_RATE_LIMIT_PER_MINUTE="100000000",
        TOLLGATE_LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="exceptions_app.settings",
    )
    return env


def database_url(database: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{database}"


def database_recreate(database: str) -> None:
    """Drop (if it exists) and create an empty database; only the one named here."""
    if not database.startswith("tollgate_bench"):
        raise ValueError(f"refusing to drop {database!r}: bench databases start with tollgate_bench")
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')


def database_prepare(env: dict, database: str, *commands: tuple[str, ...], redis_db: int | None = None) -> None:
    """A fresh ``database``, migrated, then each management command of ``commands`` run on it (and,
    with ``redis_db``, that Redis database emptied)."""
    steps = ["recreating", "migrating", *(" ".join(command) for command in commands)]
    flushing = f"; flushing Redis db {redis_db}" if redis_db is not None else ""
    print(f"database {database}: {', '.join(steps)}{flushing}", file=sys.stderr)
    database_recreate(database)
    if redis_db is not None:
        redis_flush(redis_db)
    manage(env, "migrate", "--no-input")
    for command in commands:
        manage(env, *command)


def sql_scalar(database: str, query: str) -> object:
    with psycopg.connect(database_url(database), connect_timeout=10) as conn:
        return conn.execute(query).fetchone()[0]


def manage(env: dict, *args: str, timeout: float = 300) -> str:
    """Run ``manage.py`` with the bench environment; its stdout, or an error with its stderr."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def process_stop(process: subprocess.Popen | None, *, timeout: float, group: bool = False) -> None:
    """SIGTERM, then SIGKILL (to its whole process group with ``group``) if it is still running after ``timeout``."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait(timeout=5)


def file_tail(path: Path, limit: int) -> str:
    """The last ``limit`` characters of a log file, or nothing when it cannot be read."""
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


class Gunicorn:
    """gunicorn on 127.0.0.1; stderr goes to a temporary log file. ``serving="asgi"`` is the Procfile's
    set-up (uvicorn workers, requests that do not wait on ``threads`` threads each); ``"wsgi"`` the
    earlier one (gthread workers), kept to compare the two in one run."""

    def __init__(self, env: dict, *, workers: int, threads: int, serving: str = "asgi", backlog: int = 256):
        self.env, self.workers, self.threads, self.serving, self.backlog = env, workers, threads, serving, backlog
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = Path(tempfile.mkstemp(prefix="tollgate-bench-gunicorn-", suffix=".log")[1])

    def start(self, timeout: float = 60) -> None:
        if self.serving == "asgi":
            application = ["exceptions_app.asgi:application", "--worker-class", "uvicorn_worker.UvicornWorker"]
            env = {**self.env, "TOLLGATE_WEB_THREADS": str(self.threads)}
        else:
            application = ["exceptions_app.wsgi", "--worker-class", "gthread", "--threads", str(self.threads)]
            env = self.env
        command = [
            str(BIN / "gunicorn"),
            *application,
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(self.workers),
            "--backlog",
            str(self.backlog),
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.healthy():
                return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    def healthy(self) -> bool:
        try:
            conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError:
            return False

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def stop(self, timeout: float = 15) -> None:
        process_stop(self.process, timeout=timeout)

    def log_tail(self, limit: int = 8000) -> str:
        return file_tail(self.log, limit)


def process_stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses):
    [0] is the state, [1] the parent, [11:15] utime, stime, cutime, cstime. None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of one process, or 0.0 once it is gone."""
    fields = process_stat_fields(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _system_busy_seconds() -> float:
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def busy_cores(interval: float = 1.0) -> float:
    """How many cores the whole machine kept busy over ``interval`` seconds (other work, before a run)."""
    before = _system_busy_seconds()
    time.sleep(interval)
    return round((_system_busy_seconds() - before) / interval, 2)


class CpuMeter:
    """CPU used by the gunicorn workers, by the PostgreSQL backends of one database, and by everything
    else on the machine, between start() and stop(): per-decision costs that survive a noisy host."""

    def __init__(self, server: Gunicorn, database: str):
        self.server, self.database = server, database

    def _backends(self) -> set[int]:
        query = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        with psycopg.connect(database_url(self.database), connect_timeout=10) as conn:
            return {row[0] for row in conn.execute(query, [self.database])}

    def start(self) -> None:
        self.began, self.busy = time.monotonic(), _system_busy_seconds()
        self.workers = {pid: _cpu_seconds(pid) for pid in self.server.worker_pids()}
        self.backends = {pid: _cpu_seconds(pid) for pid in self._backends()}

    def stop(self, client_cpu_s: float = 0.0) -> dict:
        elapsed, busy = time.monotonic() - self.began, _system_busy_seconds() - self.busy
        workers = {pid: _cpu_seconds(pid) - self.workers.get(pid, 0.0) for pid in self.server.worker_pids()}
        backends = {
            pid: _cpu_seconds(pid) - self.backends.get(pid, 0.0) for pid in set(self.backends) | self._backends()
        }
        server, postgres = sum(workers.values()), sum(max(0.0, cpu) for cpu in backends.values())
        return {
            "elapsed_s": round(elapsed, 3),
            "gunicorn_cpu_s": round(server, 3),
            "postgres_cpu_s": round(postgres, 3),
            "client_cpu_s": round(client_cpu_s, 3),
            "other_cpu_s": round(max(0.0, busy - server - postgres - client_cpu_s), 3),
        }


def cpu_calibration_ms() -> float:
    """Best of 5 runs of a fixed pure-Python loop: how fast this (possibly shared) CPU is right now."""
    best = float("inf")
    for _ in range(5):
        began = time.process_time()
        sum(i * i for i in range(300_000))
        best = min(best, time.process_time() - began)
    return round(best * 1000, 2)


def machine_info(database: str) -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "postgres": sql_scalar(database, "SHOW server_version"),
        "cpu_calibration_ms": cpu_calibration_ms(),
        "platform": platform.platform(),
    }


def machine_at_end(database: str, **extra) -> dict:
    """machine_info, with the load average at the end of the run and the code revision measured."""
    return {**machine_info(database), "loadavg_end": os.getloadavg(), "code": code_revision(), **extra}


def code_revision() -> str:
    """The commit the bench ran against, with "+dirty" when the working tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def abba(rounds: int, first, second):
    """``rounds`` rounds of turns for two set-ups measured side by side, the order swapped every round
    (A B, B A, A B, ...), so that drift in a shared host's speed falls on both alike: (round, side)."""
    for number in range(rounds):
        for side in (first, second) if number % 2 == 0 else (second, first):
            yield number, side


def paired_ratios(numerators: list[float], denominators: list[float]) -> list[float]:
    """Each round's figure of one set-up against the other's in the same round, in round order (rounds
    whose denominator is 0 left out); their median is what side-by-side benchmarks hold to a target."""
    return [a / b for a, b in zip(numerators, denominators, strict=True) if b > 0]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; 0.0 for an empty list."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def table_print(rows: list[dict]) -> None:
    table_print_columns(rows, ["name", "workload", "figure", "target", "result"])


def django_setup(env: dict) -> None:
    """Django in this process, with ``env`` (bench_env's) as its environment."""
    os.environ.update(env)
    import django

    django.setup()


def static_storage_plain() -> None:
    """Static files by their plain names, so pages render without a collected manifest."""
    from django.conf import settings
    from django.test.utils import override_settings

    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    override_settings(STORAGES=storages).enable()


def results_write(name: str, data: dict) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def results_save(benchmark: str, /, *, quick: bool, machine: dict, **data) -> Path:
    """bench/results/<benchmark>.json: what every benchmark's results start with (its name, quick or
    full, when, the machine), then ``data``."""
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    header = {"benchmark": benchmark, "mode": "quick" if quick else "full", "when": when, "machine": machine}
    return results_write(benchmark, {**header, **data})


def results_exit_code(path: Path, rows: list[dict]) -> int:
    """Say where the results were written; the benchmark's exit code: 1 when a row failed its target."""
    print(f"\nresults: {path}", file=sys.stderr)
    return 0 if all(row["result"] != "FAIL" for row in rows) else 1


def table_print_columns(rows: list[dict], columns: list[str]) -> None:
    """Like table_print, with the columns named by the caller."""
    widths = {column: max(len(column), *(len(str(row[column])) for row in rows)) for column in columns}
    print("  ".join(column.ljust(widths[column]) for column in columns))
    print("  ".join("-" * widths[column] for column in columns))
    for row in rows:
        print("  ".join(str(row[column]).ljust(widths[column]) for column in columns))


# --- Celery worker and beat (added for bench/delivery.py) -------------------------------------------------


def redis_flush(redis_db: int) -> None:
    """Empty one Redis database on loopback (the bench's own, never db 0)."""
    import redis

    if redis_db == 0:
        raise ValueError("refusing to flush Redis db 0: bench databases use their own number")
    client = redis.Redis(host=HOST, port=6379, db=redis_db, socket_timeout=10)
    try:
        client.flushdb()
    finally:
        client.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process, or 0.0 once it is gone."""
    return _cpu_seconds(pid)


def system_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores)."""
    return _system_busy_seconds()


def process_tree(pid: int, depth: int = 4) -> list[int]:
    """``pid`` and its descendants (bounded depth), from /proc."""
    found, level = [pid], [pid]
    for _ in range(depth):
        children = []
        for parent in level:
            try:
                children += [int(child) for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
            except OSError:
                continue
        if not children:
            break
        found += children
        level = children
    return found


class CeleryProcess:
    """``celery -A exceptions_app <args>`` (a worker or beat) in its own session; output to a temporary log."""

    def __init__(self, env: dict, *args: str, name: str):
        self.env, self.name = env, name
        self.command = [sys.executable, "-m", "celery", "-A", "exceptions_app", *args]
        self.process: subprocess.Popen | None = None
        self.log = Path(tempfile.mkstemp(prefix=f"tollgate-bench-{name}-", suffix=".log")[1])

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        return process_tree(self.process.pid) if self.alive() else []

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (warm shutdown), then SIGKILL to the process group this object started."""
        process_stop(self.process, timeout=timeout, group=True)

    def log_tail(self, limit: int = 8000) -> str:
        return file_tail(self.log, limit)


# --- in-process measurements (added for bench/pages.py) ----------------------------------------------------


def own_cpu_seconds() -> float:
    """User + system CPU of this process so far."""
    times = os.times()
    return times.user + times.system


def client_backend_pids(database: str) -> set[int]:
    """PostgreSQL client backends (and live parallel workers) of one database, not counting the connection that
    asks."""
    query = (
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type IN ('client backend', 'parallel worker') "
        "AND pid <> pg_backend_pid()"
    )
    with psycopg.connect(database_url(database), connect_timeout=10) as conn:
        return {row[0] for row in conn.execute(query, [database])}


def parent_pid(pid: int) -> int | None:
    fields = process_stat_fields(pid)
    return int(fields[1]) if fields and len(fields) > 1 else None


def reaped_children_seconds(pid: int | None) -> float:
    """cutime + cstime of a process: CPU of its children that have exited and been waited for."""
    fields = None if pid is None else process_stat_fields(pid)
    return 0.0 if fields is None else (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


class PostmasterReaped:
    """CPU of the PostgreSQL processes the postmaster reaped between start() and seconds(): parallel query workers
    and exited backends (on a shared server also other databases'). The postmaster is the parent of a client
    backend of ``database``; found only at seconds() if none was connected at start(), it counts from there."""

    def __init__(self, database: str):
        self.database = database

    def _find(self, backend_pids: set[int]) -> None:
        self.postmaster = next((parent_pid(pid) for pid in backend_pids), None)
        self.base = reaped_children_seconds(self.postmaster)

    def start(self, backend_pids: set[int] | None = None) -> None:
        self._find(client_backend_pids(self.database) if backend_pids is None else backend_pids)

    def seconds(self, backend_pids: set[int] | None = None) -> float:
        if self.postmaster is None:
            self._find(client_backend_pids(self.database) if backend_pids is None else backend_pids)
        return max(0.0, reaped_children_seconds(self.postmaster) - self.base)


class LocalCpuMeter:
    """CPU used by this process, by PostgreSQL for one database, and by everything else on the machine, between
    start() and stop(): for benchmarks that serve requests in-process (Django's test Client), where this process
    is the server. PostgreSQL's share is its client backends of the database plus the children the postmaster
    reaped meanwhile (parallel query workers; on a shared server also other databases' exited backends)."""

    def __init__(self, database: str):
        self.database = database

    def start(self) -> None:
        pids = client_backend_pids(self.database)
        self.backends = {pid: _cpu_seconds(pid) for pid in pids}
        self.reaped = PostmasterReaped(self.database)
        self.reaped.start(pids)
        self.load = os.getloadavg()[0]
        self.own, self.busy, self.began = own_cpu_seconds(), _system_busy_seconds(), time.monotonic()

    def stop(self) -> dict:
        elapsed, own = time.monotonic() - self.began, own_cpu_seconds() - self.own
        busy = _system_busy_seconds() - self.busy
        pids = set(self.backends) | client_backend_pids(self.database)
        backends = sum(max(0.0, _cpu_seconds(pid) - self.backends.get(pid, 0.0)) for pid in pids)
        reaped = self.reaped.seconds(pids)
        postgres = backends + reaped
        other = max(0.0, busy - own - postgres)
        return {
            "elapsed_s": round(elapsed, 3),
            "own_cpu_s": round(own, 3),
            "postgres_cpu_s": round(postgres, 3),
            "postgres_reaped_cpu_s": round(reaped, 3),
            "other_cpu_s": round(other, 3),
            "other_cores": round(other / elapsed, 2) if elapsed else 0.0,
            "machine_busy_cores": round(busy / elapsed, 2) if elapsed else 0.0,
            "loadavg_1m": [round(self.load, 2), round(os.getloadavg()[0], 2)],
        }


# --- the suite's summary (read by bench/run.py) ------------------------------------------------------------


def summary_row(
    name: str,
    workload: str,
    figure: str,
    target: str,
    *,
    limit: str = "",
    ratio: float | None = None,
    met: bool | None = None,
) -> dict:
    """One line of the suite table: our figure, its target, the limit measured in the same run and our figure as a
    ratio of it (so the figure survives a noisy machine), and whether the target was met (None: report only)."""
    return {
        "name": name,
        "workload": workload,
        "figure": figure,
        "target": target,
        "limit": limit,
        "ratio": None if ratio is None else round(ratio, 3),
        "met": met,
    }
