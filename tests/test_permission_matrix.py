"""Every URL pattern of the project against every role: who may do what, and nothing else.

The table below is the access policy, written down once. Each route of the URL resolver (admin,
api/v1, the console, the dashboard, accounts, health, metrics, the OpenAPI schema and docs) has
one entry; a route without an entry, or an entry without a route, fails
``test_every_route_is_in_the_table``, so a new endpoint cannot ship without a decision about who
may call it. Static files are not routed (WhiteNoise serves them before URL resolution), so they
have no entry.

Roles: ``anonymous``; ``other_agent`` (an agent token scoped to another workflow); ``agent`` (the
billing workflow's agent); ``other_operator`` (an operator whose team works another queue);
``operator`` (billing team); ``supervisor`` (a superuser, as ``seed_demo`` makes them). API routes
are called with each role's bearer token, browser routes with each role's signed-in session.

What the outcomes say, by the rules of ``api/permissions.py``, ``review/access.py`` and
``selectors.py``:
- anonymous: 401 on the API, a redirect to the sign-in page in the browser; only health, sign-in
  and sign-out answer without one. ``/metrics`` is for Prometheus, not for people: it answers a
  loopback client (the test client is 127.0.0.1) and nobody else unless the scraper shows
  ``TOLLGATE_METRICS_TOKEN``; ``test_metrics_refuse_other_addresses_and_need_the_token_when_set``
  pins that.
- a role the endpoint is not for: 403. An item, queue or workflow outside the caller's scope:
  404, so its existence is not disclosed.
- the console answers a refused item action with the item's page, the reason and its status
  (400, 403, 409); claiming the next item of a queue not among yours is a message and a redirect
  home. ``Kept(...)`` marks answers that are not refusals by status alone but must change nothing.
Every refusal is also checked to have written nothing.
"""

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
import yaml
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from exceptions_app.models import (
    ApiToken,
    AuditEvent,
    Delivery,
    ExceptionItem,
    GateDecision,
    ItemStatus,
    PolicySource,
    PolicyVersion,
    Principal,
    Queue,
    ReplayRun,
    Team,
    WorkerPing,
    Workflow,
)
from exceptions_app.policy.document import policy_document_checksum
from exceptions_app.services.local_cache import local_caches_clear
from exceptions_app.services.policies import policy_publish
from exceptions_app.services.tokens import principal_ensure, token_create
from tests.fixtures.gate import BILLING, billing_document, decision_body, hold, invoice_output

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "other_agent", "agent", "other_operator", "operator", "supervisor")
OTHER_WORKFLOW = "routing.other"


@dataclass(frozen=True)
class Redirect:
    """A 302 whose Location starts with ``to`` (``{item}`` is the item's id), or equals it when exact."""

    to: str
    exact: bool = False


@dataclass(frozen=True)
class Kept:
    """The console answered ``outcome`` (a message and a redirect) and changed nothing."""

    outcome: object


LOGIN = Redirect("/accounts/login/?next=")
ADMIN_LOGIN = Redirect("/admin/login/?next=")
SIGNED_OUT = Redirect("/accounts/login/", exact=True)
HOME = Redirect("/", exact=True)
ITEM = Redirect("/items/{item}", exact=True)
ADMIN = Redirect("/admin/", exact=True)
SEARCH = Redirect("/items/search?")
DASHBOARD = Redirect("/dashboard", exact=True)
ACCOUNTABILITY = Redirect(f"/workflows/{BILLING}/accountability", exact=True)
REPLAY = Redirect(f"/policies/replay?workflow={BILLING}", exact=True)
PEOPLE = Redirect("/people", exact=True)
PERSON = Redirect("/people/{person}", exact=True)
REFUSALS = (401, 403, 404, LOGIN, ADMIN_LOGIN)


@pytest.fixture(autouse=True)
def _isolated(plain_static_and_fresh_caches):
    """Pages with plain static names and fresh per-process caches (tests/conftest.py says why)."""


def row(*outcomes) -> dict:
    assert len(outcomes) == len(ROLES)
    return dict(zip(ROLES, outcomes, strict=True))


def everyone(outcome) -> dict:
    return row(*[outcome] * len(ROLES))


def staff_only(supervisor=200) -> dict:
    """The admin sends everyone but staff to its sign-in page; supervisors are staff."""
    return row(*[ADMIN_LOGIN] * (len(ROLES) - 1), supervisor)


