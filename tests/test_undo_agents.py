"""Undo is honest to agents that read for themselves (issue 18): while a console decision may still be
undone, an agent that pulls the item, long-polls it or reads the resolutions feed does not see it, and
a waiting agent is answered the moment the decision stands. An undone decision reaches no agent."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from exceptions_app.models import Delivery, ExceptionItem
from exceptions_app.services import feed
from exceptions_app.services.items import item_claim, item_resolve
from exceptions_app.services.undo import item_resolution_undo, undo_window
from tests.fixtures.gate import hold

pytestmark = pytest.mark.django_db


def console_approve(operator_client, item_id: int) -> None:
    """What the console's approve does: the decision is held for the undo window."""
    item_claim(item_id=item_id, principal=operator_client.principal)
    item_resolve(item_id=item_id, principal=operator_client.principal, action="approve", hold_delivery=undo_window())


def api_approve(operator_client, item_id: int) -> None:
    operator_client.post(f"/api/v1/exceptions/{item_id}/claim")
    operator_client.post(f"/api/v1/exceptions/{item_id}/resolve", {"action": "approve"}, format="json")


def window_passes(item_id: int) -> None:
    """Move the decision back in time past its undo window, as if the seconds had gone by."""
    past = timezone.now() - undo_window() - timedelta(seconds=1)
    ExceptionItem.objects.filter(pk=item_id).update(resolved_at=past)
    Delivery.objects.filter(item_id=item_id).update(next_attempt_at=past + undo_window(), created_at=past)


def test_pulling_the_item_shows_it_still_claimed_until_the_decision_stands(agent_client, operator_client):
    item_id = hold(agent_client)
    console_approve(operator_client, item_id)

    shown = agent_client.get(f"/api/v1/exceptions/{item_id}").json()
    held = Delivery.objects.get(item_id=item_id).next_attempt_at
    assert (shown["status"], shown["resolution"], shown["timestamps"]["resolved_at"]) == ("claimed", None, None)
    assert shown["claim"]["claimed_by"] == "olga"
    assert shown["claim"]["expires_at"] == held.isoformat().replace("+00:00", "Z")
    listed = agent_client.get("/api/v1/exceptions", {"status": "resolved"}).json()["results"]
    assert [(entry["id"], entry["status"], entry["resolution"]) for entry in listed] == [(item_id, "claimed", None)]
    timeline = [event["action"] for event in agent_client.get(f"/api/v1/exceptions/{item_id}/timeline").json()]
    assert "resolved" not in timeline
    # People see the decision at once: the console offers its undo.
    assert operator_client.get(f"/api/v1/exceptions/{item_id}").json()["status"] == "resolved"

    window_passes(item_id)

    shown = agent_client.get(f"/api/v1/exceptions/{item_id}").json()
    assert (shown["status"], shown["resolution"]["outcome"], shown["claim"]) == ("resolved", "approve", None)
    timeline = [event["action"] for event in agent_client.get(f"/api/v1/exceptions/{item_id}/timeline").json()]
    assert "resolved" in timeline


def test_an_undone_decision_was_never_shown_to_the_agent(agent_client, operator_client):
    item_id = hold(agent_client)
    console_approve(operator_client, item_id)
    seen_during = agent_client.get(f"/api/v1/exceptions/{item_id}").json()

    item_resolution_undo(item_id=item_id, principal=operator_client.principal)

    seen_after = agent_client.get(f"/api/v1/exceptions/{item_id}").json()
    assert (seen_during["status"], seen_during["resolution"]) == ("claimed", None)
    assert (seen_after["status"], seen_after["resolution"]) == ("claimed", None)


def test_api_decisions_are_shown_at_once(agent_client, operator_client):
    item_id = hold(agent_client)
    api_approve(operator_client, item_id)

    assert agent_client.get(f"/api/v1/exceptions/{item_id}").json()["status"] == "resolved"


