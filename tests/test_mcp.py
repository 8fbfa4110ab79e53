"""The MCP server with the official SDK's clients (mcp.client.streamable_http and mcp.client.stdio)
against the real server process (gunicorn, uvicorn workers, exceptions_app.asgi, /mcp)."""

import asyncio
import os
import subprocess
import sys
import time

import httpx
import pytest
from django.db import connection
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from exceptions_app.models import ExceptionItem
from exceptions_app.services.items import item_claim, item_resolve
from exceptions_app.services.tokens import principal_ensure, token_create
from tests.fixtures.gate import BILLING, decision_body, invoice_output
from tests.fixtures.loops import run_in_new_loop
from tests.fixtures.workers import ROOT

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

TOOLS = {"request_review", "get_resolution", "report_exception", "list_workflows"}


def _token(name: str, workflows=(BILLING,), role: str = "agent") -> str:
    return token_create(principal=principal_ensure(name=name, role=role, workflows=list(workflows)))[1]


def _http_client(server, token: str) -> Client:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return Client(streamable_http_client(f"{server.url}/mcp", http_client=http))


def _review(correlation_id: str, confidence: float, wait_seconds: int, **changes) -> dict:
    body = decision_body(confidence=confidence, correlation_id=correlation_id, **changes)
    return {**body, "wait_seconds": wait_seconds}


def _item_id(correlation_id: str) -> int | None:
    try:
        return ExceptionItem.objects.filter(correlation_id=correlation_id).values_list("pk", flat=True).first()
    finally:
        connection.close()


def _resolve(operator, item_id: int, action: str, **changes) -> None:
    try:
        item_claim(item_id=item_id, principal=operator.principal)
        item_resolve(item_id=item_id, principal=operator.principal, action=action, **changes)
    finally:
        connection.close()


async def _held_then_resolved(client: Client, operator, correlation_id: str) -> tuple:
    """request_review on a held output; once it reports progress, the operator edits and approves it."""
    progress: list[tuple] = []
    waiting = asyncio.Event()

    async def on_progress(done, total, message) -> None:
        progress.append((done, total, message))
        waiting.set()

    started = time.monotonic()
    call = asyncio.create_task(
        client.call_tool("request_review", _review(correlation_id, 0.5, 60), progress_callback=on_progress)
    )
    await asyncio.wait_for(waiting.wait(), 20)
    item_id = await asyncio.to_thread(_item_id, correlation_id)
    edited = invoice_output(amount=99.0)
    await asyncio.to_thread(_resolve, operator, item_id, "modify", output=edited)
    result = await asyncio.wait_for(call, 30)
    return result, item_id, edited, progress, time.monotonic() - started


@pytest.mark.timeout(120)
def test_streamable_http_lists_tools_and_a_held_output_gets_the_final_output_after_review(
    asgi_server_factory, agent_client, operator_client
):
    server = asgi_server_factory()
    token = _token("mcp-bot")

    async def scenario():
        async with _http_client(server, token) as client:
            tools = await client.list_tools()
            held = await _held_then_resolved(client, operator_client, "mcp-held")
            return tools, held

    tools, (result, item_id, edited, progress, elapsed) = run_in_new_loop(scenario())

    assert {tool.name for tool in tools.tools} == TOOLS
    review = next(tool for tool in tools.tools if tool.name == "request_review")
    assert review.output_schema["properties"]["final_output"]
    assert review.input_schema["properties"]["confidence"]["maximum"] == 1.0
    assert not result.is_error, result.content
    answer = result.structured_content
    assert answer["verdict"] == "hold"
    assert answer["exception_id"] == item_id
    assert answer["final"] is True
    assert answer["status"] == "resolved"
    assert answer["resolution"]["outcome"] == "modify"
    assert answer["final_output"] == edited
    assert progress
    assert progress[0][1] == 60  # progress counts toward the wait asked for
    assert str(item_id) in progress[0][2]
    assert elapsed < 20  # woken by the resolution, not by the end of the wait


