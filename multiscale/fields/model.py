"""FieldPerceiver-style crack-field predictor (TorchScript-exportable).

Input tokens describe the specimen (points on its outer boundary and along the crack, with
type and normal channels) plus one global token (kind, nu, a/W, H/W, crack angle).  A small
latent array cross-attends to the tokens, runs a few self-attention layers, and every query
point cross-attends to the latents.  Each query's output is

    field(x) = smooth part (MLP on the query's attention read-out)
             + sum over tips of w(r) * Williams K-field(K*_I, K*_II),

where K* per tip is read from the pooled latents and w(r) = (1 - (r/a)^2)^2 confines the
singular term to the crack's neighbourhood (beyond it the Williams field of one tip would
open a false cut along the other tip's extension).  Queries carry Fourier features and
crack-aware features: sqrt(r) angular functions about each tip and the Westergaard function
sqrt(Z^2 - a^2), which jumps across the crack faces and nowhere else.

Everything here is non-dimensional (see ``inputs``): x* = x/W, u* = u E/(s W), sigma* =
sigma/s, K* = K/(s sqrt W), so the physical fields follow from linearity exactly.
"""

from __future__ import annotations

import math
from typing import Dict

import torch
from torch import nn

from .inputs import GLOBAL_FEATURES, MAX_TIPS, TOKEN_FEATURES


