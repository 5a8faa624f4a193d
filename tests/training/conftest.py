"""A tiny training corpus: small C functions compiled like the real corpus (clang-22 -O0, one module each)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lsp_server.ir import count_instructions
from lsp_server.ir.normalize import normalized_hash

FUNCTIONS = {
    "alpha": ("sum", "int sum(int *a, int n) { int s = 0; for (int i = 0; i < n; i++) s += a[i]; return s; }"),
    "alpha2": ("pick", "int pick(int x) { switch (x) { case 1: return 10; case 2: return 20; case 3: return 30; } return 0; }"),
    "beta": ("clamp", "int clamp(int v, int lo, int hi) { if (v < lo) return lo; if (v > hi) return hi; return v; }"),
    "beta2": ("scale", "long scale(long a, long b) { long t = a * 3; long u = t + b; return u * 2 - a; }"),
    "gamma": ("copy", "void copy(char *d, const char *s, int n) { while (n-- > 0) *d++ = *s++; }"),
    "gamma2": ("maxof", "int maxof(int *a, int n) { int m = a[0]; for (int i = 1; i < n; i++) if (a[i] > m) m = a[i]; return m; }"),
}
PACKAGES = {"alpha": "pa", "alpha2": "pa", "beta": "pb", "beta2": "pb", "gamma": "pc", "gamma2": "pc"}


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    clang = shutil.which("clang-22") or shutil.which("clang")
    if clang is None:
        pytest.skip("clang-22 is not installed")
    corpus = tmp_path_factory.mktemp("corpus")
    lines = []
    for key, (name, source) in FUNCTIONS.items():
        package = PACKAGES[key]
        (corpus / package).mkdir(exist_ok=True)
        c_file = corpus / f"{key}.c"
        c_file.write_text(source + "\n")
        text = subprocess.run(
            [clang, "-O0", "-Xclang", "-disable-O0-optnone", "-g0", "-S", "-emit-llvm", "-o", "-", str(c_file)],
            check=True, capture_output=True, text=True,
        ).stdout
        digest = normalized_hash(text)
        path = f"{package}/{digest[:16]}__{name}.ll"
        (corpus / path).write_text(text)
        lines.append({"pkg": package, "source": c_file.name, "function": name, "hash": digest,
                      "instructions": count_instructions(text), "path": path})
    (corpus / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return corpus
