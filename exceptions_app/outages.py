"""Outages and unexpected errors answer in the API's shape, never Django's HTML 500.

While the database or the broker cannot be reached, an API request that needs it gets a 503 in the
error shape with ``Retry-After``, and a console page a plain page saying what is unreachable. Any
other exception on an API path gets a 500 in the error shape with a correlation id, logged with the
traceback, so a report can be matched to the log.

Exceptions raised by a view reach ``process_exception``. One raised by another middleware (saving a
session when the database went away) has already become Django's 500 page by the time this
middleware sees the response; ``got_request_exception`` keeps the exception on the request so the
page can be replaced all the same.
"""

import logging
import sys
import uuid
from inspect import iscoroutinefunction

import kombu.exceptions
import redis.exceptions
from django import db
from django.core.signals import got_request_exception
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.decorators import sync_and_async_middleware

from exceptions_app.api.errors import error_body

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
_OUTAGES = (
    ("database", (db.OperationalError, db.InterfaceError)),
    ("broker", (kombu.exceptions.OperationalError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)),
)
_ANSWERED = "_tollgate_answered"


def outage_of(error: BaseException | None) -> str | None:
    """ "database" or "broker" when the error, or one it was raised from, says that part is unreachable."""
    seen = 0
    while error is not None and seen < 10:
        for part, kinds in _OUTAGES:
            if isinstance(error, kinds):
                return part
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _outage_response(request: HttpRequest, part: str) -> HttpResponse:
    if _is_api(request):
        response = JsonResponse(
            error_body(503, f"{part}_unavailable", f"the {part} cannot be reached; retry in {RETRY_AFTER_SECONDS} s"),
            status=503,
        )
    else:
        # No request context: the context processors would ask the database for the user.
        page = render_to_string("outage.html", {"part": part, "retry_after": RETRY_AFTER_SECONDS})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _internal_error_response(request: HttpRequest, error: BaseException | None) -> JsonResponse:
    correlation_id = uuid.uuid4().hex
    logger.error(
        "Unhandled error on %s %s; correlation id %s",
        request.method,
        request.path,
        correlation_id,
        exc_info=(type(error), error, error.__traceback__) if error is not None else None,
    )
    body = error_body(500, "internal_error", f"an unexpected error; quote correlation id {correlation_id}")
    body["error"]["correlation_id"] = correlation_id
    response = JsonResponse(body, status=500)
    response["X-Correlation-Id"] = correlation_id
    response._has_been_logged = True  # logged above, with the id: Django need not log it again
    return response


def _answer(request: HttpRequest, error: BaseException | None) -> HttpResponse | None:
    part = outage_of(error)
    if part:
        logger.warning("%s %s: the %s cannot be reached (%s)", request.method, request.path, part, error)
        response = _outage_response(request, part)
    elif _is_api(request):
        response = _internal_error_response(request, error)
    else:
        return None  # the console's own 500 page (or Django's debug page) for other errors
    setattr(response, _ANSWERED, True)
    return response


@receiver(got_request_exception)
def _keep_exception(sender, request: HttpRequest | None = None, **kwargs) -> None:
    error = sys.exc_info()[1]
    if request is not None and error is not None:
        request._tollgate_error = error


def _replace_error_page(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    if response.status_code < 500 or getattr(response, _ANSWERED, False):
        return response
    error = getattr(request, "_tollgate_error", None)
    if error is not None:
        return _answer(request, error) or response
    # Django's 500 page without a known exception (e.g. raised where the signal had none): still JSON.
    is_html = not response.get("Content-Type", "").startswith("application/json")
    if _is_api(request) and response.status_code == 500 and is_html:
        return _answer(request, None) or response
    return response  # a deliberate 5xx in its own shape (a 503 from /readyz)


@sync_and_async_middleware
def outage_middleware(get_response):
    if iscoroutinefunction(get_response):

        async def middleware(request):
            return _replace_error_page(request, await get_response(request))

    else:

        def middleware(request):
            return _replace_error_page(request, get_response(request))

    middleware.process_exception = _answer
    return middleware
