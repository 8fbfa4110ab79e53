"""The web server's application: one ASGI app, two ways of handling a request.

Requests that may wait for people (``?wait=`` on an item or the resolutions feed, and the
resolutions stream) go to ``waits.serving``: Django answers them on a small thread pool like any
request, and when the answer is "wait", they wait on the event loop for a notification, holding no
thread and no database connection, so thousands of agents can wait on one process. Everything else
goes to Django's WSGI handler on a thread pool (a2wsgi), as under gunicorn's threads before.
Django's own ASGI handler is not used: it runs each request's synchronous parts (our middleware)
on a thread of that request's own, which a waiting request would keep for the whole wait.

MCP clients reach ``/mcp``, the MCP server's own ASGI app (exceptions_app/integrations/mcp/), whose
session manager runs for the life of each worker process (the ASGI lifespan below).

Served by gunicorn with uvicorn's worker class (Procfile, Dockerfile, docker-compose.yml).
"""

import os
import re
from contextlib import AsyncExitStack
from urllib.parse import parse_qsl

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exceptions_app.settings")

import django

django.setup(set_prefix=False)

from a2wsgi import WSGIMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402

from exceptions_app.body_limit import body_limited  # noqa: E402
from exceptions_app.gc_tuning import collector_paused_for_batches  # noqa: E402
from exceptions_app.integrations.mcp.http import McpApplication, is_mcp_path  # noqa: E402
from exceptions_app.waits.limits import open_files_raise  # noqa: E402
from exceptions_app.waits.serving import WaitingRequests  # noqa: E402

_ITEM = re.compile(r"^/api/v1/exceptions/\d+$")
_FEED = "/api/v1/resolutions"
_STREAM = "/api/v1/resolutions/stream"


def waits(scope) -> bool:
    """Does this request wait? Only GETs of the three waiting endpoints with a wait asked for."""
    if scope["method"] != "GET":
        return False
    path = scope["path"]
    if path == _STREAM:
        return True
    if path != _FEED and not _ITEM.match(path):
        return False
    query = scope.get("query_string", b"").decode("latin-1")
    return any(key == "wait" and value not in ("", "0") for key, value in parse_qsl(query, keep_blank_values=True))


def application_build():
    waiting = WaitingRequests(threads=settings.TOLLGATE_WEB_THREADS)
    threaded = body_limited(
        WSGIMiddleware(collector_paused_for_batches(WSGIHandler()), workers=settings.TOLLGATE_WEB_THREADS)
    )
    mcp = McpApplication()

    async def application(scope, receive, send):
        if scope["type"] == "http" and waits(scope):
            await waiting(scope, receive, send)
        elif scope["type"] == "http" and is_mcp_path(scope["path"]):
            await mcp(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send, mcp)
        else:
            await threaded(scope, receive, send)

    return application


async def _lifespan(receive, send, mcp: McpApplication) -> None:
    # Entered and left in this one task, as the MCP session manager's task group requires.
    async with AsyncExitStack() as running:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                open_files_raise()
                await running.enter_async_context(mcp.lifespan())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await running.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


application = application_build()
