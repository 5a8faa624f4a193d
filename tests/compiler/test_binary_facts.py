"""Facts about a compiler binary kept on disk: `opt --version` and `--print-passes` are asked once per binary."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from lsp_server.compiler import binary_facts, find_opt, locate


def test_remember_then_recall_under_the_same_identity_only(tmp_path):
    binary = tmp_path / "tool"
    binary.write_text("#!/bin/sh\n")
    key = binary_facts.identity(str(binary), version="22.1.8")
    binary_facts.remember("version", key, "22.1.8", tmp_path / "facts")
    assert binary_facts.recall("version", key, tmp_path / "facts") == "22.1.8"
    assert binary_facts.recall("print-passes", key, tmp_path / "facts") is None  # another kind
    assert binary_facts.recall("version", {**key, "version": "21.1.0"}, tmp_path / "facts") is None
    binary.write_text("#!/bin/sh\nexit 0\n")  # rebuilt: another size and mtime
    assert binary_facts.recall("version", binary_facts.identity(str(binary), version="22.1.8"), tmp_path / "facts") is None
    assert binary_facts.identity(str(tmp_path / "missing")) is None
    binary_facts.remember("version", None, "1.0", tmp_path / "facts")  # nothing to key on: nothing stored
    assert len(list((tmp_path / "facts").iterdir())) == 1


@pytest.mark.parametrize("content", ["", "{", "null", "[1]", '{"kind": "version", "identity": {}, "value": "1.0"}'])
def test_corrupt_or_foreign_files_are_not_trusted(tmp_path, content):
    key = binary_facts.identity(__file__)
    binary_facts.remember("version", key, "22.1.8", tmp_path)
    (stored,) = tmp_path.iterdir()
    stored.write_text(content)
    assert binary_facts.recall("version", key, tmp_path) is None


def test_an_unwritable_folder_is_skipped(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    binary_facts.remember("version", binary_facts.identity(__file__), "22.1.8", blocker / "facts")
    assert binary_facts.recall("version", binary_facts.identity(__file__), blocker / "facts") is None


def test_opt_version_is_read_back_until_the_binary_changes(opt_tool, tmp_path, monkeypatch):
    monkeypatch.setattr(binary_facts, "facts_dir", lambda: tmp_path / "facts")
    binary = tmp_path / "opt"
    shutil.copy2(os.path.realpath(opt_tool.path), binary)  # Debian's opt finds libLLVM in the system folder
    locate._describe_cached.cache_clear()
    assert find_opt(str(binary)).version == opt_tool.version
    (stored,) = (tmp_path / "facts").glob("version-*.json")
    stored.write_text(json.dumps({**json.loads(stored.read_text()), "value": "21.0.0"}))
    locate._describe_cached.cache_clear()  # a new process
    assert find_opt(str(binary)).version == "21.0.0", "the stored version is used, opt is not asked"
    stat = binary.stat()
    os.utime(binary, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert find_opt(str(binary)).version == opt_tool.version
    locate._describe_cached.cache_clear()
