"""A small Python client for agents.

    from exceptions_app.client import TollgateClient

    tollgate = TollgateClient("http://127.0.0.1:8000", token="tg_...")
    decision = tollgate.submit("billing.invoice_adjustment", output=proposal, confidence=0.82)
    if decision["verdict"] == "hold":
        item = tollgate.wait(decision["exception"]["id"])      # long-polls until a person decides
        proposal = item["resolution"]["final_output"]

    for resolution in tollgate.stream_resolutions():          # or: every resolution, on one connection
        ...

Each submit carries an idempotency key, so the client can retry a timeout or a 5xx safely: the
server answers a retry with the first result. Waiting survives dropped connections and server
restarts: ``wait`` asks again with backoff until its deadline, and ``stream_resolutions``
reconnects from the last event it yielded, so no resolution is lost or yielded twice. Receivers
of webhooks check signatures with ``verify_webhook``.
"""

import json
import random
import time
import uuid
from collections.abc import Iterable, Iterator

import httpx
from httpx_sse import connect_sse

from exceptions_app.delivery.signing import signature_verify

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
TERMINAL_STATUSES = frozenset({"resolved", "cancelled", "expired"})


class TollgateError(Exception):
    """An error answer from Tollgate, with its code and the fields it names."""

    def __init__(self, status: int, code: str, message: str, fields: list[dict] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.fields = status, code, message, fields or []


class TollgateClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0, retries: int = 3, http=None):
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self._http = http or httpx.Client(timeout=timeout, headers={"authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "TollgateClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, method: str, path: str, *, json=None, params=None, headers=None, timeout=None) -> dict | None:
        """Any API call, with the client's retries and error handling; the methods below use it."""
        last_error: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(
                    method,
                    self.base_url + path,
                    json=json,
                    params=params,
                    headers=headers,
                    timeout=timeout or self._http.timeout,
                )
            except httpx.TransportError as error:
                last_error = error
            else:
                if response.status_code not in RETRYABLE_STATUS or attempt == self.retries:
                    return self._answer(response)
                last_error = TollgateError(response.status_code, "retryable", response.text[:200])
                retry_after = response.headers.get("retry-after", "")
                if retry_after.isdigit():
                    time.sleep(min(float(retry_after), 30.0))
                    continue
            if attempt < self.retries:
                time.sleep(min(2.0**attempt * 0.2, 5.0))
        raise last_error  # type: ignore[misc]

    @staticmethod
    def _answer(response: httpx.Response) -> dict | None:
        if response.status_code == 204:
            return None
        body = response.json() if response.content else {}
        if response.is_success:
            return body
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise TollgateError(
            response.status_code,
            error.get("code", "error"),
            error.get("message", response.text[:200]),
            error.get("fields"),
        )

    def submit(self, workflow: str, *, output, confidence: float, idempotency_key: str | None = None, **state) -> dict:
        """Send one output to the gate; ``state`` may hold input, context, trace, correlation_id,
        callback_url, value_at_risk, model_version. Returns the verdict."""
        body = {"workflow": workflow, "output": output, "confidence": confidence, **state}
        key = idempotency_key or uuid.uuid4().hex
        return self.request("POST", "/api/v1/decisions", json=body, headers={"Idempotency-Key": key})

    def submit_batch(self, decisions: list[dict]) -> dict:
        entries = [{"idempotency_key": uuid.uuid4().hex, **entry} for entry in decisions]
        return self.request("POST", "/api/v1/decisions/batch", json={"decisions": entries})

    def report(self, workflow: str, *, reason: str, idempotency_key: str | None = None, **state) -> dict:
        """Report an exception directly (a failure past its retry budget, a conflicting signal)."""
        key = idempotency_key or uuid.uuid4().hex
        return self.request(
            "POST",
            "/api/v1/exceptions",
            json={"workflow": workflow, "reason": reason, **state},
            headers={"Idempotency-Key": key},
        )

    def get(self, item_id: int) -> dict:
        return self.request("GET", f"/api/v1/exceptions/{item_id}")

    def wait(self, item_id: int, *, timeout: float = 3600.0, poll_seconds: int = 300) -> dict:
        """Wait until the item is resolved, cancelled or expired, or ``timeout`` passes; returns the
        item. Each request waits up to ``poll_seconds`` on the server (which holds no thread for it);
        a dropped connection, a restarting server or a 503 is retried with backoff until the deadline."""
        deadline = time.monotonic() + timeout
        failures = 0
        while True:
            wait = max(0, min(poll_seconds, int(deadline - time.monotonic())))
            try:
                item = self._wait_once(item_id, wait)
            except (httpx.TransportError, _Retryable):
                failures += 1
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(_backoff(failures), max(0.0, deadline - time.monotonic())))
                continue
            failures = 0
            if item["status"] in TERMINAL_STATUSES or time.monotonic() >= deadline:
                return item

    def _wait_once(self, item_id: int, wait: int) -> dict:
        response = self._http.get(
            f"{self.base_url}/api/v1/exceptions/{item_id}", params={"wait": wait}, timeout=wait + 10
        )
        if response.status_code in RETRYABLE_STATUS:
            raise _Retryable(response.status_code, _retry_after(response))
        return self._answer(response)

    def cancel(self, item_id: int, *, reason: str = "") -> dict:
        return self.request("POST", f"/api/v1/exceptions/{item_id}/cancel", json={"reason": reason})

    def resolutions(self, *, after: int | None = None, limit: int = 100) -> tuple[list[dict], int]:
        """One page of the resolutions feed and the cursor to pass next (passing it acknowledges)."""
        params = {"limit": limit, **({"after": after} if after is not None else {})}
        page = self.request("GET", "/api/v1/resolutions", params=params)
        return page["results"], page["cursor"]

    def follow_resolutions(self, *, after: int | None = None, wait_seconds: int = 60) -> Iterator[dict]:
        """Every resolution, forever, acknowledging each page once the next one is asked for; each read
        waits on the server up to ``wait_seconds`` for something new."""
        while True:
            params = {"limit": 100, "wait": wait_seconds, **({"after": after} if after is not None else {})}
            page = self.request("GET", "/api/v1/resolutions", params=params, timeout=wait_seconds + 10)
            yield from page["results"]
            after = page["cursor"]

    def stream_resolutions(self, *, after: int | None = None, read_timeout: float = 60.0) -> Iterator[dict]:
        """Every resolution of the token's workflows as it happens, over one Server-Sent Events
        connection. Reconnects with backoff after a dropped connection or a server restart, resuming
        after the last resolution yielded (``Last-Event-ID``): none is lost, none is yielded twice.
        ``after`` starts after that cursor; without it, after what the feed last acknowledged. The
        server sends a heartbeat every 15 s, so ``read_timeout`` only fires on a dead connection."""
        for resolution in self._stream(after=after, read_timeout=read_timeout):
            if resolution is not None:
                yield resolution

    def _stream(self, *, after: int | None, read_timeout: float) -> Iterator[dict | None]:
        """Resolutions, and None at each heartbeat (so a caller can look at its clock)."""
        last = after
        failures = 0
        while True:
            headers = {"Last-Event-ID": str(last)} if last is not None else {}
            timeout = httpx.Timeout(10.0, read=read_timeout)
            try:
                with connect_sse(
                    self._http, "GET", f"{self.base_url}/api/v1/resolutions/stream", headers=headers, timeout=timeout
                ) as source:
                    if source.response.status_code in RETRYABLE_STATUS:
                        raise _Retryable(source.response.status_code, _retry_after(source.response))
                    if not source.response.is_success:
                        source.response.read()
                        self._answer(source.response)
                    for event in source.iter_sse():
                        failures = 0
                        if event.event != "resolution" or not event.id.isdigit():
                            yield None
                            continue
                        cursor = int(event.id)
                        if last is not None and cursor <= last:
                            continue
                        yield json.loads(event.data)
                        last = cursor
            except (httpx.TransportError, _Retryable) as error:
                failures += 1
                pause = error.retry_after if isinstance(error, _Retryable) and error.retry_after else None
                time.sleep(pause or _backoff(failures))
                continue
            # The server closed the stream cleanly (a restart): reconnect at once.
            failures += 1
            time.sleep(_backoff(failures))

    def wait_many(self, item_ids: Iterable[int], *, timeout: float = 3600.0) -> dict[int, dict]:
        """Wait for many held items on one stream; returns the resolutions (or expiries) that arrived
        by ``timeout``, keyed by item id. Starts from the stored feed cursor, so call it before (or
        soon after) the items are resolved and do not advance the feed elsewhere meanwhile."""
        waiting = set(item_ids)
        found: dict[int, dict] = {}
        deadline = time.monotonic() + timeout
        stream = self._stream(after=None, read_timeout=60.0)
        try:
            while waiting and time.monotonic() < deadline:
                resolution = next(stream)
                if resolution is not None and resolution.get("item_id") in waiting:
                    waiting.discard(resolution["item_id"])
                    found[resolution["item_id"]] = resolution
        finally:
            stream.close()
        return found


class _Retryable(Exception):
    def __init__(self, status: int, retry_after: float | None):
        super().__init__(f"retryable answer {status}")
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return min(float(value), 30.0) if value.isdigit() else None


def _backoff(failures: int) -> float:
    """Exponential backoff with full jitter, capped at 30 s."""
    return random.uniform(0, min(30.0, 0.25 * 2**failures))  # noqa: S311 - jitter, not security


def verify_webhook(secret: str, body: bytes | str, headers: dict) -> dict:
    """Check a delivery's Standard Webhooks signature and age; returns the payload or raises
    ``standardwebhooks.webhooks.WebhookVerificationError``. Deduplicate on ``headers["webhook-id"]``."""
    return signature_verify(secret=secret, body=body, headers=headers)
