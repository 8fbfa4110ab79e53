"""Supervisors replay a draft policy over recorded decisions before publishing it."""

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers as drf
from rest_framework.response import Response
from rest_framework.views import APIView

from exceptions_app.api.permissions import IsSupervisor
from exceptions_app.api.serializers import ERROR_RESPONSES
from exceptions_app.errors import InvalidInput, NotFound
from exceptions_app.models import ReplayRun
from exceptions_app.policy.document import PolicyInvalid
from exceptions_app.rules import LARGEST_ID, iso_timestamp
from exceptions_app.selectors import workflow_published_or_not_found
from exceptions_app.services.replay import ReplayWindow, policy_replay, replay_draft_check, replay_window_count
from exceptions_app.services.replay_runs import replay_run_progress, replay_run_start

MAX_LIMIT = 10_000_000


class ReplayInput(drf.Serializer):
    policy = drf.DictField(help_text="the draft policy document (as in policies/*.yaml); workflow may be left out")
    since = drf.DateTimeField(required=False, allow_null=True, default=None)
    until = drf.DateTimeField(required=False, allow_null=True, default=None)
    limit = drf.IntegerField(min_value=1, max_value=MAX_LIMIT, required=False, allow_null=True, default=None)
    samples = drf.IntegerField(min_value=0, max_value=200, required=False, default=20)

    def validate(self, attrs):
        if attrs["since"] and attrs["until"] and attrs["since"] >= attrs["until"]:
            raise drf.ValidationError({"until": "must be after since"})
        return attrs


class ExpectedErrorsOutput(drf.Serializer):
    proceeds = drf.IntegerField(help_text="decisions the draft lets proceed unattended")
    estimate = drf.FloatField(allow_null=True, help_text="expected wrong outputs among them (null: a band unjudged)")
    low = drf.FloatField(allow_null=True)
    high = drf.FloatField(allow_null=True)
    rate = drf.DictField(help_text="their error rate: estimate, low, high (95%, Wilson at Kish's effective n)")
    judged = drf.IntegerField(help_text="judged outputs the estimate rests on (audit samples and reviewed holds)")
    bands_without_judgements = drf.ListField(child=drf.DictField(), help_text="lower, upper, proceeds")


class ReplayOutput(drf.Serializer):
    workflow = drf.CharField()
    decisions = drf.IntegerField()
    changed = drf.IntegerField()
    matrix = drf.DictField(help_text="current verdict -> draft verdict -> count")
    review_rate = drf.DictField()
    rules = drf.ListField(child=drf.DictField())
    checks = drf.ListField(child=drf.DictField())
    bands = drf.ListField(child=drf.DictField())
    would_leak = drf.IntegerField(help_text="held outputs people modified or rejected that the draft lets proceed")
    judgements = drf.DictField()
    expected_unattended_errors = ExpectedErrorsOutput(
        allow_null=True, help_text="null when nobody judged any output the draft lets proceed"
    )
    samples = drf.ListField(child=drf.DictField())


class ReplayRunOutput(drf.Serializer):
    id = drf.IntegerField()
    workflow = drf.CharField()
    status = drf.ChoiceField(choices=["queued", "running", "done", "failed"])
    decisions_total = drf.IntegerField()
    decisions_done = drf.IntegerField()
    created_at = drf.DateTimeField()
    expires_at = drf.DateTimeField()
    url = drf.CharField()
    error = drf.CharField(allow_blank=True)
    result = ReplayOutput(allow_null=True)


def present_run(run: ReplayRun) -> dict:
    return {
        "id": run.pk,
        "workflow": run.workflow.name,
        "status": run.status,
        "decisions_total": run.decisions_total,
        "decisions_done": replay_run_progress(run),
        "created_at": iso_timestamp(run.created_at),
        "expires_at": iso_timestamp(run.expires_at),
        "url": f"/api/v1/replays/{run.pk}",
        "error": run.error,
        "result": run.result,
    }


def policy_invalid_as_input(error: PolicyInvalid, prefix: str = "policy") -> InvalidInput:
    """A draft's problems as a 400, each naming the field (under ``prefix``) and, for a rule, its code."""
    fields = [{**found.as_dict(), "path": f"{prefix}.{found.path}" if found.path else prefix} for found in error.errors]
    return InvalidInput(f"the draft policy is invalid: {error}", fields=fields)


class WorkflowReplayView(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(
        operation_id="workflow_replay",
        request=ReplayInput,
        responses={200: ReplayOutput, 202: ReplayRunOutput, **ERROR_RESPONSES},
        summary="Replay a draft policy over recorded decisions: a small window answers at once, a large one "
        "runs on a worker (202, then poll the run's url)",
    )
    def post(self, request, name: str):
        workflow = workflow_published_or_not_found(name)
        body = ReplayInput(data=request.data)
        body.is_valid(raise_exception=True)
        attrs = body.validated_data
        try:
            document = replay_draft_check(workflow=workflow, document=attrs["policy"])
        except PolicyInvalid as error:
            raise policy_invalid_as_input(error) from None
        window = ReplayWindow(since=attrs["since"], until=attrs["until"], limit=attrs["limit"]).resolved(
            now=timezone.now()
        )
        total = replay_window_count(workflow=workflow, window=window)
        if total <= settings.TOLLGATE_REPLAY_SYNC_MAX:
            answer = policy_replay(workflow=workflow, document=document, window=window, sample_limit=attrs["samples"])
            return Response(answer)
        run = replay_run_start(
            workflow=workflow,
            document=document,
            window=window,
            total=total,
            sample_limit=attrs["samples"],
            actor=request.user,
        )
        return Response(present_run(run), status=202, headers={"Location": f"/api/v1/replays/{run.pk}"})


class ReplayRunView(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(
        operation_id="replay_get",
        responses={200: ReplayRunOutput, **ERROR_RESPONSES},
        summary="A replay run by a worker: its progress, then its answer (kept for a day)",
    )
    def get(self, request, run_id: int):
        run = ReplayRun.objects.select_related("workflow").filter(pk=run_id).first() if run_id <= LARGEST_ID else None
        if run is None:
            raise NotFound(f"no replay {run_id} (answers are kept {settings.TOLLGATE_REPLAY_KEEP_HOURS} hours)")
        return Response(present_run(run))
