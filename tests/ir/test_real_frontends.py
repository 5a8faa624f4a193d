"""IR as real front ends print it: clang-22 -O2 -g (debug records, loop metadata, TBAA) and rustc.

Every function is optimized on its own and written back; the module verifies with `opt` and every other
function stays byte-identical.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from lsp_server.compiler import verify
from lsp_server.engine import EngineSettings, assemble, optimize_module
from lsp_server.ir import ModuleLayout

C_SOURCE = r"""
#include <string.h>
struct point { int x, y; };
static int table[8] = {3, 1, 4, 1, 5, 9, 2, 6};
int dot(const struct point *a, const struct point *b, int n) {
    int s = 0;
    for (int i = 0; i < n; i++) s += a[i].x * b[i].x + a[i].y * b[i].y;
    return s;
}
static int lookup(unsigned k) { return table[k & 7]; }
int mix(unsigned k, char *buf, const char *src) {
    strcpy(buf, src);
    return lookup(k) + (int)strlen(buf);
}
int grade(int score) {
    switch (score / 10) { case 10: case 9: return 4; case 8: return 3; case 7: return 2; case 6: return 1; default: return 0; }
}
"""

RUST_SOURCE = r"""
#[no_mangle]
pub fn checksum(data: &[u8]) -> u32 {
    let mut a: u32 = 1;
    let mut b: u32 = 0;
    for &x in data { a = (a + x as u32) % 65521; b = (b + a) % 65521; }
    (b << 16) | a
}
pub fn classify(v: i64) -> &'static str { match v { i64::MIN..=-1 => "neg", 0 => "zero", _ => "pos" } }
#[no_mangle]
pub fn use_classify(v: i64) -> usize { classify(v).len() }
"""


@pytest.fixture(scope="module")
def optimizer(opt_tool):
    assembly = assemble(EngineSettings(model_path="none", use_cache=False), opt_tool)
    yield assembly.optimizer
    assembly.optimizer.close()


def _each_function_round_trips(optimizer, opt_tool, text: str) -> None:
    assert verify(opt_tool, text).ok
    layout = ModuleLayout.from_text(text)
    assert layout.functions, "no functions found"
    for span in layout.functions:
        result = optimize_module(optimizer, text, names=[span.name], budget=2, sources=["coreset"])
        assert verify(opt_tool, result.text).ok, span.name
        after = ModuleLayout.from_text(result.text)
        for other in layout.functions:
            if other.name != span.name:
                assert after.function_text(after.function(other.name)) == layout.function_text(other), (span.name, other.name)
        outcome = result.outcomes[0]
        assert outcome.result.oz.ok, outcome.result.oz.error


def test_clang_o2_with_debug_info(optimizer, opt_tool, compile_c):
    text = compile_c(C_SOURCE, "-O2", "-g")
    assert "!DICompileUnit" in text and "#dbg_" in text
    _each_function_round_trips(optimizer, opt_tool, text)


def test_rustc_llvm_ir(optimizer, opt_tool, tmp_path):
    rustc = shutil.which("rustc")
    if rustc is None:
        pytest.skip("needs rustc")
    source = tmp_path / "lib.rs"
    source.write_text(RUST_SOURCE)
    output = tmp_path / "lib.ll"
    subprocess.run([rustc, "--crate-type=lib", "--emit=llvm-ir", "-C", "opt-level=0", "-o", str(output), str(source)], check=True)
    text = output.read_text()
    if not verify(opt_tool, text).ok:
        pytest.skip(f"this rustc ({subprocess.run([rustc, '--version'], capture_output=True, text=True).stdout.strip()}) emits IR that LLVM 22 does not read")
    _each_function_round_trips(optimizer, opt_tool, text)