def test_the_feed_stops_before_a_held_entry_and_the_cursor_never_passes_it(agent_client, operator_client, monkeypatch):
    monkeypatch.setattr(feed, "VISIBILITY_LAG", timedelta(0))
    first, held, later = hold(agent_client), hold(agent_client), hold(agent_client)
    api_approve(operator_client, first)
    console_approve(operator_client, held)
    api_approve(operator_client, later)  # committed after the held one: it waits behind it

    page = agent_client.get("/api/v1/resolutions").json()
    assert [entry["item_id"] for entry in page["results"]] == [first]
    again = agent_client.get("/api/v1/resolutions", {"after": page["cursor"]}).json()
    assert (again["results"], again["cursor"]) == ([], page["cursor"])

    window_passes(held)

    rest = agent_client.get("/api/v1/resolutions", {"after": page["cursor"]}).json()
    assert [entry["item_id"] for entry in rest["results"]] == [held, later]


def test_an_undone_decision_never_enters_the_feed_and_what_follows_it_flows(agent_client, operator_client, monkeypatch):
    monkeypatch.setattr(feed, "VISIBILITY_LAG", timedelta(0))
    undone, later = hold(agent_client), hold(agent_client)
    console_approve(operator_client, undone)
    api_approve(operator_client, later)
    assert agent_client.get("/api/v1/resolutions").json()["results"] == []

    item_resolution_undo(item_id=undone, principal=operator_client.principal)

    assert [entry["item_id"] for entry in agent_client.get("/api/v1/resolutions").json()["results"]] == [later]


def after(seconds: float, *steps) -> threading.Thread:
    """Run ``steps`` on another thread (its own database connection), ``seconds`` apart."""

    def run() -> None:
        try:
            for step in steps:
                time.sleep(seconds)
                step()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_long_poll_on_the_item_is_answered_when_the_window_ends_not_before(agent_client, operator_client, settings):
    settings.TOLLGATE_UNDO_SECONDS = 2
    item_id = hold(agent_client)

    started = time.monotonic()
    thread = after(0.5, lambda: console_approve(operator_client, item_id))
    response = agent_client.get(f"/api/v1/exceptions/{item_id}", {"wait": 20})
    elapsed = time.monotonic() - started
    thread.join()

    assert response.json()["status"] == "resolved"
    assert response.json()["resolution"]["outcome"] == "approve"
    assert 2.5 <= elapsed < 6  # decided at 0.5 s, shown once its 2 s window ended; not at the 20 s timeout


@pytest.mark.django_db(transaction=True)
def test_a_long_poll_never_sees_a_decision_undone_inside_its_window(agent_client, operator_client, settings):
    settings.TOLLGATE_UNDO_SECONDS = 2
    item_id = hold(agent_client)

    thread = after(
        0.4,
        lambda: console_approve(operator_client, item_id),
        lambda: item_resolution_undo(item_id=item_id, principal=operator_client.principal),
    )
    response = agent_client.get(f"/api/v1/exceptions/{item_id}", {"wait": 4})
    thread.join()

    assert (response.json()["status"], response.json()["resolution"]) == ("claimed", None)


@pytest.mark.django_db(transaction=True)
def test_a_long_poll_on_the_feed_is_answered_when_the_window_ends(agent_client, operator_client, settings):
    settings.TOLLGATE_UNDO_SECONDS = 2
    item_id = hold(agent_client)
    cursor = agent_client.get("/api/v1/resolutions").json()["cursor"]

    started = time.monotonic()
    thread = after(0.3, lambda: console_approve(operator_client, item_id))
    page = agent_client.get("/api/v1/resolutions", {"after": cursor, "wait": 20}).json()
    elapsed = time.monotonic() - started
    thread.join()

    assert [entry["item_id"] for entry in page["results"]] == [item_id]
    assert 2.3 <= elapsed < 6


@pytest.mark.django_db(transaction=True)
def test_the_stream_sends_a_held_decision_when_its_window_ends_not_before(agent_client, operator_client, settings):
    settings.TOLLGATE_UNDO_SECONDS = 2
    item_id = hold(agent_client)
    console_approve(operator_client, item_id)
    started = time.monotonic()

    response = agent_client.get("/api/v1/resolutions/stream", HTTP_ACCEPT="text/event-stream")
    chunks = iter(response.streaming_content)
    assert next(chunks).startswith(b"retry:")
    event = next(chunk for chunk in chunks if not chunk.startswith(b"event: heartbeat")).decode()
    elapsed = time.monotonic() - started
    response.close()

    assert event.startswith("id: ")
    assert "event: resolution" in event
    assert f'"item_id":{item_id},' in event
    assert 1.7 <= elapsed < 5  # not after the feed's 1 s visibility lag: after the 2 s window
