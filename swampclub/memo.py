"""Values remembered for one object while it lives, kept beside it rather than on it.

A request's ``ApiKey`` carries facts worked out once per request (its owner's authority,
the members its award events name). Writing them into the model instance's ``__dict__``
hides them from readers and from type checkers; an ``InstanceMemo`` is a named, typed
place for them. Entries are keyed by the object's identity (not by its primary key, so two
loads of one row never share an entry) and dropped when the object is garbage collected,
so a memo lives exactly as long as the object it describes — one request for a key.
"""

import threading
import weakref
from collections.abc import Callable
from typing import Any


class InstanceMemo[T]:
    """A value per live object: ``get(obj)``, ``set(obj, value)``, ``get_or_set(obj, make)``."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[Any], T]] = {}
        # Reentrant: a collection (and so a ``forget``) can happen while the lock is held.
        self._lock = threading.RLock()

    def get(self, obj: object) -> T | None:
        """The value remembered for ``obj``, or None."""
        entry = self._entries.get(id(obj))
        if entry is None or entry[0]() is not obj:
            return None
        return entry[1]

    def set(self, obj: object, value: T) -> T:
        """Remember ``value`` for ``obj`` (until ``obj`` is collected); return it."""
        key = id(obj)

        def forget(ref: weakref.ref[Any], key: int = key) -> None:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and entry[0] is ref:
                    del self._entries[key]

        with self._lock:
            self._entries[key] = (weakref.ref(obj, forget), value)
        return value

    def get_or_set(self, obj: object, make: Callable[[], T]) -> T:
        """The value remembered for ``obj``, made by ``make()`` and remembered when absent."""
        value = self.get(obj)
        return self.set(obj, make()) if value is None else value
