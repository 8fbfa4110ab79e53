from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.urls import reverse

from exceptions_app import rules
from exceptions_app.models import Principal, Role
from exceptions_app.services.people import principal_of_user

PENDING_DECISION = "tollgate_pending_decision"
# Form fields a decision carries; the CSRF token is not kept (sign-in rotates it).
_KEPT_FIELDS = (
    "then",
    "note",
    "reason_code",
    "reason_text",
    "seconds",
    "output",
    "confirmed",
    "attestation",
    "to",
    "priority",
)


def person_for(request) -> Principal:
    """The signed-in operator or supervisor; agents and users without a role get the explanatory 403.
    Read once per request: an action and the page that answers it ask several times."""
    principal = getattr(request, "_tollgate_person", None)
    if principal is not None and principal.user_id == request.user.pk:
        return principal
    principal = principal_of_user(request.user)
    name = request.user.get_username()
    if principal is None:
        raise PermissionDenied(
            f"Your account {name} has no role in Tollgate yet, so there are no queues to show. "
            "Ask a supervisor to add you as an operator on the People page "
            f"(or an administrator to run `manage.py create_person {name} --role operator`)."
        )
    if principal.role == Role.AGENT:
        raise PermissionDenied(
            f"{name} is an agent: agents use the API with a token, not the console. Sign in as a person."
        )
    request._tollgate_person = principal
    return principal


def supervisor_for(request, *, page: str) -> Principal:
    """The signed-in supervisor; anyone else gets a 403 naming the page and who may open it."""
    principal = person_for(request)
    if not rules.principal_is_supervisor(principal):
        raise PermissionDenied(
            f"{page} is for supervisors, and {request.user.get_username()} is an operator. "
            "Ask a supervisor if you need it, or to give you the supervisor role on the People page."
        )
    return principal


def login_required_keeping_decision(view):
    """``login_required`` for an item's actions. A decision posted after the session expired is
    kept (in the anonymous session, which signing in carries over) and the operator is sent to
    sign in and then back to the item's page, never to the action's URL, which is POST only. The
    item page offers the kept decision again, filled in, to send or discard."""

    @wraps(view)
    def guarded(request, item_id: int, *args, **kwargs):
        if request.user.is_authenticated:
            return view(request, item_id, *args, **kwargs)
        item_path = reverse("review:item", args=[item_id])
        if request.method == "POST":
            request.session[PENDING_DECISION] = {
                "item_id": item_id,
                "action": request.resolver_match.url_name.removeprefix("item_"),
                "path": request.path,
                "fields": {name: request.POST.get(name) for name in _KEPT_FIELDS if name in request.POST},
            }
        return _to_sign_in(request, item_path)

    return guarded


def login_required_home(view):
    """``login_required`` for POST-only pages other than an item's: after signing in, the queues."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        return _to_sign_in(request, reverse("review:home"))

    return guarded


def _to_sign_in(request, then: str):
    response = redirect_to_login(then)
    if request.htmx:
        # htmx would follow the redirect inside the page; the sign-in page needs the whole window.
        redirected = HttpResponse(status=204)
        redirected["HX-Redirect"] = response["Location"]
        return redirected
    return response


def pending_decision_take(request, *, item_id: int) -> dict | None:
    """The decision kept for this item at sign-in, once: shown again, it is the operator's to send."""
    pending = request.session.get(PENDING_DECISION)
    if not pending or pending.get("item_id") != item_id:
        return None
    del request.session[PENDING_DECISION]
    return pending
