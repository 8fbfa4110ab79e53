"""Resolutions back to agents that pull, and dead letters for supervisors."""

import orjson
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers as drf
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from exceptions_app.api import serializers
from exceptions_app.api.permissions import IsAgent, IsSupervisor, principal_of
from exceptions_app.models import Delivery, DeliveryStatus
from exceptions_app.rules import LARGEST_ID
from exceptions_app.services.deliveries import deliveries_redeliver
from exceptions_app.services.feed import VISIBILITY_LAG, feed_read
from exceptions_app.waits.hub import workflow_key
from exceptions_app.waits.views import NotYet, StreamFrom, WaitFor


class FeedQuery(drf.Serializer):
    after = drf.IntegerField(min_value=0, max_value=LARGEST_ID, required=False)
    limit = drf.IntegerField(min_value=1, max_value=500, required=False, default=100)
    wait = drf.IntegerField(min_value=0, max_value=300, required=False, default=0)


class FeedOutput(drf.Serializer):
    cursor = drf.IntegerField()
    results = drf.ListField(child=drf.DictField())


# A wake-up for a resolution the feed still holds back is read again once it may be shown.
RECHECK_SECONDS = VISIBILITY_LAG.total_seconds() + 0.05


def _feed_keys(principal) -> list[str]:
    return [workflow_key(workflow_id) for workflow_id in principal.workflows.values_list("pk", flat=True)]


class ResolutionFeedView(APIView):
    permission_classes = [IsAgent]

    @extend_schema(
        operation_id="resolution_feed",
        parameters=[FeedQuery],
        responses={200: FeedOutput, **serializers.ERROR_RESPONSES},
        summary="Ordered resolutions of your workflows; reading after=N acknowledges up to N; "
        "wait=N answers as soon as there is one, or after N seconds",
    )
    def get(self, request):
        query = FeedQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        principal = principal_of(request)
        options = query.validated_data

        def read(final: bool = True) -> Response | NotYet | None:
            page = feed_read(principal=principal, after=options.get("after"), limit=options["limit"])
            if page.entries or final:
                return Response({"cursor": page.cursor, "results": page.entries})
            return _not_yet(page)

        if not options["wait"]:
            return read()
        answer = read(final=False)
        if isinstance(answer, Response):
            return answer
        keys = _feed_keys(principal)
        return WaitFor(view=self, keys=keys, timeout=options["wait"], reread=read, recheck_after=RECHECK_SECONDS)


LAST_EVENT_ID = OpenApiParameter(
    "Last-Event-ID",
    {"type": "integer", "minimum": 0},
    OpenApiParameter.HEADER,
    description="Resume after this cursor (browsers' EventSource and SSE clients send it when they reconnect).",
)


class StreamQuery(drf.Serializer):
    after = drf.IntegerField(min_value=0, max_value=LARGEST_ID, required=False)


class EventStreamRenderer(JSONRenderer):
    """Lets a client that accepts only ``text/event-stream`` (as SSE clients do) reach the stream;
    an error answer is still the API's JSON error body."""

    media_type = "text/event-stream"
    format = "event-stream"


class ResolutionStreamView(APIView):
    permission_classes = [IsAgent]
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(
        operation_id="resolution_stream",
        parameters=[StreamQuery, LAST_EVENT_ID],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR,
                description="Server-Sent Events: `event: resolution`, `id:` the feed cursor, `data:` the "
                "resolution as in the feed; a `: heartbeat` comment when nothing happened for a while.",
            ),
            **serializers.ERROR_RESPONSES,
        },
        summary="Every resolution of your workflows as Server-Sent Events, resuming from Last-Event-ID",
    )
    def get(self, request):
        query = StreamQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        principal = principal_of(request)
        position = _last_event_id(request)
        if position is None:
            position = query.validated_data.get("after")

        def next_events() -> list[str] | NotYet:
            nonlocal position
            page = feed_read(principal=principal, after=position, limit=100)
            position = page.cursor
            if not page.entries:
                return _not_yet(page) or []
            return [
                f"id: {entry['cursor']}\nevent: resolution\ndata: {orjson.dumps(entry).decode()}\n\n"
                for entry in page.entries
            ]

        return StreamFrom(view=self, keys=_feed_keys(principal), next_events=next_events, recheck_after=RECHECK_SECONDS)


def _not_yet(page) -> NotYet | None:
    """A page that stops before a decision still in its undo window is read again when it stands."""
    if page.held_until is None:
        return None
    return NotYet.until(page.held_until)


def _last_event_id(request) -> int | None:
    raw = request.headers.get("Last-Event-ID")
    if raw is None or not raw.strip():
        return None
    value = StreamQuery(data={"after": raw.strip()})
    if not value.is_valid():
        raise drf.ValidationError({"Last-Event-ID": value.errors["after"]})
    return value.validated_data["after"]


class DeliveryQuery(drf.Serializer):
    status = drf.ChoiceField(choices=DeliveryStatus.choices, required=False, default=DeliveryStatus.DEAD)
    limit = drf.IntegerField(min_value=1, max_value=500, required=False, default=100)


class AttemptOutput(drf.Serializer):
    number = drf.IntegerField()
    started_at = drf.DateTimeField()
    duration_ms = drf.FloatField()
    status_code = drf.IntegerField(allow_null=True)
    error = drf.CharField(allow_blank=True)
    outcome = drf.CharField()


class DeliveryOutput(drf.Serializer):
    delivery_id = drf.CharField(source="public_id")
    workflow = drf.CharField(source="workflow.name")
    item_id = drf.IntegerField(allow_null=True)
    kind = drf.CharField()
    target = drf.CharField()
    status = drf.CharField()
    attempts = drf.IntegerField()
    last_error = drf.CharField(allow_blank=True)
    created_at = drf.DateTimeField()
    dead_at = drf.DateTimeField(allow_null=True)
    attempt_log = AttemptOutput(many=True)


class DeliveryListView(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(
        operation_id="delivery_list",
        parameters=[DeliveryQuery],
        responses={200: DeliveryOutput(many=True), **serializers.ERROR_RESPONSES},
    )
    def get(self, request):
        query = DeliveryQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = (
            Delivery.objects.filter(status=query.validated_data["status"])
            .select_related("workflow")
            .prefetch_related("attempt_log")
            .order_by("-id")[: query.validated_data["limit"]]
        )
        return Response(DeliveryOutput(rows, many=True).data)


class RedeliverInput(drf.Serializer):
    delivery_ids = drf.ListField(child=drf.CharField(min_length=1, max_length=40), min_length=1, max_length=1000)


class RedeliverOutput(drf.Serializer):
    requeued = drf.IntegerField()


class DeliveryRedeliverView(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(
        operation_id="delivery_redeliver",
        request=RedeliverInput,
        responses={200: RedeliverOutput, **serializers.ERROR_RESPONSES},
        summary="Put dead-lettered deliveries back in the outbox (audited)",
    )
    def post(self, request):
        data = RedeliverInput(data=request.data)
        data.is_valid(raise_exception=True)
        count = deliveries_redeliver(delivery_ids=data.validated_data["delivery_ids"], actor=request.user)
        return Response({"requeued": count})
