"""Finding `opt` and knowing which LLVM it is."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from . import binary_facts

INSTALL_HINT = (
    "PassPilot needs LLVM's `opt` (LLVM 22 recommended). Install it with `sudo apt-get install llvm-22` "
    "(Debian/Ubuntu) or `brew install llvm` (macOS), or point PassPilot at one with the `passpilot.opt.path` "
    "setting, `--opt PATH` or the PASSPILOT_OPT environment variable."
)


class OptNotFound(Exception):
    def __init__(self, detail: str):
        super().__init__(f"{detail}. {INSTALL_HINT}")


@dataclass(frozen=True)
class OptTool:
    path: str
    version: str  # e.g. "22.1.8"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def find_opt(setting: str | None = None) -> OptTool:
    """The `opt` to use: the setting, else PASSPILOT_OPT, else the newest `opt`/`opt-NN` on PATH."""
    for origin, value in (("setting", setting), ("PASSPILOT_OPT", os.environ.get("PASSPILOT_OPT"))):
        if value:
            resolved = shutil.which(value) or (value if Path(value).is_file() else None)
            if resolved is None:
                raise OptNotFound(f"`opt` from the {origin} ({value}) does not exist")
            return _describe(str(Path(resolved).absolute()))
    candidates = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or not os.path.isdir(directory):
            continue
        for entry in os.listdir(directory):
            if re.fullmatch(r"opt(-\d+)?", entry):
                full = os.path.join(directory, entry)
                if os.access(full, os.X_OK) and os.path.isfile(full):
                    candidates.append(full)
    tools = []
    # One `--version` run per binary: /bin/opt-22 and /usr/bin/opt-22 (a merged /usr) are the same file.
    binaries: dict[str, str] = {}
    for path in candidates:
        binaries.setdefault(os.path.realpath(path), path)
    for path in binaries.values():
        try:
            tools.append(_describe(path))
        except OptNotFound:
            continue
    if not tools:
        raise OptNotFound("no `opt` was found on PATH")
    return max(tools, key=lambda tool: tuple(int(part) for part in tool.version.split(".")))


def _describe(path: str) -> OptTool:
    stat = os.stat(path)
    return _describe_cached(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _describe_cached(path: str, mtime: int, size: int) -> OptTool:
    key = binary_facts.identity(path)
    version = binary_facts.recall("version", key)  # asked once per binary, not once per process
    if version is not None and re.fullmatch(r"\d+\.\d+(?:\.\d+)?", version):
        return OptTool(path=path, version=version)
    try:
        result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise OptNotFound(f"`{path} --version` failed ({error})") from None
    match = re.search(r"LLVM version (\d+\.\d+(?:\.\d+)?)", result.stdout + result.stderr)
    if result.returncode != 0 or match is None:
        raise OptNotFound(f"`{path}` does not look like LLVM's opt")
    binary_facts.remember("version", key, match.group(1))
    return OptTool(path=path, version=match.group(1))
