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

from .inputs import GLOBAL_FEATURES, MAX_TIPS, TOKEN_FEATURES

TIP_FEATURES = 5  # per tip: r^(3/2) cos/sin(theta/2, 3 theta/2), r


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


# The per-query features are computed with the query index last, (B, P, Q) and (B, C, Q):
# every elementwise step then runs over contiguous rows (a trailing axis of 2 or 3 sends
# PyTorch's CPU kernels down their slow strided paths; this layout halved the feature cost).

def _polar(qx: torch.Tensor, qy: torch.Tensor, points: torch.Tensor, dirs: torch.Tensor):
    """Squared distance, distance and angle (each (B, P, Q)) of query points (qx, qy: (B, 1, Q))
    in the frames of points (B, P, 2) whose x axis is the unit vector dirs (B, P, 2): theta in
    (-pi, pi], +-pi on the crack faces behind a tip."""
    dx, dy = qx - points[..., 0:1], qy - points[..., 1:2]
    c, s = dirs[..., 0:1], dirs[..., 1:2]
    x = dx * c + dy * s
    y = dy * c - dx * s
    rsq = x * x + y * y + 1e-12
    return rsq, torch.sqrt(rsq), torch.atan2(y, x)


def _crack_frame(query: torch.Tensor, tips: torch.Tensor, dirs: torch.Tensor):
    """Polar coordinates r, theta (B, Q, T) of queries (B, Q, 2) about tips (B, T, 2) whose crack
    runs along dirs (B, T, 2)."""
    qt = query.transpose(1, 2)
    _, r, theta = _polar(qt[:, 0:1], qt[:, 1:2], tips, dirs)
    return r.transpose(1, 2), theta.transpose(1, 2)


HALF_ANGLES = (0.5, 1.5, 2.5)   # the Williams fields' angular multiples of theta
BASIS = 12   # per tip: sqrt(r) and 1/sqrt(r) times cos, sin of HALF_ANGLES * theta


def _williams_coefficients() -> torch.Tensor:
    """(2 modes, 3 powers of nu, BASIS, 5) coefficients of the plane-strain Williams fields with
    E = 1 in the crack frame: output [ux, uy, sxx, syy, sxy] = sum over basis functions
    [sqrt(r) (c1, c3, c5, s1, s3, s5), (c1, c3, c5, s1, s3, s5) / sqrt(r)] (cn, sn = cos, sin of
    n theta / 2) times K_mode nu^p times these.  Displacements carry (1 + nu)(a + b kappa) /
    sqrt(2 pi), kappa = 3 - 4 nu, i.e. ((a + 3b) + (a - b) nu - 4b nu^2) / sqrt(2 pi)."""
    c = torch.zeros(2, 3, BASIS, 5, dtype=torch.float64)
    C1, C3, C5, S1, S3, S5 = range(6)
    # displacement terms (mode, basis, component, a, b): coefficient a + b kappa
    for mode, basis, comp, a, b in ((0, C1, 0, -0.5, 1.0), (0, C3, 0, -0.5, 0.0), (0, S1, 1, 0.5, 1.0),
                                    (0, S3, 1, -0.5, 0.0), (1, S1, 0, 1.5, 1.0), (1, S3, 0, 0.5, 0.0),
                                    (1, C1, 1, 1.5, -1.0), (1, C3, 1, -0.5, 0.0)):
        c[mode, :, basis, comp] = torch.tensor([a + 3 * b, a - b, -4 * b]) / math.sqrt(2 * math.pi)
    # stress terms (mode, basis, component, value), basis functions / sqrt(r)
    for mode, basis, comp, v in ((0, C1, 2, 0.75), (0, C1, 3, 1.25), (0, C5, 2, 0.25), (0, C5, 3, -0.25),
                                 (0, S1, 4, -0.25), (0, S5, 4, 0.25), (1, S1, 2, -1.75), (1, S1, 3, -0.25),
                                 (1, S5, 2, -0.25), (1, S5, 3, 0.25), (1, C1, 4, 0.75), (1, C5, 4, 0.25)):
        c[mode, 0, 6 + basis, comp] = v / math.sqrt(2 * math.pi)
    return c


