"""Hover: measured figures of a function (on its `define` line or any `@name` call), with the best pass
list and where it came from, the model's predictions when a model is configured, the behaviour check of
its rewrite once "Optimize function" ran it, and which `opt` and model measured them. Other names show
their definition line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..engine import FunctionResult
from ..engine.deep import DeepResult
from ..ir import FunctionSpan, StandaloneFunction
from ..ir.irtext import NameIndex, Token
from ..session.behaviour import verdicts
from ..session.documents import DocumentState, name_at
from .inlay_hints import change_text

if TYPE_CHECKING:
    from ..server import PassPilotServer

WAIT_S = 1.0  # how long a hover waits for a function that is being measured


def register(server: PassPilotServer) -> None:
    server.feature(types.TEXT_DOCUMENT_HOVER)(hover)


def _markdown(ls: PassPilotServer) -> bool:
    try:
        formats = ls.client_capabilities.text_document.hover.content_format or []
    except AttributeError:
        return False
    return types.MarkupKind.Markdown in formats


async def hover(ls: PassPilotServer, params: types.HoverParams) -> types.Hover | None:
    at = await name_at(ls, params.text_document.uri, params.position)
    if at is None:
        return None
    markdown = _markdown(ls)
    span = at.layout.function(at.token.name) if at.token.kind == "global" else None
    if span is not None:
        body = await _function_hover(ls, at.state, span, at.layout.function_text(span), markdown)
    else:
        body = _definition_hover(at.state, at.names, at.text, at.token, markdown)
    if body is None:
        return None
    kind = types.MarkupKind.Markdown if markdown else types.MarkupKind.PlainText
    return types.Hover(
        contents=types.MarkupContent(kind=kind, value=body),
        range=at.positions.range(at.token.line, at.token.start, at.token.end),
    )


def _definition_hover(state: DocumentState, names: NameIndex, text: str, token: Token, markdown: bool) -> str | None:
    definition = names.definition(token)
    if definition is None or definition.line == token.line:
        return None
    line = state.layout_of(text).lines[definition.line].strip()
    if len(line) > 400:
        line = line[:400] + " …"
    return f"```llvm\n{line}\n```" if markdown else line


async def _function_hover(ls: PassPilotServer, state: DocumentState, span: FunctionSpan, text: str, markdown: bool) -> str:
    title = f"**@{span.name}**" if markdown else f"@{span.name}"
    footer = _footer(ls, markdown)
    if not ls.engine.ready:
        return "\n\n".join([title, ls.engine.error or "PassPilot's engine is starting…"])
    function = state.standalone(span)
    if function is None:
        return "\n\n".join([title, "not measured: the document does not parse yet", footer])
    result = ls.measurements.get(function) or await ls.measurements.wait_for(function, WAIT_S)
    if result is None:
        return "\n\n".join([title, "measuring…", *_behaviour(ls, function, markdown), footer])
    rewrite = ls.measurements.rewrites.get(text)
    searched = rewrite.baseline if rewrite is not None and isinstance(rewrite.baseline, DeepResult) else None
    written = ["rewritten by PassPilot from the " + deep_search_text(searched)] if searched is not None else []
    parts = [title, *written, *_figures(ls, result, markdown), *_behaviour(ls, function, markdown), footer]
    return "\n\n".join(part for part in parts if part)


def _behaviour(ls: PassPilotServer, function: StandaloneFunction, markdown: bool) -> list[str]:
    """What the differential check found, once "Optimize function" checked this function's rewrite."""
    found = verdicts(ls).of(function)
    if found is None:
        return []
    verdict, rewritten = found
    lead = "rewritten by PassPilot; behaviour check: " if rewritten else "behaviour check of the rewrite: "
    parts = [lead + verdict.summary()]
    if verdict.module_check is not None and verdict.module_check.status != "same":
        parts.append(f"in the whole module: {verdict.module_check.summary()}")
    example = verdict.blocked[0].check.counterexample if verdict.blocked else None
    if example:
        parts.append(f"```\n{example}\n```" if markdown else example)
    return parts


