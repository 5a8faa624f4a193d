import pytest

from lsp_server.compiler import PassListError, load_vocabulary


@pytest.fixture(scope="module")
def vocabulary(opt_tool):
    return load_vocabulary(opt_tool)


def test_vocabulary_keeps_transformations(vocabulary):
    for name in ["instcombine", "simplifycfg", "sroa", "gvn", "licm", "loop-rotate", "inline", "default"]:
        assert name in vocabulary.names


def test_vocabulary_drops_observers_instrumentation_and_io(vocabulary):
    for name in ["print", "verify", "dot-cfg", "view-cfg", "asan", "msan", "hwasan", "tsan", "pgo-instr-gen",
                 "memprof-use", "internalize", "strip", "strip-debug-declare", "metarenamer", "extract-blocks",
                 "function-import", "embed-bitcode", "trigger-crash-module", "helloworld", "instrprof"]:
        assert name not in vocabulary.names, name


@pytest.mark.parametrize(
    "pipeline",
    [
        "--load-pass-plugin=/tmp/evil.so",
        "-load=/tmp/evil.so",
        "instcombine -o /tmp/out.ll",
        "instcombine,-o=/tmp/x",
        "instcombine;rm -rf /",
        "$(touch /tmp/pwned)",
        "`id`",
        "/usr/lib/libplugin.so",
        "print<domtree>",
        "internalize",
        "memprof-use<profile-filename=/etc/passwd>",
        "no-such-pass",
        "gvn<not-an-option>",
        "default",
        "instcombine(simplifycfg)",
        "function(instcombine",
        "",
        ",".join(["instcombine"] * 300),
    ],
)
def test_unsafe_or_malformed_lists_are_rejected(vocabulary, pipeline):
    with pytest.raises(PassListError):
        vocabulary.check(pipeline)


@pytest.mark.parametrize(
    ("pipeline", "normalized"),
    [
        ("default<Oz>", "default<Oz>"),
        ("-passes='instcombine, simplifycfg'", "instcombine,simplifycfg"),
        ("function(gvn<no-pre>,instcombine),default<Oz>", "function(gvn<no-pre>,instcombine),default<Oz>"),
        ("loop-mssa(licm<allowspeculation>)", "loop-mssa(licm<allowspeculation>)"),
        ("instcombine<max-iterations=4>", "instcombine<max-iterations=4>"),
    ],
)
def test_valid_lists_are_normalized(vocabulary, pipeline, normalized):
    assert vocabulary.check(pipeline) == normalized
