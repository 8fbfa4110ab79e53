"""Accountability of a workflow (what went through unattended, how wrong it was, what threshold the
data recommend) and the drift breaker's reset, for supervisors."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers as drf
from rest_framework.response import Response
from rest_framework.views import APIView

from exceptions_app.accountability.report import accountability_report
from exceptions_app.api.error_responses import ERROR_RESPONSES
from exceptions_app.api.permissions import IsSupervisor, principal_of
from exceptions_app.errors import InvalidInput
from exceptions_app.selectors import workflow_published_or_not_found
from exceptions_app.services.judgements import breaker_reset

DEFAULT_WINDOW = timedelta(days=7)
LONGEST_WINDOW = timedelta(days=366)


class AccountabilityQuery(drf.Serializer):
    since = drf.DateTimeField(required=False, help_text="start of the window (ISO 8601); default: 7 days ago")

    def validate_since(self, value):
        now = timezone.now()
        if value >= now:
            raise drf.ValidationError("must be in the past")
        if now - value > LONGEST_WINDOW:
            raise drf.ValidationError("a window covers at most 366 days")
        return value


class _Interval(drf.Serializer):
    estimate = drf.FloatField(allow_null=True)
    low = drf.FloatField(allow_null=True)
    high = drf.FloatField(allow_null=True)


class _Window(drf.Serializer):
    since = drf.DateTimeField()
    until = drf.DateTimeField()


class _Band(drf.Serializer):
    lower = drf.FloatField()
    upper = drf.FloatField()
    decisions = drf.IntegerField()
    held = drf.IntegerField()
    sampled = drf.IntegerField()
    judged = drf.IntegerField()
    error_rate = drf.FloatField(allow_null=True)
    low = drf.FloatField(allow_null=True)
    high = drf.FloatField(allow_null=True)


class AccountabilityOutput(drf.Serializer):
    workflow = drf.CharField()
    window = _Window()
    proceeds = drf.IntegerField(help_text="outputs that proceeded unattended in the window")
    sampled = drf.IntegerField(help_text="unattended verdicts copied to the audit queue")
    judged = drf.IntegerField(help_text="audit samples of proceeds a person has judged")
    unattended_error = _Interval(help_text="error rate among proceeds: IPW (Hajek), Wilson 95% at Kish's n")
    expected_wrong_unattended = _Interval(help_text="proceeds x unattended_error, bound for bound")
    override_rate = drf.FloatField(allow_null=True, help_text="modified or rejected among judged holds")
    review_rate = drf.FloatField(allow_null=True, help_text="held among all decisions")
    bands = _Band(many=True)
    recommended_auto_approve = drf.FloatField(
        allow_null=True, help_text="lowest auto_approve whose upper bound meets targets.max_unattended_error"
    )
    tripped = drf.BooleanField()


class AccountabilityView(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(
        operation_id="workflow_accountability",
        parameters=[AccountabilityQuery],
        responses={200: AccountabilityOutput, **ERROR_RESPONSES},
        summary="How often the AI was wrong when nobody looked, per band, and the threshold the data recommend",
    )
    def get(self, request, name: str):
        query = AccountabilityQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        workflow = workflow_published_or_not_found(name)
        until = timezone.now()
        since = query.validated_data.get("since") or until - DEFAULT_WINDOW
        return Response(accountability_report(workflow=workflow, since=since, until=until).answer)


class BreakerResetInput(drf.Serializer):
    note = drf.CharField(max_length=2000, required=False, allow_blank=True, default="")


class BreakerResetOutput(drf.Serializer):
    workflow = drf.CharField()
    tripped = drf.BooleanField()


class BreakerResetView(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(
        operation_id="workflow_reset_breaker",
        request=BreakerResetInput,
        responses={200: BreakerResetOutput, **ERROR_RESPONSES},
        summary="Close a tripped drift breaker (audited): outputs pass the gate by policy again",
    )
    def post(self, request, name: str):
        if not isinstance(request.data, dict):
            raise InvalidInput("the body must be a JSON object")
        data = BreakerResetInput(data=request.data)
        data.is_valid(raise_exception=True)
        workflow_published_or_not_found(name)
        workflow = breaker_reset(workflow_name=name, principal=principal_of(request), note=data.validated_data["note"])
        return Response({"workflow": workflow.name, "tripped": workflow.tripped_at is not None})