# fmt: off
#                                                     anonymous    other_agent  agent  other_op  operator    supervisor
API = {
    "api/v1/decisions":                       {"POST": row(401,    403,         200,   403,      403,        403)},
    # A batch answers 200 with each entry's own error: the other agent's entry fails with 403 inside.
    "api/v1/decisions/batch":                 {"POST": row(401,    200,         200,   403,      403,        403)},
    "api/v1/exceptions":                      {"GET":  row(401,    200,         200,   200,      200,        200),
                                               "POST": row(401,    403,         201,   403,      403,        403)},
    "api/v1/exceptions/<int:item_id>":        {"GET":  row(401,    404,         200,   404,      200,        200)},
    "api/v1/exceptions/<int:item_id>/cancel": {"POST": row(401,    404,         200,   403,      403,        403)},
    "api/v1/exceptions/<int:item_id>/claim":  {"POST": row(401,    403,         403,   404,      200,        200)},
    "api/v1/exceptions/<int:item_id>/renew":  {"POST": row(401,    403,         403,   404,      200,        200)},
    "api/v1/exceptions/<int:item_id>/release": {"POST": row(401,   403,         403,   404,      200,        200)},
    "api/v1/exceptions/<int:item_id>/resolve": {"POST": row(401,   403,         403,   404,      200,        200)},
    "api/v1/exceptions/<int:item_id>/snooze": {"POST": row(401,    403,         403,   404,      200,        200)},
    "api/v1/exceptions/<int:item_id>/comments": {"POST": row(401,  403,         403,   404,      201,        201)},
    "api/v1/exceptions/<int:item_id>/timeline": {"GET": row(401,   404,         200,   404,      200,        200)},
    "api/v1/queues":                          {"GET":  row(401,    403,         403,   200,      200,        200)},
    "api/v1/queues/<slug:name>":              {"GET":  row(401,    403,         403,   404,      200,        200),
                                               "PUT":  row(401,    403,         403,   403,      403,        200)},
    "api/v1/queues/<slug:name>/claim-next":   {"POST": row(401,    403,         403,   404,      200,        200)},
    # Each agent reads the resolutions of its own workflows only.
    "api/v1/resolutions":                     {"GET":  row(401,    200,         200,   403,      403,        403)},
    "api/v1/resolutions/stream":              {"GET":  row(401,    200,         200,   403,      403,        403)},
    "api/v1/deliveries":                      {"GET":  row(401,    403,         403,   403,      403,        200)},
    "api/v1/deliveries/redeliver":            {"POST": row(401,    403,         403,   403,      403,        200)},
    "api/v1/stats/":                          {"GET":  row(401,    403,         403,   403,      403,        200)},
    "api/v1/stats/queues":                    {"GET":  row(401,    403,         403,   403,      403,        200)},
    "api/v1/stats/workflows":                 {"GET":  row(401,    403,         403,   403,      403,        200)},
    "api/v1/stats/latency":                   {"GET":  row(401,    403,         403,   403,      403,        200)},
    "api/v1/stats/operators":                 {"GET":  row(401,    403,         403,   403,      403,        200)},
    "api/v1/stats/capacity":                  {"GET":  row(401,    403,         403,   403,      403,        200)},
    "api/v1/stats/agreement":                 {"GET":  row(401,    403,         403,   403,      403,        200)},
    "api/v1/workflows/<str:name>/accountability": {"GET": row(401, 403,         403,   403,      403,        200)},
    # Nothing is tripped in this world, so the supervisor's reset is a 409 (the reset: test_accountability).
    "api/v1/workflows/<str:name>/reset-breaker": {"POST": row(401, 403,         403,   403,      403,        409)},
    "api/v1/workflows/<str:name>":            {"GET":  row(401,    403,         403,   403,      403,        200),
                                               "PUT":  row(401,    403,         403,   403,      403,        200)},
    "api/v1/workflows/<str:name>/replay":     {"POST": row(401,    403,         403,   403,      403,        200)},
    "api/v1/replays/<int:run_id>":            {"GET":  row(401,    403,         403,   403,      403,        200)},
    # Agents build clients from the schema; people read the docs. Nobody anonymous: the docs page
    # sends a caller with neither session nor token to the sign-in page (README says to sign in).
    "api/schema/":                            {"GET":  row(401,    200,         200,   200,      200,        200)},
    "api/docs/":                              {"GET":  row(LOGIN,  200,         200,   200,      200,        200)},
    # The catch-all (an empty pattern, last): any other path under /api/v1/ is a 404 in the API's
    # error shape, before authentication; it discloses nothing.
    "api/v1/":                                {"GET":  row(404,    404,         404,   404,      404,        404),
                                               "POST": row(404,    404,         404,   404,      404,        404)},
}

