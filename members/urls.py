from django.urls import path

from members import api, views

app_name = "members"

urlpatterns = [
    path("", views.home, name="home"),
    path("leaderboard/", views.leaderboard, name="leaderboard"),
    path("u/<str:username>/", views.profile, name="profile"),
    path("api/leaderboard", api.leaderboard, name="api-leaderboard"),
    path("api/u/<str:username>/score/explain", api.score_explain, name="api-score-explain"),
]