@pytest.mark.timeout(120)
def test_streamable_http_proceed_reject_timeout_then_get_resolution_report_and_workflows(
    asgi_server_factory, agent_client, operator_client
):
    server = asgi_server_factory()
    token = _token("mcp-bot-2")

    async def scenario():
        async with _http_client(server, token) as client:
            proceed = await client.call_tool("request_review", _review("mcp-proceed", 0.97, 30))
            reject = await client.call_tool("request_review", _review("mcp-reject", 0.05, 30))
            started = time.monotonic()
            timeout = await client.call_tool("request_review", _review("mcp-timeout", 0.5, 2))
            timed = time.monotonic() - started
            item_id = timeout.structured_content["exception_id"]
            pending = await client.call_tool("get_resolution", {"exception_id": item_id})
            await asyncio.to_thread(_resolve, operator_client, item_id, "approve")
            resolved = await client.call_tool("get_resolution", {"exception_id": item_id, "wait_seconds": 5})
            report = await client.call_tool(
                "report_exception",
                {"workflow": BILLING, "reason": "tool_failure", "message": "the ledger API keeps failing"},
            )
            workflows = await client.call_tool("list_workflows", {})
            return proceed, reject, timeout, timed, pending, resolved, report, workflows

    proceed, reject, timeout, timed, pending, resolved, report, workflows = run_in_new_loop(scenario())

    for result in (proceed, reject, timeout, pending, resolved, report, workflows):
        assert not result.is_error, result.content
    assert proceed.structured_content["verdict"] == "proceed"
    assert proceed.structured_content["final"] is True
    assert proceed.structured_content["final_output"] == decision_body()["output"]
    assert proceed.structured_content["exception_id"] is None
    assert reject.structured_content["verdict"] == "reject"
    assert reject.structured_content["final_output"] is None
    timed_out = timeout.structured_content
    assert timed_out["verdict"] == "hold"
    assert timed_out["final"] is False
    assert timed_out["status"] == "open"
    assert f"get_resolution(exception_id={timed_out['exception_id']})" in timed_out["message"]
    assert 1.5 < timed < 10
    assert pending.structured_content["final"] is False
    assert resolved.structured_content["final"] is True
    assert resolved.structured_content["resolution"]["outcome"] == "approve"
    assert resolved.structured_content["final_output"] == decision_body()["output"]
    assert report.structured_content["status"] == "open"
    assert ExceptionItem.objects.get(pk=report.structured_content["exception_id"]).kind == "reported"
    assert workflows.structured_content == {"workflows": [{"name": BILLING, "policy_version": 1}]}


@pytest.mark.timeout(120)
def test_streamable_http_refuses_other_workflows_bad_arguments_and_bad_tokens(asgi_server_factory, agent_client):
    server = asgi_server_factory()
    outsider = _token("outsider-bot", workflows=())
    insider = _token("insider-bot")
    operator = _token("olga-mcp", workflows=(), role="operator")
    supervisor = _token("sam-mcp", workflows=(), role="supervisor")

    async def scenario():
        async with _http_client(server, insider) as client:
            hold = await client.call_tool("request_review", _review("mcp-scope", 0.5, 0))
            bad = {
                "confidence": await client.call_tool("request_review", _review("x", 2.0, 0)),
                "missing": await client.call_tool("request_review", {"workflow": BILLING, "confidence": 0.5}),
                "wait": await client.call_tool("request_review", _review("x", 0.5, 301)),
                "long": await client.call_tool("request_review", _review("y" * 201, 0.5, 0)),
                "reason": await client.call_tool("report_exception", {"workflow": BILLING, "reason": "Not A Code"}),
                "unknown": await client.call_tool("request_review", _review("x", 0.5, 0, workflow="no.such")),
            }
        item_id = hold.structured_content["exception_id"]
        async with _http_client(server, outsider) as client:
            refused = await client.call_tool("request_review", _review("mcp-outsider", 0.5, 0))
            invisible = await client.call_tool("get_resolution", {"exception_id": item_id, "wait_seconds": 30})
            empty = await client.call_tool("list_workflows", {})
        return bad, refused, invisible, empty

    started = time.monotonic()
    bad, refused, invisible, empty = run_in_new_loop(scenario())
    elapsed = time.monotonic() - started
    texts = {name: result.content[0].text for name, result in bad.items()}

    assert all(result.is_error for result in bad.values()), texts
    assert "confidence" in texts["confidence"]
    assert "1" in texts["confidence"]
    assert "output" in texts["missing"]
    assert "required" in texts["missing"].lower()
    assert "wait_seconds" in texts["wait"]
    assert "300" in texts["wait"]
    assert "correlation_id" in texts["long"]
    assert "200" in texts["long"]
    assert "reason" in texts["reason"]
    assert "not_found" in texts["unknown"]
    assert "no.such" in texts["unknown"]
    assert refused.is_error
    assert "forbidden" in refused.content[0].text
    assert invisible.is_error
    assert "not_found" in invisible.content[0].text
    assert elapsed < 20  # the invisible item is refused at once, not after its wait
    assert empty.structured_content == {"workflows": []}
    assert ExceptionItem.objects.filter(correlation_id__in=["x", "mcp-outsider"]).count() == 0  # no partial writes

    for headers, status in (
        ({}, 401),
        ({"Authorization": "Bearer tg_not_a_token"}, 401),
        ({"Authorization": f"Bearer {operator}"}, 403),
        ({"Authorization": f"Bearer {supervisor}"}, 403),
    ):
        response = httpx.post(
            f"{server.url}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={**headers, "accept": "application/json, text/event-stream"},
        )
        assert response.status_code == status, response.text
        assert response.json()["error"]["status"] == status


