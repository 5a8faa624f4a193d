"""Measured results on disk, keyed by (compiler identity, function text, pass list).

The compiler identity (`BackendIdentity.fingerprint`) names the backend, its LLVM version and the
binary's resolved path, size and mtime: another `opt` or libLLVM that reports the same version never
reuses these results.

The cache is an accelerator, never a dependency: a corrupt, locked or read-only cache turns into no
cache with one log line, and optimization goes on.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from pathlib import Path
from typing import Any

import platformdirs

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("passpilot")) / "results"


def cache_key(compiler_identity: str, function_text: str, passes: str) -> str:
    digest = hashlib.sha256()
    for part in (compiler_identity, function_text, passes):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


class ResultCache:
    def __init__(self, directory: str | Path | None = None, *, size_limit: int = 2**30):
        self.directory = Path(directory) if directory else default_cache_dir()
        self._cache: Any = None
        self._disabled_reason: str | None = None
        try:
            import diskcache

            self.directory.mkdir(parents=True, exist_ok=True)
            self._cache = diskcache.Cache(str(self.directory), size_limit=size_limit, timeout=1)
        except Exception as error:  # noqa: BLE001 - any failure means: run without a cache
            self._disable(error)

    @property
    def enabled(self) -> bool:
        return self._cache is not None

    def get(self, key: str) -> dict | None:
        if self._cache is None:
            return None
        try:
            value = self._cache.get(key)
        except Exception as error:  # noqa: BLE001
            self._disable(error)
            return None
        if not isinstance(value, dict):
            return None
        if value.get("output") is not None:
            try:
                value = {**value, "output": zlib.decompress(value["output"]).decode()}
            except (zlib.error, UnicodeDecodeError, TypeError):
                return None
        return value

    def put(self, key: str, count: int | None, error: str | None, output: str | None) -> None:
        if self._cache is None:
            return
        stored = {"count": count, "error": error, "output": zlib.compress(output.encode()) if output else None}
        try:
            self._cache.set(key, stored)
        except Exception as error:  # noqa: BLE001
            self._disable(error)

    def get_value(self, key: str) -> Any:
        """A JSON-like value stored with `put_value` (None when absent or the cache is off)."""
        if self._cache is None:
            return None
        try:
            return self._cache.get(key)
        except Exception as error:  # noqa: BLE001
            self._disable(error)
            return None

    def put_value(self, key: str, value: Any) -> None:
        if self._cache is None:
            return
        try:
            self._cache.set(key, value)
        except Exception as error:  # noqa: BLE001
            self._disable(error)

    def close(self) -> None:
        if self._cache is not None:
            try:
                self._cache.close()
            except Exception:  # noqa: BLE001
                pass

    def _disable(self, error: BaseException) -> None:
        if self._disabled_reason is None:
            self._disabled_reason = str(error)
            log.warning("result cache at %s disabled, continuing without it: %s", self.directory, error)
        if self._cache is not None:
            try:
                self._cache.close()
            except Exception:  # noqa: BLE001
                pass
        self._cache = None
