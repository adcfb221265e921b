"""The staff form for a webhook endpoint (shape only; ``endpoint_errors`` holds the rules)."""

from django import forms

from webhooks.models import WebhookEndpoint


class EndpointForm(forms.Form):
    """URL, description, subscribed event types, format and private-award policy."""

    url = forms.CharField(
        label="URL",
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/swamp"}),
    )
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=[(t, t) for t in WebhookEndpoint.EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one event type."},
    )
    format = forms.ChoiceField(choices=WebhookEndpoint.Format.choices, initial="json")
    private_awards = forms.ChoiceField(
        label="Private awards (Discord)",
        choices=WebhookEndpoint.PrivateAwards.choices,
        initial="points",
        help_text="A private award's reason is never sent; announce its points, or nothing.",
    )
