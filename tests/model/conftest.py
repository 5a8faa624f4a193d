"""Fixtures: tiny Llama GGUF models (random weights, a SentencePiece vocabulary trained here on a few
lines of IR) that the real llama.cpp loads and runs in milliseconds."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
spm = pytest.importorskip("sentencepiece")
pytest.importorskip("gguf")

from lsp_server.model import formats  # noqa: E402
from training.model.gguf_llama import (  # noqa: E402
    LlamaHParams,
    random_tensors,
    vocab_from_sentencepiece,
    write_llama_gguf,
)

IR_LINES = """\
define dso_local i32 @f(ptr noundef %0, i32 noundef %1) {
  %2 = alloca ptr, align 8
  %3 = alloca i32, align 4
  store ptr %0, ptr %2, align 8
  store i32 %1, ptr %3, align 4
  br label %4
4:
  %5 = load i32, ptr %3, align 4
  %6 = icmp slt i32 %5, 10
  br i1 %6, label %7, label %8
7:
  %9 = getelementptr inbounds i32, ptr %0, i64 2
  %10 = mul nsw i32 %5, 3
  %11 = call i32 @g(i32 %10)
  ret i32 %11
8:
  ret i32 0
}
sroa,instcombine,simplifycfg
function(mem2reg,gvn),dce
12 7
""".splitlines()

PASS_SYMBOLS = ["instcombine", "simplifycfg", "sroa", "gvn", "mem2reg", "dce", "function("]

# One transformer block, 32-wide, 256 tokens of context: about 24k parameters (most in the embeddings).
TINY_CTX = 256


def _train_tokenizer(path: Path, control: list[str]) -> Path:
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(IR_LINES * 2),
        model_writer=model,
        model_type="bpe",
        vocab_size=360,
        hard_vocab_limit=False,
        byte_fallback=True,
        split_digits=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=False,
        user_defined_symbols=PASS_SYMBOLS,
        control_symbols=control,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())
    return path


def _tiny_vocab(directory: Path, name: str, control: list[str]):
    tokenizer = _train_tokenizer(directory / f"{name}.model", control)
    return vocab_from_sentencepiece(tokenizer, PASS_SYMBOLS, extra_tokens=["\n  "])


def _tiny_gguf(directory: Path, name: str, control: list[str]) -> Path:
    vocab = _tiny_vocab(directory, name, control)
    hp = LlamaHParams(vocab_size=len(vocab), dim=32, layers=1, heads=2, kv_heads=2, ffn=64, ctx=TINY_CTX)
    return write_llama_gguf(directory / f"{name}.gguf", hp, random_tensors(hp, seed=1), vocab, name=name)


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory) -> Path:
    """A PassPilot-format model (has the `<|passes|>` control token)."""
    return _tiny_gguf(tmp_path_factory.mktemp("tiny"), "tiny-passpilot", list(formats.CONTROL_TOKENS))


@pytest.fixture(scope="session")
def tiny_foreign_gguf(tmp_path_factory) -> Path:
    """A llama GGUF without the PassPilot separator token."""
    return _tiny_gguf(tmp_path_factory.mktemp("foreign"), "tiny-foreign", [])


@pytest.fixture(scope="session")
def tiny_proposer(tiny_gguf):
    from lsp_server.model import load_proposer

    proposer = load_proposer(tiny_gguf, threads=1)
    yield proposer
    proposer.close()


@pytest.fixture(scope="session")
def tiny_vocab(tmp_path_factory):
    """The PassPilot-format vocabulary of `tiny_gguf` (gguf_llama.Vocab)."""
    return _tiny_vocab(tmp_path_factory.mktemp("vocab"), "tiny-vocab", list(formats.CONTROL_TOKENS))
