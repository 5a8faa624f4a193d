"""The PyTorch decoder of training/model and llama.cpp compute the same function once exported to GGUF
(rotary layout, RMSNorm, SwiGLU, grouped-query attention, tied output). Needs torch (training only)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
llama_cpp = pytest.importorskip("llama_cpp")

from training.model.gguf_llama import LlamaHParams, quantize, write_llama_gguf  # noqa: E402
from training.model.model import Llama  # noqa: E402


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_logits_match_llama_cpp(tiny_vocab, tmp_path, kv_heads):
    torch.manual_seed(0)
    hp = LlamaHParams(vocab_size=len(tiny_vocab), dim=64, layers=2, heads=4, kv_heads=kv_heads, ffn=96, ctx=256)
    model = Llama(hp)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    path = write_llama_gguf(tmp_path / "parity.gguf", hp, model.gguf_tensors(), tiny_vocab)
    ids = [tiny_vocab.bos] + np.random.default_rng(0).integers(5, len(tiny_vocab), 40).tolist()
    llm = llama_cpp.Llama(str(path), n_ctx=256, logits_all=True, n_threads=1, verbose=False)
    try:
        llm.reset()
        llm.eval(ids)
        ours = model(torch.tensor([ids]))[0].detach().numpy()
        theirs = np.asarray(llm.scores[: len(ids)])
    finally:
        llm.close()
    assert np.abs(ours - theirs).max() < 5e-3
    assert (ours.argmax(-1) == theirs.argmax(-1)).all()


def test_greedy_cache_matches_full_recompute():
    torch.manual_seed(1)
    hp = LlamaHParams(vocab_size=50, dim=32, layers=2, heads=4, kv_heads=2, ffn=64, ctx=64)
    model = Llama(hp)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    prompt = [1, 7, 9, 11, 3]
    cached = model.greedy(prompt, eos=-1, max_new=12)
    full = list(prompt)
    with torch.no_grad():
        for _ in range(12):
            full.append(int(model(torch.tensor([full]))[0, -1].argmax()))
    assert cached == full[len(prompt):]


def test_quantize_q8_0(tiny_vocab, tmp_path):
    hp = LlamaHParams(vocab_size=len(tiny_vocab), dim=64, layers=1, heads=2, kv_heads=2, ffn=64, ctx=256)
    model = Llama(hp)
    f32 = write_llama_gguf(tmp_path / "m-f32.gguf", hp, model.gguf_tensors(), tiny_vocab, name="q-test")
    q8 = quantize(f32, tmp_path / "m.gguf", "Q8_0", threads=1)
    from lsp_server.model import load_proposer

    proposer = load_proposer(q8, threads=1)
    assert proposer.identity.startswith("q-test Q8_0 (")
    proposer.load()
    proposer.close()
