"""Waiting agents against the real server process (gunicorn with uvicorn workers, exceptions_app.asgi):
hundreds of concurrent waits cost no thread, wake on the database's notification, and each waiter
gets its resolution exactly once, while intake keeps answering."""

import asyncio
import json
import threading
import time

import httpx
import pytest
from django.db import connection

from exceptions_app.client import TollgateClient
from exceptions_app.services.items import item_cancel, item_claim, item_resolve
from exceptions_app.services.sweeps import items_expire
from exceptions_app.services.tokens import principal_ensure, token_create
from tests.fixtures.gate import BILLING, client_for, decision_body
from tests.fixtures.loops import run_in_new_loop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

ITEM_WAITERS = 200
FEED_AGENTS = 15
STREAM_AGENTS = 15


def _token(name: str) -> str:
    return token_create(principal=principal_ensure(name=name, role="agent", workflows=[BILLING]))[1]


def _hold_many(agent_client, count: int) -> list[int]:
    entries = [{**decision_body(confidence=0.5), "idempotency_key": f"wait-{n}"} for n in range(count)]
    results = agent_client.post("/api/v1/decisions/batch", {"decisions": entries}, format="json").json()["results"]
    return [result["exception"]["id"] for result in results]


def _resolve_all(operator_client, item_ids: list[int]) -> None:
    """The operator claims and approves each item (the services the API calls; quicker in bulk)."""
    try:
        for item_id in item_ids:
            item_claim(item_id=item_id, principal=operator_client.principal)
            item_resolve(item_id=item_id, principal=operator_client.principal, action="approve")
    finally:
        connection.close()


async def _get(http: httpx.AsyncClient, path: str, **options) -> httpx.Response:
    """A GET that asks again once if the server closed the kept-alive connection as it was reused
    (a race every HTTP client meets; TollgateClient retries it too)."""
    try:
        return await http.get(path, **options)
    except httpx.RemoteProtocolError:
        return await http.get(path, **options)


async def _wait_on_item(http: httpx.AsyncClient, token: str, item_id: int) -> dict:
    headers = {"authorization": f"Bearer {token}"}
    while True:
        response = await _get(http, f"/api/v1/exceptions/{item_id}", params={"wait": 60}, headers=headers, timeout=70)
        assert response.status_code == 200, response.text
        if response.json()["status"] == "resolved":
            return response.json()


async def _follow_feed(http: httpx.AsyncClient, token: str, expected: int) -> list[int]:
    headers, seen, after = {"authorization": f"Bearer {token}"}, [], 0
    while len(seen) < expected:
        response = await _get(
            http, "/api/v1/resolutions", params={"after": after, "wait": 60, "limit": 500}, headers=headers, timeout=70
        )
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [entry["item_id"] for entry in page["results"]]
        after = page["cursor"]
    return seen


async def _follow_stream(http: httpx.AsyncClient, token: str, expected: int) -> list[int]:
    seen: list[int] = []
    headers = {"authorization": f"Bearer {token}"}
    async with http.stream("GET", "/api/v1/resolutions/stream", headers=headers, timeout=70) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event: dict = {}
        async for line in response.aiter_lines():
            if line.startswith(("event:", "id:", "data:")):
                field, _, value = line.partition(":")
                event[field] = value.strip()
            elif not line and event:
                if event.get("event") == "resolution":
                    seen.append(json.loads(event["data"])["item_id"])
                    if len(seen) >= expected:
                        return seen
                event = {}
    return seen


