"""Schemathesis fuzzes every operation of the OpenAPI schema against a live server, once per role.

The schema is the one the app's /api/schema/ view serves. Each operation gets generated valid and
invalid requests with an agent's, an operator's, a supervisor's or no token; a stateful run then
follows the schema's links (submit or claim, then act on the item the response named). Every
response must be a documented status whose body and content type match the schema, and none may be
a 5xx. The findings are pinned one by one in ``test_api_fuzz_findings.py``.

``TOLLGATE_FUZZ_EXAMPLES`` bounds the generated examples per operation (small by default: the file
runs in well under two minutes in CI); the benchmark run raises it::

    TOLLGATE_FUZZ_EXAMPLES=500 make test PYTEST_ARGS=tests/test_api_fuzz.py
"""

import json
import os
import random
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import requests
import schemathesis
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings
from django.urls import resolve
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyStrategyDefinition
from pytest_django.live_server_helper import LiveServer
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from exceptions_app.models import Delivery, DeliveryStatus, PolicySource, Principal
from exceptions_app.services import items as lifecycle
from exceptions_app.services.policies import policy_publish
from exceptions_app.services.tokens import principal_ensure, token_create
from tests.fixtures.gate import BILLING, billing_document, billing_queues_staffed, decision_body

EXAMPLES = int(os.environ.get("TOLLGATE_FUZZ_EXAMPLES", "20"))
ROLES = ("agent", "operator", "supervisor", "anonymous")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Long enough for one operation at the chosen number of examples on a loaded 2-core machine.
TIMEOUT_SECONDS = 180 + EXAMPLES
# The mark makes pytest-django create the test database; each test's own transaction stays empty, since
# the seeded rows are committed once for the module and the requests run in the live server's threads.
pytestmark = pytest.mark.django_db


@dataclass
class FuzzWorld:
    """What the seeded database holds, so generated requests can name real items, queues and workflows."""

    url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    item_ids: list[int] = field(default_factory=list)


def _token(name: str, role: str, **scope) -> tuple[Principal, str]:
    principal = principal_ensure(name=name, role=role, **scope)
    return principal, token_create(principal=principal)[1]


def _seed(world: FuzzWorld) -> None:
    """The billing workflow and queues, the three roles' tokens, and items in every state an operator meets."""
    policy_publish(document=billing_document(), source=PolicySource.FILE)
    billing_queues_staffed()
    agent, world.tokens["agent"] = _token("fuzz-agent", "agent", workflows=[BILLING])
    operator, world.tokens["operator"] = _token("fuzz-operator", "operator", teams=["billing-team"])
    _, world.tokens["supervisor"] = _token("fuzz-supervisor", "supervisor")

    submitting = APIClient()
    submitting.credentials(HTTP_AUTHORIZATION=f"Bearer {world.tokens['agent']}")
    for number in range(6):
        body = decision_body(confidence=0.4, correlation_id=f"fuzz-{number}", callback_url="http://127.0.0.1:9/hook")
        world.item_ids.append(submitting.post("/api/v1/decisions", body, format="json").json()["exception"]["id"])
    claimed, resolved, snoozed, cancelled, escalated = world.item_ids[1:]
    for item_id in (claimed, resolved, snoozed, escalated):
        lifecycle.item_claim(item_id=item_id, principal=operator)
    lifecycle.item_resolve(item_id=resolved, principal=operator, action="approve")
    lifecycle.item_resolve(item_id=escalated, principal=operator, action="escalate", note="needs a senior")
    lifecycle.item_snooze(item_id=snoozed, principal=operator, until=timezone.now() + timedelta(hours=1))
    lifecycle.item_cancel(item_id=cancelled, actor=agent.user, reason="superseded")
    Delivery.objects.filter(item_id=resolved).update(status=DeliveryStatus.DEAD, dead_at=timezone.now())


@pytest.fixture(scope="module")
def fuzz_world(django_db_setup, django_db_blocker):
    """One seeded database and one live server (real threads, committed transactions) for the whole file.

    pytest-django's ``live_server`` would flush and reseed around each of the hundred operation-role
    pairs, which costs more than the fuzzing; here the state the fuzzer leaves behind carries over,
    and the database is flushed once at the end.
    """
    unlimited = override_settings(TOLLGATE_RATE_LIMIT_PER_MINUTE=10_000_000)  # not the rate limit under test
    with django_db_blocker.unblock():
        unlimited.enable()
        world = FuzzWorld()
        server = None
        try:
            _seed(world)
            server = LiveServer("localhost")
            server._live_server_modified_settings.enable()
            world.url = server.url
            yield world
        finally:
            if server is not None:
                server._live_server_modified_settings.disable()
                server.stop()
            unlimited.disable()
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(params=ROLES)
def role(request) -> str:
    return request.param


def _served_schema() -> dict:
    """The schema as the app's /api/schema/ view serves it, read at collection time (no database yet),
    by a signed-in caller that exists only for this request (the view needs one, and nothing else)."""
    request = APIRequestFactory().get("/api/schema/", {"format": "json"})
    force_authenticate(request, user=get_user_model()(username="schema-reader"))
    response = resolve("/api/schema/").func(request)
    response.render()
    assert response.status_code == 200, response.content[:500]
    return json.loads(response.content)


