"""One error shape for the whole API::

{"error": {"status": 400, "code": "validation_error", "message": "...",
           "fields": [{"path": "output.amount", "message": "..."}]}}
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from exceptions_app.errors import DomainError


def error_body(status_code: int, code: str, message: str, fields: list[dict] | None = None) -> dict:
    return {"error": {"status": status_code, "code": code, "message": message, "fields": fields or []}}


def body_too_large_body() -> dict:
    """The 413 answer to a body over TOLLGATE_MAX_BODY_BYTES, wherever it is refused (the ASGI edge for
    streamed bodies, the middleware for declared lengths, the parser's RequestDataTooBig)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error_body(
        413, "request_too_large", f"the request body is over the limit of {limit} bytes (TOLLGATE_MAX_BODY_BYTES)"
    )


def flatten_field_errors(detail, prefix: str = "") -> list[dict]:
    """DRF's nested error dicts and lists as ``[{"path": "entries[3].confidence", "message": ...}]``."""
    found = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == "non_field_errors":
                path = prefix
            elif isinstance(key, int):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            found += flatten_field_errors(value, path)
    elif isinstance(detail, list):
        if all(isinstance(entry, str) for entry in detail):
            found += [{"path": prefix, "message": str(entry)} for entry in detail]
        else:
            for index, entry in enumerate(detail):
                found += flatten_field_errors(entry, f"{prefix}[{index}]")
    else:
        found.append({"path": prefix, "message": str(detail)})
    return found


_CODES = {
    exceptions.ParseError: "malformed_json",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def api_exception_handler(error, context):
    if isinstance(error, DomainError):
        return Response(
            error_body(error.status_code, error.code, error.message, error.fields), status=error.status_code
        )
    if isinstance(error, RequestDataTooBig):
        return Response(body_too_large_body(), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    response = exception_handler(error, context)
    if response is None:
        return None
    if isinstance(error, exceptions.ValidationError):
        fields = flatten_field_errors(error.detail)
        message = "; ".join(f"{field['path'] or 'body'}: {field['message']}" for field in fields[:5])
        response.data = error_body(response.status_code, "validation_error", message, fields)
        return response
    code = next((code for kind, code in _CODES.items() if isinstance(error, kind)), "error")
    message = str(error.detail) if hasattr(error, "detail") else str(error)
    if isinstance(error, exceptions.ParseError):
        message = f"the body is not valid JSON: {message}"
    response.data = error_body(response.status_code, code, message)
    return response


@csrf_exempt  # nothing to protect: it only ever answers 404, and API clients send no CSRF token
def api_not_found(request) -> JsonResponse:
    """A path under /api/v1/ that no route matches (an id that is not a number, a queue name that is
    not a slug or holds a newline) gets the API's error shape, not Django's HTML 404 page."""
    return JsonResponse(error_body(404, "not_found", f"no API endpoint at {request.path}"), status=404)


class BodySizeLimitMiddleware:
    """413 before reading a body whose declared length is over the limit (Django alone says 400)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        length = request.META.get("CONTENT_LENGTH")
        if length and length.isdigit() and int(length) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return JsonResponse(body_too_large_body(), status=413)
        return self.get_response(request)
