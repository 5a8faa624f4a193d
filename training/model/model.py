"""A Llama-architecture decoder in PyTorch, written to match llama.cpp's `llama` graph exactly:

* RMSNorm `x / sqrt(mean(x^2) + eps) * w` before attention and before the MLP, and at the end;
* rotary embeddings in llama.cpp's "normal" layout: adjacent pairs (x[2i], x[2i+1]) rotated by
  `pos * base^(-2i/head_dim)`;
* grouped-query attention (kv_heads divides heads), causal, scale 1/sqrt(head_dim);
* SwiGLU MLP `down(silu(gate(x)) * up(x))`; no biases;
* output projection tied to the token embeddings (optional).

Parameter names map 1:1 onto GGUF tensor names (`gguf_tensors`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .gguf_llama import LlamaHParams


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope_tables(head_dim: int, ctx: int, base: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    inv = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim)
    angles = torch.arange(ctx, dtype=torch.float64, device=device)[:, None] * inv[None, :]
    return angles.cos().float(), angles.sin().float()  # (ctx, head_dim/2)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (batch, heads, time, head_dim); cos/sin: (time, head_dim/2)."""
    x0 = x[..., 0::2].float()
    x1 = x[..., 1::2].float()
    out0 = x0 * cos - x1 * sin
    out1 = x0 * sin + x1 * cos
    return torch.stack((out0, out1), dim=-1).flatten(-2).type_as(x)


class Attention(nn.Module):
    def __init__(self, hp: LlamaHParams) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = hp.heads, hp.kv_heads, hp.head_dim
        self.q = nn.Linear(hp.dim, hp.heads * hp.head_dim, bias=False)
        self.k = nn.Linear(hp.dim, hp.kv_heads * hp.head_dim, bias=False)
        self.v = nn.Linear(hp.dim, hp.kv_heads * hp.head_dim, bias=False)
        self.o = nn.Linear(hp.heads * hp.head_dim, hp.dim, bias=False)

    def forward(self, x, cos, sin, cache: dict | None = None) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        causal = True
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
                causal = t > 1
            cache["k"], cache["v"] = k, v
        if self.kv_heads != self.heads:
            repeat = self.heads // self.kv_heads
            k = k.repeat_interleave(repeat, dim=1)
            v = v.repeat_interleave(repeat, dim=1)
        if causal and k.shape[2] != t:
            # Several new tokens after a cached prefix: each sees the prefix and earlier new tokens.
            past = k.shape[2] - t
            mask = torch.ones(t, k.shape[2], dtype=torch.bool, device=x.device).tril(past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.o(y.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, hp: LlamaHParams) -> None:
        super().__init__()
        self.gate = nn.Linear(hp.dim, hp.ffn, bias=False)
        self.up = nn.Linear(hp.dim, hp.ffn, bias=False)
        self.down = nn.Linear(hp.ffn, hp.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, hp: LlamaHParams) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(hp.dim, hp.norm_eps)
        self.attn = Attention(hp)
        self.ffn_norm = RMSNorm(hp.dim, hp.norm_eps)
        self.mlp = MLP(hp)

    def forward(self, x, cos, sin, cache=None):
        x = x + self.attn(self.attn_norm(x), cos, sin, cache)
        return x + self.mlp(self.ffn_norm(x))


class Llama(nn.Module):
    def __init__(self, hp: LlamaHParams) -> None:
        super().__init__()
        if hp.dim % hp.heads or hp.heads % hp.kv_heads or hp.head_dim % 2:
            raise ValueError("dim must split into heads of even size, and kv_heads must divide heads")
        self.hp = hp
        self.embed = nn.Embedding(hp.vocab_size, hp.dim)
        self.blocks = nn.ModuleList(Block(hp) for _ in range(hp.layers))
        self.norm = RMSNorm(hp.dim, hp.norm_eps)
        self.output = None if hp.tied else nn.Linear(hp.dim, hp.vocab_size, bias=False)
        cos, sin = rope_tables(hp.head_dim, hp.ctx, hp.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)
        # Scaled init of the residual projections (GPT-2 style) keeps early training stable.
        for block in self.blocks:
            nn.init.normal_(block.attn.o.weight, std=0.02 / math.sqrt(2 * hp.layers))
            nn.init.normal_(block.mlp.down.weight, std=0.02 / math.sqrt(2 * hp.layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, ids: torch.Tensor, caches: list[dict] | None = None, pos: int = 0) -> torch.Tensor:
        t = ids.shape[1]
        cos, sin = self.rope_cos[pos : pos + t], self.rope_sin[pos : pos + t]
        x = self.embed(ids)
        for index, block in enumerate(self.blocks):
            x = block(x, cos, sin, caches[index] if caches is not None else None)
        x = self.norm(x)
        weight = self.embed.weight if self.output is None else self.output.weight
        return x @ weight.t()

    @torch.no_grad()
    def greedy(self, prompt: list[int], eos: int, max_new: int, stop=None) -> list[int]:
        """Greedy answer tokens (without EOS), with a KV cache. `stop(tokens)` ends early when true."""
        device = self.embed.weight.device
        caches: list[dict] = [{} for _ in self.blocks]
        max_new = min(max_new, self.hp.ctx - len(prompt))
        logits = self(torch.tensor([prompt], device=device), caches, 0)
        pos = len(prompt)
        out: list[int] = []
        for _ in range(max_new):
            token = int(logits[0, -1].argmax())
            if token == eos:
                break
            out.append(token)
            if stop is not None and stop(out):
                break
            logits = self(torch.tensor([[token]], device=device), caches, pos)
            pos += 1
        return out

    def gguf_tensors(self) -> dict:
        """float32 numpy arrays named as llama.cpp's `llama` GGUF tensors."""
        def arr(t: torch.Tensor):
            return t.detach().float().cpu().numpy()

        tensors = {"token_embd.weight": arr(self.embed.weight), "output_norm.weight": arr(self.norm.weight)}
        if self.output is not None:
            tensors["output.weight"] = arr(self.output.weight)
        for i, block in enumerate(self.blocks):
            tensors[f"blk.{i}.attn_norm.weight"] = arr(block.attn_norm.weight)
            tensors[f"blk.{i}.attn_q.weight"] = arr(block.attn.q.weight)
            tensors[f"blk.{i}.attn_k.weight"] = arr(block.attn.k.weight)
            tensors[f"blk.{i}.attn_v.weight"] = arr(block.attn.v.weight)
            tensors[f"blk.{i}.attn_output.weight"] = arr(block.attn.o.weight)
            tensors[f"blk.{i}.ffn_norm.weight"] = arr(block.ffn_norm.weight)
            tensors[f"blk.{i}.ffn_gate.weight"] = arr(block.mlp.gate.weight)
            tensors[f"blk.{i}.ffn_up.weight"] = arr(block.mlp.up.weight)
            tensors[f"blk.{i}.ffn_down.weight"] = arr(block.mlp.down.weight)
        return tensors
