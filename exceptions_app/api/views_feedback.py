"""Resolutions back to agents that pull, and dead letters for supervisors."""

import time

from drf_spectacular.utils import extend_schema
from rest_framework import serializers as drf
from rest_framework.response import Response
from rest_framework.views import APIView

from exceptions_app.api import serializers
from exceptions_app.api.permissions import IsAgent, IsSupervisor, principal_of
from exceptions_app.models import Delivery, DeliveryStatus
from exceptions_app.services.deliveries import deliveries_redeliver
from exceptions_app.services.feed import feed_read

# Cursors are delivery ids, a bigint column: a larger number would reach PostgreSQL and fail there.
LARGEST_ID = 2**63 - 1


class FeedQuery(drf.Serializer):
    after = drf.IntegerField(min_value=0, max_value=LARGEST_ID, required=False)
    limit = drf.IntegerField(min_value=1, max_value=500, required=False, default=100)


class FeedOutput(drf.Serializer):
    cursor = drf.IntegerField()
    results = drf.ListField(child=drf.DictField())


class ResolutionFeedView(APIView):
    permission_classes = [IsAgent]

    @extend_schema(
        operation_id="resolution_feed",
        parameters=[FeedQuery],
        responses={200: FeedOutput, **serializers.ERROR_RESPONSES},
        summary="Ordered resolutions of your workflows; reading after=N acknowledges up to N",
    )
    def get(self, request):
        query = FeedQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        results, cursor = feed_read(
            principal=principal_of(request),
            after=query.validated_data.get("after"),
            limit=query.validated_data["limit"],
        )
        return Response({"cursor": cursor, "results": results})


def long_poll(read, *, wait_seconds: float, done) -> object:
    """Re-read until ``done(value)`` or the wait is over; the request thread sleeps between reads."""
    deadline = time.monotonic() + wait_seconds
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
        value = read()
    return value


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
