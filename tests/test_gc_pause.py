"""The batch endpoint pauses CPython's cyclic collector for its request, and gives it back as it found it."""

import gc
import threading

import pytest

from exceptions_app.gc_pause import collector_paused
from tests.fixtures.gate import decision_body


@pytest.fixture(autouse=True)
def _collector_on():
    gc.enable()
    yield
    gc.enable()


def test_the_collector_is_off_inside_and_back_on_after():
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_it_comes_back_after_an_error_too():
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_someone_else_turned_off_stays_off():
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_threads_share_it_and_the_last_one_out_resumes_it():
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with collector_paused():
            inside.set()
            release.wait(10)

    other = threading.Thread(target=hold)
    other.start()
    assert inside.wait(10)
    with collector_paused():
        pass
    assert not gc.isenabled()  # the other thread is still inside
    release.set()
    other.join(10)
    assert gc.isenabled()


def test_a_batch_request_leaves_the_collector_on(agent_client):
    response = agent_client.post("/api/v1/decisions/batch", {"decisions": [decision_body()]}, format="json")
    assert response.status_code == 200
    assert response.json()["recorded"] == 1
    assert gc.isenabled()
