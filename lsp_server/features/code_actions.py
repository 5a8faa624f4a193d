"""Code actions on the function under the cursor.

"Optimize function", "Optimize function with -Oz", "Insert pass list as RUN line" and "Optimize function
(deep search)". When the client can resolve a code action's `edit`, the list is cheap and the (measured,
behaviour-checked, spliced, verified) edit is computed in `codeAction/resolve`, whose title and change
annotation then say what the behaviour check found; otherwise each action carries the matching server
command, which computes the edit and applies it with `workspace/applyEdit`. The deep search always
carries its command: it runs for seconds, with progress and a cancel button, which a resolve has not.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.exceptions import JsonRpcRequestCancelled

from ..engine import Cancelled
from ..session.behaviour import verdicts
from ..session.documents import current_text
from ..session.edits import EditRefused, workspace_edit
from ..session.jobs import Job
from ..session.operations import plan_insert_pass_list, plan_optimize, resolve_target
from .commands import INSERT_PASS_LIST, OPTIMIZE_FUNCTION
from .deep_search import DEEP_OPTIMIZE_FUNCTION
from .deep_search import TITLE as DEEP_SEARCH

if TYPE_CHECKING:
    from ..server import PassPilotServer

OPTIMIZE = "Optimize function"
OPTIMIZE_OZ = "Optimize function with -Oz"
RUN_LINE = "Insert pass list as RUN line"
KIND = types.CodeActionKind.RefactorRewrite


def register(server: PassPilotServer) -> None:
    options = types.CodeActionOptions(code_action_kinds=[KIND], resolve_provider=True)
    server.feature(types.TEXT_DOCUMENT_CODE_ACTION, options)(code_actions)
    server.feature(types.CODE_ACTION_RESOLVE)(resolve_code_action)


def _resolves_edits(ls: PassPilotServer) -> bool:
    try:
        support = get_capability(ls.client_capabilities, "text_document.code_action.resolve_support", None)
    except (AttributeError, RuntimeError):
        return False
    return support is not None and "edit" in (support.properties or [])


def _wanted(only: list[Any] | None) -> bool:
    """Whether `context.only` asks for our kind (kinds are hierarchical: `refactor` covers ours)."""
    if not only:
        return True
    ours = KIND.value
    for kind in only:
        text = kind.value if isinstance(kind, enum.Enum) else str(kind)
        if text == "" or ours == text or ours.startswith(text + "."):
            return True
    return False


async def code_actions(ls: PassPilotServer, params: types.CodeActionParams):
    uri = params.text_document.uri
    state = ls.documents.get(uri)
    if state is None or not ls.engine.ready or not _wanted(params.context.only):
        return None
    text, version = current_text(ls, uri)
    if state.latest is not None and state.latest.text == text and not state.latest.valid:
        return None  # a broken document cannot be verified
    span = state.layout_of(text).function_at(params.range.start.line)
    if span is None or state.standalone(span) is None:
        return None
    specs = [
        (OPTIMIZE, "optimize", OPTIMIZE_FUNCTION, {"mode": "best"}),
        (OPTIMIZE_OZ, "optimize", OPTIMIZE_FUNCTION, {"mode": "oz"}),
        (RUN_LINE, "runLine", INSERT_PASS_LIST, {}),
        (DEEP_SEARCH, None, DEEP_OPTIMIZE_FUNCTION, {}),
    ]
    literal = ls.supports("text_document.code_action.code_action_literal_support")
    resolvable = literal and _resolves_edits(ls)
    actions: list[Any] = []
    for title, action, command, extra in specs:
        argument = {"uri": uri, "function": span.name, **extra}
        if not literal:
            actions.append(types.Command(title=title, command=command, arguments=[argument]))
        elif resolvable and action is not None:
            data = {"action": action, "version": version, **argument}
            actions.append(types.CodeAction(title=title, kind=KIND, data=data))
        else:
            actions.append(
                types.CodeAction(title=title, kind=KIND, command=types.Command(title=title, command=command, arguments=[argument]))
            )
    return actions


async def resolve_code_action(ls: PassPilotServer, action: types.CodeAction) -> types.CodeAction:
    data = action.data if isinstance(action.data, dict) else None
    if data is None or "uri" not in data or action.edit is not None:
        return action
    uri = data["uri"]
    try:
        target = await resolve_target(ls, {"uri": uri, "function": data.get("function")})
        async with Job(ls, f"PassPilot: optimizing @{target.name}") as job:
            try:
                if data.get("action") == "runLine":
                    planned, _ = await plan_insert_pass_list(ls, target, job)
                else:
                    planned, _ = await plan_optimize(ls, target, data.get("mode", "best"), job)
            except Cancelled:
                raise JsonRpcRequestCancelled("cancelled; the document is unchanged") from None
    except EditRefused as error:
        ls.show_message(f"PassPilot: {error}", types.MessageType.Warning)
        return action
    version = ls.workspace.get_text_document(uri).version
    action.edit = workspace_edit(ls, uri, version, planned.old_text, planned.replacements)
    if data.get("action") == "optimize":
        _describe_check(ls, action, target)
    return action


def _describe_check(ls: PassPilotServer, action: types.CodeAction, target) -> None:
    """Say what the behaviour check found: in the title, and as the edit's change annotation where supported."""
    found = verdicts(ls).of(target.function)
    if found is None:
        return
    summary = found[0].summary()
    action.title = f"{action.title} ({summary})"
    if not ls.supports("workspace.workspace_edit.change_annotation_support") or not action.edit.document_changes:
        return
    annotation = "passpilot.behaviour"
    action.edit.change_annotations = {
        annotation: types.ChangeAnnotation(label=f"Optimize @{target.name}", description=summary, needs_confirmation=False)
    }
    for change in action.edit.document_changes:
        if isinstance(change, types.TextDocumentEdit):
            change.edits = [
                types.AnnotatedTextEdit(range=edit.range, new_text=edit.new_text, annotation_id=annotation) for edit in change.edits
            ]
