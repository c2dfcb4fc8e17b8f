"""Attention blocks of the crack-field predictor, written out (no ``nn.MultiheadAttention``) so
that the one-head decoder can fold its projections into the keys and values."""

from __future__ import annotations

import math

import torch
from torch import nn


class _Attention(nn.Module):
    """Multi-head attention of queries (B, L, dim) on keys/values (B, S, kv_dim).

    Written out (one packed key/value projection and ``scaled_dot_product_attention``) rather
    than ``nn.MultiheadAttention``, whose TorchScript graph costs ~40 small ops per call.
    ``many_queries`` (the decoder, one query per field point) computes the same attention with
    the heads laid out block-diagonally and the query and output projections folded into the
    keys and values, so each query costs two matrix products and a softmax, with no head
    transposes or copies (the CPU attention kernel and the head reshapes cost more per query
    than the products themselves, benchmarks/field_predictor.py)."""

    def __init__(self, dim: int, heads: int, kv_dim: int, many_queries: bool = False):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.many_queries = many_queries
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        # head of each channel, one-hot (dim, heads): builds the block-diagonal keys/values
        self.register_buffer("head_of", torch.repeat_interleave(torch.eye(heads), dim // heads, dim=0),
                             persistent=False)

    def forward(self, x: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        if self.many_queries:
            return self._folded(x, kv)
        b, n, dim = kv.shape[0], x.shape[1], x.shape[2]
        h = self.heads
        # x may be one set of queries (1, n, dim) for the whole batch (the encoder's latents):
        # its projection is then a constant of a frozen module, expanded over the batch
        q = self.q(x).view(x.shape[0], n, h, dim // h).transpose(1, 2).expand(b, -1, -1, -1)
        k, v = self.kv(kv).view(b, kv.shape[1], 2, h, dim // h).permute(2, 0, 3, 1, 4).unbind(0)
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return self.out(o.transpose(1, 2).reshape(b, n, dim))

    def _folded(self, x: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        b, n, dim = x.shape
        h, s = self.heads, kv.shape[1]
        k, v = self.kv(kv).chunk(2, dim=-1)                                  # (B, S, dim)
        if h > 1:   # block-diagonal heads: row j S + i holds key/value i on head j's channels only
            mask = self.head_of.t().reshape(1, h, 1, dim)
            k = (k.unsqueeze(1) * mask).reshape(b, h * s, dim)
            v = (v.unsqueeze(1) * mask).reshape(b, h * s, dim)
        scale = 1.0 / math.sqrt(dim // h)
        # scores = (x Wq^T + bq) k^T = x (k Wq)^T + k bq: the projections act on the S keys only
        a = torch.matmul(k, self.q.weight) * scale                            # (B, h S, dim)
        c = (torch.matmul(k, self.q.bias) * scale).unsqueeze(1)                # (B, 1, h S)
        p = torch.softmax(torch.baddbmm(c, x, a.transpose(1, 2)).view(b, n, h, s), dim=-1).view(b, n, h * s)
        return torch.baddbmm(self.out.bias.view(1, 1, dim), p, torch.matmul(v, self.out.weight.t()))


ACTIVATIONS = {"gelu": nn.GELU, "silu": nn.SiLU}


def _activation(name: str) -> nn.Module:
    """GELU or SiLU (both smooth: the strains of the field come from autograd).  SiLU costs a
    third of GELU per call on small tensors on CPU (~5 vs ~17 us)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is not one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class _Block(nn.Module):
    """Pre-norm attention (cross or self) followed by an MLP, both residual."""

    def __init__(self, dim: int, heads: int, kv_dim: int = 0, many_queries: bool = False,
                 activation: str = "gelu"):
        super().__init__()
        kv_dim = kv_dim or dim
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(kv_dim)
        self.attn = _Attention(dim, heads, kv_dim, many_queries)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), _activation(activation), nn.Linear(2 * dim, dim))

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        q = q + self.attn(self.norm_q(q), self.norm_kv(kv))
        return q + self.mlp(self.norm_mlp(q))


class _Read(nn.Module):
    """The lean decoder: each query reads the latents by cross-attention, residual; no norm or
    MLP on the per-query path (the output head is the MLP)."""

    def __init__(self, dim: int, heads: int, kv_dim: int):
        super().__init__()
        self.norm_kv = nn.LayerNorm(kv_dim)
        self.attn = _Attention(dim, heads, kv_dim, many_queries=True)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        return q + self.attn(q, self.norm_kv(kv))
