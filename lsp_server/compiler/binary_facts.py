"""Facts about a compiler binary (its version, its pass listing) kept on disk between processes.

Asking `opt` costs a process start each time: about 15 ms on an idle machine, 0.2 s and more on a busy
one, and `passpilot optimize` would ask on every run. A fact is stored under the binary's identity
(resolved path, size, mtime_ns, plus whatever the caller adds, e.g. the version), so a rebuilt or
replaced binary is asked again. The store is an accelerator only: a missing, corrupt or unwritable file
means asking the binary, never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import platformdirs

log = logging.getLogger(__name__)


def facts_dir() -> Path:
    return Path(platformdirs.user_cache_dir("passpilot")) / "compiler"


def identity(path: str, **extra: str) -> dict[str, Any] | None:
    """The binary's identity, or None when it cannot be read (then nothing is stored or trusted)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return {"path": os.path.realpath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, **extra}


def _file(kind: str, key: dict[str, Any], folder: Path) -> Path:
    digest = hashlib.sha256(json.dumps([kind, key], sort_keys=True).encode()).hexdigest()[:32]
    return folder / f"{kind}-{digest}.json"


def recall(kind: str, key: dict[str, Any] | None, folder: Path | None = None) -> str | None:
    """The text stored for (`kind`, `key`), or None."""
    if key is None:
        return None
    try:
        stored = json.loads(_file(kind, key, folder or facts_dir()).read_text(encoding="utf-8"))
        if stored.get("kind") == kind and stored.get("identity") == key and isinstance(stored.get("value"), str):
            return stored["value"]
    except (OSError, ValueError, AttributeError):  # no file yet, or not one of ours
        pass
    return None


def remember(kind: str, key: dict[str, Any] | None, value: str, folder: Path | None = None) -> None:
    """Store `value` for (`kind`, `key`) atomically; a folder that cannot be written is logged and skipped."""
    if key is None:
        return
    folder = folder or facts_dir()
    target = _file(kind, key, folder)
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps({"kind": kind, "identity": key, "value": value}), encoding="utf-8")
        os.replace(temporary, target)
    except OSError as error:
        log.debug("could not store %s in %s: %s", kind, folder, error)
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass
