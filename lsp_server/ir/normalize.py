"""Canonical text of an LLVM IR function, for model prompts and de-duplication.

``normalize_function`` turns the IR of one function (a ``define ... { ... }`` block, or a
whole module, in which case every defined function is taken) into a canonical form that does
not depend on the names the producer chose:

* comments (``; ...`` outside string literals), trailing whitespace and blank lines go;
* metadata attachments (``, !dbg !7``, ``!tbaa !12``, ``!prof !{...}`` on the ``define``
  line, ...), debug records (``#dbg_value(...)``) and calls of ``@llvm.dbg.*`` go;
* attribute group references (``#0``) go;
* runs of blanks outside string literals collapse to one; body lines are indented by two
  spaces;
* the function itself is renamed ``@f`` (further defined functions of a module ``@f1``,
  ``@f2``, ...), in its ``define`` line and in every reference to it;
* the label of the entry block is dropped (it can never be referenced), and local values
  and block labels are renamed ``%0, %1, ...`` in the order of their first appearance
  (a label line becomes ``N:``). Type names are not renamed: a ``%name`` is a type when the
  module defines it with ``%name = type``, when it starts with ``%struct.``, ``%union.`` or
  ``%class.``, or when it is neither a numbered value nor defined inside the function (as a
  parameter, an instruction result or a block label).

The result is meant for hashing and for prompts; it is deterministic but not necessarily
valid IR (numbered values are not in definition order).

Only the standard library is used here.
"""

from __future__ import annotations

import hashlib
import re

from .tokens import strip_comment

__all__ = ["normalize_function", "normalized_hash", "split_functions"]

_NAME_CHARS = re.compile(r"[-A-Za-z$._0-9]+")
_MD_NAME = re.compile(r"[A-Za-z_.$][-A-Za-z0-9_.$]*")
_TYPE_DEF = re.compile(r'^\s*%("[^"]*"|[-A-Za-z$._0-9]+)\s*=\s*type\b', re.M)
_LABEL_LINE = re.compile(r'^\s*("[^"]*"|[-A-Za-z$._0-9]+):(?:\s|$)')
_TYPE_PREFIXES = ("struct.", "union.", "class.")


