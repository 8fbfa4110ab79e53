"""People (operators and supervisors): who they are to Tollgate, and the supervisors' changes to them.

Every change writes an audit event with no item: ``payload["person"]`` (or ``["team"]``) names
whom it concerns, and ``before``/``after`` what changed.
"""

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from exceptions_app.errors import Forbidden, InvalidInput, NotFound
from exceptions_app.models import Principal, Queue, Role, Team
from exceptions_app.services.audit import audit_record
from exceptions_app.services.local_cache import local_caches_clear

PERSON_ROLES = (Role.OPERATOR, Role.SUPERVISOR)
SUPERUSER_ACTOR_LABEL = "superuser rule"


def principal_of_user(user: AbstractBaseUser) -> Principal | None:
    """The user's principal. A Django superuser is a supervisor: the first time one is seen without
    that role (``createsuperuser`` makes no principal), the role is given and audited."""
    principal = Principal.objects.filter(user=user).first()
    if not getattr(user, "is_superuser", False) or not user.is_active:
        return principal
    if principal is not None and principal.role == Role.SUPERVISOR:
        return principal
    with transaction.atomic():
        principal = Principal.objects.select_for_update().filter(user=user).first()
        before = principal.role if principal else None
        if before == Role.SUPERVISOR:
            return principal
        if principal is None:
            principal = Principal.objects.create(user=user, role=Role.SUPERVISOR)
        else:
            principal.role = Role.SUPERVISOR
            principal.save(update_fields=["role"])
        audit_record(
            action="person_role_changed",
            actor=None,
            actor_label=SUPERUSER_ACTOR_LABEL,
            payload={"person": user.get_username(), "before": {"role": before}, "after": {"role": Role.SUPERVISOR}},
        )
    return principal


def _refuse(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", fields=[{"path": field, "message": message}])


def _role(role: str) -> str:
    if role not in PERSON_ROLES:
        raise _refuse("role", f"must be one of {', '.join(PERSON_ROLES)}")
    return role


def _password(password: str, *, user) -> str:
    try:
        validate_password(password, user=user)
    except ValidationError as error:
        raise _refuse("password", " ".join(error.messages)) from None
    return password


def _teams(names: Iterable[str], *, create: bool = False, actor=None, actor_label: str | None = None) -> list[Team]:
    wanted = sorted(set(names))
    found = list(Team.objects.filter(name__in=wanted).order_by("name"))
    missing = sorted(set(wanted) - {team.name for team in found})
    if missing and not create:
        raise _refuse("teams", f"no team called {', '.join(missing)}")
    for name in missing:
        try:
            Team(name=name).clean_fields()
        except ValidationError as error:
            raise _refuse("teams", f"{name!r}: {' '.join(error.message_dict.get('name', error.messages))}") from None
        found.append(Team.objects.create(name=name))
        audit_record(
            action="team_created",
            actor=actor,
            actor_label=actor_label,
            payload={"team": name, "before": {"queues": []}, "after": {"queues": []}},
        )
    return sorted(found, key=lambda team: team.name)


def _team_names(principal: Principal) -> list[str]:
    return sorted(principal.teams.values_list("name", flat=True))


def person_create(
    *,
    actor,
    actor_label: str | None = None,
    username: str,
    role: str,
    teams: Iterable[str] = (),
    password: str,
    create_teams: bool = False,
) -> Principal:
    """A new operator or supervisor who signs in with this password. Teams must exist, unless
    ``create_teams`` (the command line's convenience): then missing ones are created, audited."""
    user_model = get_user_model()
    candidate = user_model(username=username)
    try:
        candidate.clean_fields(exclude=["password"])
    except ValidationError as error:
        raise _refuse("username", " ".join(error.message_dict.get("username", error.messages))) from None
    _role(role)
    _password(password, user=candidate)
    with transaction.atomic():
        if user_model.objects.filter(username=username).exists():
            raise _refuse("username", f"{username!r} is taken")
        team_rows = _teams(teams, create=create_teams, actor=actor, actor_label=actor_label)
        # Supervisors are staff so that the admin (Django's own pages) lets them in.
        user = user_model.objects.create_user(username=username, password=password, is_staff=role == Role.SUPERVISOR)
        principal = Principal.objects.create(user=user, role=role)
        principal.teams.set(team_rows)
        audit_record(
            action="person_created",
            actor=actor,
            actor_label=actor_label,
            payload={"person": username, "after": {"role": role, "teams": [team.name for team in team_rows]}},
        )
    return principal


def _person(user_id: int, *, actor) -> Principal:
    """The person, locked. A superuser's account is changed only by a superuser: a supervisor who
    could reset one's password could take it over."""
    principal = (
        Principal.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(user_id=user_id, role__in=PERSON_ROLES)
        .first()
    )
    if principal is None:
        raise NotFound(f"no person with id {user_id}")
    if principal.user.is_superuser and not actor.is_superuser:
        raise Forbidden(f"{principal.user.get_username()} is a Django superuser: only a superuser can change them")
    return principal


def person_change(*, actor, user_id: int, role: str, teams: Iterable[str]) -> Principal:
    """Set a person's role and teams. A superuser stays a supervisor; nobody demotes themselves."""
    _role(role)
    with transaction.atomic():
        principal = _person(user_id, actor=actor)
        if role != Role.SUPERVISOR and principal.user.is_superuser:
            raise _refuse(
                "role", "a Django superuser is always a supervisor: take superuser status away in Admin first"
            )
        if role != Role.SUPERVISOR and principal.user_id == actor.pk:
            raise _refuse("role", "you cannot take your own supervisor role: ask another supervisor")
        team_rows = _teams(teams)
        before = {"role": principal.role, "teams": _team_names(principal)}
        after = {"role": role, "teams": [team.name for team in team_rows]}
        if before == after:
            return principal
        principal.role = role
        principal.save(update_fields=["role"])
        principal.teams.set(team_rows)
        if role == Role.SUPERVISOR and not principal.user.is_staff:
            principal.user.is_staff = True
            principal.user.save(update_fields=["is_staff"])
        audit_record(
            action="person_changed",
            actor=actor,
            payload={"person": principal.user.get_username(), "before": before, "after": after},
        )
    return principal


def person_set_active(*, actor, user_id: int, active: bool) -> Principal:
    """Deactivate (cannot sign in; tokens stop at once) or reactivate a person."""
    with transaction.atomic():
        principal = _person(user_id, actor=actor)
        if not active and principal.user_id == actor.pk:
            raise Forbidden("you cannot deactivate yourself: ask another supervisor")
        if principal.user.is_active == active:
            return principal
        principal.user.is_active = active
        principal.user.save(update_fields=["is_active"])
        audit_record(
            action="person_reactivated" if active else "person_deactivated",
            actor=actor,
            payload={"person": principal.user.get_username()},
        )
    # Tokens are cached per process for a few seconds; this process forgets them now.
    local_caches_clear()
    return principal


def person_password_set(*, actor, user_id: int, password: str) -> Principal:
    """Reset a person's password (the audit event records that it happened, never the password)."""
    with transaction.atomic():
        principal = _person(user_id, actor=actor)
        principal.user.set_password(_password(password, user=principal.user))
        principal.user.save(update_fields=["password"])
        audit_record(action="person_password_reset", actor=actor, payload={"person": principal.user.get_username()})
    return principal


def team_queues_set(*, actor, name: str, queues: Iterable[str]) -> Team:
    """Create the team if new, and set the queues it works."""
    try:
        Team(name=name).clean_fields()
    except ValidationError as error:
        raise _refuse("team", " ".join(error.message_dict.get("name", error.messages))) from None
    wanted = sorted(set(queues))
    with transaction.atomic():
        found = list(Queue.objects.filter(name__in=wanted).order_by("name"))
        missing = sorted(set(wanted) - {queue.name for queue in found})
        if missing:
            raise _refuse("queues", f"no queue called {', '.join(missing)}")
        team, created = Team.objects.get_or_create(name=name)
        before = [] if created else sorted(team.queues.values_list("name", flat=True))
        after = [queue.name for queue in found]
        if created or before != after:
            team.queues.set(found)
            audit_record(
                action="team_created" if created else "team_queues_changed",
                actor=actor,
                payload={"team": name, "before": {"queues": before}, "after": {"queues": after}},
            )
    return team
