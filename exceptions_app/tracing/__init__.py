"""OpenTelemetry tracing, off unless the standard OTEL_* variables turn it on (configuration.py);
the spans Tollgate writes into an agent's trace are in spans.py. docs/integrations/opentelemetry.md."""
