"""The MCP tools, on the same services and selectors as the REST API.

The caller is the agent whose bearer token ``http.py`` checked; each tool does what its REST
counterpart does (``POST /api/v1/decisions``, ``POST /api/v1/exceptions``, ``GET
/api/v1/exceptions/{id}?wait=``), with the same validation (the API's serializers), the same scope
(``decision_submit``'s workflow check, ``item_visible_get``) and the same messages.

Waiting holds no thread: database work runs on a small pool, the connection given back after each
step, and between steps the tool awaits the process's wait hub on the event loop, subscribed before
it reads so that a resolution landing in between is not missed.
"""

import asyncio
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal

from django.conf import settings
from django.db import close_old_connections
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field
from rest_framework.exceptions import ValidationError

from exceptions_app.api import serializers
from exceptions_app.api.errors import flatten_field_errors
from exceptions_app.api.presenters import item_present_to
from exceptions_app.errors import DomainError
from exceptions_app.models import Principal, Role, Workflow
from exceptions_app.selectors import item_visible_get
from exceptions_app.services.intake import DecisionRequest, ReportRequest, decision_submit, exception_report
from exceptions_app.tracing import spans
from exceptions_app.waits.hub import WaitersFull, item_key, wait_hub

# As ``GET /api/v1/exceptions/{id}?wait=``: waiting costs no thread, so five minutes per call.
MAX_WAIT_SECONDS = 300
DEFAULT_WAIT_SECONDS = 60
# A progress notification this often while waiting: the client sees the call is alive (and clients
# that reset their request timeout on progress keep waiting).
PROGRESS_SECONDS = 5.0
# The scope key under which http.py leaves the authenticated principal.
PRINCIPAL_SCOPE_KEY = "tollgate.principal"

WaitSeconds = Annotated[
    int,
    Field(ge=0, le=MAX_WAIT_SECONDS, description="how long to wait for a person's decision on a held output"),
]


class Resolution(BaseModel):
    outcome: str = Field(description="approve, modify, reject or fallback")
    final_output: Any = Field(description="the output to use (null when rejected)")
    reason_code: str
    note: str
    resolved_by: str | None
    resolved_at: str | None


class ReviewResult(BaseModel):
    verdict: Literal["proceed", "hold", "reject"] = Field(description="the gate's verdict on the output")
    decision_id: int
    exception_id: int | None = Field(description="the held item; ask get_resolution about it later")
    status: str | None = Field(description="the item's status: open, claimed, snoozed, resolved, cancelled, expired")
    final: bool = Field(description="true when this is the answer: proceed, reject, or the hold ended")
    final_output: Any = Field(description="the output to act on when final (null when rejected or not final)")
    resolution: Resolution | None
    reasons: list[dict[str, Any]]
    message: str


class ItemResult(BaseModel):
    exception_id: int
    workflow: str
    status: str
    queue: str
    final: bool = Field(description="true once resolved, cancelled or expired")
    final_output: Any
    resolution: Resolution | None
    message: str


class WorkflowInfo(BaseModel):
    name: str
    policy_version: int | None


class WorkflowList(BaseModel):
    workflows: list[WorkflowInfo]


_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(settings.TOLLGATE_WEB_THREADS, thread_name_prefix="tollgate-mcp")
    return _executor


async def _db(function, /, *, caller_trace: tuple[str, str] = ("", ""), **kwargs):
    """Run ``function`` on the pool; its database connection goes back before the thread does.
    ``caller_trace`` (``traceparent``, ``tracestate``): the agent's trace, which the gate's span joins."""

    def run():
        token = spans.caller_context_attach(*caller_trace)
        try:
            return function(**kwargs)
        finally:
            spans.request_context_detach(token)
            close_old_connections()

    return await asyncio.get_running_loop().run_in_executor(_pool(), run)


def _principal(ctx: Context) -> Principal:
    request = ctx.request_context.request
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY) if request is not None else None
    if principal is None or principal.role != Role.AGENT:
        raise ToolError("this tool needs an agent token")
    return principal


def _caller_trace(ctx: Context) -> tuple[str, str]:
    """The ``traceparent`` and ``tracestate`` headers of the agent's MCP request, as the REST API reads them."""
    request = ctx.request_context.request
    if request is None:
        return "", ""
    return request.headers.get("traceparent", ""), request.headers.get("tracestate", "")


