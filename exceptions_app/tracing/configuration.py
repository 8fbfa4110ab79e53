"""Turning tracing on from the standard ``OTEL_*`` variables, once per process.

Tracing is off unless the environment asks for it, and off means off: no tracer provider, no
instrumentation, and the spans module answers every call with a shared do-nothing object.

On when ``OTEL_SDK_DISABLED`` is not ``true`` and either ``OTEL_TRACES_EXPORTER`` names an exporter
other than ``none``, or an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; the exporter is then ``otlp``). Everything else is read by
the SDK itself: ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` (the resource),
``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG`` (sampling), ``OTEL_BSP_*`` (batching),
``OTEL_EXPORTER_OTLP_*`` (endpoint, headers, timeout). Instrumentations: Celery's by default,
Django's and psycopg's when ``TOLLGATE_TRACE_INSTRUMENTATIONS`` names them;
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` leaves any out, as ``opentelemetry-instrument`` does.
Without Django's, our middleware reads the caller's ``traceparent``. An exporter name that nothing
provides stops the process at start-up.
"""

import os
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured

from exceptions_app.tracing import spans

if TYPE_CHECKING:  # the SDK is imported only when tracing is turned on
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

INSTRUMENTATIONS = ("django", "celery", "psycopg")
# "otlp" is HTTP/protobuf unless the protocol variables say grpc (its exporter is not installed by default).
_OTLP_BY_PROTOCOL = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Do these variables turn tracing on?"""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def _exporter_names(environ: Mapping[str, str]) -> list[str]:
    names = [name.strip() for name in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if name.strip()]
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    ).strip() or "http/protobuf"
    if protocol not in _OTLP_BY_PROTOCOL:
        raise RuntimeError(f"OTEL_EXPORTER_OTLP_PROTOCOL: unsupported protocol {protocol!r}")
    return [_OTLP_BY_PROTOCOL[protocol] if name == "otlp" else name for name in names if name != "none"]


def exporters_from_env(environ: Mapping[str, str]) -> list["SpanExporter"]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names, found as the SDK finds them (entry points)."""
    exporters = []
    for name in _exporter_names(environ):
        found = list(entry_points(group="opentelemetry_traces_exporter", name=name))
        if not found:
            raise RuntimeError(
                f"OTEL_TRACES_EXPORTER: no installed package provides the trace exporter {name!r}"
                + (" (pip install opentelemetry-exporter-otlp-proto-grpc)" if name == "otlp_proto_grpc" else "")
            )
        exporters.append(found[0].load()())
    return exporters


def instrumentations_wanted(environ: Mapping[str, str], *, chosen: list[str]) -> list[str]:
    """The instrumentations ``TOLLGATE_TRACE_INSTRUMENTATIONS`` chose, less those
    ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` leaves out. Django's and psycopg's are not on by
    default: a server span per request and a span per query cost more than the 10% the intake may
    spend on tracing (docs/integrations/opentelemetry.md)."""
    unknown = sorted(set(chosen) - set(INSTRUMENTATIONS))
    if unknown:
        raise ImproperlyConfigured(
            f"TOLLGATE_TRACE_INSTRUMENTATIONS: unknown {', '.join(unknown)}; choose among {', '.join(INSTRUMENTATIONS)}"
        )
    disabled = {name.strip() for name in environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")}
    return [name for name in INSTRUMENTATIONS if name in chosen and name not in disabled]


def _instrument(name: str, provider: "TracerProvider") -> None:
    if name == "django":
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        DjangoInstrumentor().instrument(tracer_provider=provider)
    elif name == "celery":
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().instrument(tracer_provider=provider)
    else:
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        PsycopgInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)


def _uninstrument(name: str) -> None:
    if name == "django":
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        DjangoInstrumentor().uninstrument()
    elif name == "celery":
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().uninstrument()
    else:
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        PsycopgInstrumentor().uninstrument()


_instrumented: list[str] = []


def tracing_install(provider: "TracerProvider", *, instrumentations: list[str]) -> None:
    """Trace with ``provider`` from now on, with these instrumentations. Call before Django loads its
    middleware (AppConfig.ready), or Django's instrumentation comes too late for requests."""
    for name in instrumentations:
        _instrument(name, provider)
    _instrumented[:] = instrumentations
    spans.tracer_set(provider.get_tracer("tollgate"), propagating_requests="django" not in instrumentations)


def tracing_uninstall() -> None:
    """Back to off (tests)."""
    spans.tracer_set(None, propagating_requests=False)
    for name in _instrumented:
        _uninstrument(name)
    _instrumented.clear()


def tracing_start(environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on if the environment asks for it; whether it did."""
    environ = os.environ if environ is None else environ
    if not tracing_wanted(environ) or spans.tracing_enabled():
        return False
    from django.conf import settings
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "tollgate"}))
    provider = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER(_ARG)
    for exporter in exporters_from_env(environ):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    chosen = settings.TOLLGATE_TRACE_INSTRUMENTATIONS
    tracing_install(provider, instrumentations=instrumentations_wanted(environ, chosen=chosen))
    return True
