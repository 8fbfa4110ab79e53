from exceptions_app.models.worker_health import WorkerHeartbeat, WorkerPing

__all__ = ["WorkerHeartbeat", "WorkerPing"]
