"""Celery tasks, one module per kind of work; settings route them to queues."""

from exceptions_app.tasks import health, periodic

__all__ = ["health", "periodic"]
