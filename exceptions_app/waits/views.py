"""Waiting inside the API's ordinary DRF views, without a thread per waiter.

A DRF view that must wait returns ``WaitFor`` (or ``StreamFrom``) after the whole DRF pipeline has
run: authentication, permission, throttling and validation answer exactly as they do for every
other endpoint. Under the ASGI server (``exceptions_app/waits/serving.py``) the plan goes back to
the server, which waits on its event loop and costs no thread; under a WSGI server (the tests'
live server, ``runserver``) ``WaitingView`` waits itself and blocks its thread, as WSGI must, but
nothing polls: the same hub wakes it.
"""

import time
from collections.abc import Callable, Iterator
from datetime import datetime

from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework.response import Response

from exceptions_app.api.errors import api_exception_handler, error_body
from exceptions_app.waits.hub import Subscription, WaitersFull, wait_hub


class _Plan(Response):
    view = None

    def detach(self) -> None:
        """Keep what the answer needs and let go of the request, its view and their caches: while
        thousands wait, each holds a few objects rather than hundreds for the collector to walk."""
        request = self.view.request
        self.renderer, self.media_type = request.accepted_renderer, request.accepted_media_type
        self.view = self.renderer_context = None


class NotYet:
    """What a re-read returns when the change it waits for is committed but may not be shown before
    a known moment (a decision in its undo window): nothing to answer, look again in ``seconds``,
    woken or not. Nobody will notify that moment; the waiter keeps it itself."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float):
        self.seconds = max(0.0, seconds)

    @classmethod
    def until(cls, moment: datetime) -> "NotYet":
        return cls((moment - timezone.now()).total_seconds() + 0.05)  # a moment after, not just before


class WaitFor(_Plan):
    """Not an answer yet: wait on ``keys`` up to ``timeout`` seconds, calling ``reread(final)`` after
    each wake-up; it returns the answer, or None (or ``NotYet``) to go on waiting (never when ``final``).
    ``recheck_after``: a wake-up whose change is not readable yet (the feed holds back its newest
    rows for a moment) is read again after this long."""

    def __init__(self, *, view, keys: list[str], timeout: float, reread: Callable, recheck_after: float = 0.0):
        super().__init__(None)
        self.view, self.keys, self.timeout, self.reread, self.recheck_after = (
            view,
            keys,
            timeout,
            reread,
            recheck_after,
        )


class StreamFrom(_Plan):
    """Not an answer yet: stream Server-Sent Events. ``next_events()`` reads what is there now (a list
    of encoded events, maybe empty, or ``NotYet`` when the next may be shown only later); between
    reads the stream waits on ``keys``, sending a heartbeat comment every ``heartbeat`` seconds so
    proxies keep the connection open."""

    def __init__(self, *, view, keys: list[str], next_events: Callable[[], "list[str] | NotYet"], recheck_after: float):
        super().__init__(None)
        self.view, self.keys, self.next_events, self.recheck_after = view, keys, next_events, recheck_after


# Set in the WSGI environ of requests that the ASGI server waits for (exceptions_app/waits/serving.py).
SERVED_ASYNCHRONOUSLY = "tollgate.waits.asynchronous"
# An event rather than a comment, so clients that only see events (most SSE libraries) notice it.
HEARTBEAT = "event: heartbeat\ndata: \n\n"


def finish(plan: WaitFor | StreamFrom, response: Response) -> Response:
    if plan.view is not None:
        response = plan.view.finalize_response(plan.view.request, response)
    else:
        response.accepted_renderer, response.accepted_media_type = plan.renderer, plan.media_type
        response.renderer_context = {}
    response.render()
    return response


def read(plan: WaitFor, final: bool) -> Response | NotYet | None:
    try:
        return plan.reread(final)
    except Exception as error:  # the item became invisible, a database error...: the API's own answer
        if plan.view is not None:
            return plan.view.handle_exception(error)
        answer = api_exception_handler(error, {})
        if answer is None:
            raise
        return answer


def too_many_waiters() -> Response:
    seconds = settings.TOLLGATE_WAIT_RETRY_AFTER_SECONDS
    response = Response(
        error_body(503, "too_many_waiters", f"this server holds as many waiters as it may; retry in {seconds} s"),
        status=503,
    )
    response["Retry-After"] = str(seconds)
    return response


def next_timeout(plan: WaitFor, deadline: float, woken_without_answer: bool, not_yet: NotYet | None = None) -> float:
    remaining = deadline - time.monotonic()
    if not_yet is not None:
        remaining = min(remaining, not_yet.seconds)
    return min(remaining, plan.recheck_after) if woken_without_answer and plan.recheck_after else remaining


def stream_timeout(plan: StreamFrom, woken_without_events: bool, not_yet: NotYet | None) -> float:
    timeout = plan.recheck_after if woken_without_events else settings.TOLLGATE_STREAM_HEARTBEAT_SECONDS
    return min(timeout, not_yet.seconds) if not_yet is not None else timeout


def _wait_blocking(plan: WaitFor, subscription: Subscription) -> Response:
    deadline = time.monotonic() + plan.timeout
    woken = False
    while True:
        final = time.monotonic() >= deadline
        answer = read(plan, final)
        if isinstance(answer, Response):
            return answer
        woken = subscription.wait_blocking(next_timeout(plan, deadline, woken, answer))


def _events_blocking(plan: StreamFrom, subscription: Subscription) -> Iterator[str]:
    with subscription:
        yield f"retry: {settings.TOLLGATE_STREAM_RETRY_MS}\n\n"
        woken = False
        while True:
            events = plan.next_events()
            if events and not isinstance(events, NotYet):
                yield from events
                woken = False
                continue
            woken = subscription.wait_blocking(stream_timeout(plan, woken, events or None))
            if not woken and not isinstance(events, NotYet):  # a NotYet wait ends early, to read again
                yield HEARTBEAT


def _stream_response(events, subscription: Subscription) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    # Closed with the response even if its body was never iterated (closing twice is harmless).
    response._resource_closers.append(subscription.close)
    response["Cache-Control"] = "no-cache"
    # nginx and some other proxies buffer responses unless told not to.
    response["X-Accel-Buffering"] = "no"
    return response


class WaitingView:
    """A DRF view class as a Django view that may wait. Under the ASGI server the request arrives
    marked (``exceptions_app/waits/serving.py``) and the plan goes back to the server, which waits on
    the event loop; under a WSGI server this view waits itself, blocking its thread. ``view`` carries
    the DRF view's ``cls`` and ``initkwargs``, so the schema and the permission matrix see the API view."""

    def __init__(self, view_class):
        drf_view = view_class.as_view()
        self._drf_view = drf_view

        def view(request, *args, **kwargs):
            return self._respond(request, *args, **kwargs)

        view.cls, view.initkwargs, view.csrf_exempt = drf_view.cls, drf_view.initkwargs, True
        view.__name__ = view.__qualname__ = drf_view.__name__
        view.__doc__ = drf_view.__doc__
        self.view = view

    def _respond(self, request, *args, **kwargs):
        plan = self._drf_view(request, *args, **kwargs)
        if not isinstance(plan, WaitFor | StreamFrom) or request.META.get(SERVED_ASYNCHRONOUSLY):
            return plan
        try:
            subscription = wait_hub().subscribe(plan.keys)
        except WaitersFull:
            return finish(plan, too_many_waiters())
        if isinstance(plan, StreamFrom):
            return _stream_response(_events_blocking(plan, subscription), subscription)
        with subscription:
            return finish(plan, _wait_blocking(plan, subscription))