@pytest.mark.timeout(120)
def test_stdio_console_script_lists_tools_and_waits_for_a_review(asgi_server_factory, agent_client, operator_client):
    server = asgi_server_factory()
    token = _token("stdio-bot")
    script = os.path.join(os.path.dirname(sys.executable), "tollgate-mcp")
    # The script needs no database or Django settings: only the URL and the token.
    environment = {"PATH": os.environ["PATH"], "TOLLGATE_TOKEN": token}
    parameters = StdioServerParameters(command=script, args=["--url", server.url], env=environment, cwd=str(ROOT))

    async def scenario():
        async with Client(stdio_client(parameters)) as client:
            tools = await client.list_tools()
            held = await _held_then_resolved(client, operator_client, "stdio-held")
            proceed = await client.call_tool("request_review", _review("stdio-proceed", 0.97, 5))
            bad = await client.call_tool("request_review", _review("stdio-bad", 7, 5))
            return tools, held, proceed, bad

    tools, (result, item_id, edited, progress, _elapsed), proceed, bad = run_in_new_loop(scenario())

    assert {tool.name for tool in tools.tools} == TOOLS
    assert not result.is_error, result.content
    assert result.structured_content["exception_id"] == item_id
    assert result.structured_content["final_output"] == edited
    assert progress  # forwarded from the server through the proxy
    assert proceed.structured_content["verdict"] == "proceed"
    assert bad.is_error
    assert "confidence" in bad.content[0].text

    # The documented example (docs/integrations/mcp.md) runs, over HTTP and through the script.
    for extra in ([], ["--stdio"]):
        example = subprocess.run(
            [sys.executable, "examples/mcp_agent.py", "--url", server.url, "--confidence", "0.97", *extra],
            cwd=ROOT,
            # As in an activated virtualenv: tollgate-mcp is on the PATH.
            env={"PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}", "TOLLGATE_TOKEN": token},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert example.returncode == 0, example.stderr
        assert "verdict: proceed" in example.stdout
        assert "acting on:" in example.stdout


@pytest.mark.timeout(180)
def test_waiting_tools_hold_no_thread_other_calls_answer_while_many_wait(
    asgi_server_factory, agent_client, operator_client
):
    """Two threads for the whole process, twenty tools waiting: the gate still answers at once."""
    server = asgi_server_factory(TOLLGATE_WEB_THREADS="2")
    token = _token("busy-bot")
    waiters = 20

    async def scenario():
        async with _http_client(server, token) as client:
            waiting = [asyncio.Event() for _ in range(waiters)]

            def reporter(event: asyncio.Event):
                async def on_progress(done, total, message) -> None:
                    event.set()

                return on_progress

            calls = [
                asyncio.create_task(
                    client.call_tool("request_review", _review(f"busy-{n}", 0.5, 90), progress_callback=reporter(event))
                )
                for n, event in enumerate(waiting)
            ]
            await asyncio.wait_for(asyncio.gather(*(event.wait() for event in waiting)), 60)
            started = time.monotonic()
            proceed = await client.call_tool("request_review", _review("busy-proceed", 0.97, 0))
            answered_in = time.monotonic() - started
            ids = [await asyncio.to_thread(_item_id, f"busy-{n}") for n in range(waiters)]
            for item_id in ids:
                await asyncio.to_thread(_resolve, operator_client, item_id, "approve")
            results = await asyncio.wait_for(asyncio.gather(*calls), 60)
            return proceed, answered_in, ids, results

    proceed, answered_in, ids, results = run_in_new_loop(scenario())

    assert proceed.structured_content["verdict"] == "proceed"
    assert answered_in < 3.0, answered_in
    assert sorted(result.structured_content["exception_id"] for result in results) == sorted(ids)
    assert all(result.structured_content["resolution"]["outcome"] == "approve" for result in results)
