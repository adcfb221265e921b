"""Root URLs: auth, admin, and each app's routes."""

from django.contrib import admin
from django.urls import include, path

from swampclub.views import favicon

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("scoring.urls")),
    path("", include("awards.urls")),
    path("staff/", include("staff.urls")),
    path("staff/webhooks/", include("webhooks.staff_urls")),
    path("", include("members.urls")),
    path("", include("accounts.urls")),
    path("favicon.ico", favicon, name="favicon"),
]
