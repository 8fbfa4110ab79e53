"""`make run`'s processes are supervised: one that dies is restarted with a message naming it, and
one that keeps dying stops everything with a message saying which and why."""

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def supervise(*arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "exceptions_app.supervise", *arguments],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(process: subprocess.Popen, needle: str, timeout: float = 20) -> str:
    seen, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
        if needle in line:
            return seen
    process.kill()
    raise AssertionError(f"{needle!r} never appeared:\n{seen}")


def test_a_process_that_dies_is_restarted_with_a_message_naming_it(tmp_path):
    marker = tmp_path / "started"
    # Dies with code 3 the first time; the second time runs until told to stop.
    script = (
        "import pathlib, sys, time\n"
        f"marker = pathlib.Path({str(marker)!r})\n"
        "first = not marker.exists()\n"
        "marker.write_text('x')\n"
        "print('child up', flush=True)\n"
        "sys.exit(3) if first else time.sleep(60)\n"
    )
    process = supervise("worker", "--pause-max", "0.2", "--", sys.executable, "-c", script)
    try:
        output = read_until(process, "restarting")
        assert "worker: exit code 3 after" in output
        read_until(process, "child up")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0  # asked to stop: no restart, clean exit
    finally:
        process.kill()


def test_a_process_killed_by_a_signal_is_named_and_restarted(tmp_path):
    script = "import os, signal; print('child up', flush=True); os.kill(os.getpid(), signal.SIGKILL)"
    process = supervise("beat", "--pause-max", "0.2", "--max-restarts", "50", "--", sys.executable, "-c", script)
    try:
        output = read_until(process, "restarting")
        assert "beat: killed by SIGKILL" in output
        read_until(process, "child up")
    finally:
        process.kill()
        process.wait()


def test_a_process_that_keeps_dying_stops_everything_with_the_reason():
    command = [sys.executable, "-c", "import sys; print('boom: broker unreachable', flush=True); sys.exit(1)"]
    process = supervise("agents", "--pause-max", "0.1", "--max-restarts", "2", "--window", "60", "--", *command)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 1
    assert output.count("boom: broker unreachable") == 3
    assert "agents: exit code 1" in output
    assert "died 3 times in 60 s, so stopping everything" in output
