"""gunicorn.conf.py pauses CPython's cyclic collector around batch requests, gives it back as it found
it, and gunicorn really loads the file from the repository root."""

import gc
import importlib.util
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
BATCH = "/api/v1/decisions/batch"


def _hooks():
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _hooks()


@pytest.fixture(autouse=True)
def _collector_on():
    gc.enable()
    yield
    gc.enable()


def request(path: str = BATCH) -> SimpleNamespace:
    return SimpleNamespace(path=path)


def test_the_collector_is_off_for_a_batch_request_and_back_on_after():
    batch = request()
    hooks.pre_request(None, batch)
    assert not gc.isenabled()
    hooks.post_request(None, batch, {}, None)
    assert gc.isenabled()


def test_other_requests_leave_the_collector_alone():
    single = request("/api/v1/decisions")
    hooks.pre_request(None, single)
    assert gc.isenabled()
    hooks.post_request(None, single, {}, None)
    assert gc.isenabled()


def test_a_collector_someone_else_turned_off_stays_off():
    gc.disable()
    batch = request()
    hooks.pre_request(None, batch)
    hooks.post_request(None, batch, {}, None)
    assert not gc.isenabled()


def test_threads_share_it_and_the_last_one_out_resumes_it():
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        other = request()
        hooks.pre_request(None, other)
        inside.set()
        release.wait(10)
        hooks.post_request(None, other, {}, None)

    thread = threading.Thread(target=hold)
    thread.start()
    assert inside.wait(10)
    mine = request()
    hooks.pre_request(None, mine)
    hooks.post_request(None, mine, {}, None)
    assert not gc.isenabled()  # the other thread is still inside
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_gunicorn_loads_the_hooks_from_the_repository_root():
    printed = subprocess.run(
        [str(Path(sys.executable).parent / "gunicorn"), "--print-config", "exceptions_app.wsgi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    hook_lines = [line for line in printed.splitlines() if line.startswith(("pre_request", "post_request"))]
    assert len(hook_lines) == 2, printed[-2000:]
    # gunicorn's defaults are methods of its setting classes (PreRequest.pre_request); ours are plain functions.
    assert all(line.endswith(("= <pre_request()>", "= <post_request()>")) for line in hook_lines), hook_lines


def test_the_asgi_servings_threads_pause_it_for_a_batch_too():
    from exceptions_app.gc_tuning import collector_paused_for_batches

    seen = {}

    def app(environ, start_response):
        seen[environ["PATH_INFO"]] = gc.isenabled()
        return [b""]

    wrapped = collector_paused_for_batches(app)
    wrapped({"PATH_INFO": BATCH}, None)
    wrapped({"PATH_INFO": "/api/v1/decisions"}, None)

    assert seen == {BATCH: False, "/api/v1/decisions": True}
    assert gc.isenabled()
