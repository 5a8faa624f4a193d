"""One function as a module of its own, the way `llvm-extract --func` builds it.

The function becomes externally visible, so no pass can delete it or change its signature under its
callers; everything it references is declared; attribute groups, comdats and metadata it needs come along.
Building this from text keeps it cheap enough to redo on every edit of a large module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .layout import FunctionSpan, ModuleLayout
from .tokens import NAME, canonical_token, matching_close, references, rewrite_references, split_top_level, strip_comments

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
    text = layout.text
    header = layout.function_header(span)
    own = canonical_token(span.token)
    linkage = _linkage_of(header.split(span.token, 1)[0])
    body = _make_external(text[span.start : span.name_start], text[span.name_start : span.end], linkage)

    group_of_function = _attribute_group_of(header, span.token)
    optnone_removed = False
    groups = dict(layout.attribute_groups)
    if group_of_function and "optnone" in groups.get(group_of_function, "").split():
        groups[group_of_function] = _strip_optnone(groups[group_of_function])
        optnone_removed = True

    # Globals that take the address of this function's blocks keep their initializers: without them,
    # nothing takes those addresses and passes delete the blocks an `indirectbr` jumps to.
    declarations: dict[str, str] = dict(_block_address_tables(layout, own, body))
    # Close over references: declarations and metadata can themselves reference more things.
    metadata_needed: set[str] = set()
    pending_text = [body, *declarations.values(), *layout.named_metadata.values()]
    while pending_text:
        chunk = pending_text.pop()
        for token in sorted(references(chunk, "global")):
            canonical = canonical_token(token)
            if canonical == own or canonical in declarations:
                continue
            declaration = _declaration_for(layout, token)
            if declaration is not None:
                declarations[canonical] = declaration
                pending_text.append(declaration)
        for token in references(chunk, "metadata"):
            if token not in metadata_needed and token in layout.metadata:
                metadata_needed.add(token)
                pending_text.append(layout.metadata[token])

    used_groups = set()
    for chunk in [body, *declarations.values()]:
        used_groups |= references(chunk, "attr")
    # Comdats of the function and of the globals kept whole (the function's own may be implicit).
    definitions = strip_comments(body) + "\n" + "\n".join(d for d in declarations.values() if not d.startswith("declare"))
    comdats = {
        token: line
        for token, line in layout.comdats.items()
        if re.search(r"comdat\s*\(\s*" + re.escape(token) + r"\s*\)", definitions)
        or (token[1:] == span.token[1:] and re.search(r"\bcomdat\b(?!\s*\()", header))
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
    module_text = "\n".join(parts) + "\n"
    token = span.token
    if any(_ANON.match(t) for t in references(module_text, "global")):
        module_text = rewrite_references(module_text, globals=_hide_anonymous)
        token = _hide_anonymous(token)
    return StandaloneFunction(span.name, token, module_text, linkage, optnone_removed)


_BLOCK_ADDRESS = re.compile(r"blockaddress\s*\(\s*(@" + NAME + r")")


def _block_address_tables(layout: ModuleLayout, function: str, body: str) -> list[tuple[str, str]]:
    """Definitions of the globals whose initializers hold `blockaddress(function, ...)`, kept whole.

    A table the function itself does not use becomes externally visible, or passes would delete it."""
    tables = []
    used = {canonical_token(token) for token in references(body, "global")}
    for entity in layout.entities:
        if entity.kind != "global" or "blockaddress" not in entity.code:
            continue
        if not any(canonical_token(m.group(1)) == function for m in _BLOCK_ADDRESS.finditer(entity.code)):
            continue
        code = " ".join(entity.code.split())
        if canonical_token(entity.token) not in used and _linkage_of(code.split("=", 1)[1]) in LOCAL_LINKAGES:
            code = " ".join(_LINKAGE_WORD.sub("", code, count=1).split())
        tables.append((canonical_token(entity.token), code))
    return tables


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


def _make_external(before: str, rest: str, linkage: str | None) -> str:
    """The function text with its linkage dropped (`before` ends where the name starts)."""
    if linkage in (None, "external"):
        return before + rest
    before = " ".join(strip_comments(before).split())
    before = " ".join(_LINKAGE_WORD.sub("", before, count=1).split())
    if linkage in LOCAL_LINKAGES:
        before = " ".join(re.sub(r"\bdso_local\b", "", before).split())
    return f"{before} {rest}"


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
    span = layout.function(token)
    if span is not None:
        return _function_declaration(layout.function_header(span), span.token)
    entity = layout.entity(token)
    if entity is None:
        return None
    code = " ".join(entity.code.split())
    if entity.kind == "declaration":
        return code
    return _global_declaration(code, entity.token)


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
