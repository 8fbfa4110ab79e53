"""Keep one process of `make run` alive: ``python -m exceptions_app.supervise NAME -- COMMAND...``.

honcho stops every process as soon as one exits, so a worker that died took web, beat and the
agents down with it and the demo went dark. This restarts the command when it exits unasked, with
a line naming it, its exit status and its uptime, and a growing pause. If it keeps dying (more than
``--max-restarts`` within ``--window`` seconds) it gives up with a message saying which process died
and why, and exits non-zero, so honcho stops everything rather than leave a half-working demo.
"""

import argparse
import signal
import subprocess
import sys
import time
from collections import deque
from types import FrameType


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _say(name: str, message: str) -> None:
    print(f"supervise | {name}: {message}", file=sys.stderr, flush=True)


def supervise(name: str, command: list[str], *, max_restarts: int, window: float, pause_max: float) -> int:
    stopping: list[int] = []
    child: subprocess.Popen | None = None

    def _stop(signum: int, _frame: FrameType | None) -> None:
        # honcho signals the whole process group, so the child usually has it already; a second
        # SIGTERM is harmless to Celery (warm shutdown is idempotent) and needed when only we got it.
        stopping.append(signum)
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    deaths: deque[float] = deque()
    first_pause = pause = min(1.0, pause_max)
    while True:
        started = time.monotonic()
        child = subprocess.Popen(command)  # noqa: S603 (the Procfile's own command line)
        returncode = child.wait()
        if stopping:
            return 0 if returncode in (0, -signal.SIGTERM, -signal.SIGINT) else returncode
        now = time.monotonic()
        uptime = now - started
        deaths.append(now)
        while deaths and now - deaths[0] > window:
            deaths.popleft()
        if len(deaths) > max_restarts:
            _say(
                name,
                f"{_describe(returncode)} after {uptime:.0f} s; it died {len(deaths)} times in {window:.0f} s, "
                "so stopping everything. Its last lines above say why.",
            )
            return returncode if returncode > 0 else 1
        if uptime > window:
            pause = first_pause  # it had been healthy for a while: start the backoff again
        _say(name, f"{_describe(returncode)} after {uptime:.0f} s; restarting in {pause:g} s")
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline and not stopping:
            time.sleep(0.1)
        if stopping:
            return 0
        pause = min(pause * 2, pause_max)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m exceptions_app.supervise", usage="%(prog)s NAME [options] -- COMMAND..."
    )
    parser.add_argument("name", help="the process's name in messages, e.g. worker")
    parser.add_argument("--max-restarts", type=int, default=5, help="restarts allowed within the window")
    parser.add_argument("--window", type=float, default=600.0, help="seconds over which restarts are counted")
    parser.add_argument("--pause-max", type=float, default=30.0, help="longest pause before a restart, seconds")
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("give the command to run after --")
    split = argv.index("--")
    arguments, command = parser.parse_args(argv[:split]), argv[split + 1 :]
    return supervise(
        arguments.name,
        command,
        max_restarts=arguments.max_restarts,
        window=arguments.window,
        pause_max=arguments.pause_max,
    )


if __name__ == "__main__":
    sys.exit(main())
