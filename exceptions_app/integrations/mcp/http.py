"""The MCP server over streamable HTTP at ``/mcp``, behind the REST API's bearer tokens.

Stateless: every POST carries its own token and is answered on its own stream (progress
notifications, then the result), so any gunicorn worker can answer any request and no session
lives in one process's memory. The token is checked here, with the REST API's
``token_authenticate`` on a pool thread, before the MCP app sees the request; the tools read the
principal from the ASGI scope. The SDK's own OAuth resource-server auth is not used: Tollgate's
tokens are opaque API tokens, not OAuth access tokens with discovery metadata.
"""

import asyncio
import json
from contextlib import AbstractAsyncContextManager

from django.conf import settings
from django.db import close_old_connections
from mcp.server.transport_security import TransportSecuritySettings

from exceptions_app.integrations.mcp.tools import PRINCIPAL_SCOPE_KEY, _pool, server_build
from exceptions_app.services.tokens import token_authenticate

PATH = "/mcp"


def is_mcp_path(path: str) -> bool:
    return path == PATH or path.startswith(PATH + "/")


def _principal_for(authorization: str):
    try:
        scheme, _, raw = authorization.partition(" ")
        if scheme != "Bearer" or not raw.strip():
            return None
        token = token_authenticate(raw.strip())
        return token.principal if token is not None else None
    finally:
        close_old_connections()


async def _refuse(send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"status": status, "code": code, "message": message, "fields": []}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class McpApplication:
    """The ASGI app for ``/mcp``; ``lifespan()`` must be entered once per process (the ASGI lifespan
    of each worker) before it serves: it runs the SDK's session manager."""

    def __init__(self):
        self.server = server_build()
        # Host checks belong to ALLOWED_HOSTS (Django's middleware does not run here): the SDK's
        # DNS-rebinding guard is given the same list. Tokens are never ambient (no cookies), so a
        # rebound page could not use one anyway.
        hosts = [host if ":" in host else f"{host}:*" for host in settings.ALLOWED_HOSTS]
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection="*" not in settings.ALLOWED_HOSTS,
            allowed_hosts=[*hosts, *settings.ALLOWED_HOSTS],
            allowed_origins=[],
        )
        self.app = self.server.streamable_http_app(
            streamable_http_path=PATH, stateless_http=True, transport_security=security
        )

    def lifespan(self) -> AbstractAsyncContextManager:
        return self.server.session_manager.run()

    async def __call__(self, scope, receive, send) -> None:
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if not authorization:
            await _refuse(send, 401, "not_authenticated", "an agent's bearer token is required")
            return
        loop = asyncio.get_running_loop()
        principal = await loop.run_in_executor(_pool(), _principal_for, authorization)
        if principal is None:
            await _refuse(send, 401, "authentication_failed", "invalid, expired or revoked token")
            return
        if principal.role != "agent":
            await _refuse(send, 403, "permission_denied", "the MCP server needs an agent token")
            return
        await self.app({**scope, PRINCIPAL_SCOPE_KEY: principal}, receive, send)
