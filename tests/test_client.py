"""The Python client for agents, against a live server over real HTTP."""

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection

from exceptions_app.client import TollgateClient, TollgateError, verify_webhook
from exceptions_app.delivery.signing import signature_headers
from exceptions_app.services.policies import webhook_secret_generate
from exceptions_app.services.tokens import principal_ensure, token_create
from tests.fixtures.gate import BILLING, invoice_output

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def agent_token(billing_workflow) -> str:
    return token_create(principal=principal_ensure(name="client-bot", role="agent", workflows=[BILLING]))[1]


def test_submit_then_wait_returns_the_operators_decision(live_server, agent_token, operator_client):
    with TollgateClient(live_server.url, agent_token) as tollgate:
        proceed = tollgate.submit(BILLING, output=invoice_output(), confidence=0.99)
        held = tollgate.submit(BILLING, output=invoice_output(amount=50.0), confidence=0.4, correlation_id="c-1")
        item_id = held["exception"]["id"]

        def operator_decides():
            time.sleep(0.5)
            operator_client.post(f"/api/v1/exceptions/{item_id}/claim")
            operator_client.post(
                f"/api/v1/exceptions/{item_id}/resolve",
                {"action": "modify", "output": invoice_output(amount=45.0)},
                format="json",
            )
            connection.close()

        thread = threading.Thread(target=operator_decides)
        thread.start()
        item = tollgate.wait(item_id, timeout=20, poll_seconds=5)
        thread.join()

    assert proceed["verdict"] == "proceed"
    assert held["verdict"] == "hold"
    assert item["status"] == "resolved"
    assert item["resolution"]["final_output"]["amount"] == 45.0


def test_errors_raise_with_code_and_fields(live_server, agent_token):
    with TollgateClient(live_server.url, agent_token) as tollgate, pytest.raises(TollgateError) as raised:
        tollgate.submit(BILLING, output=invoice_output(), confidence=7)

    assert (raised.value.status, raised.value.code) == (400, "validation_error")
    assert raised.value.fields[0]["path"] == "confidence"


def test_the_same_idempotency_key_gets_the_first_answer(live_server, agent_token):
    with TollgateClient(live_server.url, agent_token) as tollgate:
        first = tollgate.submit(BILLING, output=invoice_output(), confidence=0.4, idempotency_key="k1")
        again = tollgate.submit(BILLING, output=invoice_output(), confidence=0.4, idempotency_key="k1")

    assert again["decision_id"] == first["decision_id"]


def test_a_transient_failure_is_retried_with_the_same_idempotency_key():
    seen_keys: list[str] = []

    class FlakyOnce(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["content-length"]))
            seen_keys.append(self.headers["idempotency-key"])
            status, body = (503, b"{}") if len(seen_keys) == 1 else (200, json.dumps({"verdict": "proceed"}).encode())
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyOnce)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with TollgateClient(f"http://127.0.0.1:{server.server_address[1]}", "tg_x_y") as tollgate:
            answer = tollgate.submit(BILLING, output={}, confidence=0.5)
    finally:
        server.shutdown()

    assert answer == {"verdict": "proceed"}
    assert len(seen_keys) == 2
    assert seen_keys[0] == seen_keys[1]


def test_verify_webhook_accepts_a_signed_delivery_and_refuses_a_forged_one():
    secret = webhook_secret_generate()
    body = '{"item_id":3}'
    headers = signature_headers(message_id="msg_9", body=body, secrets=[secret])

    assert verify_webhook(secret, body, headers) == {"item_id": 3}
    with pytest.raises(Exception, match="signature"):
        verify_webhook(secret, '{"item_id":4}', headers)


def test_the_example_agent_runs_against_a_live_server(live_server, agent_token):
    result = subprocess.run(
        [
            sys.executable,
            "examples/agent.py",
            "--url",
            live_server.url,
            "--token",
            agent_token,
            "--count",
            "4",
            "--wait",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("INV-")]
    assert len(lines) == 4
    assert all(any(verdict in line for verdict in ("proceed", "hold", "reject")) for line in lines)
