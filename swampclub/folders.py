"""The local folders the site writes to, created when Django starts rather than on import.

Settings only name the folders (``VAR_DIR``); ``ScoringConfig.ready`` calls
``local_folders_create`` so every process (web, worker, beat, management commands) finds
them before its first write: the SQLite file's folder, ``STATIC_ROOT`` (WhiteNoise warns
when it is missing) and the filesystem broker's queue folders when Celery runs without Redis.
"""

from pathlib import Path

from django.conf import settings


def local_folders() -> list[Path]:
    """The folders the configured settings write to on this machine."""
    folders = [Path(settings.STATIC_ROOT)]
    for database in settings.DATABASES.values():
        name = str(database.get("NAME") or "")
        on_disk = name and ":memory:" not in name and not name.startswith("file:")
        if database.get("ENGINE", "").endswith("sqlite3") and on_disk:
            folders.append(Path(name).parent)
    if str(getattr(settings, "CELERY_BROKER_URL", "")).startswith("filesystem://"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            if options.get(key):
                folders.append(Path(str(options[key])))
    schedule = getattr(settings, "CELERY_BEAT_SCHEDULE_FILENAME", "")
    if schedule:
        folders.append(Path(schedule).parent)
    return folders


def local_folders_create() -> None:
    """Create every folder of ``local_folders`` that does not exist yet."""
    for folder in local_folders():
        folder.mkdir(parents=True, exist_ok=True)
