"""The agents' API: submit outputs to the gate, report exceptions, read and cancel items."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from exceptions_app.api import serializers
from exceptions_app.api.errors import error_body, flatten_field_errors
from exceptions_app.api.permissions import IsAgent, IsAgentOrPerson, principal_of
from exceptions_app.api.presenters import decision_present, item_present, item_present_to, resolutions_hidden_from
from exceptions_app.api.views_operators import ExceptionListView
from exceptions_app.errors import DomainError, InvalidInput
from exceptions_app.models import Role
from exceptions_app.selectors import item_consensus, item_visible_check, item_visible_get
from exceptions_app.services.intake import (
    DecisionRequest,
    ReportRequest,
    decision_submit,
    decisions_submit_batch,
    exception_report,
)
from exceptions_app.services.items import item_cancel
from exceptions_app.waits.hub import item_key
from exceptions_app.waits.views import NotYet, WaitFor

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 200},
    OpenApiParameter.HEADER,
    description="Retries with the same key return the first result.",
)
ERRORS = serializers.ERROR_RESPONSES
# Waiting costs no thread under the ASGI server, so an agent may wait five minutes per request.
MAX_WAIT_SECONDS = 300


def _idempotency_key(request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 200:
        raise InvalidInput(
            "Idempotency-Key must be 1 to 200 characters",
            fields=[{"path": "Idempotency-Key", "message": "must be 1 to 200 characters"}],
        )
    if not key.isprintable():
        # NUL and other control characters cannot be stored (PostgreSQL text refuses NUL).
        raise InvalidInput(
            "Idempotency-Key holds a control character",
            fields=[{"path": "Idempotency-Key", "message": "must be printable characters only"}],
        )
    return key


def _idempotent_request(request, input_serializer, request_class):
    """The body, validated, as the service's request, with the Idempotency-Key header (checked first)."""
    key = _idempotency_key(request)
    data = input_serializer(data=request.data)
    data.is_valid(raise_exception=True)
    return request_class(**data.validated_data, idempotency_key=key)


def _answer(body: dict, *, replayed: bool, status: int = 200) -> Response:
    """A submission's answer; a replay of an earlier one says so in a header."""
    response = Response(body, status=status)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


class DecisionCreateView(APIView):
    permission_classes = [IsAgent]

    @extend_schema(
        operation_id="decision_submit",
        request=serializers.DecisionInput,
        responses={200: serializers.DecisionOutput, **ERRORS},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Submit one AI output to the gate",
    )
    def post(self, request):
        submitted = _idempotent_request(request, serializers.DecisionInput, DecisionRequest)
        principal = principal_of(request)
        outcome = decision_submit(principal=principal, request=submitted)
        return _answer(decision_present(outcome.decision, outcome.item, shown_to=principal), replayed=outcome.replayed)


class DecisionBatchView(APIView):
    permission_classes = [IsAgent]

    @extend_schema(
        operation_id="decision_submit_batch",
        request=serializers.BatchInput,
        responses={200: serializers.BatchOutput, **ERRORS},
        summary="Submit up to 1,000 outputs; each entry succeeds or fails alone",
    )
    def post(self, request):
        # gunicorn.conf.py pauses the garbage collector around this request (the why is there).
        body = serializers.BatchInput(data=request.data)
        body.is_valid(raise_exception=True)
        entries: list = []
        # One validation for every entry: building a serializer per entry (its fields are deep-copied
        # each time) cost more than evaluating the entries.
        validation = serializers.BatchEntryValidation()
        for raw in body.validated_data["decisions"]:
            try:
                entries.append(DecisionRequest(**validation.validate(raw)))
            except drf_serializers.ValidationError as error:
                fields = flatten_field_errors(error.detail)
                message = "; ".join(f"{field['path']}: {field['message']}" for field in fields[:5])
                entries.append(InvalidInput(message, fields=fields))
        principal = principal_of(request)
        outcomes = decisions_submit_batch(principal=principal, requests=entries)
        results = []
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, DomainError):
                error = error_body(outcome.status_code, outcome.code, outcome.message, outcome.fields)["error"]
                results.append({"index": index, "error": error})
            else:
                results.append({"index": index, **decision_present(outcome.decision, outcome.item, shown_to=principal)})
        failed = sum(1 for result in results if "error" in result)
        return Response({"recorded": len(results) - failed, "failed": failed, "results": results})


class ExceptionCollectionView(ExceptionListView):
    def get_permissions(self):
        return [IsAgent()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema(
        operation_id="exception_report",
        request=serializers.ReportInput,
        responses={201: serializers.ExceptionItemOutput, 200: serializers.ExceptionItemOutput, **ERRORS},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Report an exception directly (a failure past its retry budget, a conflicting signal)",
    )
    def post(self, request):
        submitted = _idempotent_request(request, serializers.ReportInput, ReportRequest)
        principal = principal_of(request)
        outcome = exception_report(principal=principal, request=submitted)
        shown = item_present_to(principal, outcome.item)
        return _answer(shown, replayed=outcome.replayed, status=200 if outcome.replayed else 201)


class ExceptionDetailView(APIView):
    permission_classes = [IsAgentOrPerson]

    @extend_schema(
        operation_id="exception_get",
        parameters=[
            OpenApiParameter(
                "wait",
                {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_SECONDS, "default": 0},
                description="wait up to this many seconds until the item is resolved, cancelled or expired",
            )
        ],
        responses={200: serializers.ExceptionItemOutput, **ERRORS},
        summary="An exception item: status, and its resolution when there is one",
    )
    def get(self, request, item_id: int):
        principal = principal_of(request)
        wait = WaitQuery(data=request.query_params)
        wait.is_valid(raise_exception=True)
        seconds = wait.validated_data["wait"]

        def reread(final: bool) -> Response | NotYet | None:
            current = item_visible_get(principal=principal, item_id=item_id)
            hidden_until = resolutions_hidden_from(principal, [current]).get(item_id)
            if final or (current.is_terminal and hidden_until is None):
                shown = item_present(current, captured=True, hidden_until=hidden_until)
                if principal.role != Role.AGENT:  # a person working it sees where its votes stand
                    shown["consensus"] = item_consensus(current)
                return Response(shown)
            if hidden_until is not None:  # decided, and may still be undone: look again when it stands
                return NotYet.until(hidden_until)
            return None

        answer = reread(final=not seconds)
        if isinstance(answer, Response):
            return answer
        return WaitFor(view=self, keys=[item_key(item_id)], timeout=seconds, reread=reread)


class WaitQuery(drf_serializers.Serializer):
    wait = drf_serializers.IntegerField(min_value=0, max_value=MAX_WAIT_SECONDS, required=False, default=0)


class CancelInput(drf_serializers.Serializer):
    reason = drf_serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ExceptionCancelView(APIView):
    permission_classes = [IsAgent]

    @extend_schema(
        operation_id="exception_cancel",
        request=CancelInput,
        responses={200: serializers.ExceptionItemOutput, **ERRORS},
        summary="Withdraw an item that is not yet resolved",
    )
    def post(self, request, item_id: int):
        principal = principal_of(request)
        data = CancelInput(data=request.data)
        data.is_valid(raise_exception=True)
        item_visible_check(principal=principal, item_id=item_id)
        item_cancel(item_id=item_id, actor=principal.user, reason=data.validated_data["reason"])
        return Response(item_present_to(principal, item_visible_get(principal=principal, item_id=item_id)))
