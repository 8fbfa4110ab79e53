from django.urls import path

from review import views

app_name = "review"
urlpatterns = [
    path("", views.home, name="home"),
    path("system/workers", views.worker_status, name="worker_status"),
    path("system/workers/ping", views.worker_ping, name="worker_ping"),
]
