import json
import os
import shutil

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
        ("-passes='instcombine, simplifycfg'", "instcombine<no-verify-fixpoint>,simplifycfg"),
        ("function(gvn<no-pre>,instcombine),default<Oz>", "function(gvn<no-pre>,instcombine<no-verify-fixpoint>),default<Oz>"),
        ("loop-mssa(licm<allowspeculation>)", "loop-mssa(licm<allowspeculation>)"),
        # InstCombine runs as in the -O pipelines, without its fixpoint self-check, unless a list asks for it
        ("instcombine<max-iterations=4>", "instcombine<max-iterations=4;no-verify-fixpoint>"),
        ("instcombine<verify-fixpoint>", "instcombine<verify-fixpoint>"),
        ("instcombine<no-verify-fixpoint;max-iterations=2>", "instcombine<no-verify-fixpoint;max-iterations=2>"),
        ("aggressive-instcombine", "aggressive-instcombine"),
    ],
)
def test_valid_lists_are_normalized(vocabulary, pipeline, normalized):
    assert vocabulary.check(pipeline) == normalized


# -- the one pipeline grammar: splitting (model answers, random search, training use these) --------------


def test_split_pipeline_respects_nesting_and_parameters():
    from lsp_server.compiler.passes import split_pipeline

    assert split_pipeline("a,function(b,c),d<x;y>,  ,e") == ["a", "function(b,c)", "d<x;y>", "e"]
    assert split_pipeline("function<eager-inv>(gvn,loop-mssa(licm)),sroa") == ["function<eager-inv>(gvn,loop-mssa(licm))", "sroa"]
    assert split_pipeline("") == [] and split_pipeline(" , ") == []


def test_pass_names_unwrap_adaptors():
    from lsp_server.compiler.passes import element_name, nested_pipeline, pipeline_pass_names

    assert pipeline_pass_names("function(loop-mssa(licm<allowspeculation>)),default<Oz>,cgscc(inline)") == ["licm", "default", "inline"]
    assert element_name("instcombine<max-iterations=1>") == "instcombine"
    assert nested_pipeline("function<eager-inv>(gvn,dce)") == ("function<eager-inv>", "gvn,dce")
    assert nested_pipeline("sroa") is None and nested_pipeline("function(sroa") is None


def test_split_elements_of_a_checked_list_check_alone(vocabulary):
    from lsp_server.compiler.passes import split_pipeline

    checked = vocabulary.check("default<Oz>, function(gvn<no-pre>,instcombine), loop-mssa(licm)")
    assert [vocabulary.check(element) for element in split_pipeline(checked)] == [
        "default<Oz>", "function(gvn<no-pre>,instcombine<no-verify-fixpoint>)", "loop-mssa(licm)"
    ]


def test_function_adaptor_takes_only_eager_inv(vocabulary):
    assert vocabulary.check("function<eager-inv>(gvn,dce)") == "function<eager-inv>(gvn,dce)"
    for pipeline in ("function<no-rerun>(sroa)", "cgscc<x>(inline)", "module<eager-inv>(globaldce)"):
        with pytest.raises(PassListError):
            vocabulary.check(pipeline)


# -- the vocabulary cache on disk (compiler.binary_facts: resolved path, size, mtime_ns, version) ----------

TINY_LISTING = "Function passes:\n  sroa\n  instcombine<max-iterations=N>\n"


def _stored(cache_dir):
    files = list(cache_dir.glob("*.json"))
    assert len(files) == 1, files
    return files[0]


def test_vocabulary_cache_is_written_then_read_without_opt(opt_tool, tmp_path):
    from lsp_server.compiler.passes import read_vocabulary

    first = read_vocabulary(opt_tool.path, opt_tool.version, tmp_path)
    assert first.names == load_vocabulary(opt_tool).names
    stored = _stored(tmp_path)
    record = json.loads(stored.read_text())
    assert record["identity"]["version"] == opt_tool.version and "Function passes" in record["value"]
    assert record["identity"]["path"] == os.path.realpath(opt_tool.path)
    # What the file says is what the next process gets: the listing is read back, opt is not asked.
    stored.write_text(json.dumps({**record, "value": TINY_LISTING}))
    assert read_vocabulary(opt_tool.path, opt_tool.version, tmp_path).names == {"sroa", "instcombine", "default"}


@pytest.mark.parametrize("content", ["{not json", "[]", '{"identity": null}', "", '{"kind": "print-passes", "identity": {}, "value": 3}'])
def test_corrupt_vocabulary_cache_falls_back_to_opt(opt_tool, tmp_path, content):
    from lsp_server.compiler.passes import read_vocabulary

    expected = read_vocabulary(opt_tool.path, opt_tool.version, tmp_path).names
    stored = _stored(tmp_path)
    stored.write_text(content)
    assert read_vocabulary(opt_tool.path, opt_tool.version, tmp_path).names == expected
    assert "Function passes" in json.loads(stored.read_text())["value"], "the corrupt file is replaced"


def test_unwritable_vocabulary_cache_still_gives_the_vocabulary(opt_tool, tmp_path):
    from lsp_server.compiler.passes import read_vocabulary

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    vocabulary = read_vocabulary(opt_tool.path, opt_tool.version, blocker / "vocabulary")
    assert "instcombine" in vocabulary.names and blocker.read_text() == "not a folder"


def test_changed_opt_binary_is_not_served_from_the_cache(opt_tool, tmp_path):
    from lsp_server.compiler.passes import read_vocabulary

    binary = tmp_path / "opt"
    shutil.copy2(os.path.realpath(opt_tool.path), binary)  # Debian's opt finds libLLVM in the system folder
    cache = tmp_path / "cache"
    expected = read_vocabulary(str(binary), opt_tool.version, cache).names
    stored = _stored(cache)
    stored.write_text(json.dumps({**json.loads(stored.read_text()), "value": TINY_LISTING}))
    stat = binary.stat()
    os.utime(binary, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a new build of opt
    assert read_vocabulary(str(binary), opt_tool.version, cache).names == expected
    assert read_vocabulary(str(binary), "99.0.0", cache).names == expected  # another version: another key
