"""The project's form renderer gives Django's HTML, remembering only plain widget contexts."""

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates, get_default_renderer
from django.utils.translation import gettext_lazy

from staff.forms import AwardFilterForm, AwardGrantForm
from swampclub.form_renderer import MemoDjangoTemplates


class Odd(forms.Form):
    name = forms.CharField(widget=forms.TextInput(attrs={"placeholder": gettext_lazy("Name")}))
    pick = forms.ChoiceField(choices=[("a", "<A>"), ("b", "B & co")])


def _html(form_class, renderer, **kwargs) -> str:
    form = form_class(renderer=renderer, **kwargs)
    form.is_valid()
    return str(form) + "".join(str(field) for field in form)


def test_the_site_uses_it():
    assert isinstance(get_default_renderer(), MemoDjangoTemplates)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("form_class", "kwargs"),
    [
        (AwardGrantForm, {"initial": {"username": "bog", "idempotency_key": "k-1"}}),
        (AwardGrantForm, {"data": {"username": '"><script>', "points": "x", "category": "x"}}),
        (AwardFilterForm, {"data": {"category": "event", "date_from": "2026-01-02"}}),
        (Odd, {"data": {"name": "<b>", "pick": "b"}}),
    ],
)
def test_same_html_as_django_twice(form_class, kwargs):
    memo, plain = MemoDjangoTemplates(), DjangoTemplates()
    expected = _html(form_class, plain, **kwargs)
    assert _html(form_class, memo, **kwargs) == expected
    assert _html(form_class, memo, **kwargs) == expected  # now from memory


def test_lazy_and_changed_values_are_not_reused():
    memo = MemoDjangoTemplates()
    first = _html(Odd, memo, data={"name": "one", "pick": "a"})
    second = _html(Odd, memo, data={"name": "two", "pick": "b"})
    assert 'value="one"' in first
    assert 'value="two"' in second
    # The text input's context holds a lazy placeholder: rendered afresh, never remembered.
    assert not any("text.html" in key for key in memo._html)
