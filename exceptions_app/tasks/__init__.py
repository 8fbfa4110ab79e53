"""Celery tasks, one module per kind of work; settings route them to queues."""

from exceptions_app.tasks import delivery, health, periodic, replay

__all__ = ["delivery", "health", "periodic", "replay"]
