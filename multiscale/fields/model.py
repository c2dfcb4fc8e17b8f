"""FieldPerceiver-style crack-field predictor (TorchScript-exportable).

Input tokens describe the specimen (points on its outer boundary and along the crack, with
type and normal channels) plus one global token (kind, nu, a/W, H/W, crack angle).  A small
latent array cross-attends to the tokens, runs a few self-attention layers, and every query
point cross-attends to the latents.  Each query's output is

    field(x) = smooth part (MLP on the query's attention read-out)
             + sum over tips of w(r) * Williams K-field(K*_I, K*_II),

where K* per tip is read from the pooled latents and w(r) = (1 - (r/a)^4)^2 confines the
singular term to the crack's neighbourhood (beyond it the Williams field of one tip would
open a false cut along the other tip's extension).  Queries carry Fourier features and
crack-aware features: r^(3/2) angular functions about each tip and (Z^2 - a^2)^(3/2) of the
complex coordinate Z about the crack, which jump across the crack faces and nowhere else.
No feature has a sqrt(r) singularity, so the smooth part's stress stays bounded at a tip
and the K of the predicted field is the K head's: the interaction integral on the
predicted field recovers it as the integration disc shrinks (docs/fields.md).

Everything here is non-dimensional (see ``inputs``): x* = x/W, u* = u E/(s W), sigma* =
sigma/s, K* = K/(s sqrt W), so the physical fields follow from linearity exactly.
"""

from __future__ import annotations

import math
from typing import Dict

import torch
from torch import nn

from .inputs import GLOBAL_FEATURES, MAX_TIPS, TOKEN_FEATURES

TIP_FEATURES = 5  # per tip: r^(3/2) cos/sin(theta/2, 3 theta/2), r


class _Attention(nn.Module):
    """Multi-head attention of queries (B, L, dim) on keys/values (B, S, kv_dim).

    Written out (one packed key/value projection and ``scaled_dot_product_attention``) rather
    than ``nn.MultiheadAttention``, whose TorchScript graph costs ~40 small ops per call: the
    decoder runs on every query point and the predictor is timed against FE in ``benchmarks/``."""

    def __init__(self, dim: int, heads: int, kv_dim: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        b, n, dim = x.shape
        h = self.heads
        q = self.q(x).view(b, n, h, dim // h).transpose(1, 2)
        k, v = self.kv(kv).view(b, kv.shape[1], 2, h, dim // h).permute(2, 0, 3, 1, 4).unbind(0)
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return self.out(o.transpose(1, 2).reshape(b, n, dim))


class _Block(nn.Module):
    """Pre-norm attention (cross or self) followed by an MLP, both residual."""

    def __init__(self, dim: int, heads: int, kv_dim: int = 0):
        super().__init__()
        kv_dim = kv_dim or dim
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(kv_dim)
        self.attn = _Attention(dim, heads, kv_dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        q = q + self.attn(self.norm_q(q), self.norm_kv(kv))
        return q + self.mlp(self.norm_mlp(q))


def _crack_frame(query: torch.Tensor, tips: torch.Tensor, dirs: torch.Tensor):
    """Polar coordinates (B, Q, T) of queries (B, Q, 2) about tips (B, T, 2) whose crack runs
    along dirs (B, T, 2): r and theta in (-pi, pi], theta = +-pi on the crack faces."""
    d = query.unsqueeze(2) - tips.unsqueeze(1)
    c, s = dirs[..., 0].unsqueeze(1), dirs[..., 1].unsqueeze(1)
    x = d[..., 0] * c + d[..., 1] * s
    y = -d[..., 0] * s + d[..., 1] * c
    r = torch.sqrt(x * x + y * y + 1e-12)
    return r, torch.atan2(y, x)


HALF_ANGLES = (0.5, 1.5, 2.5)   # the Williams fields' angular multiples of theta


def k_field(r: torch.Tensor, c: torch.Tensor, s: torch.Tensor, dirs: torch.Tensor, nu: torch.Tensor,
            k1: torch.Tensor, k2: torch.Tensor):
    """Plane-strain Williams K-fields with E = 1 in the global frame, per tip.

    r, k1, k2: (B, Q, T) (k1, k2 the mode I and II intensities at each query); c, s: (B, Q, T, 3)
    cos and sin of theta times HALF_ANGLES; dirs: (B, T, 2); nu: (B,).  Returns displacements
    (B, Q, T, 2) and stresses (B, Q, T, 3) [xx, yy, xy].  Every term is a multiple of cos or sin
    of theta/2, 3 theta/2 and 5 theta/2 (products of half-angle functions expanded), which keeps
    the graph short; the caller's c, s also feed the query features."""
    kappa = (3.0 - 4.0 * nu).view(-1, 1, 1)
    c1, c3, c5 = c.unbind(-1)
    s1, s3, s5 = s.unbind(-1)
    g = torch.sqrt(r / (2 * math.pi)) * (1.0 + nu.view(-1, 1, 1))   # sqrt(r/2pi) / (2 mu), E = 1
    ux = g * (k1 * ((kappa - 0.5) * c1 - 0.5 * c3) + k2 * ((kappa + 1.5) * s1 + 0.5 * s3))
    uy = g * (k1 * ((kappa + 0.5) * s1 - 0.5 * s3) - k2 * ((kappa - 1.5) * c1 + 0.5 * c3))
    f = 1.0 / torch.sqrt(2 * math.pi * r)
    sx = f * (k1 * (0.75 * c1 + 0.25 * c5) - k2 * (1.75 * s1 + 0.25 * s5))
    sy = f * (k1 * (1.25 * c1 - 0.25 * c5) + k2 * 0.25 * (s5 - s1))
    sxy = f * (k1 * 0.25 * (s5 - s1) + k2 * (0.75 * c1 + 0.25 * c5))
    cd, sd = dirs[..., 0].unsqueeze(1), dirs[..., 1].unsqueeze(1)
    return _rotate_vector(ux, uy, cd, sd), _rotate_tensor(sx, sy, sxy, cd, sd)


def williams(r: torch.Tensor, theta: torch.Tensor, dirs: torch.Tensor, nu: torch.Tensor):
    """Unit K-fields per mode: displacements (B, Q, T, 2, 2) and stresses (B, Q, T, 2, 3);
    axis -2 is the mode (I, II), the last axis the component (see :func:`k_field`)."""
    one, zero = torch.ones_like(r), torch.zeros_like(r)
    ang = theta.unsqueeze(-1) * torch.tensor(HALF_ANGLES, dtype=r.dtype)
    c, s = torch.cos(ang), torch.sin(ang)
    u1, s1 = k_field(r, c, s, dirs, nu, one, zero)
    u2, s2 = k_field(r, c, s, dirs, nu, zero, one)
    return torch.stack([u1, u2], dim=-2), torch.stack([s1, s2], dim=-2)


def _rotate_vector(ux, uy, c, s):
    """Crack-frame vector components to global (c, s: cosine and sine of the crack angle)."""
    return torch.stack([ux * c - uy * s, ux * s + uy * c], dim=-1)


def _rotate_tensor(sx, sy, sxy, c, s):
    """Crack-frame stress components to global [xx, yy, xy]."""
    cc, ss, cs = c * c, s * s, c * s
    return torch.stack([cc * sx + ss * sy - 2 * cs * sxy,
                        ss * sx + cc * sy + 2 * cs * sxy,
                        cs * (sx - sy) + (cc - ss) * sxy], dim=-1)


class FieldPerceiver(nn.Module):
    """forward(tokens (B, N, TOKEN_FEATURES), glob (B, GLOBAL_FEATURES), tips (B, 2, 2),
    dirs (B, 2, 2), tip_mask (B, 2), nu (B,), query (B, Q, 2)) -> {"displacements" (B, Q, 2),
    "stresses" (B, Q, 3) [xx, yy, xy], "k" (B, 2, 2) [tip, mode]}, all non-dimensional.

    ``dim``: width of tokens and latents; ``decoder_dim`` (default ``dim``): width of the
    per-query path, which dominates the cost of a dense field."""

    def __init__(self, dim: int = 64, latents: int = 32, heads: int = 4, layers: int = 2,
                 frequencies: int = 6, decoder_dim: int = 0, decoder_heads: int = 0):
        super().__init__()
        decoder_dim = decoder_dim or dim
        decoder_heads = decoder_heads or heads
        self.config = {"dim": dim, "latents": latents, "heads": heads, "layers": layers,
                       "frequencies": frequencies, "decoder_dim": decoder_dim,
                       "decoder_heads": decoder_heads}
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(frequencies, dtype=torch.float32))
        self.register_buffer("half_angles", torch.tensor(HALF_ANGLES))
        fourier = 2 + 4 * frequencies
        self.token_in = nn.Linear(TOKEN_FEATURES + fourier, dim)
        self.glob_in = nn.Sequential(nn.Linear(GLOBAL_FEATURES, dim), nn.GELU(), nn.Linear(dim, dim))
        self.latents = nn.Parameter(0.02 * torch.randn(latents, dim))
        self.encode = _Block(dim, heads)
        self.process = nn.ModuleList([_Block(dim, heads) for _ in range(layers)])
        query_features = fourier + MAX_TIPS * TIP_FEATURES + 2
        self.query_in = nn.Sequential(nn.Linear(query_features, decoder_dim), nn.GELU(),
                                      nn.Linear(decoder_dim, decoder_dim))
        self.decode = _Block(decoder_dim, decoder_heads, kv_dim=dim)
        # no LayerNorm on the per-query path's output: on 1024 queries it costs more than the
        # two linear layers together
        self.head = nn.Sequential(nn.Linear(decoder_dim, decoder_dim), nn.GELU(), nn.Linear(decoder_dim, 5))
        self.k_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(),
                                    nn.Linear(dim, 2 * MAX_TIPS))
        # per-channel output scales of the smooth part, set from the training data
        self.register_buffer("out_mean", torch.zeros(5))
        self.register_buffer("out_std", torch.ones(5))

    def _fourier(self, xy: torch.Tensor) -> torch.Tensor:
        arg = xy.unsqueeze(-1) * self.freqs
        return torch.cat([xy, torch.sin(arg).flatten(-2), torch.cos(arg).flatten(-2)], dim=-1)

    def forward(self, tokens: torch.Tensor, glob: torch.Tensor, tips: torch.Tensor,
                dirs: torch.Tensor, tip_mask: torch.Tensor, nu: torch.Tensor,
                query: torch.Tensor) -> Dict[str, torch.Tensor]:
        b = tokens.shape[0]
        tok = self.token_in(torch.cat([tokens, self._fourier(tokens[..., :2])], dim=-1))
        tok = torch.cat([tok, self.glob_in(glob).unsqueeze(1)], dim=1)
        lat = self.encode(self.latents.unsqueeze(0).expand(b, -1, -1), tok)
        for block in self.process:
            lat = block(lat, lat)
        k = self.k_head(lat.mean(dim=1)).view(b, -1, 2) * tip_mask.unsqueeze(-1)

        # crack-aware query features; unused tip slots are moved far away with a valid
        # direction so that no gradient (autograd through atan2) becomes 0/0
        unused = (1.0 - tip_mask).unsqueeze(-1)
        tips = tips + 10.0 * unused
        dirs = dirs + unused * torch.tensor([1.0, 0.0], dtype=dirs.dtype, device=dirs.device)
        a = glob[:, 3].view(-1, 1, 1)
        r, theta = _crack_frame(query, tips, dirs)
        # window of the K-field: 1 - 2 (r/a)^4 near the tip, so the windowed field's stress
        # intensity equals K even over a disc of finite radius (a (1 - (r/a)^2)^2 window
        # costs an interaction integral over r < 0.1 a about 2 %)
        w = torch.clamp(1.0 - (r / a) ** 4, min=0.0) ** 2 * tip_mask.unsqueeze(1)
        # The smooth part sees no sqrt(r) function of a tip: its stresses stay bounded there,
        # so the field's stress intensity is exactly the K head's (the Williams term below).
        # r^(3/2) angular functions carry the crack-face jumps beyond the K-field.
        ang = theta.unsqueeze(-1) * self.half_angles
        cos, sin = torch.cos(ang), torch.sin(ang)       # shared with the K-field below
        r32 = (r * torch.sqrt(r)).unsqueeze(-1)
        tip_feats = torch.cat([r32 * cos[..., :2], r32 * sin[..., :2], r.unsqueeze(-1)], dim=-1)
        tip_feats = tip_feats * w.unsqueeze(-1)
        # (Z^2 - a^2)^(3/2), Z in the crack frame about the crack centre (sent: its mouth),
        # principal branches: discontinuous on the crack only, r^(3/2) at both crack ends
        centre = tips[:, 0] - a.view(-1, 1) * dirs[:, 0]
        d = query - centre.unsqueeze(1)
        c, s = dirs[:, 0, 0].unsqueeze(1), dirs[:, 0, 1].unsqueeze(1)
        zx, zy = d[..., 0] * c + d[..., 1] * s, -d[..., 0] * s + d[..., 1] * c
        r1sq, t1 = (zx - a[:, 0]) ** 2 + zy ** 2 + 1e-12, torch.atan2(zy, zx - a[:, 0])
        r2sq, t2 = (zx + a[:, 0]) ** 2 + zy ** 2 + 1e-12, torch.atan2(zy, zx + a[:, 0])
        mod, arg = (r1sq * r2sq) ** 0.75, 1.5 * (t1 + t2)
        west = torch.stack([mod * torch.cos(arg), mod * torch.sin(arg)], dim=-1)
        feats = torch.cat([self._fourier(query), tip_feats.flatten(-2), west], dim=-1)
        out = self.head(self.decode(self.query_in(feats), lat)) * self.out_std + self.out_mean

        kw = k.unsqueeze(1) * w.unsqueeze(-1)   # (B, Q, T, mode)
        ub, sb = k_field(r, cos, sin, dirs, nu, kw[..., 0], kw[..., 1])
        u = out[..., :2] + ub.sum(dim=2)
        sig = out[..., 2:] + sb.sum(dim=2)
        return {"displacements": u, "stresses": sig, "k": k}
