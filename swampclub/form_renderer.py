"""The form renderer: Django's, with widget HTML remembered per process.

A form widget is a small template (``input.html`` including ``attrs.html``, a select
including one ``option.html`` per choice) rendered through the template engine on every
page: the grant form on a staff member page cost ~5 ms a request that way. A widget's
HTML depends only on its context, so when that context is made of plain values (strings,
numbers, booleans, None, in dicts, lists and tuples) the HTML is remembered under the
template name and the context's ``repr``. Anything else — form and field objects, lazy
translations, errors — renders as usual. Remembered entries are bounded (least recently
used dropped first): bound forms carry what users typed.
"""

from collections import OrderedDict
from threading import Lock

from django.forms.renderers import DjangoTemplates

_PLAIN = (str, int, float, bool, type(None))
MAX_ENTRIES = 512


def _plain(value: object) -> bool:
    if type(value) in _PLAIN:  # exact types: no lazy strings, no SafeString subclasses
        return True
    if type(value) is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if type(value) is list or type(value) is tuple:
        return all(_plain(v) for v in value)
    return False


class MemoDjangoTemplates(DjangoTemplates):
    """``DjangoTemplates`` that reuses the HTML of a widget rendered with the same plain
    context."""

    def __init__(self) -> None:
        super().__init__()
        self._html: OrderedDict[str, str] = OrderedDict()
        self._lock = Lock()

    def render(self, template_name, context, request=None):  # type: ignore[no-untyped-def]
        """The template's HTML for ``context``, remembered when the context is plain."""
        if request is not None or not template_name.startswith("django/forms/widgets/"):
            return super().render(template_name, context, request)
        if not _plain(context):
            return super().render(template_name, context, request)
        key = template_name + "\0" + repr(context)
        with self._lock:
            html = self._html.get(key)
            if html is not None:
                self._html.move_to_end(key)
                return html
        html = super().render(template_name, context, request)
        with self._lock:
            self._html[key] = html
            if len(self._html) > MAX_ENTRIES:
                self._html.popitem(last=False)
        return html
