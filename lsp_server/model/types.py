"""Public types of the model layer (re-exported by `lsp_server.model`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Proposal:
    passes: str  # pass-list text as the model wrote it (after dropping unknown names), UNTRUSTED
    predicted_before: int | None  # model's predicted instruction count of the input function
    predicted_after: int | None  # model's predicted count after its pass list
    raw: str  # the whole answer text (for logs/hover)
    note: str | None = None  # e.g. "dropped unknown passes: foo, bar"


class Proposals(list):
    """A list of proposals with a `note` saying why it is short or empty (too long input, no usable
    answer, ...). It is a plain `list[Proposal]` for callers that ignore the note."""

    def __init__(self, items: Iterable[Proposal] = (), note: str | None = None) -> None:
        super().__init__(items)
        self.note = note

    def __repr__(self) -> str:
        return f"Proposals({list.__repr__(self)}, note={self.note!r})"


class ModelError(Exception):
    """A model could not be loaded; the message is meant for the user."""


@runtime_checkable
class PassProposer(Protocol):
    identity: str

    def propose(self, function_ir: str, samples: int, seed: int = 0) -> list[Proposal]: ...
