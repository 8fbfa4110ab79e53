"""Which OTEL_* variables turn tracing on, and which exporters and instrumentations they ask for."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from exceptions_app.tracing.configuration import exporters_from_env, instrumentations_wanted, tracing_wanted
from exceptions_app.tracing.spans import traceparent_of


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "tollgate"}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "false"}, True),
    ],
)
def test_only_an_exporter_or_an_otlp_endpoint_turns_tracing_on(environ, wanted):
    assert tracing_wanted(environ) is wanted


def test_otlp_is_http_protobuf_unless_the_protocol_says_otherwise():
    (exporter,) = exporters_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert isinstance(exporter, OTLPSpanExporter)
    exporters = exporters_from_env({"OTEL_TRACES_EXPORTER": "console,otlp"})
    assert [type(exporter) for exporter in exporters] == [ConsoleSpanExporter, OTLPSpanExporter]


def test_an_exporter_nothing_provides_stops_the_start_with_its_name():
    with pytest.raises(RuntimeError, match="zipkin"):
        exporters_from_env({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(RuntimeError, match="opentelemetry-exporter-otlp-proto-grpc"):
        exporters_from_env({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    with pytest.raises(RuntimeError, match="unsupported protocol"):
        exporters_from_env({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"})


def test_instrumentations_are_chosen_and_can_be_left_out_as_opentelemetry_instrument_does():
    assert instrumentations_wanted({}, chosen=["celery"]) == ["celery"]
    assert instrumentations_wanted({}, chosen=["psycopg", "celery", "django"]) == ["django", "celery", "psycopg"]
    disabled = {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "psycopg, django"}
    assert instrumentations_wanted(disabled, chosen=["psycopg", "celery", "django"]) == ["celery"]


def test_an_unknown_instrumentation_stops_the_start_with_its_name():
    with pytest.raises(ImproperlyConfigured, match="flask"):
        instrumentations_wanted({}, chosen=["celery", "flask"])


def test_traceparent_of_an_invalid_context_is_empty():
    from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanContext, TraceFlags

    assert traceparent_of(INVALID_SPAN_CONTEXT) == ""
    context = SpanContext(trace_id=0xABC, span_id=0x12, is_remote=False, trace_flags=TraceFlags(1))
    assert traceparent_of(context) == f"00-{0xABC:032x}-{0x12:016x}-01"
