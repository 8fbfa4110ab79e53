"""People: a superuser is a supervisor, create_person, the People page's changes (each audited),
and 403 pages that say why and what to do."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from exceptions_app.models import AuditEvent, Principal, Queue, Role, Team
from exceptions_app.services.tokens import principal_ensure, token_create
from tests.fixtures.gate import hold

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _people_events(name: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(payload__person=name).order_by("id"))


def test_a_superuser_from_createsuperuser_opens_the_console_dashboard_and_people_as_a_supervisor(billing_queues):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client = _signed_in(admin)

    home = client.get("/")

    assert home.status_code == 200
    for path in ("/dashboard", "/people"):
        assert client.get(path).status_code == 200, path
    page = home.content.decode()
    assert 'href="/dashboard"' in page
    assert 'href="/people"' in page
    assert Principal.objects.get(user=admin).role == Role.SUPERVISOR
    [event] = _people_events("root")
    assert (event.action, event.actor_label) == ("person_role_changed", "superuser rule")
    assert event.payload["after"] == {"role": "supervisor"}


def test_a_superuser_who_was_an_operator_counts_as_a_supervisor_in_the_api_too(billing_queues):
    principal = principal_ensure(name="ursula", role="operator", teams=["billing-team"])
    principal.user.is_superuser = True
    principal.user.save(update_fields=["is_superuser"])
    client = APIClient()
    client.force_login(principal.user)

    assert client.get("/api/v1/stats/queues").status_code == 200
    assert Principal.objects.get(pk=principal.pk).role == Role.SUPERVISOR
    assert _people_events("ursula")[0].payload["before"] == {"role": "operator"}


def test_an_operator_sees_neither_dashboard_nor_people_links(operator_client):
    page = _signed_in(operator_client.principal.user).get("/").content.decode()

    assert 'href="/dashboard"' not in page
    assert 'href="/people"' not in page


def test_a_user_without_a_role_gets_the_explanatory_403_in_the_site_layout(db):
    user = get_user_model().objects.create_user("newcomer", password=PASSWORD)

    response = _signed_in(user).get("/")

    assert response.status_code == 403
    page = response.content.decode()
    assert 'class="topbar"' in page
    assert 'rel="stylesheet"' in page
    assert "newcomer has no role in Tollgate" in page
    assert "People page" in page
    assert "create_person newcomer --role operator" in page


@pytest.mark.parametrize(("path", "page"), [("/dashboard", "The dashboard"), ("/people", "The People page")])
def test_an_operator_refused_a_supervisor_page_is_told_why_and_what_to_do(operator_client, path, page):
    response = _signed_in(operator_client.principal.user).get(path)

    assert response.status_code == 403
    text = response.content.decode()
    assert f"{page} is for supervisors, and olga is an operator" in text
    assert "Ask a supervisor" in text
    assert 'class="topbar"' in text


def test_an_agent_signing_in_to_the_console_is_told_to_use_the_api(agent_client):
    response = _signed_in(agent_client.principal.user).get("/")

    assert response.status_code == 403
    assert "agents use the API with a token" in response.content.decode()


def test_a_refused_form_token_is_the_styled_403_page(operator_client):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_client.principal.user)

    response = client.post("/system/workers/ping", {"csrfmiddlewaretoken": "x" * 64})

    assert response.status_code == 403
    text = response.content.decode()
    assert "security token was missing or out of date" in text
    assert "Reload the page" in text
    assert 'class="topbar"' in text


# --- create_person ---------------------------------------------------------------------------------


def test_create_person_reads_the_password_from_the_named_variable_and_creates_missing_teams(db, monkeypatch):
    monkeypatch.setenv("NEW_PERSON_PASSWORD", PASSWORD)

    call_command(
        "create_person",
        "nadia",
        "--role",
        "operator",
        "--teams",
        "finance,night",
        "--password-env",
        "NEW_PERSON_PASSWORD",
    )

    principal = Principal.objects.get(user__username="nadia")
    assert principal.role == Role.OPERATOR
    assert sorted(principal.teams.values_list("name", flat=True)) == ["finance", "night"]
    assert Client().login(username="nadia", password=PASSWORD)
    [created] = _people_events("nadia")
    assert (created.action, created.actor, created.actor_label) == ("person_created", None, "manage.py create_person")
    assert PASSWORD not in str(created.payload)
    assert AuditEvent.objects.filter(action="team_created", payload__team="night").exists()


def test_create_person_makes_a_supervisor_staff(db, monkeypatch):
    monkeypatch.setenv("P", PASSWORD)

    call_command("create_person", "sofia", "--role", "supervisor", "--password-env", "P")

    user = get_user_model().objects.get(username="sofia")
    assert user.is_staff
    assert user.principal.role == Role.SUPERVISOR


@pytest.mark.parametrize(
    ("arguments", "environment", "message"),
    [
        (["--password-env", "UNSET_VARIABLE"], {}, "--password-env UNSET_VARIABLE: that environment variable is unset"),
        (["--password-env", "P"], {"P": "short"}, "password: This password is too short"),
        ([], {}, "no terminal to ask for a password"),
    ],
)
def test_create_person_refuses_without_a_good_password_and_creates_nothing(
    db, monkeypatch, arguments, environment, message
):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)

    with pytest.raises(CommandError, match=message):
        call_command("create_person", "nadia", "--role", "operator", *arguments)

    assert not get_user_model().objects.filter(username="nadia").exists()


def test_create_person_refuses_a_taken_name(operator_client, monkeypatch):
    monkeypatch.setenv("P", PASSWORD)

    with pytest.raises(CommandError, match="username: 'olga' is taken"):
        call_command("create_person", "olga", "--role", "supervisor", "--password-env", "P")

    assert Principal.objects.get(user__username="olga").role == Role.OPERATOR


# --- the People page -------------------------------------------------------------------------------


@pytest.fixture
def sam(supervisor_client) -> Client:
    """A supervisor who is not a superuser (made with create_person's service, as a deployment would)."""
    return _signed_in(supervisor_client.principal.user)


def test_a_supervisor_adds_an_operator_who_then_works_the_teams_queue(
    sam, billing_queues, agent_client, supervisor_client
):
    item = hold(agent_client)

    response = sam.post(
        "/people/add",
        {
            "username": "nora",
            "role": "operator",
            "teams": ["billing-team"],
            "password": PASSWORD,
            "password_again": PASSWORD,
        },
    )

    assert response.status_code == 302, response.content.decode()[-3000:]
    assert response["Location"] == "/people"
    nora = Client()
    assert nora.login(username="nora", password=PASSWORD)
    assert nora.get(f"/items/{item}").status_code == 200
    [event] = _people_events("nora")
    assert (event.action, event.actor_id) == ("person_created", supervisor_client.principal.user_id)
    assert event.payload["after"] == {"role": "operator", "teams": ["billing-team"]}
    assert "nora" in sam.get("/people").content.decode()


def test_changing_role_and_teams_is_audited_with_before_and_after(sam, operator_client):
    Team.objects.create(name="night")
    olga = operator_client.principal.user

    response = sam.post(f"/people/{olga.pk}/change", {"role": "supervisor", "teams": ["night"]})

    assert response.status_code == 302
    principal = Principal.objects.get(user=olga)
    assert principal.role == Role.SUPERVISOR
    assert list(principal.teams.values_list("name", flat=True)) == ["night"]
    [event] = _people_events("olga")
    assert event.action == "person_changed"
    assert event.payload["before"] == {"role": "operator", "teams": ["billing-team"]}
    assert event.payload["after"] == {"role": "supervisor", "teams": ["night"]}
    assert "person_changed" in sam.get(f"/people/{olga.pk}").content.decode()


def test_a_deactivated_person_cannot_sign_in_nor_use_a_token_until_reactivated(sam, operator_client):
    olga = operator_client.principal.user
    olga.set_password(PASSWORD)
    olga.save()
    _, token = token_create(principal=operator_client.principal)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert sam.post(f"/people/{olga.pk}/active", {"active": "false"}).status_code == 302

    assert not Client().login(username="olga", password=PASSWORD)
    assert api.get("/api/v1/queues").status_code == 401
    assert sam.post(f"/people/{olga.pk}/active", {"active": "true"}).status_code == 302
    assert Client().login(username="olga", password=PASSWORD)
    assert [event.action for event in _people_events("olga")] == ["person_deactivated", "person_reactivated"]


def test_a_password_reset_lets_the_person_sign_in_with_the_new_one_and_audits_without_it(sam, operator_client):
    olga = operator_client.principal.user

    response = sam.post(f"/people/{olga.pk}/password", {"password": PASSWORD, "password_again": PASSWORD})

    assert response.status_code == 302
    assert Client().login(username="olga", password=PASSWORD)
    [event] = _people_events("olga")
    assert event.action == "person_password_reset"
    assert PASSWORD not in str(event.payload)


def test_a_supervisor_cannot_deactivate_or_demote_themselves(sam, supervisor_client):
    me = supervisor_client.principal.user

    assert sam.post(f"/people/{me.pk}/active", {"active": "false"}).status_code == 403
    refused = sam.post(f"/people/{me.pk}/change", {"role": "operator"})

    assert refused.status_code == 400
    assert "you cannot take your own supervisor role" in refused.content.decode()
    me.refresh_from_db()
    assert me.is_active
    assert me.principal.role == Role.SUPERVISOR
    assert not _people_events("sam")


def test_only_a_superuser_changes_a_superuser(sam, db):
    root = get_user_model().objects.create_superuser("root", "root@example.com", "x" * 20)
    Principal.objects.create(user=root, role=Role.SUPERVISOR)

    response = sam.post(f"/people/{root.pk}/password", {"password": PASSWORD, "password_again": PASSWORD})

    assert response.status_code == 403
    assert "root is a Django superuser: only a superuser can change them" in response.content.decode()
    root.refresh_from_db()
    assert root.check_password("x" * 20)
    assert sam.post(f"/people/{root.pk}/active", {"active": "false"}).status_code == 403


def test_a_superuser_cannot_be_made_an_operator(db):
    root = get_user_model().objects.create_superuser("root", "root@example.com", "x" * 20)
    other = get_user_model().objects.create_superuser("ruth", "ruth@example.com", "x" * 20)
    client = _signed_in(root)
    client.get("/")  # ruth's principal appears when she is first seen
    _signed_in(other).get("/")

    response = client.post(f"/people/{other.pk}/change", {"role": "operator"})

    assert response.status_code == 400
    assert "a Django superuser is always a supervisor" in response.content.decode()


def test_setting_a_teams_queues_creates_the_team_and_audits_the_change(sam, billing_queues):
    response = sam.post("/people/teams", {"team": "night", "queues": ["billing"]})

    assert response.status_code == 302
    assert list(Team.objects.get(name="night").queues.values_list("name", flat=True)) == ["billing"]
    assert sam.post("/people/teams", {"team": "night", "queues": []}).status_code == 302
    assert not Queue.objects.filter(teams__name="night").exists()
    actions = list(AuditEvent.objects.filter(payload__team="night").order_by("id").values_list("action", "payload"))
    assert [action for action, _ in actions] == ["team_created", "team_queues_changed"]
    assert actions[1][1]["before"] == {"queues": ["billing"]}
    assert actions[1][1]["after"] == {"queues": []}
