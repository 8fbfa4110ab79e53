"""LangGraph's human-in-the-loop schema as data: the ``HumanInterrupt`` an agent captures with a held
output, and the ``HumanResponse`` its resolution answers with, so a graph paused in ``interrupt()``
resumes with ``Command(resume=human_response)`` unchanged.

The shapes (``langgraph.prebuilt.interrupt``, the Agent Inbox schema; newer LangGraph deprecates
the TypedDicts, so the server never imports them and reads the shape as JSON)::

    HumanInterrupt = {"action_request": {"action": str, "args": {...}},
                      "config": {"allow_accept": bool, "allow_edit": bool,
                                 "allow_respond": bool, "allow_ignore": bool},
                      "description": str | None}
    HumanResponse  = {"type": "accept" | "edit" | "response" | "ignore",
                      "args": ActionRequest | str | None}

The proposal of an item with an interrupt is the action request's args. Resolutions map to
responses one to one: approve is accept, modify is edit (the edited output as the args), respond
is response (stored as a rejection with reason code ``human_response``, the text as its note), any
other rejection is ignore. An expiry answers with its fallback: accept when it approves, else
ignore. The config decides which of those actions an operator may take.

Pure functions: the serializer, the lifecycle service, the presenters and the console ask them.
"""

from collections.abc import Mapping

ALLOW_FLAGS = ("allow_accept", "allow_edit", "allow_respond", "allow_ignore")
FIELDS = ("action_request", "config", "description")
MAX_ACTION = 200
MAX_DESCRIPTION = 20_000
# A response is stored as a rejection with this reason code, and its text as the resolution's note.
RESPONSE_REASON = "human_response"
MAX_RESPONSE = 4000

# The resolve action each allow flag permits. Escalating is Tollgate's own and always allowed.
_ACTION_OF_FLAG = {
    "allow_accept": "approve",
    "allow_edit": "modify",
    "allow_respond": "respond",
    "allow_ignore": "reject",
}
# The response each allow flag permits, as LangGraph names it.
RESPONSE_OF_FLAG = {
    "allow_accept": "accept",
    "allow_edit": "edit",
    "allow_respond": "response",
    "allow_ignore": "ignore",
}
_WITHOUT_INTERRUPT = frozenset({"approve", "modify", "reject", "escalate"})
_RESPONSE_NAME = {action: RESPONSE_OF_FLAG[flag] for flag, action in _ACTION_OF_FLAG.items()}


def interrupt_problems(value) -> dict[str, str]:
    """What is wrong with ``value`` as a HumanInterrupt, by path under it (``config.allow_edit``);
    empty when it is one. The empty path is the value itself."""
    if isinstance(value, list):
        return {"": "must be one HumanInterrupt object, not a list (send the request you pass to interrupt())"}
    if not isinstance(value, Mapping):
        return {"": "must be an object with action_request, config and description (LangGraph's HumanInterrupt)"}
    problems = {key: f"unknown field; a HumanInterrupt has {', '.join(FIELDS)}" for key in value if key not in FIELDS}
    problems |= _action_request_problems(value.get("action_request"))
    problems |= _config_problems(value.get("config"))
    description = value.get("description")
    if description is not None and not isinstance(description, str):
        problems["description"] = "must be a string or null"
    elif description is not None and len(description) > MAX_DESCRIPTION:
        problems["description"] = f"must be at most {MAX_DESCRIPTION} characters"
    return problems


def _action_request_problems(request) -> dict[str, str]:
    if request is None:
        return {"action_request": "required: the action to review, as {action, args}"}
    if not isinstance(request, Mapping):
        return {"action_request": "must be an object with action and args"}
    problems = {
        f"action_request.{key}": "unknown field; an action request has action and args"
        for key in request
        if key not in ("action", "args")
    }
    action = request.get("action")
    if not isinstance(action, str) or not action.strip():
        problems["action_request.action"] = "required: a non-empty string naming the action"
    elif len(action) > MAX_ACTION:
        problems["action_request.action"] = f"must be at most {MAX_ACTION} characters"
    if not isinstance(request.get("args"), Mapping):
        problems["action_request.args"] = "required: an object of the action's arguments"
    return problems


