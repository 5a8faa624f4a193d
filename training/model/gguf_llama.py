"""Write a Llama-architecture GGUF (hyper-parameters, SentencePiece vocabulary as a `llama` tokenizer,
tensors) with the `gguf` package. Needs numpy, gguf and sentencepiece only (no torch), so the tests use
it too.

Tensor layout is the one llama.cpp reads for `llama`: numpy arrays shaped like PyTorch `nn.Linear`
weights (out_features, in_features). Rotary embeddings are llama.cpp's "normal" rope (adjacent pairs
(x0, x1), (x2, x3), ... rotated), which `train.py` implements, so no Q/K permutation is needed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# gguf's token types (gguf.TokenType), spelled out to keep this readable.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


@dataclass(frozen=True)
class LlamaHParams:
    vocab_size: int
    dim: int = 256
    layers: int = 4
    heads: int = 4
    kv_heads: int = 4
    ffn: int = 768
    ctx: int = 2048
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    tied: bool = True

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Vocab:
    tokens: list[str]
    scores: list[float]
    types: list[int]
    bos: int
    eos: int
    unk: int
    pad: int | None = None

    def __len__(self) -> int:
        return len(self.tokens)

    def id_of(self, text: str) -> int:
        return self.tokens.index(text)


def vocab_from_sentencepiece(
    model_file: str | Path, user_defined: Collection[str] = (), extra_tokens: Collection[str] = ()
) -> Vocab:
    """The vocabulary of a trained SentencePiece model as GGUF arrays.

    SentencePiece's Python API does not tell user-defined pieces apart, so the caller names them.
    `extra_tokens` are appended as user-defined tokens, matched literally in raw text by llama.cpp
    (e.g. a newline plus indentation, which SentencePiece, trained line by line, cannot hold).
    """
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    user = set(user_defined)
    tokens, scores, types = [], [], []
    pad = None
    for index in range(sp.get_piece_size()):
        piece = sp.id_to_piece(index)
        tokens.append(piece)
        scores.append(float(sp.get_score(index)))
        if sp.is_unknown(index):
            types.append(UNKNOWN)
        elif sp.is_control(index):
            types.append(CONTROL)
            if piece == "<pad>":
                pad = index
        elif sp.is_byte(index):
            types.append(BYTE)
        elif sp.is_unused(index):
            types.append(UNUSED)
        elif piece in user:
            types.append(USER_DEFINED)
        else:
            types.append(NORMAL)
    for token in extra_tokens:
        if token in tokens:
            continue
        tokens.append(token)
        scores.append(0.0)
        types.append(USER_DEFINED)
    return Vocab(tokens, scores, types, bos=sp.bos_id(), eos=sp.eos_id(), unk=sp.unk_id(), pad=pad)


def tensor_names(hp: LlamaHParams) -> dict[str, tuple[int, ...]]:
    """GGUF tensor name -> numpy shape."""
    kv_dim = hp.head_dim * hp.kv_heads
    shapes: dict[str, tuple[int, ...]] = {
        "token_embd.weight": (hp.vocab_size, hp.dim),
        "output_norm.weight": (hp.dim,),
    }
    if not hp.tied:
        shapes["output.weight"] = (hp.vocab_size, hp.dim)
    for i in range(hp.layers):
        shapes[f"blk.{i}.attn_norm.weight"] = (hp.dim,)
        shapes[f"blk.{i}.attn_q.weight"] = (hp.dim, hp.dim)
        shapes[f"blk.{i}.attn_k.weight"] = (kv_dim, hp.dim)
        shapes[f"blk.{i}.attn_v.weight"] = (kv_dim, hp.dim)
        shapes[f"blk.{i}.attn_output.weight"] = (hp.dim, hp.dim)
        shapes[f"blk.{i}.ffn_norm.weight"] = (hp.dim,)
        shapes[f"blk.{i}.ffn_gate.weight"] = (hp.ffn, hp.dim)
        shapes[f"blk.{i}.ffn_up.weight"] = (hp.ffn, hp.dim)
        shapes[f"blk.{i}.ffn_down.weight"] = (hp.dim, hp.ffn)
    return shapes


def random_tensors(hp: LlamaHParams, seed: int = 0, scale: float = 0.2) -> dict[str, np.ndarray]:
    """Random weights (norm weights 1): enough for llama.cpp to load and generate garbage."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in tensor_names(hp).items():
        if len(shape) == 1:
            tensors[name] = np.ones(shape, dtype=np.float32)
        else:
            tensors[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return tensors


def write_llama_gguf(
    path: str | Path,
    hp: LlamaHParams,
    tensors: Mapping[str, np.ndarray],
    vocab: Vocab,
    *,
    name: str = "passpilot",
    extra_strings: Mapping[str, str] | None = None,
) -> Path:
    """Write an F32 (1-d) / F32-or-F16 (2-d, as given) llama GGUF. Returns the path."""
    import gguf

    if len(vocab) != hp.vocab_size:
        raise ValueError(f"vocabulary has {len(vocab)} tokens, hyper-parameters say {hp.vocab_size}")
    expected = tensor_names(hp)
    missing = set(expected) - set(tensors)
    if missing:
        raise ValueError(f"missing tensors: {sorted(missing)[:5]}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(hp.ctx)
    writer.add_embedding_length(hp.dim)
    writer.add_block_count(hp.layers)
    writer.add_feed_forward_length(hp.ffn)
    writer.add_head_count(hp.heads)
    writer.add_head_count_kv(hp.kv_heads)
    writer.add_rope_dimension_count(hp.head_dim)
    writer.add_rope_freq_base(hp.rope_base)
    writer.add_layer_norm_rms_eps(hp.norm_eps)
    writer.add_vocab_size(hp.vocab_size)
    all_f32 = all(np.asarray(t).dtype == np.float32 for t in tensors.values())
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if all_f32 else gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(vocab.tokens)
    writer.add_token_scores(vocab.scores)
    writer.add_token_types(vocab.types)
    writer.add_bos_token_id(vocab.bos)
    writer.add_eos_token_id(vocab.eos)
    writer.add_unk_token_id(vocab.unk)
    if vocab.pad is not None:
        writer.add_pad_token_id(vocab.pad)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    # The tokenizer was trained without a dummy prefix and with whitespace kept as it is.
    writer.add_add_space_prefix(False)
    writer.add_remove_extra_whitespaces(False)
    for key, value in (extra_strings or {}).items():
        writer.add_string(key, value)
    for tensor_name, shape in expected.items():
        array = np.ascontiguousarray(tensors[tensor_name])
        if tuple(array.shape) != shape:
            raise ValueError(f"{tensor_name}: shape {array.shape}, expected {shape}")
        if array.ndim == 1:
            array = array.astype(np.float32)
        writer.add_tensor(tensor_name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def quantize(src: str | Path, dst: str | Path, ftype: str = "Q8_0", threads: int = 2) -> Path:
    """Quantize a GGUF with llama.cpp (through llama-cpp-python)."""
    import ctypes

    import llama_cpp

    types = {"Q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "F16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16}
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = types[ftype]
    params.nthread = threads
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize failed ({rc}) for {src}")
    return Path(dst)