OPEN = {
    "healthz":                                {"GET":  row(200,    200,         200,   200,      200,        200)},
    "readyz":                                 {"GET":  row(200,    200,         200,   200,      200,        200)},
    # Loopback clients only (see the module docstring); the test client is 127.0.0.1.
    "metrics":                                {"GET":  row(200,    200,         200,   200,      200,        200)},
    # An empty sign-in form answers 200 with its errors.
    "accounts/login/":                        {"GET":  row(200,    200,         200,   200,      200,        200),
                                               "POST": row(200,    200,         200,   200,      200,        200)},
    "accounts/logout/":                       {"POST": everyone(SIGNED_OUT)},
}

CONSOLE = {
    "":                                       {"GET":  row(LOGIN,  403,         403,   200,      200,        200)},
    "queues/table":                           {"GET":  row(LOGIN,  403,         403,   200,      200,        200)},
    "queues/<slug:name>/next":                {"POST": row(LOGIN,  403,         403,   Kept(HOME), ITEM,     ITEM)},
    "items/search":                           {"GET":  row(LOGIN,  403,         403,   200,      200,        200)},
    # No selected item is among the other operator's: 400 naming the items, nothing changes.
    "items/bulk":                             {"POST": row(LOGIN,  403,         403,   Kept(400), SEARCH,    SEARCH)},
    "items/<int:item_id>":                    {"GET":  row(LOGIN,  403,         403,   404,      200,        200)},
    "items/<int:item_id>/claim":              {"POST": row(LOGIN,  403,         403,   404,      ITEM,       ITEM)},
    "items/<int:item_id>/renew":              {"POST": row(LOGIN,  403,         403,   404,      200,        200)},
    "items/<int:item_id>/release":            {"POST": row(LOGIN,  403,         403,   404,      ITEM,       ITEM)},
    "items/<int:item_id>/approve":            {"POST": row(LOGIN,  403,         403,   404,      HOME,       HOME)},
    "items/<int:item_id>/reject":             {"POST": row(LOGIN,  403,         403,   404,      HOME,       HOME)},
    # The item here has no LangGraph interrupt: a response is refused on its page, nothing changes
    # (a response that is taken: test_langgraph_console_browser).
    "items/<int:item_id>/respond":            {"POST": row(LOGIN,  403,         403,   404, Kept(409), Kept(409))},
    "items/<int:item_id>/escalate":           {"POST": row(LOGIN,  403,         403,   404,      HOME,       HOME)},
    "items/<int:item_id>/snooze":             {"POST": row(LOGIN,  403,         403,   404,      HOME,       HOME)},
    "items/<int:item_id>/comment":            {"POST": row(LOGIN,  403,         403,   404,      ITEM,       ITEM)},
    "items/<int:item_id>/edit/preview":       {"POST": row(LOGIN,  403,         403,   404,      200,        200)},
    "items/<int:item_id>/modify":             {"POST": row(LOGIN,  403,         403,   404,      HOME,       HOME)},
    # Nobody here has a decision to undo: a message on the item's page, nothing changes.
    "items/<int:item_id>/undo":               {"POST": row(LOGIN,  403,         403,   404, Kept(ITEM), Kept(ITEM))},
    # Supervisor-only actions: an operator of the item's team gets 403 and the reason, nothing changes.
    "items/<int:item_id>/reassign":           {"POST": row(LOGIN,  403,         403,   404,      403,        ITEM)},
    "items/<int:item_id>/reprioritise":       {"POST": row(LOGIN,  403,         403,   404,      403,        ITEM)},
    "dashboard":                              {"GET":  row(LOGIN,  403,         403,   403,      403,        200)},
    "dashboard/live":                         {"GET":  row(LOGIN,  403,         403,   403,      403,        200)},
    "dashboard/capacity":                     {"GET":  row(LOGIN,  403,         403,   403,      403,        200)},
    "dashboard/export/<slug:table>.csv":      {"GET":  row(LOGIN,  403,         403,   403,      403,        200)},
    "dashboard/dead-letters/redeliver":       {"POST": row(LOGIN,  403,         403,   403,      403,      DASHBOARD)},
    "workflows/<str:name>/accountability":    {"GET":  row(LOGIN,  403,         403,   403,      403,        200)},
    "workflows/<str:name>/accountability/reset-breaker":
                                              {"POST": row(LOGIN,  403,         403,   403,      403, ACCOUNTABILITY)},
    "workflows/<str:name>/accountability/publish-threshold":
                                              {"POST": row(LOGIN,  403,         403,   403,      403, ACCOUNTABILITY)},
    "policies/replay":                        {"GET":  row(LOGIN,  403,         403,   403,      403,        200)},
    "policies/replay/run":                    {"POST": row(LOGIN,  403,         403,   403,      403,        200)},
    "policies/replay/runs/<int:run_id>":      {"GET":  row(LOGIN,  403,         403,   403,      403,        200)},
    # An unchanged draft publishes nothing and goes back to the page.
    "policies/replay/publish":                {"POST": row(LOGIN,  403,         403,   403,      403,        REPLAY)},
    # People: supervisors only; each change redirects to the page it was made on.
    "people":                                 {"GET":  row(LOGIN,  403,         403,   403,      403,        200)},
    "people/add":                             {"POST": row(LOGIN,  403,         403,   403,      403,        PEOPLE)},
    "people/teams":                           {"POST": row(LOGIN,  403,         403,   403,      403,        PEOPLE)},
    "people/<int:user_id>":                   {"GET":  row(LOGIN,  403,         403,   403,      403,        200)},
    "people/<int:user_id>/change":            {"POST": row(LOGIN,  403,         403,   403,      403,        PERSON)},
    "people/<int:user_id>/active":            {"POST": row(LOGIN,  403,         403,   403,      403,        PERSON)},
    "people/<int:user_id>/password":          {"POST": row(LOGIN,  403,         403,   403,      403,        PERSON)},
    "system/workers":                         {"GET":  row(LOGIN,  403,         403,   200,      200,        200)},
    "system/workers/ping":                    {"POST": row(LOGIN,  403,         403,   HOME,     HOME,       HOME)},
}

