from django.core.exceptions import PermissionDenied

from exceptions_app.models import Principal, Role


def person_for(request) -> Principal:
    """The signed-in operator or supervisor; agents and users without a role get a clear 403."""
    principal = Principal.objects.filter(user=request.user).first()
    if principal is None or principal.role == Role.AGENT:
        raise PermissionDenied("Your account has no operator or supervisor role in Tollgate. Ask a supervisor.")
    return principal
