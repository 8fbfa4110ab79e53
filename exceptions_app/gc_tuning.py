"""Pausing CPython's cyclic garbage collector around batch intake requests: the why is in
gunicorn.conf.py. Used by its hooks (gthread workers) and by exceptions_app/asgi.py (uvicorn workers).
The collector is per process, so the pause is shared by the process's threads: it resumes when the
last batch leaves, and only if it was on."""

import gc
import threading

GC_PAUSED_PATHS = frozenset({"/api/v1/decisions/batch"})

_lock = threading.Lock()
_holders = 0
_resume = False


def collector_pause() -> None:
    global _holders, _resume
    with _lock:
        if _holders == 0:
            _resume = gc.isenabled()
            gc.disable()
        _holders += 1


def collector_resume() -> None:
    global _holders
    with _lock:
        _holders -= 1
        if _holders == 0 and _resume:
            gc.enable()


def collector_paused_for_batches(app):
    """The WSGI app with the collector paused while it handles a batch (the response is built by then)."""

    def paused(environ, start_response):
        if environ.get("PATH_INFO") not in GC_PAUSED_PATHS:
            return app(environ, start_response)
        collector_pause()
        try:
            return app(environ, start_response)
        finally:
            collector_resume()

    return paused