@pytest.mark.timeout(400)
def test_hundreds_of_waiters_each_get_their_resolution_once_while_intake_answers(
    asgi_server_factory, agent_client, operator_client
):
    server = asgi_server_factory(TOLLGATE_WEB_THREADS="4")
    item_ids = _hold_many(agent_client, ITEM_WAITERS)
    waiter_token = _token("waiting-bot")
    feed_tokens = [_token(f"feed-bot-{n}") for n in range(FEED_AGENTS)]
    stream_tokens = [_token(f"stream-bot-{n}") for n in range(STREAM_AGENTS)]

    async def scenario():
        limits = httpx.Limits(max_connections=ITEM_WAITERS + FEED_AGENTS + STREAM_AGENTS + 20)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=70) as http:
            waits = [asyncio.create_task(_wait_on_item(http, waiter_token, item_id)) for item_id in item_ids]
            feeds = [asyncio.create_task(_follow_feed(http, token, ITEM_WAITERS)) for token in feed_tokens]
            streams = [asyncio.create_task(_follow_stream(http, token, ITEM_WAITERS)) for token in stream_tokens]
            await asyncio.sleep(3)  # every waiter is in
            assert not any(task.done() for task in waits + feeds + streams)

            # The gate answers while every waiter waits (with a thread per waiter it would not).
            latencies = []
            for n in range(20):
                started = time.monotonic()
                response = await http.post(
                    "/api/v1/decisions",
                    json=decision_body(confidence=0.99),
                    headers={"authorization": f"Bearer {waiter_token}", "idempotency-key": f"live-{n}"},
                )
                latencies.append(time.monotonic() - started)
                assert response.status_code == 200
            await asyncio.to_thread(_resolve_all, operator_client, item_ids)
            return (
                await asyncio.wait_for(asyncio.gather(*waits), 120),
                await asyncio.wait_for(asyncio.gather(*feeds), 120),
                await asyncio.wait_for(asyncio.gather(*streams), 120),
                latencies,
            )

    items, feeds, streams, latencies = run_in_new_loop(scenario())

    assert sorted(item["id"] for item in items) == sorted(item_ids)
    assert all(item["resolution"]["outcome"] == "approve" for item in items)
    for seen in feeds + streams:
        assert sorted(seen) == sorted(item_ids)  # every resolution, none twice
    assert max(latencies) < 2.0, latencies


def test_the_waiter_limit_answers_503_with_retry_after_and_dropped_waits_free_their_place(
    asgi_server_factory, agent_client
):
    server = asgi_server_factory(TOLLGATE_WAITERS_PER_PROCESS="3")
    token = _token("limited-bot")
    item_ids = _hold_many(agent_client, 4)
    headers = {"authorization": f"Bearer {token}"}

    async def scenario():
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
            waits = [
                asyncio.create_task(http.get(f"/api/v1/exceptions/{i}", params={"wait": 30})) for i in item_ids[:3]
            ]
            await asyncio.sleep(1.5)
            refused = await http.get(f"/api/v1/exceptions/{item_ids[3]}", params={"wait": 30})
            for task in waits:  # the agents go away mid-wait
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        await asyncio.sleep(1.0)
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
            again = await asyncio.gather(*(http.get(f"/api/v1/exceptions/{i}", params={"wait": 1}) for i in item_ids))
        return refused, again

    refused, again = run_in_new_loop(scenario())

    assert refused.status_code == 503
    assert refused.headers["retry-after"].isdigit()
    assert refused.json()["error"]["code"] == "too_many_waiters"
    # The dropped waits gave back their places: three waits fit again (the fourth may not).
    assert sorted(response.status_code for response in again)[:3] == [200, 200, 200]


def test_a_waiter_sees_cancel_and_expiry_and_cannot_wait_on_what_it_may_not_see(asgi_server_factory, agent_client):
    server = asgi_server_factory()
    cancelled, expired = _hold_many(agent_client, 2)
    token = _token("watching-bot")
    other = token_create(principal=principal_ensure(name="other-bot", role="agent", workflows=[]))[1]
    results: dict[str, httpx.Response] = {}

    def wait(name: str, item_id: int, bearer: str) -> None:
        results[name] = httpx.get(
            f"{server.url}/api/v1/exceptions/{item_id}",
            params={"wait": 30},
            headers={"authorization": f"Bearer {bearer}"},
            timeout=40,
        )

    threads = [
        threading.Thread(target=wait, args=("cancelled", cancelled, token)),
        threading.Thread(target=wait, args=("expired", expired, token)),
    ]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    wait("invisible", cancelled, other)
    invisible_after = time.monotonic() - started
    time.sleep(1)
    item_cancel(item_id=cancelled, actor=agent_client.principal.user, reason="no longer needed")
    from exceptions_app.models import ExceptionItem

    ExceptionItem.objects.filter(pk=expired).update(expires_at="2000-01-01T00:00:00Z")
    items_expire()
    for thread in threads:
        thread.join(timeout=20)

    assert results["invisible"].status_code == 404
    assert invisible_after < 5  # refused at once, not after the wait
    assert results["cancelled"].json()["status"] == "cancelled"
    assert results["expired"].json()["status"] == "expired"


