"""The dashboard's figures as JSON for supervisors' own tools: /api/v1/stats/<table>."""

import functools
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers as drf
from rest_framework.response import Response
from rest_framework.views import APIView

from exceptions_app import stats
from exceptions_app.accountability.agreement_report import AGREEMENT_WINDOW, agreement_rows
from exceptions_app.api.permissions import IsSupervisor
from exceptions_app.api.serializers import ERROR_RESPONSES
from exceptions_app.models import Queue

WINDOW = timedelta(hours=24)


class StatsOutput(drf.Serializer):
    since = drf.DateTimeField()
    rows = drf.ListField(child=drf.DictField())


class _StatsView(APIView):
    permission_classes = [IsSupervisor]
    window = WINDOW

    def rows(self, since, now) -> list[dict]:
        raise NotImplementedError

    def get(self, request):
        now = timezone.now()
        since = now - self.window
        return Response({"since": since.isoformat(), "rows": self.rows(since, now)})


def _view(name: str, build, summary: str, window: timedelta = WINDOW):
    class View(_StatsView):
        def rows(self, since, now):
            return build(since, now)

        @extend_schema(operation_id=f"stats_{name}", responses={200: StatsOutput, **ERROR_RESPONSES}, summary=summary)
        def get(self, request):
            return super().get(request)

    View.window = window
    View.__name__ = f"Stats{name.title()}View"
    return View


QueueStatsView = _view(
    "queues",
    lambda since, now: stats.queue_table(queues=Queue.objects.all(), now=now),
    "Per queue: depth, ages, SLA breaches, flows, claimers; riskiest first",
)
WorkflowStatsView = _view(
    "workflows",
    lambda since, now: stats.workflow_rates(since=since),
    "Review and override rates per workflow and confidence band, last 24 hours",
)
LatencyStatsView = _view(
    "latency",
    lambda since, now: stats.latency_split(since=since),
    "Decision latency split into waiting, handling and delivery, last 24 hours",
)
OperatorStatsView = _view(
    "operators",
    lambda since, now: stats.operator_table(since=since),
    "Per operator: resolved, median handling time, current claims",
)


AgreementStatsView = _view(
    "agreement",
    lambda since, now: agreement_rows(since=since),
    "Blind-review agreement, last 90 days: per workflow (percent agreement, Fleiss' kappa) and per operator"
    " against the final decision (Cohen's kappa), with counts and 95% intervals",
    window=AGREEMENT_WINDOW,
)


class StatsIndexEntry(drf.Serializer):
    name = drf.CharField()
    url = drf.CharField()
    summary = drf.CharField()


class StatsIndexOutput(drf.Serializer):
    tables = StatsIndexEntry(many=True)


@functools.cache
def _summaries() -> dict[str, str]:
    """Each GET path's summary, from the OpenAPI schema: the one place every endpoint describes itself."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {path: operations.get("get", {}).get("summary", "") for path, operations in schema["paths"].items()}


class StatsIndexView(APIView):
    """What /api/v1/stats/ offers: every stats route, read from the URL configuration so none is missed."""

    permission_classes = [IsSupervisor]

    @extend_schema(
        operation_id="stats_index",
        responses={200: StatsIndexOutput, **ERROR_RESPONSES},
        summary="The stats tables: name, URL and what each holds",
    )
    def get(self, request):
        from exceptions_app.api import urls  # the URL module imports this one

        summaries = _summaries()
        tables = []
        for pattern in urls.urlpatterns:
            route = str(pattern.pattern)
            if route.startswith("stats/") and route != "stats/":
                url = reverse(pattern.name)
                tables.append({"name": route.removeprefix("stats/"), "url": url, "summary": summaries.get(url, "")})
        return Response({"tables": tables})
