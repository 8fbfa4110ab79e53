"""Celery tasks, one module per kind of work; settings route them to queues."""

from exceptions_app.tasks import health

__all__ = ["health"]
