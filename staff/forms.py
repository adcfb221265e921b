"""Staff forms. They check the input's shape; the award services enforce the rules."""

import secrets
from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.urls import reverse

from awards.models import Award
from awards.recipients import member_by_username
from awards.rules import KEY_MAX, REASON_MAX, REASON_MIN, STAFF_NOTE_MAX, USERNAME_MAX, points_max
from scoring.models import ApiKey


def idempotency_key_new() -> str:
    """A fresh key for one rendering of the grant form (unguessable, URL-safe)."""
    return "form-" + secrets.token_urlsafe(18)


def member_search_attrs(results: str = "member-results") -> dict[str, str]:
    """htmx attributes that make a username input search members as the staff member types.

    The results (buttons that fill the field, see static/app.js) go into ``#<results>``;
    the search keeps its own request queue so it never cancels the form's validation.
    """
    return {
        "hx-get": reverse("staff:member-search"),
        "hx-trigger": "input changed delay:250ms",
        "hx-target": f"#{results}",
        "hx-swap": "innerHTML",
        "hx-sync": "this:replace",
        "aria-controls": results,
        "aria-autocomplete": "list",
        "autocomplete": "off",
        "spellcheck": "false",
    }


def add_service_error(form: forms.Form, error: ValidationError) -> None:
    """Attach a service's ``ValidationError`` to the form, beside the fields it names.

    Errors naming a field the form does not have (e.g. ``recipient``) go to the top of the
    form, so no message is ever lost.
    """
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    aliases = {"recipient": "username", "member": "username", "owner": "username"}
    for name, errors in error.error_dict.items():
        target = aliases.get(name, name)
        form.add_error(target if target in form.fields else None, errors)


class MemberField(forms.CharField):
    """A username that must belong to an existing member; cleans to the user."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", USERNAME_MAX)
        super().__init__(**kwargs)

    def clean(self, value: Any) -> User | None:
        """Return the member named ``value`` or raise a field error."""
        username = super().clean(value)
        if not username:
            return None
        member = member_by_username(username=username)
        if member is None:
            raise ValidationError(f"No member is called “{username}”.", code="unknown_member")
        return member


class PointsField(forms.IntegerField):
    """Whole points from 1 to ``awards.rules.points_max()`` (read per request, not at import)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        super().__init__(**kwargs)

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        """Let the browser check the range too."""
        attrs = super().widget_attrs(widget)
        attrs["max"] = points_max()
        return attrs

    def validate(self, value: Any) -> None:
        """Reject more than ``AWARD_MAX_POINTS``."""
        super().validate(value)
        if value is not None and value > points_max():
            raise ValidationError(
                f"At most {points_max():,} points can be granted at once.",
                code="max_value",
            )


class AwardGrantForm(forms.Form):
    """The grant form (SPEC §8 form contract)."""

    username = MemberField(label="Member")
    points = PointsField()
    reason = forms.CharField(
        min_length=REASON_MIN,
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Shown to the member.",
    )
    category = forms.ChoiceField(choices=Award.Category.choices, initial=Award.Category.OTHER)
    public = forms.BooleanField(
        required=False,
        initial=True,
        label="Public",
        help_text="A private award shows only its points and date to others.",
    )
    staff_note = forms.CharField(
        required=False,
        max_length=STAFF_NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Staff note",
        help_text="Never shown to members.",
    )
    idempotency_key = forms.CharField(max_length=KEY_MAX, widget=forms.HiddenInput)
    # Set by the member page: after a grant the fresh form keeps the member filled in.
    keep_member = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound and "idempotency_key" not in self.initial:
            self.initial["idempotency_key"] = idempotency_key_new()
        self.fields["username"].widget.attrs.update(member_search_attrs())

    def clean_reason(self) -> str:
        """Strip surrounding whitespace; PostgreSQL cannot store NUL characters."""
        reason = self.cleaned_data["reason"].strip()
        if "\x00" in reason:
            raise ValidationError("The reason contains a NUL character.")
        return reason

    def clean_staff_note(self) -> str:
        """PostgreSQL cannot store NUL characters."""
        note = self.cleaned_data["staff_note"]
        if "\x00" in note:
            raise ValidationError("The staff note contains a NUL character.")
        return note


class PreviewForm(forms.Form):
    """The preview's query string: both fields must be usable for a preview to show."""

    username = MemberField()
    points = PointsField()


STATUS_CHOICES = [("", "Any"), ("active", "Active"), ("revoked", "Revoked")]


class DateRangeForm(forms.Form):
    """An optional, inclusive date range (``date_from``, ``date_to``) for list filters."""

    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        """A range must not end before it starts."""
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "The end date is before the start date.")
        return data


class AwardFilterForm(DateRangeForm):
    """Filters of the award list; every field is optional."""

    field_order = ["member", "category", "granter", "date_from", "date_to", "status"]

    member = MemberField(required=False)
    category = forms.ChoiceField(required=False, choices=[("", "Any"), *Award.Category.choices])
    granter = MemberField(required=False, label="Granted by")
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES)


class AuditFilterForm(DateRangeForm):
    """Filters of the audit list; every field is optional (usernames as recorded)."""

    field_order = ["actor", "action", "member", "object_type", "object_id", "date_from", "date_to"]

    actor = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=50)
    member = forms.CharField(required=False, max_length=150)
    object_type = forms.CharField(required=False, max_length=50, widget=forms.HiddenInput)
    object_id = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)


class BulkUploadForm(forms.Form):
    """A CSV file to dry-run (and, with ``confirm``, to grant at once)."""

    file = forms.FileField(
        label="CSV file",
        help_text="Columns: username, points, reason, and optionally category, award_id.",
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)


class BulkConfirmForm(forms.Form):
    """Confirms a dry run by the token it handed out."""

    token = forms.UUIDField(widget=forms.HiddenInput)


class ApiKeyCreateForm(forms.Form):
    """A new API key: its owner, a name, and its scopes.

    Who may create which key is the key service's rule (``scoring.apikeys``), not the form's.
    """

    username = MemberField(label="Owner")
    name = forms.CharField(max_length=100, required=False, help_text="What the key is for.")
    scopes = forms.MultipleChoiceField(
        choices=[
            (ApiKey.SCOPE_INGEST, "ingest — send CLI telemetry"),
            (
                ApiKey.SCOPE_AWARD,
                "award — grant awards through the API (your own key, while you may grant)",
            ),
        ],
        widget=forms.CheckboxSelectMultiple,
        initial=[ApiKey.SCOPE_INGEST],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(member_search_attrs("owner-results"))


class RequestRejectForm(forms.Form):
    """Why an award request is rejected (shown to the requester)."""

    reason = forms.CharField(min_length=REASON_MIN, max_length=REASON_MAX, widget=forms.TextInput)
