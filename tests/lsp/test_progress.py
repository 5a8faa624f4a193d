"""Work-done progress as VS Code shows it: the counter of functions left to measure must count down.

vscode-languageclient's ProgressPart treats a `begin` without `percentage` as indeterminate (later
reports show by their message) and a `begin` with one as determinate (later reports without a percentage
are dropped). `shown_messages` replays that rule on what the server sent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lsprotocol import types

from .conftest import EXAMPLE, PROFILES, delayed_opt, options, session, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="function")


def shown_messages(values: list) -> list[str]:
    """The messages a VS Code user sees for one progress token (vscode-languageclient's rule)."""
    begin = values[0]
    assert isinstance(begin, types.WorkDoneProgressBegin)
    infinite = begin.percentage is None
    shown = [begin.message] if begin.message else []
    for value in values[1:]:
        if not isinstance(value, types.WorkDoneProgressReport):
            continue
        if infinite and value.message is not None:
            shown.append(value.message)
        elif not infinite and value.percentage is not None:
            shown.append(value.message)
    return shown


@pytest.fixture
def slowish_opt(tmp_path: Path) -> str:
    """The real `opt`, a little slow to print a module, so that the background job shows progress."""
    return delayed_opt(tmp_path / "opt-slowish", "-S", "sleep 0.5")


@pytest.mark.parametrize("profile", PROFILES)
async def test_functions_left_to_measure_count_down(profile, slowish_opt, tmp_path):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/progress/example.ll"
    settings = options(tmp_path / "cache", opt={"path": slowish_opt}, budget=0, compiler={"backend": "opt"})
    async with session(profile, settings) as client:
        client.editor.open(uri, text)

        def background():
            for values in client.progress_reports.values():
                if values and isinstance(values[0], types.WorkDoneProgressBegin) and values[0].title.startswith("PassPilot: measuring"):
                    return values if isinstance(values[-1], types.WorkDoneProgressEnd) else None
            return None

        values = await wait_until(background, timeout=120, what="the background measurement to end")
        counts = [int(m.split()[0]) for m in shown_messages(values) if m and re.match(r"\d+ functions? to measure", m)]
        assert len(counts) >= 2, values
        assert counts == sorted(counts, reverse=True) and counts[-1] < counts[0], counts
