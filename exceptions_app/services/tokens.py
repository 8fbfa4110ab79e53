import hashlib
import hmac
import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from exceptions_app.errors import InvalidInput
from exceptions_app.models import ApiToken, Principal, Role, Team, Workflow
from exceptions_app.services.local_cache import LocalCache, local_caches_clear

TOKEN_PREFIX = "tg_"  # noqa: S105 - a public marker, not a secret
PREFIX_LENGTH = 12
HEX_DIGITS = "0123456789abcdef"
_live_tokens = LocalCache("tokens")


def _hash(secret: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough; a slow KDF protects low-entropy passwords.
    return hashlib.sha256(secret.encode()).hexdigest()


def principal_ensure(*, name: str, role: str, workflows: list[str] = (), teams: list[str] = ()) -> Principal:
    """The principal called ``name`` with this role, its scope set to the given workflows and teams."""
    if role not in Role.values:
        raise InvalidInput(f"role must be one of {', '.join(Role.values)}", fields=[{"path": "role", "message": role}])
    with transaction.atomic():
        user, created = get_user_model().objects.get_or_create(username=name)
        if created:
            # Token-only until someone sets a password; an empty one would count as usable.
            user.set_unusable_password()
            user.save(update_fields=["password"])
        principal, _ = Principal.objects.update_or_create(user=user, defaults={"role": role})
        if workflows:
            found = list(Workflow.objects.filter(name__in=workflows))
            missing = sorted(set(workflows) - {workflow.name for workflow in found})
            if missing:
                raise InvalidInput(f"unknown workflows: {', '.join(missing)}")
            principal.workflows.set(found)
        if teams:
            principal.teams.set([Team.objects.get_or_create(name=team)[0] for team in teams])
        if role == Role.SUPERVISOR and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
    return principal


def token_create(*, principal: Principal) -> tuple[ApiToken, str]:
    """A new token for the principal. The plain token is returned once and never stored."""
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(principal=principal, prefix=prefix, secret_hash=_hash(secret))
    return token, f"{TOKEN_PREFIX}{prefix}_{secret}"


def token_authenticate(raw: str) -> ApiToken | None:
    """The live token that ``raw`` proves, or None. Compared in constant time."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    prefix, _, secret = raw[len(TOKEN_PREFIX) :].partition("_")
    # Prefixes are token_hex(6): anything else (a NUL, junk) is refused before it reaches the
    # database or the cache.
    if len(prefix) != PREFIX_LENGTH or prefix.strip(HEX_DIGITS) or not secret or len(raw) > 200:
        return None
    token = _live_tokens.get_or_load(
        prefix,
        lambda: (
            ApiToken.objects.select_related("principal__user")
            .filter(prefix=prefix, revoked_at__isnull=True, principal__user__is_active=True)
            .first()
        ),
    )
    if token is None or not hmac.compare_digest(token.secret_hash, _hash(secret)):
        return None
    now = timezone.now()
    # Record use at most once a minute: a write on every request would double the intake cost.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    local_caches_clear()
