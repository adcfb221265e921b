"""Helpers shared by the scoring tests."""

from tests.factories import UserFactory


def members_batch(n: int) -> list:
    """``n`` members without a usable password: hashing one costs ~0.5 s, and these tests
    create hundreds of members that never log in."""
    return UserFactory.create_batch(n, password=None)
