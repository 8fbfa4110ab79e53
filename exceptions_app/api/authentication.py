from rest_framework import authentication, exceptions

from exceptions_app.services.tokens import token_authenticate


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer tg_...``; ``request.auth`` is the ApiToken."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme != self.keyword:
            return None
        token = token_authenticate(raw.strip())
        if token is None:
            raise exceptions.AuthenticationFailed("invalid, expired or revoked token")
        return token.principal.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword
