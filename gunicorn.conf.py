"""gunicorn reads this file from its working directory (the Procfile, the Dockerfile and compose all
start it at the repository root). Tuning lives here, at the edge, not in the views. These hooks run
under gunicorn's own workers (gthread: ``exceptions_app.wsgi``); under the Procfile's uvicorn workers
``exceptions_app/asgi.py`` applies the same pause (exceptions_app/gc_tuning.py) around the WSGI app.

The batch endpoint runs with CPython's cyclic garbage collector paused. A batch of 1,000 decisions
builds tens of thousands of objects (parsed entries, validated data, model instances, COPY rows) that
all live until its response is sent. Each counts towards the collector's thresholds, so CPython ran
young and full collections over the same live objects again and again. In four alternating runs of
`bench/profile_intake.py --batch 1000 --requests 30 --time-only` with and without the pause, a batch
took 269-317 ms of CPU without and 205-251 ms with it (18-26% less in each pair). Reference counting
still frees everything the batch drops as it goes; only reference cycles wait until the collector
runs again, right after the request.

The collector is per process, so the pause covers the other threads' requests while a batch runs:
the pause is shared, and the collector resumes when the last batch leaves (and only if it was on).
"""

from exceptions_app.gc_tuning import GC_PAUSED_PATHS, collector_pause, collector_resume


def pre_request(worker, req) -> None:
    if req.path in GC_PAUSED_PATHS:
        collector_pause()
        req.tollgate_gc_paused = True


def post_request(worker, req, environ, resp) -> None:
    # gunicorn calls this in a finally block, so a failed request resumes the collector too.
    if getattr(req, "tollgate_gc_paused", False):
        req.tollgate_gc_paused = False
        collector_resume()
