"""Supervisors try a draft policy on recorded decisions, see what it would change, and publish it."""

import json

import yaml
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from exceptions_app import rules
from exceptions_app.errors import InvalidInput
from exceptions_app.models import PolicySource, ReplayRun, Workflow
from exceptions_app.policy.document import PolicyInvalid, policy_document_checksum
from exceptions_app.services.policies import policy_publish
from exceptions_app.services.replay import (
    VERDICTS,
    policy_replay,
    replay_draft_check,
    replay_window_count,
    replay_window_parse,
)
from exceptions_app.services.replay_runs import replay_run_progress, replay_run_start
from exceptions_app.strict_json import JsonRefused, strict_loads
from review.access import person_for

WINDOWS = [("1d", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("1000", "Last 1,000 decisions")]
MAX_DRAFT_CHARS = 200_000


def _supervisor(request):
    principal = person_for(request)
    if not rules.principal_is_supervisor(principal):
        raise PermissionDenied("Replaying and publishing policies is for supervisors.")
    return principal


def _workflows():
    return Workflow.objects.filter(current_policy__isnull=False).select_related("current_policy").order_by("name")


def _workflow(name: str) -> Workflow:
    workflow = _workflows().filter(name=name).first() if name else None
    if workflow is None:
        raise InvalidInput(f"unknown workflow {name!r}", fields=[{"path": "workflow", "message": "unknown workflow"}])
    return workflow


def _draft(workflow: Workflow, text: str) -> dict:
    """The pasted draft (YAML or JSON), read as the API would read it, then checked as a policy."""
    if len(text) > MAX_DRAFT_CHARS:
        raise InvalidInput(f"draft: longer than {MAX_DRAFT_CHARS} characters")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidInput(f"draft: not valid YAML or JSON: {error}") from None
    try:
        # Through the API's strict JSON reading: what YAML lets through but jsonb cannot store is refused.
        document = strict_loads(json.dumps(document, default=str))
    except JsonRefused as error:
        raise InvalidInput(f"draft: {error.path or 'value'}: {error.message}") from None
    if not isinstance(document, dict):
        raise InvalidInput("draft: a policy is a mapping of fields (workflow, thresholds, rules, ...)")
    return replay_draft_check(workflow=workflow, document=document)


def _page_context(request, *, workflow: Workflow | None, draft_text: str, window: str) -> dict:
    return {
        "workflows": _workflows(),
        "workflow": workflow,
        "versions": workflow.policy_versions.order_by("-version")[:20] if workflow else [],
        "draft_text": draft_text,
        "window": window,
        "windows": WINDOWS,
        "verdicts": VERDICTS,
    }


def _render(request, context: dict, *, status: int = 200):
    # The run form swaps only the result; without JavaScript the whole page comes back with it.
    partial = request.htmx and not request.htmx.boosted
    template = "review/replay.html#result" if partial else "review/replay.html"
    return TemplateResponse(request, template, context, status=status)


@require_GET
@login_required
def replay_page(request):
    _supervisor(request)
    workflows = list(_workflows())
    name = request.GET.get("workflow") or (workflows[0].name if workflows else "")
    workflow = next((candidate for candidate in workflows if candidate.name == name), None)
    if name and workflow is None:
        raise Http404(f"no workflow {name!r}")
    draft_text = ""
    if workflow is not None:
        picked = request.GET.get("from", "")
        version = workflow.current_policy
        if picked.isdigit():
            version = workflow.policy_versions.filter(version=int(picked)).first() or version
        draft_text = yaml.safe_dump(version.document, sort_keys=False, allow_unicode=True)
    context = _page_context(request, workflow=workflow, draft_text=draft_text, window="7d")
    return TemplateResponse(request, "review/replay.html", context)


@require_POST
@login_required
def replay_run(request):
    principal = _supervisor(request)
    draft_text, window_text = request.POST.get("draft", ""), request.POST.get("window", "7d")
    workflow = None
    try:
        workflow = _workflow(request.POST.get("workflow", ""))
        document = _draft(workflow, draft_text)
        window = replay_window_parse(window_text)
    except PolicyInvalid as error:
        context = _page_context(request, workflow=workflow, draft_text=draft_text, window=window_text)
        return _render(request, {**context, "policy_errors": error.errors}, status=400)
    except InvalidInput as error:
        context = _page_context(request, workflow=workflow, draft_text=draft_text, window=window_text)
        return _render(request, {**context, "input_error": error.message}, status=400)
    context = _page_context(request, workflow=workflow, draft_text=draft_text, window=window_text)
    total = replay_window_count(workflow=workflow, window=window)
    if total > settings.TOLLGATE_REPLAY_SYNC_MAX:
        run = replay_run_start(
            workflow=workflow, document=document, window=window, total=total, sample_limit=20, actor=principal.user
        )
        return _render(request, {**context, "run": run, "done": 0})
    answer = policy_replay(workflow=workflow, document=document, window=window)
    return _render(request, {**context, "answer": answer})


@require_GET
@login_required
def replay_run_status(request, run_id: int):
    """A worker's replay: its progress while it runs, then its answer (polled by the result)."""
    _supervisor(request)
    run = ReplayRun.objects.select_related("workflow").filter(pk=run_id).first()
    if run is None:
        raise Http404(f"no replay {run_id} (answers are kept {settings.TOLLGATE_REPLAY_KEEP_HOURS} hours)")
    draft_text = yaml.safe_dump(run.document, sort_keys=False, allow_unicode=True)
    context = _page_context(request, workflow=run.workflow, draft_text=draft_text, window="")
    return _render(request, {**context, "run": run, "done": replay_run_progress(run), "answer": run.result})


@require_POST
@login_required
def replay_publish(request):
    """Publish the draft that was replayed, and only that one: its checksum must match."""
    principal = _supervisor(request)
    draft_text = request.POST.get("draft", "")
    workflow = _workflow(request.POST.get("workflow", ""))
    try:
        document = _draft(workflow, draft_text)
    except PolicyInvalid as error:
        raise InvalidInput(f"Nothing published: {error}") from None
    if policy_document_checksum(document) != request.POST.get("checksum", ""):
        raise InvalidInput("Nothing published: the draft changed after it was replayed; replay it again first.")
    version, published = policy_publish(document=document, source=PolicySource.UI, actor=principal.user)
    if published:
        messages.success(request, f"Published {workflow.name} v{version.version}.")
    else:
        messages.info(request, f"Nothing to publish: the draft is {workflow.name} v{version.version} already.")
    return redirect(f"{reverse('review:replay')}?workflow={workflow.name}")