# The admin is for staff: everyone else is sent to its sign-in page. Supervisors are superusers.
STAFF_ONLY = staff_only()
STAFF_ONLY_READ_ONLY = staff_only(403)
ADMIN_SITE = {
    "admin/":                                 {"GET":  STAFF_ONLY},
    "admin/login/":                           {"GET":  row(200,    200,         200,   200,      200,        ADMIN)},
    # Signing out of the admin only signs out staff; anyone else is sent back to the admin, unchanged.
    "admin/logout/":                          {"POST": row(ADMIN,  ADMIN,       ADMIN, ADMIN,    ADMIN,    SIGNED_OUT)},
    "admin/password_change/":                 {"GET":  STAFF_ONLY},
    "admin/password_change/done/":            {"GET":  STAFF_ONLY},
    "admin/autocomplete/":                    {"GET":  staff_only(403)},
    "admin/jsi18n/":                          {"GET":  STAFF_ONLY},
    # No model has a public page (get_absolute_url), so even staff get 404.
    "admin/r/<path:content_type_id>/<path:object_id>/": {"GET": staff_only(404)},
    "admin/^(?P<app_label>auth|exceptions_app|axes)/$": {"GET": STAFF_ONLY},
    "admin/(?P<url>.*)$":                     {"GET":  staff_only(404)},
    "admin/auth/user/<id>/password/":         {"GET":  STAFF_ONLY},
}
# fmt: on

EDITABLE_MODELS = ("auth/group", "auth/user", "exceptions_app/team", "exceptions_app/queue", "exceptions_app/principal")
# Captured state, tokens, policies and the audit log change only through services: view, never add or delete.
READ_ONLY_MODELS = (
    "exceptions_app/apitoken",
    "exceptions_app/workflow",
    "exceptions_app/policyversion",
    "exceptions_app/exceptionitem",
    "exceptions_app/auditevent",
)
# django-axes' sign-in records: written by axes only; a supervisor may view and delete them (to unlock).
SIGN_IN_RECORD_MODELS = ("axes/accessattempt", "axes/accessfailurelog", "axes/accesslog")


