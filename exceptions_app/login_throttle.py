"""Login throttling: django-axes' lockout check in front of Django's password backend."""

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


class LoginThrottleBackend(AxesStandaloneBackend):
    """Refuses a sign-in while its username and address are locked out (settings: AXES_*).

    Every sign-in from the network (the login page, the admin) passes its request and is checked.
    A call without a request comes from code already running on the server (Django's test client,
    a shell), which has no client address to throttle; axes would raise for it, so it is left to
    the next backend instead.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


# Usernames are at most 150 characters (Django's User); axes stores attempts in 255.
ATTEMPT_USERNAME_MAX = 150


def attempted_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The username a sign-in attempt is counted under (AXES_USERNAME_CALLABLE). Django's login forms
    pass any length on to authenticate(), and axes would write it into its 255-character column
    (a database error, a 500): longer names are cut, they cannot match an account anyway."""
    username = (credentials or {}).get("username")
    if username is None and request is not None:
        username = request.POST.get("username")
    return username[:ATTEMPT_USERNAME_MAX] if isinstance(username, str) else username


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """The page a locked-out sign-in gets: 429, saying how many failures and for how long."""
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
    }
    return render(request, "registration/locked_out.html", context, status=429)
