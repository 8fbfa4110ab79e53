from django.urls import path

from exceptions_app.api import views_agents, views_workflows

urlpatterns = [
    path("decisions", views_agents.DecisionCreateView.as_view(), name="decision-submit"),
    path("decisions/batch", views_agents.DecisionBatchView.as_view(), name="decision-batch"),
    path("exceptions", views_agents.ExceptionCollectionView.as_view(), name="exception-collection"),
    path("exceptions/<int:item_id>", views_agents.ExceptionDetailView.as_view(), name="exception-detail"),
    path("exceptions/<int:item_id>/cancel", views_agents.ExceptionCancelView.as_view(), name="exception-cancel"),
    path("workflows/<str:name>", views_workflows.WorkflowDetailView.as_view(), name="workflow-detail"),
]
