"""Liveness and readiness probes for load balancers and docker-compose."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from exceptions_app.pipeline import broker_connection, pipeline_state


@require_GET
@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


def _database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, "ok"
    except Exception as error:  # any driver error means not ready
        return False, type(error).__name__


def _broker_ok() -> tuple[bool, str]:
    try:
        with broker_connection() as broker:
            broker.ensure_connection(max_retries=1, timeout=2)
        return True, "ok"
    except Exception as error:  # any transport error means not ready
        return False, type(error).__name__


@require_GET
@never_cache
def readyz(request):
    """This process can serve: its database and broker answer. With ``?deep=1``, also whether the
    background pipeline flows (every Celery queue has a consumer, nothing is stuck): a check for
    monitoring, not for a load balancer, which must not take web out for a missing worker."""
    database_ok, database_state = _database_ok()
    broker_ok, broker_state = _broker_ok()
    ready = database_ok and broker_ok
    body: dict = {"status": "ready" if ready else "unavailable", "database": database_state, "broker": broker_state}
    if request.GET.get("deep") in ("1", "true", "yes") and ready:
        state = pipeline_state()
        body["pipeline"] = {
            "problems": state.problems,
            "consumers": {queue.name: queue.consumers for queue in state.queues},
            "outbox_pending": state.outbox_pending,
            "outbox_oldest_age_seconds": round(state.outbox_oldest_age_seconds, 1),
        }
        if not state.ok:
            ready = False
            body["status"] = "pipeline stalled"
    return JsonResponse(body, status=200 if ready else 503)
