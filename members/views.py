"""Member-facing pages: the leaderboard and profiles."""

from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from scoring.models import UserScore


@require_GET
def home(request):
    """The site root shows the leaderboard."""
    return redirect("members:leaderboard")


@require_GET
def leaderboard(request):
    """Members by total score, highest first."""
    scores = UserScore.objects.order_by("-total_score", "username")[:50]
    return render(request, "members/leaderboard.html", {"scores": scores})
