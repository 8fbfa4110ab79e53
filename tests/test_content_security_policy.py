"""Content-Security-Policy: every page sends a strict policy (no inline script, no framing, forms
post only to us), and the console, the dashboard and the API docs work under it without a single
violation, while an injected inline script or handler is refused by the browser."""

import re

import pytest
from django.test import Client
from playwright.sync_api import expect

from exceptions_app.models import ExceptionItem
from tests.browser_helpers import person, sign_in, watch
from tests.fixtures.gate import hold


def directives(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in (p.strip() for p in header.split(";")) if part}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/", "/items/search", "/api/v1/queues", "/healthz"])
def test_every_response_carries_the_strict_policy(path, billing_queues):
    client = Client()
    client.force_login(person("olga").user)

    response = client.get(path)
    policy = directives(response)

    assert response["X-Frame-Options"] == "DENY"  # clickjacking, for browsers that ignore frame-ancestors
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'"


@pytest.mark.django_db
def test_only_the_api_docs_relax_styles_and_never_scripts(billing_queues):
    client = Client()
    client.force_login(person("olga").user)
    page = client.get("/api/docs/")
    script = client.get("/api/docs/?script=")

    assert (page.status_code, script.status_code) == (200, 200)
    assert "<script>" not in page.content.decode()  # its start-up script is a file: script-src 'self' holds
    assert script["Content-Type"].startswith("application/javascript")
    policy = directives(page)

    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self' 'unsafe-inline'"
    assert policy["img-src"] == "'self' data:"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_console_works_under_the_policy_without_violations(live_server, page, agent_client, billing_queues):
    person("olga")
    first = hold(agent_client, value_at_risk="900.00")
    second = hold(agent_client, value_at_risk="10.00")
    reports = watch(page)

    sign_in(page, live_server.url, "olga")
    page.get_by_role("button", name="Next item from billing", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(f"Item {first}"))).to_be_visible()
    page.keyboard.press("e")
    page.get_by_label("Edited output (JSON)").fill('{"invoice_id": "INV-1001", "type": "rerate"}')
    expect(page.get_by_test_id("schema-errors")).to_be_visible()  # htmx preview round trip
    page.get_by_label("Edited output (JSON)").fill(
        '{"invoice_id": "INV-1001", "type": "rerate", "amount": 99.0, "currency": "EUR"}'
    )
    expect(page.get_by_test_id("schema-ok")).to_be_visible()
    page.get_by_role("button", name="Approve with this edit").click()
    expect(page.get_by_role("heading", name=re.compile(f"Item {second}"))).to_be_visible()
    page.keyboard.press("a")
    expect(page.get_by_role("heading", name="Your queues")).to_be_visible()
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    page.get_by_role("link", name="Search").click()
    expect(page.get_by_role("heading", name="Search items")).to_be_visible()

    assert [item.resolution for item in ExceptionItem.objects.order_by("pk")] == ["modify", "approve"]
    assert ExceptionItem.objects.get(pk=first).final_output["amount"] == 99.0
    assert reports.csp_violations == []
    assert reports.errors == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_injected_inline_script_and_handlers_are_refused_by_the_browser(live_server, page, billing_queues):
    person("olga")
    reports = watch(page)
    sign_in(page, live_server.url, "olga")

    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.__inline = 1";
            document.head.appendChild(script);
            const image = '<img src="/static/css/app.css" onerror="window.__handler=1" onload="window.__handler=1">';
            document.querySelector("main").insertAdjacentHTML("beforeend", image);
        }"""
    )

    page.wait_for_timeout(300)
    assert page.evaluate("[typeof window.__inline, typeof window.__handler]") == ["undefined", "undefined"]
    assert len(reports.csp_violations) >= 2, reports.console


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_and_the_api_docs_render_under_the_policy(live_server, page, agent_client, billing_queues):
    person("sam", role="supervisor")
    hold(agent_client)
    reports = watch(page)
    sign_in(page, live_server.url, "sam")

    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name=re.compile("Queues, riskiest first"))).to_be_visible()
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Tollgate API")
    expect(page.get_by_text("/api/v1/decisions", exact=True).first).to_be_visible()

    assert reports.csp_violations == []
    assert reports.errors == []