def test_the_client_loses_no_resolution_across_a_server_restart(asgi_server_factory, agent_client, operator_client):
    server = asgi_server_factory()
    first, second, during, long_polled = _hold_many(agent_client, 4), [], [], []
    token = _token("restart-bot")
    received: list[dict] = []
    waited: dict = {}

    def follow() -> None:
        with TollgateClient(server.url, token) as tollgate:
            for resolution in tollgate.stream_resolutions(read_timeout=10):
                received.append(resolution)
                if len(received) >= 8:
                    return

    def long_poll(item_id: int) -> None:
        with TollgateClient(server.url, token) as tollgate:
            waited["item"] = tollgate.wait(item_id, timeout=60, poll_seconds=20)

    second = _hold_many(client_for("restart-agent", "agent", workflows=[BILLING]), 4)
    long_polled = second[-1]
    during = second[:3]
    follower = threading.Thread(target=follow)
    poller = threading.Thread(target=long_poll, args=(long_polled,))
    follower.start()
    poller.start()
    time.sleep(1)
    _resolve_all(operator_client, first)  # delivered on the stream
    time.sleep(2.5)
    server.kill()  # mid-stream and mid-wait
    _resolve_all(operator_client, during)  # resolved while the server is down
    server.start()
    _resolve_all(operator_client, [long_polled])
    follower.join(timeout=40)
    poller.join(timeout=40)

    assert sorted(entry["item_id"] for entry in received) == sorted(first + second)
    assert len({entry["delivery_id"] for entry in received}) == len(received)
    assert waited["item"]["status"] == "resolved"


def test_the_embedded_default_wakes_waiters_without_postgresql(tmp_path):
    import subprocess
    import sys

    from tests.fixtures.server import AsgiServer
    from tests.fixtures.workers import ROOT, child_environment

    environment = child_environment("", TOLLGATE_DATA_DIR=str(tmp_path), DEBUG="true")
    del environment["DATABASE_URL"]

    def manage(*arguments: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *arguments], cwd=ROOT, env=environment, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    manage("migrate", "--no-input", "-v", "0")
    manage("seed_demo")
    agent = manage("create_token", "sqlite-bot", "--role", "agent", "--workflows", BILLING).split()[-1]
    operator = manage("create_token", "sqlite-operator", "--role", "operator", "--teams", "finance").split()[-1]
    server = AsgiServer(None, TOLLGATE_DATA_DIR=str(tmp_path), DEBUG="true")
    server.start()
    try:
        as_agent = {"authorization": f"Bearer {agent}"}
        held = httpx.post(f"{server.url}/api/v1/decisions", json=decision_body(confidence=0.5), headers=as_agent)
        item_id = held.json()["exception"]["id"]
        answer: dict = {}
        waiter = threading.Thread(
            target=lambda: answer.update(
                response=httpx.get(
                    f"{server.url}/api/v1/exceptions/{item_id}", params={"wait": 30}, headers=as_agent, timeout=40
                )
            )
        )
        waiter.start()
        time.sleep(1)
        as_operator = {"authorization": f"Bearer {operator}"}
        assert httpx.post(f"{server.url}/api/v1/exceptions/{item_id}/claim", headers=as_operator).status_code == 200
        started = time.monotonic()
        resolved = httpx.post(
            f"{server.url}/api/v1/exceptions/{item_id}/resolve", json={"action": "approve"}, headers=as_operator
        )
        assert resolved.status_code == 200
        waiter.join(timeout=20)
        woken_after = time.monotonic() - started
    finally:
        server.stop()

    assert answer["response"].json()["status"] == "resolved"
    assert woken_after < 5
