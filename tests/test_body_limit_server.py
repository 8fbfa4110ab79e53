"""The body limit (TOLLGATE_MAX_BODY_BYTES) against the real server process (gunicorn, uvicorn workers,
exceptions_app.asgi): a body over it answers 413 in the API's error shape, naming the limit, before the body has
been read, whether its length is declared (Content-Length) or streamed (Transfer-Encoding: chunked)."""

import json
import socket

import httpx
import pytest

from exceptions_app.services.tokens import principal_ensure, token_create
from tests.fixtures.gate import BILLING, decision_body

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

LIMIT = 4096


@pytest.fixture
def server(asgi_server_factory, billing_workflow):
    return asgi_server_factory(TOLLGATE_MAX_BODY_BYTES=str(LIMIT))


@pytest.fixture
def token(billing_workflow) -> str:
    return token_create(principal=principal_ensure(name="streaming-bot", role="agent", workflows=[BILLING]))[1]


def _answer(sock: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of one HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        received = sock.recv(65536)
        assert received, f"the connection closed before an answer: {data!r}"
        data += received
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), json.loads(body)


def _request_head(server, token: str, framing: str) -> bytes:
    return (
        f"POST /api/v1/decisions/batch HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()


def _assert_too_large(status: int, body: dict) -> None:
    assert status == 413
    assert body["error"]["status"] == 413
    assert body["error"]["code"] == "request_too_large"
    assert str(LIMIT) in body["error"]["message"]
    assert "TOLLGATE_MAX_BODY_BYTES" in body["error"]["message"]


def test_a_declared_length_over_the_limit_answers_413_before_any_body_is_sent(server, token):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_request_head(server, token, f"Content-Length: {50 * 1024 * 1024}"))
        _assert_too_large(*_answer(sock))


def test_a_streamed_body_over_the_limit_answers_413_before_the_stream_ends(server, token):
    chunk = b'{"decisions": [' + b" " * 2500
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_request_head(server, token, "Transfer-Encoding: chunked"))
        for _ in range(2):  # past the limit, and the last chunk (size 0) never sent
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        _assert_too_large(*_answer(sock))


def test_a_streamed_body_under_the_limit_is_read_whole_and_decided(server, token):
    body = json.dumps({"decisions": [decision_body(confidence=0.5)]}).encode()
    assert len(body) < LIMIT

    def pieces():
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    response = httpx.post(
        f"{server.url}/api/v1/decisions/batch",
        content=pieces(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=10,
    )

    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 1
    assert response.json()["results"][0]["verdict"] == "hold"


def test_a_declared_length_under_the_limit_is_unaffected(server, token):
    response = httpx.post(
        f"{server.url}/api/v1/decisions",
        json=decision_body(confidence=0.97),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["verdict"] == "proceed"
