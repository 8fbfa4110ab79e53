from django.http import HttpResponse
from django.template.loader import render_to_string

from exceptions_app.errors import DomainError


class DomainErrorPages:
    """Domain errors that escape a console view become a plain page with the right status
    (404, 403, 409), never a 500. The API maps them itself, in its own error shape."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DomainError) or request.path.startswith("/api/"):
            return None
        body = render_to_string(
            "review/error.html", {"message": exception.message, "status": exception.status_code}, request=request
        )
        return HttpResponse(body, status=exception.status_code)
