"""FieldPerceiver-style crack-field predictor (TorchScript-exportable).

Input tokens describe the specimen (points on its outer boundary and along the crack, with
type and normal channels) plus one global token (kind, nu, a/W, H/W, crack angle).  A small
latent array cross-attends to the tokens (then, optionally, self-attention layers), and every
query point cross-attends to the latents.  Each query's output is

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

from .attention import _activation, _Block, _Read
from .inputs import GLOBAL_FEATURES, MAX_TIPS, TOKEN_FEATURES
from .williams import HALF_ANGLES, _k_constants, _polar, k_basis, k_matrix

TIP_FEATURES = 5  # per tip: r^(3/2) cos/sin(theta/2, 3 theta/2), r


class FieldPerceiver(nn.Module):
    """forward(tokens (B, N, TOKEN_FEATURES), glob (B, GLOBAL_FEATURES), tips (B, 2, 2),
    dirs (B, 2, 2), tip_mask (B, 2), nu (B,), query (B, Q, 2)) -> {"displacements" (B, Q, 2),
    "stresses" (B, Q, 3) [xx, yy, xy], "k" (B, 2, 2) [tip, mode]}, all non-dimensional.

    ``dim``: width of tokens and latents; ``decoder_dim`` (default ``dim``): width of the
    per-query path, which dominates the cost of a dense field."""

    def __init__(self, dim: int = 64, latents: int = 32, heads: int = 4, layers: int = 2,
                 frequencies: int = 6, decoder_dim: int = 0, decoder_heads: int = 0,
                 decoder_block: int = 1, activation: str = "gelu"):
        super().__init__()
        decoder_dim = decoder_dim or dim
        decoder_heads = decoder_heads or heads
        self.config = {"dim": dim, "latents": latents, "heads": heads, "layers": layers,
                       "frequencies": frequencies, "decoder_dim": decoder_dim,
                       "decoder_heads": decoder_heads, "decoder_block": decoder_block, "activation": activation}
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(frequencies, dtype=torch.float32))
        self.register_buffer("half_angles", torch.tensor(HALF_ANGLES))
        # constants of the K-field (k_matrix); not in the state dict, rebuilt here
        self.register_buffer("k_const", _k_constants().float(), persistent=False)
        self.register_buffer("spare_dir", torch.tensor([1.0, 0.0]), persistent=False)
        fourier = 2 + 4 * frequencies
        self.token_in = nn.Linear(TOKEN_FEATURES + fourier, dim)
        self.glob_in = nn.Sequential(nn.Linear(GLOBAL_FEATURES, dim), _activation(activation), nn.Linear(dim, dim))
        self.latents = nn.Parameter(0.02 * torch.randn(latents, dim))
        self.encode = _Block(dim, heads, activation=activation)
        self.process = nn.ModuleList([_Block(dim, heads, activation=activation) for _ in range(layers)])
        query_features = fourier + MAX_TIPS * TIP_FEATURES + 2
        self.query_in = nn.Sequential(nn.Linear(query_features, decoder_dim), _activation(activation),
                                      nn.Linear(decoder_dim, decoder_dim))
        self.decode = (_Block(decoder_dim, decoder_heads, kv_dim=dim, many_queries=True, activation=activation)
                       if decoder_block
                       else _Read(decoder_dim, decoder_heads, kv_dim=dim))
        # no LayerNorm on the per-query path's output: on 1024 queries it costs more than the
        # two linear layers together
        self.head = nn.Sequential(nn.Linear(decoder_dim, decoder_dim), _activation(activation),
                                  nn.Linear(decoder_dim, 5))
        self.k_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), _activation(activation),
                                    nn.Linear(dim, 2 * MAX_TIPS))
        # per-channel output scales of the smooth part, set from the training data
        self.register_buffer("out_mean", torch.zeros(5))
        self.register_buffer("out_std", torch.ones(5))

    @torch.jit.unused
    def load_weights(self, module: nn.Module) -> "FieldPerceiver":
        """Copy the weights of another FieldPerceiver of this architecture, e.g. a loaded
        TorchScript file's module (whose state dict also carries the constant buffers that
        this class rebuilds; those are skipped).  Returns self."""
        theirs, own = module.state_dict(), self.state_dict()
        missing = [key for key in own if key not in theirs]
        if missing:
            raise ValueError(f"weights lack {missing[:4]}: not a FieldPerceiver of this architecture")
        self.load_state_dict({key: theirs[key] for key in own})
        return self

    def _fourier(self, xy: torch.Tensor) -> torch.Tensor:
        """[x, y, sin(2^n pi x), sin(2^n pi y), cos(...)] (..., 2 + 4 F) of points (..., 2)."""
        arg = xy.unsqueeze(-1) * self.freqs
        return torch.cat([xy, torch.sin(arg).flatten(-2), torch.cos(arg).flatten(-2)], dim=-1)

    def _fourier_rows(self, qt: torch.Tensor) -> torch.Tensor:
        """The same features with the point index last: (B, 2 + 4 F, Q) of points qt (B, 2, Q)."""
        arg = qt.unsqueeze(2) * self.freqs.view(1, 1, -1, 1)                  # (B, 2, F, Q)
        b, q = qt.shape[0], qt.shape[2]
        return torch.cat([qt, torch.sin(arg).reshape(b, -1, q), torch.cos(arg).reshape(b, -1, q)], dim=1)

    def forward(self, tokens: torch.Tensor, glob: torch.Tensor, tips: torch.Tensor,
                dirs: torch.Tensor, tip_mask: torch.Tensor, nu: torch.Tensor,
                query: torch.Tensor) -> Dict[str, torch.Tensor]:
        b = tokens.shape[0]
        tok = self.token_in(torch.cat([tokens, self._fourier(tokens[..., :2])], dim=-1))
        tok = torch.cat([tok, self.glob_in(glob).unsqueeze(1)], dim=1)
        lat = self.encode(self.latents.unsqueeze(0), tok)    # (B, L, dim)
        for block in self.process:
            lat = block(lat, lat)
        k = self.k_head(lat.sum(dim=1) * (1.0 / lat.shape[1])).view(b, -1, 2) * tip_mask.unsqueeze(-1)

        # crack-aware query features; unused tip slots are moved far away with a valid
        # direction so that no gradient (autograd through atan2) becomes 0/0
        used = tip_mask.unsqueeze(-1) > 0.5
        tips = torch.where(used, tips, 10.0)
        dirs = torch.where(used, dirs, self.spare_dir)
        a = glob[:, 3].view(-1, 1, 1)
        # polar coordinates about the tips and about the crack's far end (the crack of
        # half length a about its centre; for "sent" the centre is the mouth), one pass
        far = tips[:, :1] - 2.0 * a * dirs[:, :1]
        qt = query.transpose(1, 2)                                              # (B, 2, Q)
        rsq, r, theta = _polar(qt[:, 0:1], qt[:, 1:2], torch.cat([tips, far], dim=1),
                               torch.cat([dirs, dirs[:, :1]], dim=1))            # (B, T + 1, Q)
        nt, nq = tips.shape[1], query.shape[1]
        r_t, theta_t = r[:, :nt], theta[:, :nt]
        # window of the K-field: 1 - 2 (r/a)^4 near the tip, so the windowed field's stress
        # intensity equals K even over a disc of finite radius (a (1 - (r/a)^2)^2 window
        # costs an interaction integral over r < 0.1 a about 2 %)
        w = torch.clamp(1.0 - (r_t / a) ** 4, min=0.0) ** 2 * tip_mask.unsqueeze(-1)
        basis = k_basis(r_t, theta_t, self.half_angles, w)                     # (B, T * BASIS, Q)
        # The smooth part sees no sqrt(r) function of a tip: its stresses stay bounded there,
        # so the field's stress intensity is exactly the K head's (the Williams term below).
        # w r^(3/2) cos, sin (theta/2, 3 theta/2) carry the crack-face jumps beyond the K-field.
        u_part = basis.view(b, nt, 2, 2, 3, nq)[:, :, 0, :, :2]                # (B, T, 2, 2, Q)
        tip_feats = torch.cat([(u_part * r_t.view(b, nt, 1, 1, nq)).reshape(b, nt, 4, nq),
                               (r_t * w).unsqueeze(2)], dim=2).reshape(b, -1, nq)
        # (Z^2 - a^2)^(3/2), Z in the crack frame about the crack centre, principal branches:
        # discontinuous on the crack only, r^(3/2) at both crack ends
        mod = (rsq[:, 0] * rsq[:, nt]) ** 0.75
        arg = 1.5 * (theta[:, 0] + theta[:, nt])
        west = torch.stack([mod * torch.cos(arg), mod * torch.sin(arg)], dim=1)  # (B, 2, Q)
        feats = torch.cat([self._fourier_rows(qt), tip_feats, west], dim=1)     # (B, features, Q)
        hidden = self.decode(self.query_in(feats.transpose(1, 2)), lat)
        last = self.head[2]   # the output scales enter its weights (constants once frozen)
        out = torch.nn.functional.linear(self.head[1](self.head[0](hidden)), last.weight * self.out_std.unsqueeze(1),
                                         last.bias * self.out_std + self.out_mean)
        # windowed Williams fields of every tip: one product of the basis with K's matrix
        kmat = k_matrix(k, nu, dirs, self.k_const).reshape(b, -1, 5)
        out = torch.baddbmm(out, basis.transpose(1, 2), kmat)
        u, sig = out[..., :2], out[..., 2:]
        return {"displacements": u, "stresses": sig, "k": k}