def _model_admin_routes(model: str, *, add: dict, delete: dict) -> dict:
    base = f"admin/{model}/"
    return {
        base: {"GET": STAFF_ONLY},
        f"{base}add/": {"GET": add},
        f"{base}<path:object_id>/history/": {"GET": STAFF_ONLY},
        f"{base}<path:object_id>/delete/": {"GET": delete},
        f"{base}<path:object_id>/change/": {"GET": STAFF_ONLY},
        # The bare object URL sends staff on to the object's change page.
        f"{base}<path:object_id>/": {"GET": staff_only(Redirect(f"/{base}"))},
    }


ADMIN_MODELS = {
    route: expected
    for models, add, delete in (
        (EDITABLE_MODELS, STAFF_ONLY, STAFF_ONLY),
        (READ_ONLY_MODELS, STAFF_ONLY_READ_ONLY, STAFF_ONLY_READ_ONLY),
        (SIGN_IN_RECORD_MODELS, STAFF_ONLY_READ_ONLY, STAFF_ONLY),
    )
    for model in models
    for route, expected in _model_admin_routes(model, add=add, delete=delete).items()
}

TABLE = {**API, **OPEN, **CONSOLE, **ADMIN_SITE, **ADMIN_MODELS}


def _routes(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def test_every_route_is_in_the_table():
    routes = set(_routes(get_resolver().url_patterns))

    unlisted, stale = sorted(routes - set(TABLE)), sorted(set(TABLE) - routes)
    assert not unlisted, f"routes with no entry in the permission table: {unlisted}"
    assert not stale, f"entries of the permission table with no route: {stale}"


def test_the_mcp_endpoint_is_outside_the_urlconf_and_its_roles_are_pinned_elsewhere():
    """``/mcp`` is not a Django route: ``exceptions_app/asgi.py`` hands it to the MCP server's own ASGI
    app before Django sees the request, so the walk of the URL resolver above never meets it and it
    has no row in the table. Its access rules are the API's agent rules and are pinned against the
    real server by ``tests/test_mcp.py``: anonymous and an invalid token 401, an operator or a
    supervisor 403, an agent scoped to another workflow refused by every tool (forbidden, or
    not_found for an item it may not see), the workflow's agent served. This test fails if the path
    ever becomes a Django route (then it needs a row here) or stops going to the MCP app."""
    from django.urls import Resolver404, resolve

    from exceptions_app.integrations.mcp.http import is_mcp_path

    for path in ("/mcp", "/mcp/"):
        assert is_mcp_path(path)
        with pytest.raises(Resolver404):
            resolve(path)
    assert not is_mcp_path("/mcpx")
    assert not is_mcp_path("/api/v1/mcp")


# The only routes an anonymous caller may use. Health and readiness are for load balancers and
# carry nothing; the sign-in and sign-out pages must answer before there is a session; the admin's
# own sign-in and sign-out likewise; the API catch-all answers 404 before authentication and
# discloses nothing. /metrics is for Prometheus, which has no session: it answers loopback clients
# (and, with TOLLGATE_METRICS_TOKEN set, only the bearer of that token), as
# test_metrics_refuse_other_addresses_and_need_the_token_when_set pins.
ANONYMOUS_ALLOWED = {
    "healthz",
    "readyz",
    "metrics",
    "accounts/login/",
    "accounts/logout/",
    "admin/login/",
    "admin/logout/",
}


def test_every_route_outside_the_allowlist_refuses_anonymous_callers():
    open_to_anyone = [
        f"{method} /{route}"
        for route, methods in TABLE.items()
        for method, outcomes in methods.items()
        if route not in ANONYMOUS_ALLOWED and outcomes["anonymous"] not in REFUSALS
    ]
    assert not open_to_anyone, f"answer anonymous callers without being allowlisted: {open_to_anyone}"
    assert set(TABLE) >= ANONYMOUS_ALLOWED, ANONYMOUS_ALLOWED - set(TABLE)


@dataclass
class World:
    item: ExceptionItem
    principals: dict
    tokens: dict
    objects: dict


@pytest.fixture
def world(billing_queues, django_user_model) -> World:
    """One held billing item, a person or token for each role, and an object of every admin model."""
    policy_publish(document=billing_document(workflow=OTHER_WORKFLOW), source=PolicySource.FILE)
    other_queue = Queue.objects.create(name="other-queue", sla_seconds=600)
    other_queue.teams.add(Team.objects.create(name="other-team"))
    principals = {
        "other_agent": principal_ensure(name="other-bot", role="agent", workflows=[OTHER_WORKFLOW]),
        "agent": principal_ensure(name="billing-bot", role="agent", workflows=[BILLING]),
        "other_operator": principal_ensure(name="oscar", role="operator", teams=["other-team"]),
        "operator": principal_ensure(name="olga", role="operator", teams=["billing-team"]),
        "supervisor": principal_ensure(name="sam", role="supervisor"),
    }
    principals["supervisor"].user.is_superuser = True
    principals["supervisor"].user.save(update_fields=["is_superuser"])
    tokens = {role: token_create(principal=principal)[1] for role, principal in principals.items()}
    agent = APIClient()
    agent.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['agent']}")
    item = ExceptionItem.objects.get(pk=hold(agent))
    workflow = Workflow.objects.get(name=BILLING)
    objects = {
        "auth/group": Group.objects.create(name="reviewers"),
        "auth/user": principals["operator"].user,
        "exceptions_app/team": Team.objects.get(name="billing-team"),
        "exceptions_app/queue": item.queue,
        "exceptions_app/principal": principals["operator"],
        "exceptions_app/apitoken": ApiToken.objects.filter(principal=principals["operator"]).first(),
        "exceptions_app/workflow": workflow,
        "exceptions_app/policyversion": PolicyVersion.objects.get(pk=workflow.current_policy_id),
        "exceptions_app/exceptionitem": item,
        "exceptions_app/auditevent": AuditEvent.objects.filter(item=item).first(),
        "replay": ReplayRun.objects.create(
            workflow=workflow,
            document=billing_document(),
            created_at=timezone.now(),
            expires_at=timezone.now() + timedelta(hours=1),
        ),
        **{
            f"axes/{model.__name__.lower()}": model.objects.create(
                username="mallory", ip_address="192.0.2.1", user_agent="curl", http_accept="*/*", path_info="/", **extra
            )
            for model, extra in (
                (AccessAttempt, {"get_data": "", "post_data": "", "failures_since_start": 1}),
                (AccessFailureLog, {}),
                (AccessLog, {}),
            )
        },
    }
    return World(item=item, principals=principals, tokens=tokens, objects=objects)


