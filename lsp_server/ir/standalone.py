"""One function as a module of its own, the way `llvm-extract --func` builds it.

The function becomes externally visible, so no pass can delete it or change its signature under its
callers; everything it references is declared; attribute groups, comdats and metadata it needs come along.
Building this from text keeps it cheap enough to redo on every edit of a large module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .layout import FunctionSpan, ModuleLayout
from .tokens import matching_close, references, rewrite_references, split_top_level

LOCAL_LINKAGES = ("private", "internal")
_LINKAGES = (
    "private",
    "internal",
    "available_externally",
    "linkonce_odr",
    "linkonce",
    "weak_odr",
    "weak",
    "common",
    "appending",
    "extern_weak",
    "external",
)
_LINKAGE_WORD = re.compile(r"\b(" + "|".join(_LINKAGES) + r")\b")
_OPTNONE = re.compile(r"(?<![\w\"-])(optnone|noinline)(?![\w\"-])")
_ANON = re.compile(r"^@([0-9]+)$")
ANON_PREFIX = "@__passpilot_anon."


@dataclass(frozen=True)
class StandaloneFunction:
    name: str  # display name
    token: str  # the function's reference token in `text`
    text: str  # a complete module holding the one function
    linkage: str | None  # the linkage the function had in its module, restored when splicing back
    optnone_removed: bool


def standalone_function(layout: ModuleLayout, span: FunctionSpan) -> StandaloneFunction:
    body = layout.function_text(span)
    header = " ".join(layout.lines[span.start_line : span.header_end_line + 1])
    linkage = _linkage_of(header.split(span.token, 1)[0])
    body = _make_external(body, span, linkage)

    group_of_function = _attribute_group_of(header, span.token)
    optnone_removed = False
    groups = dict(layout.attribute_groups)
    if group_of_function and "optnone" in groups.get(group_of_function, "").split():
        groups[group_of_function] = _strip_optnone(groups[group_of_function])
        optnone_removed = True

    # Close over references: declarations and metadata can themselves reference more things.
    declarations: dict[str, str] = {}
    metadata_needed: set[str] = set()
    pending_text = [body, *layout.named_metadata.values()]
    while pending_text:
        text = pending_text.pop()
        for token in sorted(references(text, "global")):
            if token == span.token or token in declarations:
                continue
            declaration = _declaration_for(layout, token)
            if declaration is not None:
                declarations[token] = declaration
                pending_text.append(declaration)
        for token in references(text, "metadata"):
            if token not in metadata_needed and token in layout.metadata:
                metadata_needed.add(token)
                pending_text.append(layout.metadata[token])

    used_groups = set()
    for text in [body, *declarations.values()]:
        used_groups |= references(text, "attr")
    comdats = {
        token: line
        for token, line in layout.comdats.items()
        if re.search(r"comdat\s*\(\s*" + re.escape(token) + r"\s*\)", body)
        or (token[1:] == span.token[1:] and re.search(r"\bcomdat\b(?!\s*\()", body))
    }

    parts: list[str] = list(layout.header)
    parts += list(comdats.values())
    parts += list(layout.type_definitions)
    parts += [declarations[token] for token in sorted(declarations) if not declarations[token].startswith("declare")]
    parts.append(body)
    parts += [declarations[token] for token in sorted(declarations) if declarations[token].startswith("declare")]
    parts += [f"attributes {group} = {{ {groups[group]} }}" for group in sorted(used_groups, key=_number) if group in groups]
    parts += [f"{name} = {value}" for name, value in layout.named_metadata.items()]
    parts += [f"{token} = {layout.metadata[token]}" for token in sorted(metadata_needed, key=_number)]
    text = "\n".join(parts) + "\n"
    token = span.token
    if any(_ANON.match(t) for t in references(text, "global")):
        text = rewrite_references(text, globals=_hide_anonymous)
        token = _hide_anonymous(token)
    return StandaloneFunction(span.name, token, text, linkage, optnone_removed)


def _number(token: str) -> int:
    return int(token[1:])


def _hide_anonymous(token: str) -> str:
    """Unnamed globals must be numbered densely; a standalone module keeps only some, so name them."""
    match = _ANON.match(token)
    return f"{ANON_PREFIX}{match.group(1)}" if match else token


def restore_anonymous(token: str) -> str:
    return "@" + token[len(ANON_PREFIX) :] if token.startswith(ANON_PREFIX) else token


def _linkage_of(prefix: str) -> str | None:
    match = _LINKAGE_WORD.search(prefix)
    return match.group(1) if match else None


def _make_external(body: str, span: FunctionSpan, linkage: str | None) -> str:
    if linkage in (None, "external"):
        return body
    first_line, _, rest = body.partition("\n")
    before, _, after = first_line.partition(span.token)
    before = _LINKAGE_WORD.sub("", before, count=1)
    before = re.sub(r"\s+", " ", before)
    if linkage in LOCAL_LINKAGES:
        before = re.sub(r"\bdso_local\b\s*", "", before)
    return f"{before.rstrip()} {span.token}{after}" + ("\n" + rest if rest else "")


def _attribute_group_of(header: str, token: str) -> str | None:
    after_params = _after_parameters(header, token)
    match = re.search(r"#[0-9]+", after_params or "")
    return match.group() if match else None


def _after_parameters(header: str, token: str) -> str | None:
    start = header.find(token + "(")
    if start < 0:
        return None
    open_paren = start + len(token)
    close = matching_close(header, open_paren)
    return header[close + 1 :] if close >= 0 else None


def _strip_optnone(text: str) -> str:
    return re.sub(r"\s+", " ", _OPTNONE.sub("", text)).strip()


def _declaration_for(layout: ModuleLayout, token: str) -> str | None:
    if token in layout.declarations:
        return layout.lines[layout.declarations[token]]
    span = layout.function(token)
    if span is not None:
        header = " ".join(layout.lines[span.start_line : span.header_end_line + 1])
        return _function_declaration(header, token)
    if token in layout.globals:
        return _global_declaration(layout.lines[layout.globals[token]], token)
    return None


_DEFINE_TAIL_STOP = re.compile(
    r"\s(section|partition|comdat|align|gc|prefix|prologue|personality)\b|\s!|\{"
)


def _function_declaration(header: str, token: str) -> str:
    """`define internal i32 @f(ptr noundef %p) #0 {` -> `declare hidden i32 @f(ptr noundef) #0`."""
    before, _, _ = header.partition(token + "(")
    before = before[len("define") :]
    linkage = _linkage_of(before)
    before = _LINKAGE_WORD.sub("", before, count=1)
    if linkage in LOCAL_LINKAGES:
        before = re.sub(r"\bdso_local\b", "", before)
        before = " hidden " + before
    open_paren = header.find(token + "(") + len(token)
    close = matching_close(header, open_paren)
    params = [_drop_parameter_name(p) for p in split_top_level(header[open_paren + 1 : close])]
    tail = header[close + 1 :]
    stop = _DEFINE_TAIL_STOP.search(tail)
    if stop:
        tail = tail[: stop.start()]
    words = " ".join(before.split())
    return f"declare {words} {token}({', '.join(p for p in params if p)}){tail.rstrip()}".replace("declare  ", "declare ")


def _drop_parameter_name(parameter: str) -> str:
    parameter = parameter.strip()
    return re.sub(r'\s+%(?:"[^"]*"|[-a-zA-Z$._0-9]+)$', "", parameter)


_GLOBAL_PREFIX_WORDS = re.compile(
    r"\s*(?:(?:private|internal|available_externally|linkonce_odr|linkonce|weak_odr|weak|common|appending|"
    r"extern_weak|external|dso_local|dso_preemptable|default|hidden|protected|dllimport|dllexport|"
    r"unnamed_addr|local_unnamed_addr|externally_initialized)\b|thread_local(?:\([a-z]+\))?|addrspace\(\d+\))"
)


def _global_declaration(line: str, token: str) -> str | None:
    """`@t = internal global [4 x i32] [...], align 16` -> `@t = external hidden global [4 x i32], align 16`."""
    rest = line.split("=", 1)[1]
    words: list[str] = []
    position = 0
    while True:
        match = _GLOBAL_PREFIX_WORDS.match(rest, position)
        if not match or match.end() == position:
            break
        words.append(match.group().strip())
        position = match.end()
    kind_match = re.match(r"\s*(global|constant|alias|ifunc)\b", rest[position:])
    if kind_match is None:
        return None
    kind = kind_match.group(1)
    value_type = _leading_type(rest[position + kind_match.end() :])
    if value_type is None:
        return None
    local = any(w in LOCAL_LINKAGES for w in words)
    kept = [
        w
        for w in words
        if w.startswith(("thread_local", "addrspace")) or w in ("unnamed_addr", "local_unnamed_addr", "externally_initialized")
        or (w in ("dso_local", "hidden", "protected", "dllimport") and not local)
    ]
    if kind in ("alias", "ifunc"):
        if value_type.rstrip().endswith(")"):
            open_paren = _top_level_paren(value_type)
            visibility = "hidden " if local else ""
            return f"declare {visibility}{value_type[:open_paren].strip()} {token}{value_type[open_paren:]}"
        kind = "global"
    visibility = ["hidden"] if local else []
    align = re.search(r",\s*align\s+(\d+)\s*$", _strip_strings(line))
    declaration = " ".join(["external", *visibility, *kept, kind, value_type.strip()])
    return f"{token} = {declaration}" + (f", align {align.group(1)}" if align else "")


def _strip_strings(text: str) -> str:
    return re.sub(r'c?"[^"]*"', '""', text)


def _leading_type(text: str) -> str | None:
    """The type at the start of `text` (bracketed aggregates, `ptr addrspace(N)`, named types...)."""
    text = text.lstrip()
    if not text:
        return None
    if text[0] in "[{<":
        close = matching_close(text, 0)
        if close < 0:
            return None
        end = close + 1
    else:
        match = re.match(r'%"[^"]*"|%[-a-zA-Z$._0-9]+|[a-z_][a-z0-9_]*(?:\("[^"]*"(?:,[^)]*)?\))?', text)
        if match is None:
            return None
        end = match.end()
        addrspace = re.match(r"\s+addrspace\(\d+\)", text[end:])
        if addrspace:
            end += addrspace.end()
    # A function type such as `i32 (ptr, ...)` (for aliases) continues with its parameter list.
    params = re.match(r"\s*\(", text[end:])
    if params:
        open_paren = end + params.end() - 1
        close = matching_close(text, open_paren)
        if close >= 0:
            end = close + 1
    return text[:end]


def _top_level_paren(text: str) -> int:
    depth = 0
    last = -1
    for index, char in enumerate(text):
        if char in "[{<(":
            if char == "(" and depth == 0:
                last = index
            depth += 1
        elif char in "]}>)":
            depth -= 1
    return last
