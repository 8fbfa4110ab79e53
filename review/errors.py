"""Error pages that say why and what to do, in the site's layout."""

from django.template.response import TemplateResponse

CSRF_REASON = (
    "The form's security token was missing or out of date, so nothing was changed. This happens when "
    "the page was open across a sign-in or sign-out, or cookies are blocked for this site. Reload the "
    "page and try again."
)


def csrf_failure(request, reason: str = ""):
    """Django's CSRF refusal (settings.CSRF_FAILURE_VIEW), as the styled 403 page."""
    response = TemplateResponse(request, "403.html", {"exception": CSRF_REASON}, status=403)
    return response.render()
