"""Choosing the refinement edits: every candidate edit compiled on Dask, counts that `opt` reproduces."""

import json

import numpy as np
import pytest

from lsp_server.compiler import find_opt, load_vocabulary, run_opt
from lsp_server.engine.refine import Edit, RefineSource
from lsp_server.engine import Measurement
from lsp_server.ir import count_instructions
from training import labels, refinements


@pytest.fixture(scope="module")
def labelled(tiny_corpus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("refine")
    lists = folder / "coreset.txt"
    lists.write_text("module(sroa,gvn)  # -3\nmodule(mem2reg,instcombine,simplifycfg)\n")
    out = folder / "labels"
    assert labels.main(["--corpus", str(tiny_corpus), "--out", str(out), "--lists", str(lists), "--workers", "2", "--shard-size", "3"]) == 0
    return folder, lists, out


def test_sample_caps_each_package():
    rows = refinements.sample(["a", "b", "a", "a", "c", "b"], 2, seed=0)
    pkgs = [["a", "b", "a", "a", "c", "b"][r] for r in rows]
    assert sorted(pkgs) == ["a", "a", "b", "b", "c"] and list(rows) == sorted(rows)


def test_every_edit_is_compiled_and_the_counts_are_what_opt_gives(labelled, tiny_corpus):
    folder, lists, out = labelled
    saved, curve = folder / "counts.npz", folder / "curve.json"
    assert refinements.main(["--labels", str(out), "--corpus", str(tiny_corpus), "--coreset", str(lists), "--first", "2",
                             "--workers", "2", "--shard-size", "2", "--save", str(saved), "--curve", str(curve),
                             "--out", str(folder / "refinements.txt")]) == 0
    report = json.loads(curve.read_text())
    assert report["functions"] == 6 and report["choosing_functions"] + report["held_out_functions"] == 6
    assert set(report["edits"]) <= set(refinements.CANDIDATE_EDITS)
    assert report["choosing_gain_percent"] == sorted(report["choosing_gain_percent"])  # greedy never loses
    # the ceiling of any edit predictor: no fixed order of edits beats the best edit of each function
    assert report["held_out_best_single_edit_percent"] >= report["held_out_gain_percent"][-1] - 1e-9

    data = np.load(saved)
    assert data["counts"].shape == (6, len(refinements.CANDIDATE_EDITS))
    loaded = labels.LabelStore(out).load()
    opt = find_opt()
    vocabulary = load_vocabulary(opt)
    manifest = {json.loads(line)["hash"]: json.loads(line) for line in (tiny_corpus / "manifest.jsonl").read_text().splitlines()}
    for row, digest in enumerate(data["hashes"][:2]):
        text = (tiny_corpus / manifest[str(digest)]["path"]).read_text()
        at = loaded.hashes.index(str(digest))
        measured = [Measurement(vocabulary.check(p), "oz" if p == "default<Oz>" else "coreset", int(loaded.counts[at, loaded.pool.index(p)]))
                    for p in ("default<Oz>", "module(sroa,gvn)", "module(mem2reg,instcombine,simplifycfg)")]
        assert data["base"][row] == min(m.count for m in measured)
        for column in (refinements.CANDIDATE_EDITS.index("twice"), refinements.CANDIDATE_EDITS.index("append gvn-sink")):
            candidate = next(RefineSource([Edit.parse(refinements.CANDIDATE_EDITS[column])]).refinements(measured))
            run = run_opt(opt, vocabulary.check(candidate.passes), text)
            assert run.ok and count_instructions(run.output) == data["counts"][row, column]


def test_unseen_packages_get_a_coreset_chosen_without_them(labelled, tiny_corpus):
    folder, lists, out = labelled
    curve = folder / "unseen.json"
    assert refinements.main(["--labels", str(out), "--corpus", str(tiny_corpus), "--coreset", str(lists), "--first", "2",
                             "--unseen-packages", "pa", "--workers", "1", "--curve", str(curve), "--out", str(folder / "r.txt"),
                             "--per-package", "3", "--check-budgets", "1,8", "--held-out-percent", "100"]) == 0
    report = json.loads(curve.read_text())
    assert report["functions"] == 2  # the two functions of package pa
    # The engine check: up to the first 6 lists `refine` has no calls, so both configurations agree.
    assert [(c["budget"], c["functions"]) for c in report["engine_check"]] == [(1, 2), (8, 2)]
    assert report["engine_check"][0]["coreset"] == report["engine_check"][0]["coreset_refine"]
    with pytest.raises(SystemExit, match="no labelled function of nowhere"):
        refinements.main(["--labels", str(out), "--corpus", str(tiny_corpus), "--unseen-packages", "nowhere"])
