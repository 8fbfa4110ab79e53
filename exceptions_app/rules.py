"""Domain rules asked by the serializers, forms, services, views and templates alike.

Each rule is written here once: a copy in a form or a template drifts (ours did: a near-SLA
threshold of 0.75 hard-coded beside a setting, three reason-code checks that disagreed).
Pure functions: the unit tests in tests/unit need no database.
"""

import re
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError

# A reason code: lower-case letters, digits, and _ . - after the first character; at most 64.
REASON_CODE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
REASON_CODE_HELP = "lower-case letters, digits, _ . - (at most 64; starts with a letter or digit)"
_REASON_CODE = re.compile(REASON_CODE_PATTERN)


def reason_code_problem(code: str) -> str | None:
    """Why ``code`` is not a reason code, or None when it is one. The empty code is the caller's
    to allow or refuse (a rejection needs one; the other actions do not)."""
    if not isinstance(code, str):
        return "must be a string"
    # fullmatch: "$" would also accept a trailing newline.
    if not _REASON_CODE.fullmatch(code):
        return REASON_CODE_HELP
    return None


def resolution_reason_problem(*, action: str, reason_code: str) -> str | None:
    """Why this reason code cannot go with this resolution, or None: a rejection needs one, and
    any code given must be well formed."""
    if action == "reject" and not reason_code:
        return "a reason code is required to reject"
    return reason_code_problem(reason_code) if reason_code else None


def reason_code_validator(code: str) -> None:
    """The Django validator form of reason_code_problem, for forms."""
    problem = reason_code_problem(code)
    if problem:
        raise ValidationError(problem, code="reason_code")


def iso_timestamp(moment: datetime | None) -> str | None:
    """A moment as the API, webhooks and the feed write it: ISO 8601 with UTC as "Z" (as DRF's
    DateTimeField writes it). No moment, None."""
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


# Ids are bigint columns: a larger number in a URL or a cursor would reach PostgreSQL and fail there.
LARGEST_ID = 2**63 - 1

# The longest SLA or expiry a queue or a policy may set: a year, in seconds.
LONGEST_DEADLINE_SECONDS = 31_536_000

# SLA stages of an age, as the console names them (CSS classes risk-near, risk-breached).
SLA_OK, SLA_NEAR, SLA_BREACHED = "ok", "near", "breached"


def sla_near_fraction(near_percent: int | None = None) -> float:
    """The share of the SLA window after which an item is "due soon": the last
    TOLLGATE_SLA_NEAR_FRACTION_PERCENT of it (25% leaves 0.75)."""
    percent = settings.TOLLGATE_SLA_NEAR_FRACTION_PERCENT if near_percent is None else near_percent
    return (100 - percent) / 100


def sla_near_at(*, start: datetime, sla_seconds: int, near_percent: int | None = None) -> datetime:
    """When an item raised at ``start`` becomes due soon; the sweep flags it from then on."""
    return start + timedelta(seconds=sla_seconds * sla_near_fraction(near_percent))


def risk(age_seconds: float | None, sla_seconds: int) -> float:
    """How much of its SLA the age has used: 1.0 is exactly at the deadline. No age, no risk."""
    if age_seconds is None or sla_seconds <= 0:
        return 0.0
    return round(age_seconds / sla_seconds, 3)


def sla_stage(age_seconds: float | None, sla_seconds: int, *, near_percent: int | None = None) -> str:
    """ok, near or breached. The boundaries are the sweep's: an item is past due from its
    deadline on (due_at <= now) and due soon from sla_near_at on."""
    if age_seconds is None or sla_seconds <= 0:
        return SLA_OK
    if age_seconds >= sla_seconds:
        return SLA_BREACHED
    if age_seconds >= sla_seconds * sla_near_fraction(near_percent):
        return SLA_NEAR
    return SLA_OK


def principal_is_supervisor(principal) -> bool:
    """Supervisors see every queue, the dashboard, and may act on items others hold. A Django
    superuser is one: principal_of_user (services/people.py), the one way a signed-in user
    becomes a principal, gives a superuser the supervisor role, so the role alone decides here."""
    from exceptions_app.models import Role

    return principal is not None and principal.role == Role.SUPERVISOR


def person_is_supervisor(user) -> bool:
    """Whether a signed-in user is a supervisor to Tollgate (the navigation asks this; the views
    ask principal_is_supervisor of the principal they already hold). Not is_staff: that only
    opens Django's admin."""
    if user is None or not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        from exceptions_app.services.people import principal_of_user

        return principal_is_supervisor(principal_of_user(user))
    from exceptions_app.models import Principal

    try:
        principal = user.principal
    except Principal.DoesNotExist:
        return False
    return principal_is_supervisor(principal)
