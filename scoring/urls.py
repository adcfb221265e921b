from django.urls import path

from scoring import api, openapi, views

app_name = "scoring"

urlpatterns = [
    path("ingest", views.ingest, name="ingest"),
    path("api/u/<str:username>/score", api.member_score, name="api-member-score"),
    path("api/schema", openapi.openapi_schema, name="api-schema"),
]
