"""Staff routes for webhooks under ``/staff/webhooks/``."""

from django.urls import path

from webhooks import views

app_name = "webhooks"

urlpatterns: list = [
    path("", views.endpoints_view, name="endpoints"),
    path("<int:endpoint_id>/", views.endpoint_detail_view, name="endpoint"),
    path("<int:endpoint_id>/active", views.endpoint_active_view, name="endpoint-active"),
    path("<int:endpoint_id>/rotate", views.endpoint_rotate_view, name="endpoint-rotate"),
    path("<int:endpoint_id>/test", views.endpoint_test_view, name="endpoint-test"),
    path(
        "deliveries/<int:delivery_id>/redeliver",
        views.delivery_redeliver_view,
        name="delivery-redeliver",
    ),
]