def _figures(ls: PassPilotServer, result: FunctionResult, markdown: bool) -> list[str]:
    oz = result.oz.count if result.oz.ok else None
    best = result.best if result.best is not None and result.best.ok else None
    prediction = result.model_prediction
    with_model = ls.engine.model_info() is not None
    # Each prediction sits beside the measured count of the same thing: the function as written, and the
    # model's own list (on the "best" row only when that list is the best one).
    model_won = prediction is not None and best is not None and prediction.passes == best.passes
    rows = [("original", str(result.original), _predicted(prediction.predicted_before) if prediction else "")]
    rows.append(("-Oz", str(oz) if oz is not None else f"failed ({result.oz.error})", ""))
    if best is not None:
        change = f" ({change_text(best.count, oz)} vs -Oz)" if oz else ""
        rows.append(("best", f"{best.count}{change}", _predicted(prediction.predicted_after) if model_won else ""))
    if with_model and prediction is not None and not model_won:
        measured = str(prediction.count) if prediction.ok else "failed"
        rows.append(("model's list", measured, _predicted(prediction.predicted_after)))
    parts = []
    if markdown:
        header = "| | measured |" + (" model predicted |" if with_model else "")
        rule = "|:--|--:|" + ("--:|" if with_model else "")
        table = [header, rule]
        for name, measured, predicted in rows:
            label = "`-Oz`" if name == "-Oz" else name
            table.append(f"| {label} | {measured} |" + (f" {predicted} |" if with_model else ""))
        parts.append("\n".join(table))
    else:
        parts.append(
            "\n".join(
                f"{name}: {measured}" + (f" (model predicted {predicted})" if with_model and predicted else "")
                for name, measured, predicted in rows
            )
        )
    if best is not None:
        passes = f"`{best.passes}`" if markdown else best.passes
        edit = f"; {best.note}" if best.source == "refine" and best.note else ""  # which edit of which list
        parts.append(f"best pass list (source: {best.source}): {passes}{edit}")
    if with_model:
        if prediction is None:
            parts.append("the model proposed no valid pass list with a prediction for this function")
        elif not model_won:
            passes = f"`{prediction.passes}`" if markdown else prediction.passes
            measured = f"measured {prediction.count}" if prediction.ok else f"failed: {prediction.error}"
            parts.append(f"model's pass list: {passes} ({measured})")
    if result.function.optnone_removed:
        parts.append("measured without the function's `optnone`/`noinline` attributes")
    if isinstance(result, DeepResult):
        parts.append(deep_search_text(result))
    else:
        parts.append(f"{sum(1 for m in result.measurements if m.ok)} pass lists measured (budget {ls.settings.budget})")
    return parts


def deep_search_text(result: DeepResult) -> str:
    """The search's figures: candidates, time, why it stopped, and where the winner came from."""
    stopped = {"deadline": "at its time limit", "calls": "at its call limit", "cancelled": "cancelled",
               "converged": "no better list for a while", "exhausted": "nothing left to try"}.get(result.stopped, result.stopped)
    return (
        f"deep search: {result.tried:,} candidates in {result.seconds:.1f} s ({stopped}); "
        f"the winner came from {result.winner_source or 'no list'}"
    )


def _predicted(value: int | None) -> str:
    return "" if value is None else str(value)


def _footer(ls: PassPilotServer, markdown: bool) -> str:
    opt = ls.engine.opt_info()
    model = ls.engine.model_info()
    if opt is None:
        opt_text = "opt: not found"
    else:
        opt_text = f"opt {opt['version']} (`{opt['path']}`)" if markdown else f"opt {opt['version']} ({opt['path']})"
    model_text = f"model: {model['identity']} ({model['profile']})" if model else "model: none"
    text = f"{opt_text} · {model_text}"
    return f"---\n{text}" if markdown else text
