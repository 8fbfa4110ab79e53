"""Liveness and readiness probes for load balancers and docker-compose."""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection


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
        with Connection(
            settings.CELERY_BROKER_URL,
            transport=settings.CELERY_BROKER_TRANSPORT,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            connect_timeout=2,
        ) as broker:
            broker.ensure_connection(max_retries=1, timeout=2)
        return True, "ok"
    except Exception as error:  # any transport error means not ready
        return False, type(error).__name__


@require_GET
@never_cache
def readyz(request):
    database_ok, database_state = _database_ok()
    broker_ok, broker_state = _broker_ok()
    ready = database_ok and broker_ok
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "database": database_state, "broker": broker_state},
        status=200 if ready else 503,
    )