def _rotation_coefficients() -> torch.Tensor:
    """(5, 5, 5): crack-frame outputs [ux, uy, sxx, syy, sxy] to the global frame, as a sum over
    v = [c, s, c^2, s^2, c s] (c, s: cosine and sine of the crack angle) of v_p times [p]; the
    matrix maps row = crack-frame component to column = global component."""
    rot = torch.zeros(5, 5, 5, dtype=torch.float64)
    C, S, CC, SS, CS = range(5)
    for p, row, col, v in ((C, 0, 0, 1.0), (S, 1, 0, -1.0), (S, 0, 1, 1.0), (C, 1, 1, 1.0),
                           (CC, 2, 2, 1.0), (SS, 3, 2, 1.0), (CS, 4, 2, -2.0),
                           (SS, 2, 3, 1.0), (CC, 3, 3, 1.0), (CS, 4, 3, 2.0),
                           (CS, 2, 4, 1.0), (CS, 3, 4, -1.0), (CC, 4, 4, 1.0), (SS, 4, 4, -1.0)):
        rot[p, row, col] = v
    return rot


def k_basis(r: torch.Tensor, theta: torch.Tensor, half_angles: torch.Tensor, w: torch.Tensor):
    """Basis functions of the Williams fields per tip, times the window w: (B, T * BASIS, Q),
    per tip [w sqrt(r) (c1, c3, c5, s1, s3, s5), w (c1, ..., s5) / sqrt(r)] with cn, sn = cos,
    sin of n theta / 2; r, theta, w (B, T, Q)."""
    b, t, q = r.shape[0], r.shape[1], r.shape[2]
    ang = theta.unsqueeze(2) * half_angles.view(1, 1, -1, 1)               # (B, T, 3, Q)
    trig = torch.stack([torch.cos(ang), torch.sin(ang)], dim=2)            # (B, T, 2, 3, Q)
    rho = torch.sqrt(r)
    scale = torch.stack([w * rho, w / rho], dim=2)                         # (B, T, 2, Q)
    return (trig.unsqueeze(2) * scale.view(b, t, 2, 1, 1, q)).reshape(b, t * 12, q)


def k_matrix(k: torch.Tensor, nu: torch.Tensor, dirs: torch.Tensor, coef_rot: torch.Tensor) -> torch.Tensor:
    """(B, T, BASIS, 5): basis functions to global [ux, uy, sxx, syy, sxy] (E = 1) for stress
    intensities k (B, T, 2) [mode I, II], Poisson's ratios nu (B,) and crack directions dirs
    (B, T, 2).  The matrix is bilinear in K nu^p and in v = [c, s, c^2, s^2, c s] of the crack
    angle, so it is one product of their outer product (B, T, 30) with ``coef_rot`` (30, BASIS
    * 5, from :func:`_k_constants`).  Writing the K-field as basis @ matrix keeps the per-query
    work to one batched product."""
    b, t = k.shape[0], k.shape[1]
    powers = torch.stack([torch.ones_like(nu), nu, nu * nu], dim=-1)     # (B, 3)
    c, s = dirs[..., 0], dirs[..., 1]
    v = torch.stack([c, s, c * c, s * s, c * s], dim=-1)                 # (B, T, 5)
    outer = (k.unsqueeze(-1) * powers.view(b, 1, 1, 3)).unsqueeze(-1) * v.view(b, t, 1, 1, 5)
    return torch.matmul(outer.reshape(b, t, 30), coef_rot).view(b, t, -1, 5)


def _k_constants() -> torch.Tensor:
    """(30, BASIS * 5): [mode, power of nu, rotation term] -> the Williams coefficients
    (crack frame) times the rotation to the global frame."""
    local, rot = _williams_coefficients(), _rotation_coefficients()     # (2, 3, BASIS, 5), (5, 5, 5)
    return torch.einsum("mpio,qoj->mpqij", local, rot).reshape(30, BASIS * 5)


def williams(r: torch.Tensor, theta: torch.Tensor, dirs: torch.Tensor, nu: torch.Tensor):
    """Unit K-fields per mode (E = 1, plane strain, global frame): displacements (B, Q, T, 2, 2)
    and stresses (B, Q, T, 2, 3) [xx, yy, xy]; axis -2 is the mode (I, II).  r, theta (B, Q, T)
    about tips whose cracks run along dirs (B, T, 2); nu (B,).  The network's own K-field path
    (k_basis, k_matrix), for tests against an independent solution."""
    half = torch.tensor(HALF_ANGLES, dtype=r.dtype)
    rt = r.transpose(1, 2)
    basis = k_basis(rt, theta.transpose(1, 2), half, torch.ones_like(rt))
    basis = basis.view(r.shape[0], r.shape[2], BASIS, r.shape[1])
    const = _k_constants().to(r.dtype)
    out = []
    for mode in range(2):
        k = torch.zeros(r.shape[0], r.shape[2], 2, dtype=r.dtype)
        k[..., mode] = 1.0
        out.append(torch.einsum("btiq,btio->bqto", basis, k_matrix(k, nu, dirs, const)))
    f = torch.stack(out, dim=-2)
    return f[..., :2], f[..., 2:]


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
