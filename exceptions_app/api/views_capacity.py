"""GET /api/v1/stats/capacity: per queue, arrivals against the team's capacity, when the SLA breaks
and how many people it needs, now or under a what-if (``scale``, ``operators``)."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers as drf
from rest_framework.response import Response
from rest_framework.views import APIView

from exceptions_app.api.permissions import IsSupervisor
from exceptions_app.api.serializers import ERROR_RESPONSES
from exceptions_app.capacity.query import CapacityQuery
from exceptions_app.capacity.report import capacity_report, report_json

NUMBER_OR_UNBOUNDED = 'A number, "unbounded" (the queue never catches up), or null (not measured yet).'


class WaitOutput(drf.Serializer):
    mean = drf.JSONField(help_text=NUMBER_OR_UNBOUNDED)
    p95 = drf.JSONField(help_text=NUMBER_OR_UNBOUNDED)


class QueueCapacityOutput(drf.Serializer):
    queue = drf.CharField()
    arrival_rate_per_hour = drf.FloatField()
    service_rate_per_operator_per_hour = drf.FloatField(allow_null=True)
    operators = drf.IntegerField()
    utilisation = drf.JSONField(help_text=NUMBER_OR_UNBOUNDED)
    predicted_wait_seconds = WaitOutput()
    sla_attainment = drf.FloatField(allow_null=True, help_text="Share of items resolved within the SLA, 0 to 1.")
    breach_eta_seconds = drf.JSONField(help_text="Seconds until an item is predicted to breach; null: none predicted.")
    drain_eta_seconds = drf.JSONField(help_text=NUMBER_OR_UNBOUNDED)
    operators_needed = drf.JSONField(help_text="Fewest operators for the target attainment; " + NUMBER_OR_UNBOUNDED)
    model = drf.DictField(
        child=drf.CharField(), help_text="Which model each figure comes from: erlang_c, simulation, fluid, measured."
    )


class CapacityOutput(drf.Serializer):
    scale = drf.FloatField()
    target_attainment = drf.FloatField()
    window_seconds = drf.IntegerField()
    headline = drf.CharField()
    breaks_first = drf.CharField(allow_null=True)
    queues = QueueCapacityOutput(many=True)


class CapacityView(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(
        operation_id="stats_capacity",
        parameters=[CapacityQuery],
        responses={200: CapacityOutput, **ERROR_RESPONSES},
        summary="Capacity per queue (Erlang C, simulation) and a what-if: arrivals times scale, operators per queue",
    )
    def get(self, request):
        query = CapacityQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        report = capacity_report(
            now=timezone.now(), scale=query.validated_data["scale"], operators=query.validated_data["operators"]
        )
        return Response(report_json(report))
