"""The per-process caches of tokens, workflows and queues: changes made here apply at once,
changes made behind the application's back (another process) apply within the cache's lifetime."""

import time

from django.db import connection

from exceptions_app.models import Workflow
from exceptions_app.services.local_cache import LocalCache
from tests.fixtures.gate import BILLING, decision_body

URL = "/api/v1/decisions"


def _revoke_behind_the_apps_back(token_pk: int) -> None:
    """What another process's revocation looks like to this one: a row change with no signal here."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE exceptions_app_apitoken SET revoked_at = now() WHERE id = %s", [token_pk])


def test_a_token_revoked_elsewhere_stops_working_within_the_cache_lifetime(agent_client, settings):
    settings.TOLLGATE_LOCAL_CACHE_SECONDS = 1
    assert agent_client.post(URL, decision_body(), format="json").status_code == 200
    _revoke_behind_the_apps_back(agent_client.principal.tokens.get().pk)
    # Still cached: this is the documented window, and it proves the cache is used at all.
    assert agent_client.post(URL, decision_body(), format="json").status_code == 200
    time.sleep(1.2)
    assert agent_client.post(URL, decision_body(), format="json").status_code == 401


def test_with_the_cache_off_a_revocation_elsewhere_applies_at_once(agent_client, settings):
    settings.TOLLGATE_LOCAL_CACHE_SECONDS = 0
    assert agent_client.post(URL, decision_body(), format="json").status_code == 200
    _revoke_behind_the_apps_back(agent_client.principal.tokens.get().pk)
    assert agent_client.post(URL, decision_body(), format="json").status_code == 401


def test_taking_a_workflow_from_an_agent_applies_at_once(agent_client, settings):
    settings.TOLLGATE_LOCAL_CACHE_SECONDS = 60
    assert agent_client.post(URL, decision_body(), format="json").status_code == 200
    agent_client.principal.workflows.remove(Workflow.objects.get(name=BILLING))
    assert agent_client.post(URL, decision_body(), format="json").status_code == 403


def test_deactivating_the_user_applies_at_once(agent_client, settings):
    settings.TOLLGATE_LOCAL_CACHE_SECONDS = 60
    assert agent_client.post(URL, decision_body(), format="json").status_code == 200
    user = agent_client.principal.user
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert agent_client.post(URL, decision_body(), format="json").status_code == 401


def test_a_new_policy_version_applies_to_the_next_decision(agent_client, supervisor_client, settings):
    settings.TOLLGATE_LOCAL_CACHE_SECONDS = 60
    first = agent_client.post(URL, decision_body(), format="json").json()
    document = supervisor_client.get(f"/api/v1/workflows/{BILLING}").json()["policy"]
    document["thresholds"]["auto_approve"] = 0.999
    assert supervisor_client.put(f"/api/v1/workflows/{BILLING}", document, format="json").status_code in (200, 201)
    second = agent_client.post(URL, decision_body(), format="json").json()
    assert first["verdict"] == "proceed"
    assert second["verdict"] == "hold"
    assert any(reason["code"] == "low_confidence" for reason in second["reasons"])


def test_an_entry_that_expires_during_the_lookup_is_served_or_reloaded_not_an_error(settings):
    """Found by the soak: an entry alive when checked and expired a moment later raised KeyError (a 500)."""
    settings.TOLLGATE_LOCAL_CACHE_SECONDS = 5
    clock = {"now": 0.0, "step": 0.0}

    def timer() -> float:
        clock["now"] += clock["step"]
        return clock["now"]

    cache = LocalCache("expiring", timer=timer)
    assert cache.get_or_load("key", lambda: "first") == "first"  # stored at 0.0: expires at 5.0
    # From here every read of the clock is a millisecond later, and the first read is just before expiry.
    clock.update(now=4.9985, step=0.001)
    assert cache.get_or_load("key", lambda: "reloaded") == "first"
    clock.update(now=10.0, step=0.0)
    assert cache.get_or_load("key", lambda: "reloaded") == "reloaded"
