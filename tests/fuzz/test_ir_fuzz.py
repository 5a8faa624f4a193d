"""The IR layer against LLVM on fuzzed input: whenever LLVM accepts a module, PassPilot finds exactly the
functions LLVM found, and cuts out standalone modules that LLVM accepts too; on any input, no exception
other than a located `InvalidIR`."""

from __future__ import annotations

import os

from lsp_server.ir import InvalidIR, ModuleLayout, check, parse, standalone_function

from .mutations import mutate, seed_corpus

INPUTS = int(os.environ.get("PASSPILOT_FUZZ_INPUTS", "400"))  # a long run: PASSPILOT_FUZZ_INPUTS=20000
FIRST_SEED = int(os.environ.get("PASSPILOT_FUZZ_SEED", "0"))


def test_layout_agrees_with_llvm_on_fuzzed_input():
    corpus = seed_corpus(limit_benchmark=20)
    valid = 0
    for seed in range(FIRST_SEED, FIRST_SEED + INPUTS):
        name, data = corpus[seed % len(corpus)]
        fuzzed, mutations = mutate(seed, data)
        try:
            text = fuzzed.decode("utf-8")
        except UnicodeDecodeError:
            continue
        where = f"seed {seed} ({name}, {'+'.join(mutations)})"
        layout = ModuleLayout.from_text(text)  # must never raise, valid or not
        errors = check(text)
        if errors:
            assert all(0 <= e.line < max(len(layout.lines), 1) for e in errors), where
            continue
        valid += 1
        defined = [f for f in parse(text).functions if not f.is_declaration]
        assert len(layout.functions) == len(defined), where
        assert {s.name for s in layout.functions if not s.name.isdigit()} == {f.name for f in defined if f.name}, where
        for span in layout.functions:
            try:
                parse(standalone_function(layout, span).text)
            except InvalidIR as invalid:
                raise AssertionError(f"{where}: standalone @{span.name} does not parse: {invalid}") from None
    assert valid > INPUTS // 10, f"only {valid} of {INPUTS} fuzzed inputs were valid IR: the campaign tests too little"