def _fields_message(fields: list[dict]) -> str:
    return "; ".join(f"{field['path']}: {field['message']}" for field in fields)


def _refused(error: DomainError) -> ToolError:
    detail = f" ({_fields_message(error.fields)})" if error.fields else ""
    return ToolError(f"{error.code}: {error.message}{detail}")


def _validated(serializer_class, data: dict) -> dict:
    serializer = serializer_class(data=data)
    try:
        serializer.is_valid(raise_exception=True)
    except ValidationError as error:
        raise ToolError(f"invalid arguments: {_fields_message(flatten_field_errors(error.detail))}") from None
    return dict(serializer.validated_data)


def _resolution(shown: dict) -> Resolution | None:
    return Resolution(**shown["resolution"]) if shown["resolution"] else None


def _final_output(shown: dict) -> Any:
    resolution = shown["resolution"]
    return resolution["final_output"] if resolution else None


def _terminal(shown: dict) -> bool:
    return shown["status"] in ("resolved", "cancelled", "expired")


def _item_message(shown: dict) -> str:
    if shown["resolution"]:
        return f"exception {shown['id']} was resolved: {shown['resolution']['outcome']}"
    if _terminal(shown):
        return f"exception {shown['id']} was {shown['status']} without a resolution"
    return (
        f"exception {shown['id']} is still {shown['status']} in queue {shown['queue']}; "
        f"call get_resolution(exception_id={shown['id']}) later"
    )


async def _wait_for_final(ctx: Context, principal: Principal, item_id: int, seconds: int) -> dict:
    """The item as shown by the API once it is final or ``seconds`` have passed, whichever is first."""
    read = functools.partial(_db, _item_shown, principal=principal, item_id=item_id)
    if seconds <= 0:
        return await read()
    try:
        subscription = wait_hub().subscribe([item_key(item_id)])
    except WaitersFull:
        return await read()  # this process waits for as many as it may: answer now, the agent asks later
    with subscription:
        started = time.monotonic()
        deadline = started + seconds
        while True:
            shown = await read()
            remaining = deadline - time.monotonic()
            if _terminal(shown) or remaining <= 0:
                return shown
            waited = time.monotonic() - started
            await ctx.report_progress(
                waited, seconds, f"exception {item_id} is {shown['status']} in queue {shown['queue']}"
            )
            await subscription.wait(min(remaining, PROGRESS_SECONDS))


def _item_shown(*, principal: Principal, item_id: int) -> dict:
    return item_present_to(principal, item_visible_get(principal=principal, item_id=item_id))


def _submit(*, principal: Principal, data: dict) -> dict:
    outcome = decision_submit(principal=principal, request=DecisionRequest(**data))
    return {
        "verdict": outcome.decision.verdict,
        "decision_id": outcome.decision.pk,
        "reasons": outcome.decision.reasons,
        "item": item_present_to(principal, outcome.item) if outcome.item is not None else None,
    }


def _report(*, principal: Principal, data: dict) -> dict:
    return item_present_to(principal, exception_report(principal=principal, request=ReportRequest(**data)).item)


def _workflows(*, principal: Principal) -> list[WorkflowInfo]:
    workflows = Workflow.objects.filter(agents=principal).select_related("current_policy").order_by("name")
    return [
        WorkflowInfo(
            name=workflow.name, policy_version=workflow.current_policy.version if workflow.current_policy else None
        )
        for workflow in workflows
    ]


def _given(**arguments) -> dict:
    """The optional arguments the agent gave (None means left out, as a missing JSON key)."""
    return {name: value for name, value in arguments.items() if value is not None}


def _item_outcome(shown: dict) -> dict:
    """What both results say of a held item: where it stands and, once decided, what to act on."""
    return {
        "exception_id": shown["id"],
        "status": shown["status"],
        "final": _terminal(shown),
        "final_output": _final_output(shown),
        "resolution": _resolution(shown),
        "message": _item_message(shown),
    }


def _item_result(shown: dict) -> ItemResult:
    return ItemResult(**_item_outcome(shown), workflow=shown["workflow"], queue=shown["queue"])