def _unquote(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == '"' and name[-1] == '"' else name


# --------------------------------------------------------------------------- lexical helpers


def _skip_balanced(line: str, i: int, open_ch: str, close_ch: str) -> int:
    """``line[i]`` is ``open_ch``; the index just after its matching ``close_ch``."""
    depth = 0
    n = len(line)
    while i < n:
        ch = line[i]
        if ch == '"':
            j = line.find('"', i + 1)
            i = n if j < 0 else j + 1
            continue
        if ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _skip_md_value(line: str, i: int) -> int:
    """``line[i]`` is ``!`` starting a metadata value; the index just after it."""
    n = len(line)
    j = i + 1
    if j >= n:
        return j
    ch = line[j]
    if ch == "{":
        return _skip_balanced(line, j, "{", "}")
    if ch == '"':
        k = line.find('"', j + 1)
        return n if k < 0 else k + 1
    m = _NAME_CHARS.match(line, j)
    if not m:
        return j
    j = m.end()
    if j < n and line[j] == "(":
        return _skip_balanced(line, j, "(", ")")
    return j


def _md_attachment_end(line: str, i: int) -> int:
    """If a metadata attachment (``[,] !name !value``) starts at ``i`` (at the comma or the
    blank before it), the index just after it; else -1."""
    n = len(line)
    j = i
    if line[j] == ",":
        j += 1
    while j < n and line[j] in " \t":
        j += 1
    if j == i or j >= n or line[j] != "!":
        return -1
    m = _MD_NAME.match(line, j + 1)
    if not m:
        return -1
    k = m.end()
    if k >= n or line[k] not in " \t":
        return -1
    while k < n and line[k] in " \t":
        k += 1
    if k >= n or line[k] != "!":
        return -1
    return _skip_md_value(line, k)


def _tokens(line: str):
    """Split a (comment-free) line into ``(kind, text)`` pieces.

    kinds: ``str`` (string literal), ``local`` (``%name``), ``global`` (``@name``),
    ``text`` (anything else). Metadata attachments and ``#N`` attribute references are
    dropped here.
    """
    out: list[tuple[str, str]] = []
    buf: list[str] = []
    i = 0
    n = len(line)

    def flush() -> None:
        if buf:
            out.append(("text", "".join(buf)))
            buf.clear()

    while i < n:
        ch = line[i]
        if ch == '"':
            j = line.find('"', i + 1)
            j = n if j < 0 else j + 1
            flush()
            out.append(("str", line[i:j]))
            i = j
            continue
        if ch in "%@" and i + 1 < n:
            kind = "local" if ch == "%" else "global"
            nxt = line[i + 1]
            if nxt == '"':
                j = line.find('"', i + 2)
                j = n if j < 0 else j + 1
                flush()
                out.append((kind, line[i:j]))
                i = j
                continue
            m = _NAME_CHARS.match(line, i + 1)
            if m:
                flush()
                out.append((kind, line[i:m.end()]))
                i = m.end()
                continue
        if ch == "#" and i + 1 < n and line[i + 1].isdigit():
            j = i + 1
            while j < n and line[j].isdigit():
                j += 1
            if j >= n or not (line[j].isalnum() or line[j] in "_.$-"):
                i = j  # attribute group reference: dropped
                continue
        if ch == "," or ch in " \t":
            end = _md_attachment_end(line, i)
            if end > 0:
                i = end
                continue
        buf.append(ch)
        i += 1
    flush()
    return out


def _collapse(text: str) -> str:
    return re.sub(r"[ \t]+", " ", text)


# --------------------------------------------------------------------------- functions


def split_functions(text: str) -> list[str]:
    """The ``define ... { ... }`` blocks of ``text``, in order (the text of each)."""
    lines = text.splitlines()
    blocks: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("define ") or lines[i].lstrip() == "define":
            start = i
            # the body ends at the first line that is a lone "}" (LLVM prints it so)
            while i < len(lines) and strip_comment(lines[i]).strip() != "}":
                stripped = strip_comment(lines[i]).rstrip()
                if i == start and stripped.endswith("}") and "{" in stripped:
                    break  # one-line definition
                i += 1
            blocks.append("\n".join(lines[start : i + 1]))
        i += 1
    return blocks


def _function_name(header: str) -> str | None:
    for kind, tok in _tokens(header):
        if kind == "global":
            return _unquote(tok[1:])
    return None


def _header_params(header_tokens) -> set[str]:
    """Names of the parameters declared in a tokenized ``define`` line."""
    params: set[str] = set()
    depth = 0  # () nesting
    other = 0  # {} [] <> nesting
    seen_name = False
    pending: str | None = None
    for kind, tok in header_tokens:
        if kind == "global" and not seen_name:
            seen_name = True
            continue
        if not seen_name:
            continue
        if kind == "local":
            pending = tok if depth == 1 and other == 0 else None
            continue
        if kind != "text":
            pending = None
            continue
        for ch in tok:
            if ch in " \t":
                continue
            if ch in ",)" and pending is not None and depth == 1 and other == 0:
                params.add(_unquote(pending[1:]))
            pending = None
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    return params
            elif ch in "{[<":
                other += 1
            elif ch in "}]>":
                other -= 1
    return params


def _is_debug_line(line: str) -> bool:
    s = line.lstrip()
    return s.startswith("#dbg_") or ("@llvm.dbg." in s and s.startswith(("call ", "tail call ")))


def _normalize_one(func_text: str, type_names: set[str], renames: dict[str, str]) -> str:
    raw_lines = [strip_comment(l).rstrip() for l in func_text.splitlines()]
    raw_lines = [l for l in raw_lines if l.strip()]
    if not raw_lines:
        return ""
    # the define line may be wrapped: join until the opening brace
    header = raw_lines[0]
    k = 1
    while not header.rstrip().endswith("{") and k < len(raw_lines) and "{" not in header:
        header += " " + raw_lines[k].strip()
        k += 1
    body = raw_lines[k:]
    one_line_body = None
    if header.rstrip().endswith("}") and "{" in header:  # define ... { ... } on one line
        brace = header.index("{")
        one_line_body = header[brace + 1 : header.rstrip().rfind("}")]
        header = header[: brace + 1]
        body = [one_line_body, "}"] if one_line_body.strip() else ["}"]

    body = [l for l in body if not _is_debug_line(l)]
    header_tokens = _tokens(header)
    body_items: list[tuple[str, object]] = []  # ("label", key) | ("line", tokens)
    defined: set[str] = set(_header_params(header_tokens))
    first_instruction_seen = False
    for line in body:
        m = _LABEL_LINE.match(line)
        if m and line.strip() != "}":
            key = _unquote(m.group(1))
            defined.add(key)
            if not first_instruction_seen and not any(kind == "label" for kind, _ in body_items):
                continue  # the entry block's label: never referenced, dropped
            body_items.append(("label", key))
            continue
        toks = _tokens(line)
        stripped = line.lstrip()
        if stripped.startswith("%") and toks and toks[0][0] == "text" and not toks[0][1].strip():
            toks = toks[1:]
        if toks and toks[0][0] == "local":
            rest = "".join(t for _, t in toks[1:3]).lstrip()
            if rest.startswith("="):
                defined.add(_unquote(toks[0][1][1:]))
        first_instruction_seen = True
        body_items.append(("line", toks))

    local_ids: dict[str, str] = {}

    def is_local(key: str) -> bool:
        if key in type_names or key.startswith(_TYPE_PREFIXES):
            return False
        return key in defined or key.isdigit()

    def local_id(key: str) -> str:
        if key not in local_ids:
            local_ids[key] = str(len(local_ids))
        return local_ids[key]

    def render(tokens) -> str:
        parts: list[str] = []
        for kind, tok in tokens:
            if kind == "local":
                key = _unquote(tok[1:])
                parts.append("%" + local_id(key) if is_local(key) else tok)
            elif kind == "global":
                key = _unquote(tok[1:])
                parts.append("@" + renames[key] if key in renames else tok)
            elif kind == "str":
                parts.append(tok)
            else:
                parts.append(_collapse(tok))
        return "".join(parts).strip()

    out = [render(header_tokens)]
    for kind, item in body_items:
        if kind == "label":
            out.append(local_id(item) + ":")  # type: ignore[arg-type]
            continue
        line = render(item)
        if not line:
            continue
        out.append(line if line == "}" else "  " + line)
    return "\n".join(out)


def normalize_function(text: str) -> str:
    """Canonical form of the function(s) defined in ``text`` (see the module docstring)."""
    type_names = {_unquote(m.group(1)) for m in _TYPE_DEF.finditer(text)}
    funcs = split_functions(text)
    if not funcs:
        raise ValueError("no function definition ('define ... {') in the text")
    renames: dict[str, str] = {}
    for idx, func in enumerate(funcs):
        name = _function_name(func)
        if name is not None and name not in renames:
            renames[name] = "f" if idx == 0 else f"f{idx}"
    return "\n\n".join(_normalize_one(f, type_names, renames) for f in funcs) + "\n"


def normalized_hash(text: str) -> str:
    """sha256 (hex) of ``normalize_function(text)``."""
    return hashlib.sha256(normalize_function(text).encode("utf-8")).hexdigest()
