from django.urls import path, re_path

from exceptions_app.api import (
    errors,
    views_accountability,
    views_agents,
    views_feedback,
    views_operators,
    views_replay,
    views_stats,
    views_workflows,
)
from exceptions_app.api.views_capacity import CapacityView
from exceptions_app.waits.views import WaitingView

# The endpoints that may wait (exceptions_app/waits/serving.py serves them on the event loop under ASGI).
exception_detail = WaitingView(views_agents.ExceptionDetailView)
resolution_feed = WaitingView(views_feedback.ResolutionFeedView)
resolution_stream = WaitingView(views_feedback.ResolutionStreamView)

urlpatterns = [
    path("decisions", views_agents.DecisionCreateView.as_view(), name="decision-submit"),
    path("decisions/batch", views_agents.DecisionBatchView.as_view(), name="decision-batch"),
    path("exceptions", views_agents.ExceptionCollectionView.as_view(), name="exception-collection"),
    path("exceptions/<int:item_id>", exception_detail.view, name="exception-detail"),
    path("exceptions/<int:item_id>/cancel", views_agents.ExceptionCancelView.as_view(), name="exception-cancel"),
    path("exceptions/<int:item_id>/claim", views_operators.ExceptionClaimView.as_view(), name="exception-claim"),
    path("exceptions/<int:item_id>/renew", views_operators.ExceptionRenewView.as_view(), name="exception-renew"),
    path("exceptions/<int:item_id>/release", views_operators.ExceptionReleaseView.as_view(), name="exception-release"),
    path("exceptions/<int:item_id>/resolve", views_operators.ExceptionResolveView.as_view(), name="exception-resolve"),
    path("exceptions/<int:item_id>/snooze", views_operators.ExceptionSnoozeView.as_view(), name="exception-snooze"),
    path(
        "exceptions/<int:item_id>/comments", views_operators.ExceptionCommentsView.as_view(), name="exception-comments"
    ),
    path(
        "exceptions/<int:item_id>/timeline", views_operators.ExceptionTimelineView.as_view(), name="exception-timeline"
    ),
    path("queues", views_operators.QueueListView.as_view(), name="queue-list"),
    path("queues/<slug:name>", views_operators.QueueDetailView.as_view(), name="queue-detail"),
    path("queues/<slug:name>/claim-next", views_operators.QueueClaimNextView.as_view(), name="queue-claim-next"),
    path("resolutions", resolution_feed.view, name="resolution-feed"),
    path("resolutions/stream", resolution_stream.view, name="resolution-stream"),
    path("deliveries", views_feedback.DeliveryListView.as_view(), name="delivery-list"),
    path("deliveries/redeliver", views_feedback.DeliveryRedeliverView.as_view(), name="delivery-redeliver"),
    path("stats/", views_stats.StatsIndexView.as_view(), name="stats-index"),
    path("stats/queues", views_stats.QueueStatsView.as_view(), name="stats-queues"),
    path("stats/workflows", views_stats.WorkflowStatsView.as_view(), name="stats-workflows"),
    path("stats/latency", views_stats.LatencyStatsView.as_view(), name="stats-latency"),
    path("stats/operators", views_stats.OperatorStatsView.as_view(), name="stats-operators"),
    path("stats/capacity", CapacityView.as_view(), name="stats-capacity"),
    path("stats/agreement", views_stats.AgreementStatsView.as_view(), name="stats-agreement"),
    path(
        "workflows/<str:name>/accountability",
        views_accountability.AccountabilityView.as_view(),
        name="workflow-accountability",
    ),
    path(
        "workflows/<str:name>/reset-breaker",
        views_accountability.BreakerResetView.as_view(),
        name="workflow-reset-breaker",
    ),
    path("workflows/<str:name>", views_workflows.WorkflowDetailView.as_view(), name="workflow-detail"),
    path("workflows/<str:name>/replay", views_replay.WorkflowReplayView.as_view(), name="workflow-replay"),
    path("replays/<int:run_id>", views_replay.ReplayRunView.as_view(), name="replay-detail"),
    # Last: anything else under /api/v1/ is a 404 in the API's error shape.
    re_path(r"", errors.api_not_found, name="api-not-found"),
]
