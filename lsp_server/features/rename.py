"""Document highlights (the definition and the uses of the name under the cursor) and rename of local
values (`%x`) and labels within their function.

Only function-local names are renamed: `@globals`, `!metadata`, `#attribute groups`, `%types` and
`$comdats` can be referenced from other modules and files, so renaming them in one document would break
what links against it; the request is refused with a message that says so. A numbered value (`%5`, or
the label `5:`) that gets a name leaves a gap in LLVM's numbering, so the numbered values after it in the
function are renumbered. Labels referenced by `blockaddress(@f, %label)` elsewhere are renamed there
too. When the document was valid, the renamed text must parse and verify again, else nothing changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from ..ir import ModuleLayout, check
from ..ir.irtext import NameIndex, Token
from ..session.documents import name_at
from ..session.edits import Replacement, workspace_edit
from ..session.positions import Positions

if TYPE_CHECKING:
    from ..server import PassPilotServer

REQUEST_FAILED = -32803
_IDENTIFIER = re.compile(r"[-a-zA-Z$._][-a-zA-Z$._0-9]*")
_BLOCKADDRESS = re.compile(r'blockaddress\(\s*(@(?:"[^"]*"|[-a-zA-Z$._0-9]+))\s*,\s*(%(?:"[^"]*"|[-a-zA-Z$._0-9]+))\s*\)')
_NOT_LOCAL = {
    "global": "@globals are visible to other modules",
    "type": "%types are shared by the whole module and by modules linked with it",
    "attr": "#attribute groups are shared by the whole module",
    "metadata": "!metadata is shared by the whole module",
    "comdat": "$comdats name link-time groups",
}


class RenameRefused(JsonRpcException):
    """LSP's RequestFailed: the client shows the message."""

    CODE = REQUEST_FAILED


def register(server: PassPilotServer) -> None:
    server.feature(types.TEXT_DOCUMENT_DOCUMENT_HIGHLIGHT)(document_highlight)
    server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)(prepare_rename)
    server.feature(types.TEXT_DOCUMENT_RENAME)(rename)


@dataclass(frozen=True)
class _At:
    text: str
    version: int | None
    layout: ModuleLayout
    names: NameIndex
    token: Token
    positions: Positions
    valid: bool  # the text is the last analysed one, and it parsed and verified


async def _at(ls: PassPilotServer, uri: str, position: types.Position) -> _At | None:
    found = await name_at(ls, uri, position)
    if found is None:
        return None
    version = ls.workspace.get_text_document(uri).version
    latest = found.state.latest
    valid = latest is not None and latest.text == found.text and latest.valid
    return _At(found.text, version, found.layout, found.names, found.token, found.positions, valid)


def _range(at: _At, token: Token) -> types.Range:
    return at.positions.range(token.line, token.start, token.end)


async def document_highlight(ls: PassPilotServer, params: types.DocumentHighlightParams) -> list[types.DocumentHighlight] | None:
    at = await _at(ls, params.text_document.uri, params.position)
    if at is None:
        return None
    return [
        types.DocumentHighlight(
            range=_range(at, token),
            kind=types.DocumentHighlightKind.Write if token.definition else types.DocumentHighlightKind.Read,
        )
        for token in at.names.references(at.token)
    ]


def _refuse_unless_local(token: Token) -> None:
    if token.kind != "local" or token.scope is None:
        reason = _NOT_LOCAL.get(token.kind, "only local values and labels can be renamed")
        raise RenameRefused(f"PassPilot renames only local values (%x) and labels inside a function; {token.name} cannot be renamed here: {reason}.")


async def prepare_rename(ls: PassPilotServer, params: types.PrepareRenameParams) -> types.PrepareRenamePlaceholder | None:
    at = await _at(ls, params.text_document.uri, params.position)
    if at is None:
        return None
    _refuse_unless_local(at.token)
    if at.names.definition(at.token) is None:
        raise RenameRefused(f"{at.token.name} is not defined in this function")
    return types.PrepareRenamePlaceholder(range=_range(at, at.token), placeholder=at.token.name.lstrip("%"))


def _number(name: str) -> int | None:
    bare = name.lstrip("%")
    return int(bare) if bare.isdigit() else None


def _spelled(at: _At, token: Token, name: str) -> str:
    """`name` as `token` spells it: labels are defined without the `%`."""
    written = at.layout.lines[token.line][token.start : token.end]
    return name if written.startswith("%") else name.lstrip("%")


def plan_rename(at: _At, new_name: str) -> list[Replacement]:
    """The replacements that rename the local under the cursor (and renumber what follows it)."""
    token = at.token
    _refuse_unless_local(token)
    wanted = new_name.strip()
    wanted = wanted[1:] if wanted.startswith("%") else wanted
    if not _IDENTIFIER.fullmatch(wanted) or wanted.isdigit():
        raise RenameRefused(
            f"`{new_name}` is not a name PassPilot can give: use letters, digits and - $ . _ (not starting with a digit)"
        )
    new = "%" + wanted
    scope = token.scope
    if new == token.name:
        return []
    if at.names.definitions.get(("local", new, scope)) is not None:
        raise RenameRefused(f"{new} is already defined in this function")
    old_number = _number(token.name)
    mapping = {token.name: new}
    if old_number is not None:
        # Numbered values must stay consecutive: those after the renamed one move down by one.
        for kind, name, key_scope in list(at.names.definitions):
            number = _number(name) if kind == "local" and key_scope == scope else None
            if number is not None and number > old_number:
                mapping[name] = f"%{number - 1}"
    replacements = []
    for name, target in mapping.items():
        for use in at.names.uses.get(("local", name, scope), []):
            replacements.append(Replacement(use.line, use.start, use.line, use.end, _spelled(at, use, target)))
    function = at.layout.functions[scope].token
    for number, line in enumerate(at.layout.lines):
        if "blockaddress" not in line:
            continue
        for match in _BLOCKADDRESS.finditer(line):
            label = match.group(2)
            if match.group(1) == function and label in mapping:
                inside = at.names.at(number, match.start(2))
                if inside is not None and inside.key == ("local", label, scope):
                    continue  # already renamed as a use in the function itself
                replacements.append(Replacement(number, match.start(2), number, match.end(2), mapping[label]))
    return sorted(replacements, key=lambda r: (r.start_line, r.start_col))


def renamed_text(text: str, replacements: list[Replacement]) -> str:
    lines = text.split("\n")
    for replacement in sorted(replacements, key=lambda r: (r.start_line, r.start_col), reverse=True):
        line = lines[replacement.start_line]
        lines[replacement.start_line] = line[: replacement.start_col] + replacement.text + line[replacement.end_col :]
    return "\n".join(lines)


async def rename(ls: PassPilotServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
    uri = params.text_document.uri
    at = await _at(ls, uri, params.position)
    if at is None:
        return None
    replacements = plan_rename(at, params.new_name)
    if at.valid and replacements:
        errors = await ls.run_sync(check, renamed_text(at.text, replacements))
        if errors:
            first = errors[0]
            raise RenameRefused(f"renaming {at.token.name} would break the module (line {first.line + 1}: {first.message}); nothing was changed")
    return workspace_edit(ls, uri, at.version, at.text, tuple(replacements))
