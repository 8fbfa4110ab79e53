from rest_framework.permissions import BasePermission

from exceptions_app.models import Principal, Role
from exceptions_app.services.people import principal_of_user


def principal_of(request) -> Principal | None:
    """The principal behind a token or a signed-in browser session (cached on the request)."""
    if not hasattr(request, "_tollgate_principal"):
        token = request.auth
        if token is not None and hasattr(token, "principal"):
            request._tollgate_principal = token.principal
        elif request.user.is_authenticated:
            request._tollgate_principal = principal_of_user(request.user)
        else:
            request._tollgate_principal = None
    return request._tollgate_principal


class _HasRole(BasePermission):
    roles: frozenset[str] = frozenset()
    message = "this endpoint needs a different role"

    def has_permission(self, request, view) -> bool:
        principal = principal_of(request)
        return principal is not None and principal.role in self.roles


class IsAgent(_HasRole):
    roles = frozenset({Role.AGENT})
    message = "this endpoint needs an agent token"


class IsSupervisor(_HasRole):
    roles = frozenset({Role.SUPERVISOR})
    message = "this endpoint needs a supervisor"


class IsAgentOrPerson(_HasRole):
    roles = frozenset({Role.AGENT, Role.OPERATOR, Role.SUPERVISOR})


class IsPerson(_HasRole):
    roles = frozenset({Role.OPERATOR, Role.SUPERVISOR})
    message = "this endpoint needs an operator or a supervisor"
