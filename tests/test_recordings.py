"""The recorded requests of the swamp CLI under ``tests/fixtures/`` are the recordings.

They are byte-identical copies of the shared recordings (``shared/fixtures/`` beside the
checkout, absent from a clean clone). ``tests/fixtures/SHA256SUMS`` pins each file as it
was recorded: the copies must match it always, and where the shared recordings are present
they must match it too, so a copy edited by hand or a recording re-taken fails the suite.
"""

import hashlib
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO = FIXTURES.parent.parent
SHARED_CANDIDATES = (
    REPO.parent / "shared" / "fixtures",
    REPO.parent.parent / "shared" / "fixtures",
)


def _pinned() -> dict[str, str]:
    lines = (FIXTURES / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines if line)}


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in ("cli-wire", "cli-auth")
        for path in sorted((root / folder).iterdir())
        if path.is_file()
    }


def test_the_copies_are_the_pinned_recordings():
    pinned = _pinned()
    assert {"cli-wire/single-bare.json", "cli-auth/1-sign-in-username.json"} <= set(pinned)
    assert _digests(FIXTURES) == pinned


def test_the_shared_recordings_where_present_are_the_pinned_ones():
    shared = [root for root in SHARED_CANDIDATES if (root / "cli-wire").is_dir()]
    for root in shared:
        assert _digests(root) == _pinned(), root