def _config_problems(config) -> dict[str, str]:
    if config is None:
        return {"config": f"required: which responses are allowed ({', '.join(ALLOW_FLAGS)})"}
    if not isinstance(config, Mapping):
        return {"config": f"must be an object with {', '.join(ALLOW_FLAGS)}"}
    problems = {
        f"config.{key}": f"unknown field; the config has {', '.join(ALLOW_FLAGS)}"
        for key in config
        if key not in ALLOW_FLAGS
    }
    for flag in ALLOW_FLAGS:
        if not isinstance(config.get(flag), bool):
            problems[f"config.{flag}"] = "required: true or false"
    if not problems and not any(config[flag] for flag in ALLOW_FLAGS):
        problems["config"] = "allows nothing: at least one of the allow_ flags must be true"
    return problems


def output_problem(*, interrupt: Mapping, output, output_given: bool) -> str | None:
    """Why ``output`` cannot go with this interrupt: the proposal is the action request's args, so an
    output given beside them must be the same value."""
    if output_given and output != interrupt["action_request"]["args"]:
        return "must equal interrupt.action_request.args, or be left out (the args are the proposal)"
    return None


def allowed_actions(interrupt: Mapping | None) -> frozenset[str]:
    """The resolve actions an operator may take on an item with this interrupt (or none)."""
    if interrupt is None:
        return _WITHOUT_INTERRUPT
    config = interrupt["config"]
    return frozenset({"escalate", *(action for flag, action in _ACTION_OF_FLAG.items() if config.get(flag))})


def resolution_problem(*, interrupt: Mapping | None, action: str, note: str) -> tuple[str, str] | None:
    """(field, why) when this resolution cannot answer the item's interrupt, else None. ``action`` is
    the one ``resolve_action`` returned."""
    if action == "respond" and interrupt is None:
        return "action", "respond answers a LangGraph interrupt, and this item has none"
    if action not in allowed_actions(interrupt):
        flag = next(flag for flag, allowed in _ACTION_OF_FLAG.items() if allowed == action)
        return "action", f"this item's interrupt does not allow {_RESPONSE_NAME[action]} (config.{flag} is false)"
    if action == "respond" and not note.strip():
        return "note", "a response needs its text"
    return None


def resolve_action(*, action: str, reason_code: str) -> tuple[str, str]:
    """The action and reason code a resolution is checked and stored with: a rejection with the
    response reason code is a response, and a response carries that code."""
    if action == "reject" and reason_code == RESPONSE_REASON:
        return "respond", RESPONSE_REASON
    if action == "respond":
        return "respond", RESPONSE_REASON
    return action, reason_code


def human_response(
    *, interrupt: Mapping | None, resolution: str, final_output, reason_code: str, note: str
) -> dict | None:
    """The HumanResponse a resolved or expired item answers its interrupt with (None without one)."""
    if interrupt is None or not resolution:
        return None
    request = interrupt["action_request"]
    if resolution == "approve" or (resolution == "fallback" and final_output is not None):
        return {"type": "accept", "args": {"action": request["action"], "args": request["args"]}}
    if resolution == "modify":
        return {"type": "edit", "args": {"action": request["action"], "args": final_output}}
    if resolution == "reject" and reason_code == RESPONSE_REASON:
        return {"type": "response", "args": note}
    return {"type": "ignore", "args": None}


def item_human_response(item) -> dict | None:
    """``human_response`` of an ExceptionItem."""
    return human_response(
        interrupt=item.interrupt,
        resolution=item.resolution,
        final_output=item.final_output,
        reason_code=item.reason_code,
        note=item.resolution_note,
    )