class _Block(nn.Module):
    """Pre-norm attention (cross or self) followed by an MLP, both residual."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        k = self.norm_kv(kv)
        q = q + self.attn(self.norm_q(q), k, k, need_weights=False)[0]
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


def williams(r: torch.Tensor, theta: torch.Tensor, dirs: torch.Tensor, nu: torch.Tensor):
    """Plane-strain K-fields per unit K* with E = 1, in the global frame.

    r, theta: (B, Q, T); dirs: (B, T, 2); nu: (B,).  Returns displacements (B, Q, T, 2, 2) and
    stresses (B, Q, T, 2, 3); axis -2 is the mode (I, II), the last axis the component."""
    nu = nu.view(-1, 1, 1)
    mu = 1.0 / (2.0 * (1.0 + nu))
    kappa = 3.0 - 4.0 * nu
    ch, sh = torch.cos(theta / 2), torch.sin(theta / 2)
    c3, s3 = torch.cos(1.5 * theta), torch.sin(1.5 * theta)
    g = torch.sqrt(r / (2 * math.pi)) / (2 * mu)
    ux1, uy1 = g * ch * (kappa - 1 + 2 * sh * sh), g * sh * (kappa + 1 - 2 * ch * ch)
    ux2, uy2 = g * sh * (kappa + 1 + 2 * ch * ch), -g * ch * (kappa - 1 - 2 * sh * sh)
    f = 1.0 / torch.sqrt(2 * math.pi * r)
    sx1, sy1, sxy1 = f * ch * (1 - sh * s3), f * ch * (1 + sh * s3), f * sh * ch * c3
    sx2, sy2, sxy2 = -f * sh * (2 + ch * c3), f * sh * ch * c3, f * ch * (1 - sh * s3)
    c, s = dirs[..., 0].unsqueeze(1), dirs[..., 1].unsqueeze(1)
    u = torch.stack([_rotate_vector(ux1, uy1, c, s), _rotate_vector(ux2, uy2, c, s)], dim=-2)
    sig = torch.stack([_rotate_tensor(sx1, sy1, sxy1, c, s), _rotate_tensor(sx2, sy2, sxy2, c, s)], dim=-2)
    return u, sig


def _rotate_vector(ux, uy, c, s):
    """Crack-frame vector components to global (c, s: cosine and sine of the crack angle)."""
    return torch.stack([ux * c - uy * s, ux * s + uy * c], dim=-1)


def _rotate_tensor(sx, sy, sxy, c, s):
    """Crack-frame stress components to global [xx, yy, xy]."""
    return torch.stack([c * c * sx + s * s * sy - 2 * c * s * sxy,
                        s * s * sx + c * c * sy + 2 * c * s * sxy,
                        c * s * (sx - sy) + (c * c - s * s) * sxy], dim=-1)


class FieldPerceiver(nn.Module):
    """forward(tokens (B, N, TOKEN_FEATURES), glob (B, GLOBAL_FEATURES), tips (B, 2, 2),
    dirs (B, 2, 2), tip_mask (B, 2), nu (B,), query (B, Q, 2)) -> {"displacements" (B, Q, 2),
    "stresses" (B, Q, 3) [xx, yy, xy], "k" (B, 2, 2) [tip, mode]}, all non-dimensional."""

    def __init__(self, dim: int = 64, latents: int = 32, heads: int = 4, layers: int = 2,
                 frequencies: int = 6):
        super().__init__()
        self.config = {"dim": dim, "latents": latents, "heads": heads, "layers": layers,
                       "frequencies": frequencies}
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(frequencies, dtype=torch.float32))
        fourier = 2 + 4 * frequencies
        self.token_in = nn.Linear(TOKEN_FEATURES + fourier, dim)
        self.glob_in = nn.Sequential(nn.Linear(GLOBAL_FEATURES, dim), nn.GELU(), nn.Linear(dim, dim))
        self.latents = nn.Parameter(0.02 * torch.randn(latents, dim))
        self.encode = _Block(dim, heads)
        self.process = nn.ModuleList([_Block(dim, heads) for _ in range(layers)])
        query_features = fourier + MAX_TIPS * 9 + 4
        self.query_in = nn.Sequential(nn.Linear(query_features, dim), nn.GELU(), nn.Linear(dim, dim))
        self.decode = _Block(dim, heads)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 5))
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
        w = torch.clamp(1.0 - (r / a) ** 2, min=0.0) ** 2 * tip_mask.unsqueeze(1)
        sr = torch.sqrt(r)
        tip_feats = torch.stack([sr * torch.cos(theta / 2), sr * torch.sin(theta / 2),
                                 sr * torch.cos(1.5 * theta), sr * torch.sin(1.5 * theta),
                                 r * sr * torch.cos(theta / 2), r * sr * torch.sin(theta / 2),
                                 r * sr * torch.cos(1.5 * theta), r * sr * torch.sin(1.5 * theta),
                                 r], dim=-1) * w.unsqueeze(-1)
        # Westergaard function sqrt(Z - a) sqrt(Z + a), Z in the crack frame about the crack
        # centre (sent: its mouth), principal branches: discontinuous on the crack only
        centre = tips[:, 0] - a.view(-1, 1) * dirs[:, 0]
        d = query - centre.unsqueeze(1)
        c, s = dirs[:, 0, 0].unsqueeze(1), dirs[:, 0, 1].unsqueeze(1)
        zx, zy = d[..., 0] * c + d[..., 1] * s, -d[..., 0] * s + d[..., 1] * c
        r1, t1 = torch.sqrt((zx - a[:, 0]) ** 2 + zy ** 2 + 1e-12), torch.atan2(zy, zx - a[:, 0])
        r2, t2 = torch.sqrt((zx + a[:, 0]) ** 2 + zy ** 2 + 1e-12), torch.atan2(zy, zx + a[:, 0])
        mod, arg = torch.sqrt(r1 * r2), 0.5 * (t1 + t2)
        west = torch.stack([mod * torch.cos(arg), mod * torch.sin(arg),
                            mod * r1 * torch.cos(arg + t1), mod * r1 * torch.sin(arg + t1)], dim=-1)
        feats = torch.cat([self._fourier(query), tip_feats.flatten(-2), west], dim=-1)
        out = self.head(self.decode(self.query_in(feats), lat)) * self.out_std + self.out_mean

        ub, sb = williams(r, theta, dirs, nu)  # (B, Q, T, mode, comp)
        kw = k.unsqueeze(1) * w.unsqueeze(-1)   # (B, Q, T, mode)
        u = out[..., :2] + (ub * kw.unsqueeze(-1)).sum(dim=(2, 3))
        sig = out[..., 2:] + (sb * kw.unsqueeze(-1)).sum(dim=(2, 3))
        return {"displacements": u, "stresses": sig, "k": k}
