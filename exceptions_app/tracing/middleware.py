"""The caller's ``traceparent`` becomes the request's trace context when Django's instrumentation is
left out (``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=django``); with tracing off or that
instrumentation on, a pass-through."""

from exceptions_app.tracing import spans


def trace_context_middleware(get_response):
    def middleware(request):
        token = spans.request_context_attach(request.META)
        try:
            return get_response(request)
        finally:
            spans.request_context_detach(token)

    return middleware
