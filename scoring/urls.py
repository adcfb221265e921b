from django.urls import path

from scoring import openapi, views

app_name = "scoring"

urlpatterns = [
    path("ingest", views.ingest, name="ingest"),
    path("api/schema", openapi.openapi_schema, name="api-schema"),
]