NAMES = ["billing", "billing-senior", BILLING]
schema = schemathesis.openapi.from_dict(
    _served_schema(),
    config=schemathesis.Config.from_dict(
        {
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            # Random names match nothing; offering the seeded ones often reaches the logic behind the 404s.
            "dictionaries": {"names": {"values": NAMES}, "workflows": {"values": [BILLING]}},
            "parameters": {
                "path.name": {"dictionary": "names", "probability": 0.6},
                "query.queue": {"dictionary": "names", "probability": 0.4},
                "query.workflow": {"dictionary": "workflows", "probability": 0.4},
                "body.workflow": {"dictionary": "workflows", "probability": 0.8},
            },
        }
    ),
    # The resolutions stream never ends by design (a heartbeat keeps it open), so a fuzzed call would never
    # return; tests/test_waits.py drives it with a real client and test_bad_input.py its bad parameters.
).exclude(operation_id="resolution_stream")


def _point_at_seeded_rows(case, world: FuzzWorld, pick: int) -> None:
    """Most generated ids match nothing; swap in seeded ones (known only once seeded) often enough to
    reach the lifecycle behind the 404s."""
    path = case.path_parameters or {}
    if "item_id" in path and pick < len(world.item_ids):
        path["item_id"] = world.item_ids[pick]
    _shorten_long_poll(case)


def _shorten_long_poll(case) -> None:
    wait = (case.query or {}).get("wait")
    if isinstance(wait, int) and wait > 1:
        case.query["wait"] = 1  # a long poll on an open item would hold the run for up to a minute


@settings(deadline=None, suppress_health_check=list(HealthCheck))
@schema.given(pick=st.integers(min_value=0, max_value=7))
@schema.parametrize()
@pytest.mark.timeout(TIMEOUT_SECONDS)
def test_every_operation_answers_as_documented_for_each_role(case, pick, role, fuzz_world):
    _point_at_seeded_rows(case, fuzz_world, pick)
    headers = {"Authorization": f"Bearer {fuzz_world.tokens[role]}"} if role in fuzz_world.tokens else {}
    case.call_and_validate(base_url=fuzz_world.url, headers=headers, checks=CHECKS, timeout=30)


# Who calls each operation in real life; the stateful run below hands each step that role's token.
AGENT_OPERATIONS = {
    "decision_submit",
    "decision_submit_batch",
    "exception_report",
    "exception_cancel",
    "resolution_feed",
}
SUPERVISOR_OPERATIONS = {
    "queue_put",
    "workflow_get",
    "workflow_put",
    "workflow_replay",
    "replay_get",
    "delivery_list",
    "delivery_redeliver",
}


class LinkedOperations(schema.as_state_machine()):
    """Follows the schema's links (schema_links.py and those schemathesis infers): an operator claims the
    next item, then resolves, releases, snoozes or comments on the item the response named; a resolved
    item is read back; a supervisor's queue is read after it is configured. Each step is called with the
    token of the role that does it in real life and checked like the single operations above."""

    world: FuzzWorld

    def setup(self) -> None:
        """Undo what the fuzzing before may have changed (a supervisor's random but valid policy or queue
        settings), then hold one output, so that claiming the next item of the billing queue (a root of
        the chains: schemathesis does not start from the gate's operations, whose ``correlation_id`` it
        takes for a reference to a resource nothing creates) leads on to the item's lifecycle."""
        self.handed_out: set[int] = set()
        for role, method, path, body in (
            ("supervisor", "PUT", f"/api/v1/workflows/{BILLING}", billing_document()),
            ("supervisor", "PUT", "/api/v1/queues/billing", {"teams": ["billing-team"]}),
            ("agent", "POST", "/api/v1/decisions", decision_body(confidence=0.3)),
        ):
            response = requests.request(
                method, f"{self.world.url}{path}", json=body, headers=self._headers(role), timeout=30
            )
            assert response.status_code in (200, 201), response.text
        assert response.json()["verdict"] == "hold", response.text

    def _headers(self, role: str) -> dict:
        return {"Authorization": f"Bearer {self.world.tokens[role]}"}

    def before_call(self, case) -> None:
        """Roots start from random ids and names, which match nothing; point them at the seeded queue and
        items instead. Ids a link took from an earlier response are left as they are."""
        _shorten_long_poll(case)
        path = case.path_parameters or {}
        if self.schema.get_operation_id(case.operation) == "queue_claim_next":
            path["name"] = "billing"
        if "item_id" in path and path["item_id"] not in self.handed_out:
            path["item_id"] = random.Random(str(path["item_id"])).choice(self.world.item_ids)

    def after_call(self, response, case) -> None:
        body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else None
        if isinstance(body, dict):
            self.handed_out.update({body.get("id"), (body.get("exception") or {}).get("id")} - {None})

    def get_call_kwargs(self, case) -> dict:
        operation_id = self.schema.get_operation_id(case.operation)
        if operation_id in AGENT_OPERATIONS:
            role = "agent"
        elif operation_id in SUPERVISOR_OPERATIONS or operation_id.startswith("stats_"):
            role = "supervisor"
        else:
            role = "operator"
        return {"base_url": self.world.url, "headers": self._headers(role), "timeout": 30}

    def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
        case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)


@pytest.mark.timeout(TIMEOUT_SECONDS)
def test_linked_operations_chain_as_documented(fuzz_world):
    LinkedOperations.world = fuzz_world
    # The chains run against one live server whose items change as they go (a claim or a resolve in one
    # example changes what a link yields in the next), so Hypothesis sometimes sees a replayed chain draw
    # differently and stops with FlakyStrategyDefinition, before any check has failed. That happened in 2
    # of 8 runs on this code and 4 of 8 on 10c5ee1. A check that fails raises its own error and is not
    # retried; only the harness's own inconsistency is, twice at most.
    for attempt in range(3):
        try:
            LinkedOperations.run(
                settings=settings(
                    max_examples=EXAMPLES,
                    stateful_step_count=6,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )
            )
            return
        except FlakyStrategyDefinition:
            if attempt == 2:
                raise
