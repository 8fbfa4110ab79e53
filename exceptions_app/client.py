"""A small Python client for agents.

    from exceptions_app.client import TollgateClient

    tollgate = TollgateClient("http://127.0.0.1:8000", token="tg_...")
    decision = tollgate.submit("billing.invoice_adjustment", output=proposal, confidence=0.82)
    if decision["verdict"] == "hold":
        item = tollgate.wait(decision["exception"]["id"])      # long-polls until a person decides
        proposal = item["resolution"]["final_output"]

Each submit carries an idempotency key, so the client can retry a timeout or a 5xx safely: the
server answers a retry with the first result. Receivers of webhooks check signatures with
``verify_webhook``.
"""

import time
import uuid
from collections.abc import Iterator

import httpx

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

    def wait(self, item_id: int, *, timeout: float = 3600.0, poll_seconds: int = 30) -> dict:
        """Long-poll until the item is resolved, cancelled or expired, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            wait = max(0, min(poll_seconds, int(deadline - time.monotonic())))
            item = self.request("GET", f"/api/v1/exceptions/{item_id}", params={"wait": wait}, timeout=wait + 10)
            if item["status"] in TERMINAL_STATUSES or time.monotonic() >= deadline:
                return item

    def cancel(self, item_id: int, *, reason: str = "") -> dict:
        return self.request("POST", f"/api/v1/exceptions/{item_id}/cancel", json={"reason": reason})

    def resolutions(self, *, after: int | None = None, limit: int = 100) -> tuple[list[dict], int]:
        """One page of the resolutions feed and the cursor to pass next (passing it acknowledges)."""
        params = {"limit": limit, **({"after": after} if after is not None else {})}
        page = self.request("GET", "/api/v1/resolutions", params=params)
        return page["results"], page["cursor"]

    def follow_resolutions(self, *, after: int | None = None, idle_seconds: float = 2.0) -> Iterator[dict]:
        """Every resolution, forever, acknowledging each page once the next one is asked for."""
        while True:
            results, after = self.resolutions(after=after)
            yield from results
            if not results:
                time.sleep(idle_seconds)


def verify_webhook(secret: str, body: bytes | str, headers: dict) -> dict:
    """Check a delivery's Standard Webhooks signature and age; returns the payload or raises
    ``standardwebhooks.webhooks.WebhookVerificationError``. Deduplicate on ``headers["webhook-id"]``."""
    return signature_verify(secret=secret, body=body, headers=headers)
