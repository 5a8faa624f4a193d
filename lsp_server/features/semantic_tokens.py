"""Semantic tokens (full document and range): what a name is, and where it is defined.

Names come from the name index (ir/irtext.py): `@functions` and `@globals`, `%values`, parameters, labels,
`%types`, `#attribute groups`, `!metadata` and `$comdats`; a defining occurrence carries the modifiers
`declaration` and `definition` (a `declare` only `declaration`). Bare words are keywords (structure,
instructions, predicates, constants), built-in types, or modifiers (linkage, attributes). lit directives
(`; RUN:`, `; CHECK:` and the prefixes a RUN line declares with `--check-prefix(es)`) are `macro`
tokens, apart from ordinary comments, which are left to the grammar.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from lsprotocol import types

from ..ir import ModuleLayout
from ..ir.irtext import NameIndex, Token
from ..session.documents import open_layout
from ..session.positions import Positions, units

if TYPE_CHECKING:
    from ..server import PassPilotServer

TOKEN_TYPES = (
    "function",
    "variable",
    "parameter",
    "label",
    "type",
    "decorator",
    "property",
    "namespace",
    "keyword",
    "modifier",
    "macro",
)
TOKEN_MODIFIERS = ("declaration", "definition", "static", "defaultLibrary")
LEGEND = types.SemanticTokensLegend(token_types=list(TOKEN_TYPES), token_modifiers=list(TOKEN_MODIFIERS))
_TYPE = {name: index for index, name in enumerate(TOKEN_TYPES)}
_MODIFIER = {name: 1 << index for index, name in enumerate(TOKEN_MODIFIERS)}

_BUILTIN_TYPE = re.compile(r"^(i[0-9]+|void|half|bfloat|float|double|x86_fp80|fp128|ppc_fp128|label|metadata|x86_amx|token|ptr|opaque)$")
_KEYWORDS = frozenset(
    """
    define declare global constant type attributes target datalayout triple source_filename module asm
    comdat section partition align addrspace alias ifunc personality prefix prologue gc any exactmatch
    largest nodeduplicate samesize to x vscale
    ret br switch indirectbr invoke resume unreachable cleanupret catchret catchswitch callbr fneg add fadd
    sub fsub mul fmul udiv sdiv fdiv urem srem frem shl lshr ashr and or xor extractelement insertelement
    shufflevector extractvalue insertvalue alloca load store fence cmpxchg atomicrmw getelementptr trunc
    zext sext fptrunc fpext fptoui fptosi uitofp sitofp ptrtoint ptrtoaddr inttoptr bitcast addrspacecast
    icmp fcmp phi select freeze call tail musttail notail va_arg landingpad catchpad cleanuppad catch filter
    cleanup within unwind from caller
    eq ne ugt uge ult ule sgt sge slt sle oeq ogt oge olt ole one ord ueq une uno
    true false null none undef poison zeroinitializer blockaddress dso_local_equivalent no_cfi
    """.split()
)
# A word, a name with a sigil (skipped: the index classifies it), a string or a comment.
_LEXEME = re.compile(
    r"""
     (?P<string>[c!]?"[^"]*")
    |(?P<comment>;.*)
    |(?P<sigil>[%@!#$^](?:"[^"]*"|[-a-zA-Z$._0-9]+))
    |(?P<word>[A-Za-z_][A-Za-z0-9_.]*)(?P<field>\s*:(?!:))?
    |(?P<number>-?[0-9][0-9a-fA-Fx.+\-]*)
    """,
    re.VERBOSE,
)
_DIRECTIVE = re.compile(r"^\s*;\s*(?P<prefix>[A-Z][A-Z0-9_-]*)\s*(?:\{[^}]*\})?:")
_CHECK_SUFFIX = re.compile(r"-(NEXT|LABEL|NOT|DAG|SAME|EMPTY|COUNT-[0-9]+)$")
_LIT_KEYWORDS = frozenset({"RUN", "REQUIRES", "UNSUPPORTED", "XFAIL", "ALLOW_RETRIES", "CHECK"})
_PREFIXES_OPTION = re.compile(r"--?check-prefix(?:es)?[= ]([A-Za-z0-9_,-]+)")


class SemanticToken(NamedTuple):
    line: int
    start: int  # code points
    end: int
    kind: str
    modifiers: tuple[str, ...] = ()


def register(server: PassPilotServer) -> None:
    server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, LEGEND)(semantic_tokens_full)
    server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_RANGE, LEGEND)(semantic_tokens_range)


def check_prefixes(lines: tuple[str, ...] | list[str]) -> frozenset[str]:
    """FileCheck prefixes in use: CHECK and those that RUN lines declare."""
    prefixes = {"CHECK"}
    for line in lines:
        if "RUN" in line and "check-prefix" in line and _DIRECTIVE.match(line):
            for found in _PREFIXES_OPTION.finditer(line):
                prefixes.update(p for p in found.group(1).split(",") if p)
    return frozenset(prefixes)


def is_directive(line: str, prefixes: frozenset[str]) -> bool:
    match = _DIRECTIVE.match(line)
    if match is None:
        return False
    prefix = _CHECK_SUFFIX.sub("", match.group("prefix"))
    return prefix in _LIT_KEYWORDS or prefix in prefixes


def _name_token(token: Token, layout: ModuleLayout, labels: set, parameters: set, functions: set[str]) -> SemanticToken:
    modifiers: list[str] = []
    if token.definition:
        declared_only = token.kind == "global" and layout.declarations.get(token.name) == token.line
        modifiers += ["declaration"] if declared_only else ["declaration", "definition"]
    if token.kind == "global":
        kind = "function" if token.name in functions else "variable"
        modifiers.append("static")
        if token.name.startswith("@llvm."):
            modifiers.append("defaultLibrary")
    elif token.kind == "local":
        kind = "label" if token.key in labels else "parameter" if token.key in parameters else "variable"
    else:
        kind = {"type": "type", "attr": "decorator", "metadata": "property", "comdat": "namespace"}[token.kind]
    return SemanticToken(token.line, token.start, token.end, kind, tuple(modifiers))


def classify(layout: ModuleLayout, names: NameIndex, first: int = 0, last: int | None = None) -> list[SemanticToken]:
    """Semantic tokens of lines `first..last` (IR lines), sorted, non-overlapping, one line each."""
    lines = layout.lines
    last = len(lines) - 1 if last is None else min(last, len(lines) - 1)
    functions = {span.token for span in layout.functions} | set(layout.declarations)
    labels = set()
    parameters = set()
    for key, definition in names.definitions.items():
        if key[0] != "local" or definition.scope is None:
            continue
        text = lines[definition.line]
        if not text[definition.start : definition.end].startswith("%"):
            labels.add(key)
        elif definition.line <= layout.functions[definition.scope].header_end_line:
            parameters.add(key)
    prefixes = check_prefixes(lines)
    found: list[SemanticToken] = []
    for number in range(max(first, 0), last + 1):
        text = lines[number]
        if ";" in text and is_directive(text, prefixes):
            start = text.index(";")
            end = text.find("\r", start)
            found.append(SemanticToken(number, start, end if end >= 0 else len(text), "macro"))
            continue
        line_tokens = [_name_token(t, layout, labels, parameters, functions) for t in names.tokens_by_line.get(number, [])]
        taken = [(t.start, t.end) for t in line_tokens]
        for match in _LEXEME.finditer(text):
            if match.lastgroup not in ("word", "field") or match.group("field"):
                continue
            start, end = match.span("word")
            if any(a < end and start < b for a, b in taken):
                continue
            word = match.group("word")
            if _BUILTIN_TYPE.match(word):
                line_tokens.append(SemanticToken(number, start, end, "type", ("defaultLibrary",)))
            elif word in _KEYWORDS:
                line_tokens.append(SemanticToken(number, start, end, "keyword"))
            else:
                line_tokens.append(SemanticToken(number, start, end, "modifier"))
        line_tokens.sort()
        end = -1
        for token in line_tokens:
            if token.start >= end and token.end > token.start:
                found.append(token)
                end = token.end
    return found


def encode(tokens: list[SemanticToken], positions: Positions) -> list[int]:
    """LSP's relative encoding, in the client's position encoding."""
    data: list[int] = []
    previous_line, previous_start = 0, 0
    lines = positions.lines
    same_lines = "\r" not in positions.text  # then IR lines are client lines, and ASCII columns are units
    for token in tokens:
        line_text = lines[token.line]
        if same_lines and line_text.isascii():
            line, character, length = token.line, token.start, token.end - token.start
        else:
            position = positions.position(token.line, token.start)
            line, character = position.line, position.character
            length = units(line_text[token.start : token.end], positions.encoding)
        delta_line = line - previous_line
        modifiers = 0
        for modifier in token.modifiers:
            modifiers |= _MODIFIER[modifier]
        data += [delta_line, character - previous_start if delta_line == 0 else character, length, _TYPE[token.kind], modifiers]
        previous_line, previous_start = line, character
    return data


async def _tokens(ls: PassPilotServer, uri: str, client_range: types.Range | None) -> types.SemanticTokens:
    opened = open_layout(ls, uri)
    if opened is None:
        return types.SemanticTokens(data=[])
    state, text, layout = opened
    names = await state.names_of(ls, text)
    positions = Positions.of(ls, text, layout.lines)
    first, last = positions.ir_lines(client_range) if client_range is not None else (0, None)
    tokens = await ls.run_sync(classify, layout, names, first, last)
    return types.SemanticTokens(data=encode(tokens, positions))


async def semantic_tokens_full(ls: PassPilotServer, params: types.SemanticTokensParams) -> types.SemanticTokens:
    return await _tokens(ls, params.text_document.uri, None)


async def semantic_tokens_range(ls: PassPilotServer, params: types.SemanticTokensRangeParams) -> types.SemanticTokens:
    return await _tokens(ls, params.text_document.uri, params.range)