def _path(route: str, world: World) -> str:
    """The route with real objects in its parameters."""
    specials = {
        "admin/^(?P<app_label>auth|exceptions_app|axes)/$": "admin/exceptions_app/",
        "api/v1/": "api/v1/no-such-endpoint",
        "admin/(?P<url>.*)$": "admin/no-such-page/",
        "admin/r/<path:content_type_id>/<path:object_id>/": (
            f"admin/r/{ContentType.objects.get_for_model(Queue).pk}/{world.item.queue_id}/"
        ),
        "admin/auth/user/<id>/password/": f"admin/auth/user/{world.principals['operator'].user_id}/password/",
    }
    if route in specials:
        return "/" + specials[route]
    path = route.replace("<int:item_id>", str(world.item.pk)).replace("<slug:table>", "queues")
    path = path.replace("<int:user_id>", str(world.principals["operator"].user_id))
    path = path.replace("<str:name>", BILLING).replace("<slug:name>", world.item.queue.name)
    path = path.replace("<int:run_id>", str(world.objects["replay"].pk))
    if "<path:object_id>" in path:
        model = "/".join(route.split("/")[1:3])
        path = path.replace("<path:object_id>", str(world.objects[model].pk))
    assert "<" not in path, f"no value for a parameter of {route}"
    return "/" + path


NEW_PASSWORD = {"password": "correct horse battery staple", "password_again": "correct horse battery staple"}


