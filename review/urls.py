from django.urls import path

from review import views, views_accountability, views_dashboard, views_items, views_replay, views_search

app_name = "review"
urlpatterns = [
    path("", views.home, name="home"),
    path("queues/table", views.queue_table, name="queue_table"),
    path("queues/<slug:name>/next", views.queue_next, name="queue_next"),
    path("items/search", views_search.search, name="search"),
    path("items/bulk", views_search.bulk, name="bulk"),
    path("items/<int:item_id>", views_items.item_page, name="item"),
    path("items/<int:item_id>/claim", views_items.item_claim, name="item_claim"),
    path("items/<int:item_id>/renew", views_items.item_renew, name="item_renew"),
    path("items/<int:item_id>/release", views_items.item_release, name="item_release"),
    path("items/<int:item_id>/approve", views_items.item_approve, name="item_approve"),
    path("items/<int:item_id>/reject", views_items.item_reject, name="item_reject"),
    path("items/<int:item_id>/escalate", views_items.item_escalate, name="item_escalate"),
    path("items/<int:item_id>/snooze", views_items.item_snooze, name="item_snooze"),
    path("items/<int:item_id>/comment", views_items.item_comment, name="item_comment"),
    path("items/<int:item_id>/edit/preview", views_items.item_edit_preview, name="item_edit_preview"),
    path("items/<int:item_id>/modify", views_items.item_modify, name="item_modify"),
    path("items/<int:item_id>/undo", views_items.item_undo, name="item_undo"),
    path("items/<int:item_id>/reassign", views_items.item_reassign, name="item_reassign"),
    path("items/<int:item_id>/reprioritise", views_items.item_reprioritise, name="item_reprioritise"),
    path("dashboard", views_dashboard.dashboard, name="dashboard"),
    path("dashboard/live", views_dashboard.dashboard_live, name="dashboard_live"),
    path("dashboard/capacity", views_dashboard.dashboard_capacity, name="dashboard_capacity"),
    path("dashboard/export/<slug:table>.csv", views_dashboard.dashboard_export, name="dashboard_export"),
    path("dashboard/dead-letters/redeliver", views_dashboard.dead_letters_redeliver, name="dead_letters_redeliver"),
    path("workflows/<str:name>/accountability", views_accountability.accountability, name="accountability"),
    path(
        "workflows/<str:name>/accountability/reset-breaker",
        views_accountability.accountability_reset_breaker,
        name="accountability_reset_breaker",
    ),
    path(
        "workflows/<str:name>/accountability/publish-threshold",
        views_accountability.accountability_publish_threshold,
        name="accountability_publish_threshold",
    ),
    path("policies/replay", views_replay.replay_page, name="replay"),
    path("policies/replay/run", views_replay.replay_run, name="replay_run"),
    path("policies/replay/runs/<int:run_id>", views_replay.replay_run_status, name="replay_run_status"),
    path("policies/replay/publish", views_replay.replay_publish, name="replay_publish"),
    path("system/workers", views.worker_status, name="worker_status"),
    path("system/workers/ping", views.worker_ping, name="worker_ping"),
]
