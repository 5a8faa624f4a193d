"""training.corpus: compile -> split -> dedupe -> decontaminate on a tiny C file (no network)."""

import json
import shutil
from argparse import Namespace
from pathlib import Path

import pytest

from lsp_server.ir.normalize import normalized_hash
from training import corpus

pytestmark = pytest.mark.skipif(
    shutil.which(corpus.CLANG) is None or shutil.which(corpus.LLVM_EXTRACT) is None,
    reason="clang-22 / llvm-extract-22 not installed",
)

TINY_C = r"""
#include "tiny.h"
static int table[4] = {1, 2, 3, 4};

int add_scaled(int a, int b) { int t = a * SCALE; return t + b; }
/* the same body as add_scaled under other names: a duplicate after normalization */
int plus_scaled(int x, int y) { int u = x * SCALE; return u + y; }
static int lookup(int i) { return table[i & 3]; }
int use(int i) { return lookup(i) + add_scaled(i, 1) + plus_scaled(i, 2); }
void nothing(void) {}
"""

OTHER_C = r"""
int add_scaled_again(int p, int q) { int w = p * 3; return w + q; }
const char *semi(int i) { return i ? "a;b%c" : "x"; }
"""


def _args(**kw):
    base = dict(csmith=0, rebuild=False, retry_failed=False, min_instructions=2,
                keep_const_init=False, keep_modules=False, jobs=1, verbose=False)
    base.update(kw)
    return Namespace(**base)


def _tree(tmp_path: Path) -> Path:
    src = tmp_path / "src" / "tiny" / "tiny-1.0"
    (src / "include").mkdir(parents=True)
    (src / "include" / "tiny.h").write_text("#define SCALE 3\n")
    (src / "lib").mkdir()
    (src / "lib" / "tiny.c").write_text(TINY_C)
    (src / "lib" / "other.c").write_text(OTHER_C)
    (src / "lib" / "broken.c").write_text("int broken( {\n")
    (src / "third_party" / "zz").mkdir(parents=True)
    (src / "third_party" / "zz" / "bundled.c").write_text("int bundled(void) { return 1; }\n")
    (src / "win32").mkdir()
    (src / "win32" / "config.h").write_text("#error wrong platform\n")
    (src / ".pc").mkdir()
    (src / ".pc" / "old.c").write_text("int old(void) { return 0; }\n")
    (tmp_path / "src" / "tiny" / ".passpilot-fetched").write_text("tiny-1.0\n")
    (src / ".passpilot-configured").write_text(json.dumps({"method": None, "build_dir": None, "prep": []}))
    return src


def test_file_selection_and_include_dirs(tmp_path):
    src = _tree(tmp_path)
    assert corpus.c_files(src) == [Path("lib/broken.c"), Path("lib/other.c"), Path("lib/tiny.c")]
    incs = corpus.include_dirs(src, None)
    assert incs[0] == src and src / "include" in incs
    assert src / "win32" not in incs  # other platforms' headers never shadow ours
    assert src / "third_party" / "zz" not in corpus.c_files(src)


def test_build_split_dedupe_decontaminate(tmp_path):
    _tree(tmp_path)
    out = tmp_path / "corpus"
    summary = corpus.build_package("tiny", tmp_path / "src", out, _args())
    assert summary["files"] == 3
    assert summary["compiled"] == 2 and summary["compile_failed"] == 1
    assert "lib/broken.c" in summary["errors"]
    # tiny.c defines 5 functions, other.c 2; nothing() (1 instruction) is skipped
    assert summary["functions_defined"] == 7 and summary["skipped_small"] == 1
    assert summary["functions_extracted"] == 6 and summary["extract_failed"] == 0

    recs = corpus.unit_records(out / ".build" / "tiny")
    by_name = {r["function"]: r for r in recs}
    assert set(by_name) == {"add_scaled", "plus_scaled", "lookup", "use", "add_scaled_again", "semi"}
    # every split file is a standalone module with exactly one definition, named by its hash
    import llvmlite.binding as llvm

    for r in recs:
        text = (out / ".build" / "tiny" / "funcs" / r["file"]).read_text()
        assert r["file"].startswith(r["hash"][:16] + "__")
        assert normalized_hash(text) == r["hash"]
        mod = llvm.parse_assembly(text)
        mod.verify()
        defined = [f.name for f in mod.functions if not f.is_declaration]
        assert defined == [r["function"]]
        assert corpus.count_instructions(text) == r["instructions"] >= 2
    # same body under other names -> same hash; different bodies -> different hashes
    assert by_name["add_scaled"]["hash"] == by_name["plus_scaled"]["hash"]
    assert by_name["add_scaled"]["hash"] == by_name["add_scaled_again"]["hash"]  # SCALE expanded to 3
    assert by_name["lookup"]["hash"] != by_name["use"]["hash"]

    # resumable: a second build does nothing new
    again = corpus.build_package("tiny", tmp_path / "src", out, _args())
    assert again["functions_extracted"] == 6

    # benchmark manifest holding lookup()'s hash -> decontaminated away
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "manifest.jsonl").write_text(json.dumps({"hash": by_name["lookup"]["hash"]}) + "\n")
    rc = corpus.main(["dedupe", "--out", str(out), "--benchmark-dir", str(bench)])
    assert rc == 0
    manifest = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()]
    # add_scaled/plus_scaled/add_scaled_again collapse to the first by (source, name):
    # lib/other.c sorts before lib/tiny.c
    assert [m["function"] for m in manifest] == ["add_scaled_again", "semi", "use"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["packages"]["tiny"] == {"functions": 6, "kept": 3, "duplicates": 2, "benchmark_matches": 1}
    for m in manifest:
        assert m["pkg"] == "tiny" and set(m) == {"pkg", "source", "function", "hash", "instructions", "path"}
        assert (out / m["path"]).is_file()
    assert sorted(p.name for p in (out / "tiny").iterdir()) == sorted(Path(m["path"]).name for m in manifest)


def test_dedupe_records_filter():
    recs = [{"hash": h} for h in ["a", "b", "a", "c", "b", "d"]]
    kept, c = corpus.dedupe_records(recs, exclude={"c"})
    assert [r["hash"] for r in kept] == ["a", "b", "d"]
    assert c == {"duplicates": 2, "benchmark_matches": 1}