def _body(route: str, world: World) -> dict:
    """A valid body for each route that takes one, so that allowed roles get past validation."""
    until = (timezone.now() + timedelta(hours=1)).isoformat()
    bodies = {
        "api/v1/decisions": decision_body(confidence=0.5),
        "api/v1/decisions/batch": {"decisions": [decision_body(confidence=0.5)]},
        "api/v1/exceptions": {"workflow": BILLING, "reason": "tool_failure"},
        "api/v1/exceptions/<int:item_id>/resolve": {"action": "approve"},
        "api/v1/exceptions/<int:item_id>/snooze": {"until": until},
        "api/v1/exceptions/<int:item_id>/comments": {"text": "checked with the customer"},
        "api/v1/queues/<slug:name>": {"sla_seconds": 1800},
        "api/v1/deliveries/redeliver": {"delivery_ids": ["msg_none"]},
        "api/v1/workflows/<str:name>": billing_document(),
        "api/v1/workflows/<str:name>/replay": {"policy": billing_document(), "limit": 10},
        "queues/<slug:name>/next": {},
        "items/bulk": {"items": [str(world.item.pk)], "action": "approve", "confirmed": "on"},
        "items/<int:item_id>/reject": {"reason_code": "wrong_amount"},
        "items/<int:item_id>/respond": {"note": "use the March tariff"},
        "items/<int:item_id>/snooze": {"seconds": "900"},
        "items/<int:item_id>/comment": {"text": "checked with the customer"},
        "items/<int:item_id>/edit/preview": {"output": '{"invoice_id": "INV-1"}'},
        "items/<int:item_id>/modify": {"output": json.dumps(invoice_output(amount=99.0))},
        "items/<int:item_id>/reassign": {"to": "olga"},
        "items/<int:item_id>/reprioritise": {"priority": "50"},
        "dashboard/dead-letters/redeliver": {"deliveries": ["msg_none"]},
        "workflows/<str:name>/accountability/publish-threshold": {"auto_approve": "0.95"},
        "policies/replay/run": {"workflow": BILLING, "draft": yaml.safe_dump(billing_document()), "window": "7d"},
        "policies/replay/publish": {
            "workflow": BILLING,
            "draft": yaml.safe_dump(billing_document()),
            "checksum": policy_document_checksum(billing_document()),
        },
        "people/add": {"username": "nora", "role": "operator", "teams": ["billing-team"], **NEW_PASSWORD},
        "people/teams": {"team": "billing-team", "queues": [world.item.queue.name]},
        "people/<int:user_id>/change": {"role": "operator", "teams": ["other-team"]},
        "people/<int:user_id>/active": {"active": "false"},
        "people/<int:user_id>/password": NEW_PASSWORD,
    }
    return bodies.get(route, {})


# Actions on a claimed item: the acting person holds it; a caller outside the scope finds it held by olga.
NEEDS_CLAIM = {
    "api/v1/exceptions/<int:item_id>/renew",
    "api/v1/exceptions/<int:item_id>/release",
    "api/v1/exceptions/<int:item_id>/resolve",
    "api/v1/exceptions/<int:item_id>/snooze",
    "items/<int:item_id>/renew",
    "items/<int:item_id>/release",
    "items/<int:item_id>/approve",
    "items/<int:item_id>/reject",
    "items/<int:item_id>/respond",
    "items/<int:item_id>/escalate",
    "items/<int:item_id>/snooze",
    "items/<int:item_id>/modify",
}


def _claim_for(role: str, world: World) -> None:
    holder = world.principals[role if role in ("operator", "supervisor") else "operator"]
    ExceptionItem.objects.filter(pk=world.item.pk).update(
        status=ItemStatus.CLAIMED,
        claimed_by=holder.user,
        claimed_at=timezone.now(),
        claim_expires_at=timezone.now() + timedelta(minutes=10),
    )


def _client(route: str, role: str, world: World):
    if route.startswith("api/"):
        client = APIClient()
        if role != "anonymous":
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.tokens[role]}")
        return client
    client = Client()
    if role != "anonymous":
        client.force_login(world.principals[role].user)
    return client


def _state() -> tuple:
    """Everything a refused request must leave as it was."""
    counts = tuple(
        model.objects.count()
        for model in (
            GateDecision,
            ExceptionItem,
            AuditEvent,
            Delivery,
            WorkerPing,
            PolicyVersion,
            Queue,
            Principal,
            Team,
        )
    )
    people = tuple(
        Principal.objects.order_by("pk").values_list("role", "user__is_active", "user__password", "teams__name")
    )
    items = tuple(
        ExceptionItem.objects.order_by("pk").values_list("status", "claimed_by", "priority", "queue", "snoozed_until")
    )
    return counts, items, people


def _send(client, route: str, method: str, world: World):
    path, body = _path(route, world), _body(route, world)
    if method == "GET":
        return client.get(path)
    if route.startswith("api/"):
        return client.generic(method, path, data=json.dumps(body), content_type="application/json")
    return client.post(path, body)


def _matches(response, outcome, world: World) -> bool:
    if isinstance(outcome, int):
        return response.status_code == outcome
    location = response.get("Location", "")
    target = outcome.to.replace("{item}", str(world.item.pk)).replace(
        "{person}", str(world.principals["operator"].user_id)
    )
    return response.status_code == 302 and (location == target if outcome.exact else location.startswith(target))


