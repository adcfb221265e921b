"""Forms of the accounts pages (shape only; the rules live in ``accounts.services``)."""

from django import forms

from accounts.services import KEY_NAME_MAX


class KeyCreateForm(forms.Form):
    """A member's new key: its name."""

    name = forms.CharField(
        max_length=KEY_NAME_MAX,
        help_text="Where the key will be used, e.g. “work laptop”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
