"""Routes of the accounts app: sign-in (site and CLI), and members' own keys."""

from django.urls import path

from accounts import api, views

app_name = "accounts"

urlpatterns = [
    path("login", views.SignInView.as_view(), name="login"),
    path("login/cli/confirm", views.cli_confirm, name="cli-confirm"),
    path("settings/keys/", views.keys, name="keys"),
    path("settings/keys/<int:key_id>/revoke", views.key_revoke, name="key-revoke"),
    path("api/auth/sign-in/username", api.sign_in_username, name="api-sign-in-username"),
    path("api/auth/sign-in/email", api.sign_in_email, name="api-sign-in-email"),
    path("api/auth/api-key/create", api.api_key_create, name="api-key-create"),
    path("api/whoami", api.whoami, name="api-whoami"),
]
