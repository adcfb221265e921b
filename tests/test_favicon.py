"""The site's icon: linked by every page, served by whitenoise, and /favicon.ico answers."""

import pytest

pytestmark = pytest.mark.django_db


def test_pages_link_the_svg_icon(client):
    body = client.get("/leaderboard/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in body


def test_the_icon_is_served_as_svg(client):
    response = client.get("/static/favicon.svg")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    try:
        assert b"".join(response.streaming_content).startswith(b"<svg ")
    finally:
        response.close()  # whitenoise streams the file


def test_favicon_ico_redirects_to_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == "/static/favicon.svg"
    assert "max-age=86400" in response["Cache-Control"]
    followed = client.get("/favicon.ico", follow=True)
    followed.close()
    assert followed.status_code == 200