async def request_review(
    workflow: str,
    output: Any,
    confidence: Annotated[float, Field(ge=0.0, le=1.0, description="the agent's confidence in the output, 0 to 1")],
    ctx: Context,
    input: Any = None,  # noqa: A002 - the API's field name
    context: Any = None,
    correlation_id: str | None = None,
    wait_seconds: WaitSeconds = DEFAULT_WAIT_SECONDS,
) -> ReviewResult:
    """Submit an output to Tollgate's gate before acting on it, and wait for a person if it is held.

    proceed: act on `output` now. reject: do not act. hold: a person reviews it; this waits up to
    `wait_seconds` (with progress notifications) and answers their decision and the final output
    to use, or, if they have not decided yet, the exception id to pass to get_resolution later."""
    principal = _principal(ctx)
    data = _validated(
        serializers.DecisionInput,
        {
            "workflow": workflow,
            "output": output,
            "confidence": confidence,
            **_given(input=input, context=context, correlation_id=correlation_id),
        },
    )
    try:
        submitted = await _db(_submit, caller_trace=_caller_trace(ctx), principal=principal, data=data)
    except DomainError as error:
        raise _refused(error) from None
    verdict, item = submitted["verdict"], submitted["item"]
    common = {"verdict": verdict, "decision_id": submitted["decision_id"], "reasons": submitted["reasons"]}
    if item is None:
        proceed = verdict == "proceed"
        return ReviewResult(
            **common,
            exception_id=None,
            status=None,
            final=True,
            final_output=output if proceed else None,
            resolution=None,
            message="proceed: act on the output" if proceed else "reject: do not act on the output",
        )
    shown = await _wait_for_final(ctx, principal, item["id"], wait_seconds)
    return ReviewResult(**common, **_item_outcome(shown))


async def get_resolution(
    exception_id: Annotated[int, Field(ge=1, description="the exception id request_review or report_exception gave")],
    ctx: Context,
    wait_seconds: Annotated[int, Field(ge=0, le=MAX_WAIT_SECONDS, description="how long to wait for it")] = 0,
) -> ItemResult:
    """An exception's status and, once a person decided, the resolution and the final output.
    With `wait_seconds`, waits (with progress notifications) until it is resolved, cancelled or expired."""
    principal = _principal(ctx)
    try:
        shown = await _wait_for_final(ctx, principal, exception_id, wait_seconds)
    except DomainError as error:
        raise _refused(error) from None
    return _item_result(shown)


async def report_exception(
    workflow: str,
    reason: Annotated[str, Field(description="a reason code, e.g. tool_failure")],
    ctx: Context,
    message: str | None = None,
    severity: Literal["low", "medium", "high", "critical"] | None = None,
    output: Any = None,
    input: Any = None,  # noqa: A002 - the API's field name
    context: Any = None,
    correlation_id: str | None = None,
) -> ItemResult:
    """Report a failure for a person to handle (a tool that keeps failing, conflicting signals).
    Answers the exception id at once; get_resolution tells what a person decided."""
    principal = _principal(ctx)
    data = _validated(
        serializers.ReportInput,
        {
            "workflow": workflow,
            "reason": reason,
            **_given(
                message=message,
                severity=severity,
                output=output,
                input=input,
                context=context,
                correlation_id=correlation_id,
            ),
        },
    )
    try:
        shown = await _db(_report, caller_trace=_caller_trace(ctx), principal=principal, data=data)
    except DomainError as error:
        raise _refused(error) from None
    return _item_result(shown)


async def list_workflows(ctx: Context) -> WorkflowList:
    """The workflows this agent may submit to, with their current policy version."""
    principal = _principal(ctx)
    return WorkflowList(workflows=await _db(_workflows, principal=principal))


def server_build() -> MCPServer:
    server = MCPServer(
        "tollgate",
        title="Tollgate",
        instructions=(
            "Call request_review before acting on an AI output that a person may need to check; "
            "act only on its final_output. Report failures you cannot handle with report_exception."
        ),
    )
    for tool in (request_review, get_resolution, report_exception, list_workflows):
        server.add_tool(tool, structured_output=True)
    return server
