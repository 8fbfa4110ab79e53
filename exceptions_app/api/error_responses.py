"""The one error shape (built by ``errors.error_body``) as OpenAPI components, and the error responses
every operation documents.

Each status gets its own description so a client reading the schema knows what it means here. The
set is the same for every operation: authentication (401), role and scope (403) and the rate limit
(429) apply to all of them, the body size limit (413) is enforced before routing, a 404 in this
shape also answers any path under /api/v1/ that no route matches, and any operation can meet an
outage (503) or an unexpected error (500), both in this shape (exceptions_app/outages.py).
"""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class FieldErrorOutput(serializers.Serializer):
    path = serializers.CharField(allow_blank=True, help_text="e.g. `output.amount` or `decisions[3].confidence`")
    message = serializers.CharField()
    rule = serializers.CharField(required=False, help_text="the policy rule at fault, for policy documents")


class ErrorDetailOutput(serializers.Serializer):
    status = serializers.IntegerField(help_text="the HTTP status, repeated")
    code = serializers.CharField(help_text="machine-readable, e.g. `validation_error`, `illegal_transition`")
    message = serializers.CharField(allow_blank=True)
    fields = FieldErrorOutput(many=True, help_text="one entry per invalid field; empty for other errors")
    correlation_id = serializers.CharField(
        required=False, help_text="on a 500 only: quote it when reporting; the server logged it with the traceback"
    )


class ErrorOutput(serializers.Serializer):
    error = ErrorDetailOutput()


_MEANINGS = {
    400: "Invalid input: the body is not JSON, or a field or parameter is wrong (`fields` names each one).",
    401: "No token, or an invalid, expired or revoked one.",
    403: "The token's role or scope does not allow this operation or this workflow.",
    404: "No such item, queue or workflow visible to this token, or no such endpoint.",
    409: "The item's state does not allow this (e.g. resolving an item someone else claimed).",
    413: "The body is larger than the server accepts (TOLLGATE_MAX_BODY_BYTES).",
    429: "This token's rate limit is spent for the current minute; `Retry-After` says when to retry.",
    500: "An unexpected error; `correlation_id` matches the server's log entry.",
    503: "The database or the broker cannot be reached (`database_unavailable`, `broker_unavailable`); retry "
    "after `Retry-After` seconds with the same `Idempotency-Key`.",
}

ERROR_RESPONSES = {status: OpenApiResponse(ErrorOutput, description=text) for status, text in _MEANINGS.items()}
