"""Sending one leased delivery to its target: a signed webhook, or a Celery task in the agent's
system. No database writes here: the attempts module records what happened."""

import json
import time
from datetime import datetime

import httpx
from django.conf import settings

from exceptions_app.delivery.retry import AttemptResult, classify
from exceptions_app.delivery.signing import signature_headers
from exceptions_app.delivery.url_guard import callback_url_check
from exceptions_app.errors import InvalidInput
from exceptions_app.models import Delivery, TargetKind, Workflow
from exceptions_app.services.local_cache import LocalCache
from exceptions_app.tracing import spans

_workflows_for_signing = LocalCache("signing-workflows")


def workflow_for_signing(workflow_id: int) -> Workflow:
    """The workflow's signing secrets, kept briefly per process (a rotation here clears them)."""
    return _workflows_for_signing.get_or_load(
        workflow_id,
        lambda: Workflow.objects.only(
            "id", "name", "webhook_secret", "previous_webhook_secret", "previous_secret_retires_at"
        ).get(pk=workflow_id),
    )


def _secrets(workflow: Workflow, now: datetime) -> list[str]:
    secrets = [workflow.webhook_secret]
    if (
        workflow.previous_webhook_secret
        and workflow.previous_secret_retires_at
        and (workflow.previous_secret_retires_at > now)
    ):
        secrets.append(workflow.previous_webhook_secret)
    return secrets


_http_client: httpx.Client | None = None


def _client() -> httpx.Client:
    global _http_client  # one pooled client per worker process, created after the fork
    if _http_client is None:
        _http_client = httpx.Client(follow_redirects=False, headers={"user-agent": "Tollgate-Webhooks/1"})
    return _http_client


def send_webhook(delivery: Delivery, now: datetime, trace_headers: dict[str, str]) -> AttemptResult:
    try:
        callback_url_check(delivery.target, field="target")
    except InvalidInput as error:
        return AttemptResult("terminal", error=error.message)
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True)
    headers = {
        "content-type": "application/json",
        **trace_headers,
        **signature_headers(message_id=delivery.public_id, body=body, secrets=_secrets(delivery.workflow, now)),
    }
    try:
        with _client().stream(
            "POST",
            delivery.target,
            content=body.encode(),
            headers=headers,
            timeout=settings.TOLLGATE_DELIVERY_TIMEOUT_SECONDS,
        ) as response:
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received >= settings.TOLLGATE_DELIVERY_RESPONSE_CAP_BYTES:
                    break  # the body is only read to free the connection; never trust its size
            return classify(response.status_code, response.headers.get("retry-after"))
    except httpx.HTTPError as error:
        return AttemptResult("retry", error=f"{type(error).__name__}: {error}"[:500])


def send_task(delivery: Delivery, trace_headers: dict[str, str]) -> AttemptResult:
    from exceptions_app.celery import app

    try:
        app.send_task(
            delivery.target,
            args=[delivery.payload],
            queue=delivery.target_queue or None,
            task_id=delivery.public_id,
            headers=trace_headers or None,
        )
    except Exception as error:  # any broker error is transient from our side
        return AttemptResult("retry", error=f"{type(error).__name__}: {error}"[:500])
    return AttemptResult("delivered")


def delivery_send(delivery: Delivery, started: datetime) -> tuple[AttemptResult, float]:
    """Send one leased delivery; the result and how long it took in milliseconds. The attempt's
    span (when tracing) is current while it sends, and its context travels in the headers."""
    clock = time.perf_counter()
    with spans.delivery_attempt_span(delivery, workflow=delivery.workflow.name) as span:
        if delivery.kind == TargetKind.WEBHOOK:
            result = send_webhook(delivery, started, span.headers())
        else:
            result = send_task(delivery, span.headers())
        span.attempted(outcome=result.outcome, status_code=result.status_code)
    return result, (time.perf_counter() - clock) * 1000
