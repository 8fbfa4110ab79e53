"""Helpers shared by the browser tests: people with passwords, sign-in, and what the browser
reports (CSP violations, dialogs, errors)."""

from dataclasses import dataclass, field

from playwright.sync_api import Page, expect

from exceptions_app.services.tokens import principal_ensure

PASSWORD = "security-test-password"


def person(name: str, role: str = "operator", teams=("billing-team",)):
    principal = principal_ensure(name=name, role=role, teams=list(teams))
    principal.user.set_password(PASSWORD)
    principal.user.save()
    return principal


def sign_in(page: Page, base_url: str, name: str, *, landing: str | None = "Your queues") -> None:
    """Sign in through the form, then wait for the heading of the page it lands on (none: no wait)."""
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    if landing is not None:
        expect(page.get_by_role("heading", name=landing)).to_be_visible()


@dataclass
class BrowserReports:
    """Everything the page said that a test may need to assert is absent."""

    console: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def csp_violations(self) -> list[str]:
        return [text for text in self.console if "Content Security Policy" in text]


def watch(page: Page) -> BrowserReports:
    reports = BrowserReports()
    page.on("console", lambda message: reports.console.append(message.text))
    page.on("pageerror", lambda error: reports.errors.append(str(error)))

    def dismiss(dialog) -> None:
        reports.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    return reports
