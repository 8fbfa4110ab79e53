"""Gate a LangGraph graph on Tollgate: a node submits its proposed action, pauses the graph with
``interrupt()`` while a person reviews it, and resumes with the person's answer.

Runs in the agent (``pip install "tollgate[langgraph]"``), never in the server::

    from exceptions_app.client import TollgateClient
    from exceptions_app.integrations.langgraph import human_interrupt, resume_command, tollgate_review

    tollgate = TollgateClient("http://127.0.0.1:8000", token="tg_...")

    def send_refund(state):                       # a node of your graph (compiled with a checkpointer)
        review = tollgate_review(
            tollgate, "billing.refund", human_interrupt("send_refund", state["refund"]),
            confidence=state["confidence"],
        )
        if review.final_output is None:           # ignored, or answered with a text: review.feedback
            return {"outcome": review.response["type"], "feedback": review.feedback}
        return {"outcome": "sent", "refund": refunds.send(**review.final_output)}

    result = graph.invoke(inputs, config)         # pauses on a hold: result["__interrupt__"]
    while (command := resume_command(tollgate, result)) is not None:
        result = graph.invoke(command, config)    # Command(resume=<Tollgate's HumanResponse>)

``resume_command`` long-polls Tollgate for the resolution. An agent that hears resolutions by
webhook, Celery task or the feed resumes the same way, with ``payload["human_response"]`` and the
thread id Tollgate kept as the correlation id::

    graph.invoke(Command(resume=payload["human_response"]), {"configurable": {"thread_id": payload["correlation_id"]}})

LangGraph runs a node again from its start when the graph resumes: the submission carries an
idempotency key made from the thread and the node's task (stable across the resume), so Tollgate
answers it with the first decision instead of holding the output twice.
"""

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from langgraph.config import get_config
from langgraph.types import Command, interrupt

from exceptions_app.client import TollgateClient

RESPONSE_TYPES = ("accept", "edit", "response", "ignore")


def human_interrupt(
    action: str,
    args: dict,
    *,
    description: str | None = None,
    allow_accept: bool = True,
    allow_edit: bool = True,
    allow_respond: bool = True,
    allow_ignore: bool = True,
) -> dict:
    """A HumanInterrupt (LangGraph's Agent Inbox schema) for ``action`` with ``args``."""
    return {
        "action_request": {"action": action, "args": args},
        "config": {
            "allow_accept": allow_accept,
            "allow_edit": allow_edit,
            "allow_respond": allow_respond,
            "allow_ignore": allow_ignore,
        },
        "description": description,
    }


@dataclass(frozen=True)
class Review:
    """Tollgate's answer to a proposed action."""

    verdict: str  # proceed, hold or reject: the gate's verdict
    response: dict  # the HumanResponse: accept (also a proceed), edit, response, or ignore (also a reject)
    final_output: dict | None  # the args to act with; None when nothing should be done
    decision_id: int
    exception_id: int | None  # the held item, when a person reviewed it

    @property
    def feedback(self) -> str | None:
        """The person's text, when they answered with one instead of accepting or editing."""
        return self.response["args"] if self.response["type"] == "response" else None


class ReviewNotResolved(Exception):
    """The held item ended without a resolution (cancelled), or was still waiting at the timeout."""

    def __init__(self, item: dict):
        super().__init__(f"Tollgate exception {item['id']} is {item['status']}, without a resolution")
        self.item = item


def _idempotency_key(configurable: Mapping) -> str | None:
    thread, task = configurable.get("thread_id"), configurable.get("checkpoint_ns")
    if thread is None or not task:
        return None
    return "langgraph-" + hashlib.sha256(f"{thread}\x00{task}".encode()).hexdigest()


def _final_output(response: dict, interrupt_value: dict) -> dict | None:
    if response["type"] == "accept":
        return interrupt_value["action_request"]["args"]
    if response["type"] == "edit":
        return response["args"]["args"]
    return None


def _checked(response) -> dict:
    if not isinstance(response, Mapping) or response.get("type") not in RESPONSE_TYPES:
        raise ValueError(
            "resume the graph with Tollgate's human_response ({type: accept|edit|response|ignore, args}), "
            f"not {response!r}"
        )
    return dict(response)


def tollgate_review(
    tollgate: TollgateClient, workflow: str, request: dict, *, confidence: float, **state: Any
) -> Review:
    """Submit ``request`` (a HumanInterrupt, see ``human_interrupt``) to Tollgate's gate from inside a
    node. proceed and reject answer at once; a hold pauses the graph with ``interrupt()`` (its value
    the HumanInterrupt and, under ``tollgate``, the exception id) until it is resumed with the
    resolution's HumanResponse. ``state`` may hold input, context, trace, correlation_id (default: the
    thread id), value_at_risk, model_version, callback_url, idempotency_key."""
    configurable = get_config().get("configurable", {})
    key = state.pop("idempotency_key", None) or _idempotency_key(configurable)
    if configurable.get("thread_id") is not None:
        state.setdefault("correlation_id", str(configurable["thread_id"])[:200])
    args = request["action_request"]["args"]
    decision = tollgate.submit(
        workflow, output=args, confidence=confidence, interrupt=request, idempotency_key=key, **state
    )
    verdict, item = decision["verdict"], decision["exception"]
    if verdict == "proceed":
        response = {"type": "accept", "args": dict(request["action_request"])}
    elif verdict == "reject":
        response = {"type": "ignore", "args": None}
    else:
        paused = {**request, "tollgate": {"exception_id": item["id"], "decision_id": decision["decision_id"]}}
        response = _checked(interrupt(paused))
    return Review(
        verdict=verdict,
        response=response,
        final_output=_final_output(response, request),
        decision_id=decision["decision_id"],
        exception_id=item["id"] if item else None,
    )


def gate_node(
    tollgate: TollgateClient,
    workflow: str,
    *,
    propose: Callable[[Any], dict],
    result_key: str = "review",
) -> Callable[[Any], dict]:
    """A node that reviews what ``propose(state)`` returns (``tollgate_review``'s arguments after the
    workflow: request, confidence and any captured state) and writes the Review, as a dict, to
    ``result_key`` of the graph's state. Route on ``state[result_key]["final_output"]`` after it."""

    def gate(state) -> dict:
        proposal = dict(propose(state))
        review = tollgate_review(tollgate, workflow, proposal.pop("request"), **proposal)
        return {result_key: asdict(review)}

    gate.__name__ = f"tollgate_gate_{workflow.replace('.', '_')}"
    return gate


def resume_command(tollgate: TollgateClient, result: Mapping, *, timeout: float = 3600.0) -> Command | None:
    """The ``Command`` that resumes a graph paused by ``tollgate_review``, once Tollgate has the
    resolutions (waited for by long-poll, up to ``timeout`` seconds each); None when ``result`` (what
    ``graph.invoke`` returned) is not paused on Tollgate. Raises ReviewNotResolved for an item that
    was cancelled or is still waiting."""
    paused = [
        pending
        for pending in result.get("__interrupt__", ())
        if isinstance(pending.value, Mapping) and "tollgate" in pending.value
    ]
    if not paused:
        return None
    responses = {}
    for pending in paused:
        item = tollgate.wait(pending.value["tollgate"]["exception_id"], timeout=timeout)
        resolution = item.get("resolution")
        if not resolution or "human_response" not in resolution:
            raise ReviewNotResolved(item)
        responses[pending.id] = resolution["human_response"]
    if len(paused) == 1:
        return Command(resume=responses[paused[0].id])
    return Command(resume=responses)
