from django.apps import AppConfig


class ExceptionsAppConfig(AppConfig):
    name = "exceptions_app"
    verbose_name = "Tollgate"

    def ready(self) -> None:
        from pathlib import Path

        from django.conf import settings

        from exceptions_app.services.local_cache import local_caches_connect
        from exceptions_app.tracing.configuration import tracing_start

        local_caches_connect()
        tracing_start()  # only if OTEL_* variables ask; before the web handler loads its middleware

        # Beat's schedule lives in the data folder whatever the engines; SQLite and the
        # filesystem broker need it too.
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        if settings.CELERY_BROKER_URL == "filesystem://":
            for key in ("data_folder_in", "processed_folder", "control_folder"):
                Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS[key]).mkdir(parents=True, exist_ok=True)
