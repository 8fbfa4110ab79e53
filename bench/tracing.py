"""Tracing for a benchmark's server: off (no OTEL_* variable at all), or on as a deployment turns it on.

On means: ``OTEL_TRACES_EXPORTER=otlp`` (HTTP/protobuf) to a local OTLP sink in the benchmark's own
process, sampling ratio 1 (``OTEL_TRACES_SAMPLER=traceidratio``, ``OTEL_TRACES_SAMPLER_ARG=1``), and the
default instrumentation (Celery's, and Tollgate's own middleware reading ``traceparent``); ``all``
adds Django's (a server span per request) and psycopg's (a span per query):
``TOLLGATE_TRACE_INSTRUMENTATIONS=celery,django,psycopg``. So the server pays for everything a traced
deployment pays for: creating every span, batching, encoding protobuf and POSTing it. The sink answers
200 at once and counts the spans it received (its parse runs in the benchmark process, not the server's).
The benchmark's requests carry no ``traceparent``: each request starts its own trace.
"""

import threading
from http.server import BaseHTTPRequestHandler

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from exceptions_app.simulation.local_server import LocalHTTPServer

MODES = ("off", "on", "all")


class OtlpSink:
    """A stand-in collector on 127.0.0.1 that keeps nothing but counts."""

    def __init__(self) -> None:
        self.spans = self.requests = self.bytes = 0
        self.lock = threading.Lock()
        self.server = LocalHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self):
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                request = ExportTraceServiceRequest.FromString(body)
                count = sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
                with sink.lock:
                    sink.spans += count
                    sink.requests += 1
                    sink.bytes += len(body)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        return Handler

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def sink_for(mode: str) -> OtlpSink | None:
    return None if mode == "off" else OtlpSink()


def server_env(env: dict, mode: str, sink: OtlpSink | None) -> dict:
    """The server's environment: without any OTEL_* variable, or traced into ``sink``."""
    env = {name: value for name, value in env.items() if not name.startswith("OTEL_")}
    env["TOLLGATE_TRACE_INSTRUMENTATIONS"] = "celery,django,psycopg" if mode == "all" else "celery"
    if sink is not None:
        env.update(
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=sink.url,
            OTEL_TRACES_SAMPLER="traceidratio",
            OTEL_TRACES_SAMPLER_ARG="1",
            OTEL_SERVICE_NAME="tollgate-bench",
        )
    return env


def decisions_of(runs: list[dict], paced: dict) -> int:
    """Decisions the intake benchmark recorded in all its runs."""
    return paced["recorded"] + sum(run[kind]["recorded"] for run in runs for kind in ("single", "batch"))


def report_row(mode: str, sink: OtlpSink | None, decisions: int) -> dict:
    """The benchmark table's line saying how tracing was set, and what the sink received."""
    if sink is None:
        figure = "off: no OTEL_* variable"
    else:
        sink.stop()
        per = sink.spans / max(1, decisions)
        figure = f"{mode}: {sink.spans} spans ({per:.1f} per decision) in {sink.requests} OTLP exports, ratio 1"
    return {"name": "tracing", "workload": "server", "figure": figure, "target": "(report)", "result": "info"}
