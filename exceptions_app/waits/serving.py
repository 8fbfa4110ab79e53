"""Serving the requests that wait, under the ASGI server, with no thread per waiter.

Each waiting request runs through Django exactly like any other request (middleware, DRF
authentication, permission, throttling, validation), on a small shared thread pool. When the view
answers with a plan to wait (``WaitFor`` or ``StreamFrom``), the thread and the database connection
go back to their pools, and the wait happens here, on the event loop: the request awaits the hub
(``hub.py``), which the process's one listener wakes. Each wake-up re-reads on the pool, briefly.
The client going away ends the wait and frees its place at once.
"""

import asyncio
import io
import time
from concurrent.futures import ThreadPoolExecutor

from a2wsgi.wsgi import build_environ
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.db import close_old_connections

from exceptions_app.waits.hub import Subscription, WaitersFull, wait_hub
from exceptions_app.waits.views import (
    HEARTBEAT,
    SERVED_ASYNCHRONOUSLY,
    NotYet,
    StreamFrom,
    WaitFor,
    finish,
    next_timeout,
    read,
    stream_timeout,
    too_many_waiters,
)

# Headers that belong to one body; the others (security headers, Vary) come from the middleware's
# pass over the request and are copied onto the answer.
_BODY_HEADERS = frozenset({"content-type", "content-length"})


class WaitingRequests:
    def __init__(self, *, threads: int):
        self.handler = WSGIHandler()
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="tollgate-waits")

    async def _run(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, _released(function), *args)

    async def __call__(self, scope, receive, send) -> None:
        body = await _body(receive)
        environ = build_environ(scope, io.BytesIO(body))
        environ[SERVED_ASYNCHRONOUSLY] = True
        response = await self._run(self._admit, environ)
        if not isinstance(response, WaitFor | StreamFrom):
            await _send(response, send)
            return
        plan = response
        plan.detach()
        try:
            subscription = wait_hub().subscribe(plan.keys)
        except WaitersFull:
            await _send(await self._run(_with_headers_of, plan, finish(plan, too_many_waiters())), send)
            return
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone, subscription))
        try:
            if isinstance(plan, StreamFrom):
                await self._stream(plan, subscription, gone, send)
            else:
                answer = await self._wait(plan, subscription, gone)
                if answer is not None:
                    await _send(answer, send)
        finally:
            watcher.cancel()
            subscription.close()

    def _admit(self, environ):
        """Django's WSGI handling up to the view's answer (``WSGIHandler.__call__`` without the server
        side): the request_started signal, the request, middleware and view."""
        signals.request_started.send(sender=WSGIHandler, environ=environ)
        try:
            return self.handler.get_response(WSGIRequest(environ))
        finally:
            signals.request_finished.send(sender=WSGIHandler)

    async def _wait(self, plan: WaitFor, subscription: Subscription, gone: asyncio.Event):
        deadline = time.monotonic() + plan.timeout
        woken = False
        while not gone.is_set():
            final = time.monotonic() >= deadline
            answer = await self._run(_answer, plan, final)
            if answer is not None and not isinstance(answer, NotYet):
                return answer
            woken = await subscription.wait(next_timeout(plan, deadline, woken, answer))
        return None

    async def _stream(self, plan: StreamFrom, subscription: Subscription, gone: asyncio.Event, send) -> None:
        from django.conf import settings

        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        headers += [(b"x-accel-buffering", b"no"), *_headers(plan, skip=_BODY_HEADERS | {"cache-control"})]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {
                "type": "http.response.body",
                "body": f"retry: {settings.TOLLGATE_STREAM_RETRY_MS}\n\n".encode(),
                "more_body": True,
            }
        )
        woken = False
        while not gone.is_set():
            events = await self._run(plan.next_events)
            if events and not isinstance(events, NotYet):
                await send({"type": "http.response.body", "body": "".join(events).encode(), "more_body": True})
                woken = False
                continue
            woken = await subscription.wait(stream_timeout(plan, woken, events or None))
            if not woken and not gone.is_set() and not isinstance(events, NotYet):
                await send({"type": "http.response.body", "body": HEARTBEAT.encode(), "more_body": True})
        # The client has gone: nothing more to send.


def _released(function):
    """Run ``function`` and give its database connection back to the pool before the thread is."""

    def run(*args):
        try:
            return function(*args)
        finally:
            close_old_connections()

    return run


def _answer(plan: WaitFor, final: bool):
    answer = read(plan, final)
    return answer if answer is None or isinstance(answer, NotYet) else _with_headers_of(plan, finish(plan, answer))


def _with_headers_of(plan, answer):
    for name, value in plan.items():
        if name.lower() not in _BODY_HEADERS and name not in answer:
            answer[name] = value
    return answer


def _headers(response, skip=frozenset()) -> list[tuple[bytes, bytes]]:
    headers = [
        (name.encode("latin-1"), str(value).encode("latin-1"))
        for name, value in response.items()
        if name.lower() not in skip
    ]
    for cookie in response.cookies.values():
        headers.append((b"set-cookie", cookie.output(header="").strip().encode("ascii")))
    return headers


async def _send(response, send) -> None:
    body = response.content
    headers = [*_headers(response, skip={"content-length"}), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    response.close()


async def _body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _watch_disconnect(receive, gone: asyncio.Event, subscription: Subscription) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            subscription.wake()
            return
