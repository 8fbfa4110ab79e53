from functools import wraps

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from exceptions_app import health, metrics


def sign_in_first(view):
    """The docs are a page for people: one without a session or a token goes to the sign-in page and
    comes back, rather than reading a bare 401 (the schema and docs need a sign-in; README says why)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated and "HTTP_AUTHORIZATION" not in request.META:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapped


urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    # LoginView would also take PUT as a sign-in; only the form's GET and POST are routes.
    path("accounts/login/", auth_views.LoginView.as_view(http_method_names=["get", "post"]), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("exceptions_app.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file, so scripts stay 'self' only; Swagger UI's
    # stylesheet inlines a <style> and data: icons, allowed on this page alone.
    path(
        "api/docs/",
        csp_update({"style-src": [UNSAFE_INLINE], "img-src": ["data:"]})(
            sign_in_first(SpectacularSwaggerSplitView.as_view(url_name="api-schema"))
        ),
        name="api-docs",
    ),
    path("", include("review.urls")),
]
