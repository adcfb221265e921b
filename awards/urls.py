from django.urls import path

from awards import api

app_name = "awards"

urlpatterns = [
    path("api/u/<str:username>/awards", api.member_awards, name="api-member-awards"),
]
