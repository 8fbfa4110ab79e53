from exceptions_app.models.audit import AuditEvent
from exceptions_app.models.decisions import GateDecision, Verdict
from exceptions_app.models.deliveries import Delivery, DeliveryAttempt, DeliveryStatus, FeedCursor, TargetKind
from exceptions_app.models.items import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    ExceptionItem,
    ItemKind,
    ItemStatus,
    Resolution,
    Severity,
    SlaStage,
)
from exceptions_app.models.metrics import (
    DecisionHourly,
    DeliveryHourly,
    HistogramTotal,
    QueueSnapshot,
    ResolutionHourly,
    TallyCursor,
)
from exceptions_app.models.principals import ApiToken, Principal, Role, Team
from exceptions_app.models.queues import Queue
from exceptions_app.models.replays import ReplayRun, ReplayStatus
from exceptions_app.models.votes import Vote, VotePurpose
from exceptions_app.models.worker_health import WorkerConsumer, WorkerHeartbeat, WorkerPing
from exceptions_app.models.workflows import BreakerState, PolicySource, PolicyVersion, Workflow

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "ApiToken",
    "AuditEvent",
    "BreakerState",
    "DecisionHourly",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryHourly",
    "DeliveryStatus",
    "ExceptionItem",
    "FeedCursor",
    "GateDecision",
    "HistogramTotal",
    "ItemKind",
    "ItemStatus",
    "PolicySource",
    "PolicyVersion",
    "Principal",
    "Queue",
    "QueueSnapshot",
    "ReplayRun",
    "ReplayStatus",
    "Resolution",
    "ResolutionHourly",
    "Role",
    "Severity",
    "SlaStage",
    "TallyCursor",
    "TargetKind",
    "Team",
    "Verdict",
    "Vote",
    "VotePurpose",
    "WorkerConsumer",
    "WorkerHeartbeat",
    "WorkerPing",
    "Workflow",
]