CASES = [(route, method) for route, methods in TABLE.items() for method in methods]


@pytest.mark.parametrize(("route", "method"), CASES, ids=[f"{method} /{route}" for route, method in CASES])
def test_each_role_gets_what_the_table_says(world, route, method):
    clients = {role: _client(route, role, world) for role in ROLES}
    wrong = []
    for role in ROLES:
        expected = TABLE[route][method][role]
        with transaction.atomic():
            if route in NEEDS_CLAIM:
                _claim_for(role, world)
            before = _state()
            response = _send(clients[role], route, method, world)
            after = _state()
            transaction.set_rollback(True)
        local_caches_clear()
        must_keep = isinstance(expected, Kept) or expected in REFUSALS
        outcome = expected.outcome if isinstance(expected, Kept) else expected
        if not _matches(response, outcome, world):
            wrong.append(f"{role}: expected {outcome}, got {response.status_code} {response.get('Location', '')}")
        elif must_keep and before != after:
            wrong.append(f"{role}: refused with {response.status_code} but changed the database")
    assert not wrong, f"{method} /{route}: " + "; ".join(wrong)


def test_metrics_refuse_other_addresses_and_need_the_token_when_set(world, settings):
    supervisor = _client("metrics", "supervisor", world)

    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 403
    assert supervisor.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    settings.TOLLGATE_METRICS_TOKEN = "scrape-secret"
    assert Client().get("/metrics").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert (
        Client(REMOTE_ADDR="203.0.113.9").get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200
    )


def test_an_api_token_does_not_open_the_console_or_the_admin(world):
    operator = APIClient()
    operator.credentials(HTTP_AUTHORIZATION=f"Bearer {world.tokens['supervisor']}")

    assert _matches(operator.get("/"), LOGIN, world)
    assert _matches(operator.get("/dashboard"), LOGIN, world)
    assert _matches(operator.get("/admin/"), ADMIN_LOGIN, world)


PROBED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Catch-alls answer 404 to every method: they route nothing.
CATCH_ALLS = {"api/v1/", "admin/(?P<url>.*)$"}


def _admitted_role(route: str) -> str:
    """A role the table lets past authentication and permissions on this route, so that what it
    gets for another method is the view's answer to the method, not a refusal of the caller."""
    for role in reversed(ROLES):
        if any(outcomes[role] not in REFUSALS for outcomes in TABLE[route].values()):
            return role
    return "supervisor"


NON_ADMIN_ROUTES = [route for route in TABLE if not route.startswith("admin/")]


@pytest.mark.parametrize("route", NON_ADMIN_ROUTES, ids=[f"/{route}" for route in NON_ADMIN_ROUTES])
def test_no_route_accepts_a_method_the_table_does_not_list(world, route):
    role = _admitted_role(route)
    client = _client(route, role, world)
    accepted = []
    for method in sorted(set(PROBED_METHODS) - set(TABLE[route])):
        with transaction.atomic():
            if route in NEEDS_CLAIM:
                _claim_for(role, world)
            response = client.generic(method, _path(route, world), "{}", content_type="application/json")
            transaction.set_rollback(True)
        local_caches_clear()
        if response.status_code != 405 and not (route in CATCH_ALLS and response.status_code == 404):
            accepted.append(f"{method} answered {response.status_code} to {role}")
    assert not accepted, f"/{route} takes methods the permission table does not list: {accepted}"


ADMIN_ROUTES = [route for route in TABLE if route.startswith("admin/") and route not in ANONYMOUS_ALLOWED]


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=[f"/{route}" for route in ADMIN_ROUTES])
def test_the_admin_refuses_non_staff_whatever_the_method(world, route):
    # Django's admin views do not restrict methods (they read any verb as a GET or as their form's
    # POST), so the table lists what staff use; the invariant is that no verb lets anyone else in.
    operator = _client(route, "operator", world)
    let_in = []
    for method in PROBED_METHODS:
        with transaction.atomic():
            response = operator.generic(method, _path(route, world))
            transaction.set_rollback(True)
        if not _matches(response, ADMIN_LOGIN, world):
            let_in.append(f"{method} answered {response.status_code}")
    assert not let_in, f"/{route} lets a non-staff operator in: {let_in}"
