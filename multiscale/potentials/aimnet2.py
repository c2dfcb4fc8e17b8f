"""An AIMNet2-class potential (Anstine, Zubatyuk, Isayev, Chem. Sci. 16, 10228 (2025)) under
contract version 2: total charge Q and spin multiplicity M as inputs, charges that sum
exactly to Q over the whole system on any number of ranks.

Atoms start from a learned embedding of their element, (nfeature, nshifts) numbers with
``d2features``.  Each pass convolves the neighbours' features and charges with radial
Gaussians and their direction vectors (AIMNet2's ConvSV: scalar sums, and squared norms of
learned combinations of the vector sums), an MLP updates features, charges and weights, and
the charges of each channel (alpha, beta: Q_a,b = (Q +/- (M - 1)) / 2, AIMNet-NSE) are
redistributed to their exact totals:

    q_i = q~_i + (f_i + eps / N) lambda - f_i phi_i,
    lambda = (Q_ch - sum q~ + sum f phi) / (sum f + eps),   f_i = f~_i^2

(aimnet uses q~ + f (Q - sum q~) / (sum f + eps), which misses Q by eps / (sum f + eps); the
eps / N term makes the sum exact).  phi_i (V) is an external electrostatic potential at the
atom -- MM point charges of an electrostatic embedding, an applied field -- 0 otherwise: the
charges respond to it with softness f_i (e/V; the minimum of sum (q - q~)^2 / 2f + sum q phi
at fixed Q), and each atom's energy gains q_i phi_i.  The sums over the system are the
model's reductions (one stage per charge update, and per group of atoms: molecules in
LAMMPS, structures in training; multiscale.model.reductions.GroupReduced).  The last pass gives the atoms' embeddings ("aim"), an MLP and
a per-element shift their energies.  A Coulomb term on the final charges, with the part
inside aimnet's exponential envelope f_exp of radius ``coulomb_sr`` removed (the short range
is the network's): ``coulomb = "simple"`` adds k q_i q_j (1 - f_exp(r)) / (2 r) per edge, plain
Coulomb over every pair closer than the model's ``cutoff`` (all pairs of a cluster smaller
than it, as aimnet's "simple"); ``"dsf"`` the damped shifted force form (Fennell and
Gezelter, J. Chem. Phys. 124, 234104 (2006); aimnet's "dsf") with damping ``dsf_alpha`` 1/Å
and cutoff ``dsf_rc`` Å, energy and force smooth to zero there, for periodic and large
systems, including its self term; ``"none"`` none.
Energies eV, lengths Å, charges e.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..model.contract import ModelMetadata
from ..model.reductions import GroupReduced
from ..units import COULOMB_EV_A

CITATION = ("D. M. Anstine, R. Zubatyuk and O. Isayev, AIMNet2: a neural network potential to meet "
            "your neutral, charged, organic, and elemental-organic needs, Chem. Sci. 16, 10228 (2025)")
EPSILON = 1e-6   # aimnet's guard on the sum of weights, e


def _mlp(n_in: int, hidden: Sequence[int], n_out: int, last_linear: bool) -> torch.nn.Sequential:
    sizes = [n_in, *hidden, n_out]
    layers: List[torch.nn.Module] = []
    for k in range(1, len(sizes)):
        layers.append(torch.nn.Linear(sizes[k - 1], sizes[k]))
        torch.nn.init.xavier_normal_(layers[-1].weight)
        torch.nn.init.zeros_(layers[-1].bias)
        if not (last_linear and k == len(sizes) - 1):
            layers.append(torch.nn.GELU())
    return torch.nn.Sequential(*layers)


class AIMNet2Potential(GroupReduced):
    """elements: symbols; rc_s: feature cutoff Å; nshifts: radial Gaussians from rmin to rc_s;
    nfeature, d2features, ncomb_v, hidden (one list per pass), aim_size, out_hidden: as
    aimnet's AIMNet2; channels: 2 (alpha/beta, open shells) or 1; coulomb_sr: Å, the envelope
    radius of the Coulomb term; cutoff: the edge cutoff, Å (>= rc_s; the Coulomb range);
    charge_terms: learn per-element chi q + J q^2 / 2 on the final charges (not in aimnet)."""

    def __init__(self, elements: Sequence[str], rc_s: float = 5.0, nshifts: int = 16, rmin: float = 0.8,
                 nfeature: int = 16, d2features: bool = True, ncomb_v: int = 12,
                 hidden: Sequence[Sequence[int]] = ((512, 380), (512, 380), (512, 380, 380)),
                 aim_size: int = 256, out_hidden: Sequence[int] = (128, 128), channels: int = 2,
                 coulomb_sr: float = 4.6, cutoff: float = 12.0, coulomb: str = "simple",
                 dsf_alpha: float = 0.2, dsf_rc: float = 15.0, charge_terms: bool = False, seed: int = 0):
        super().__init__()
        from ase.data import atomic_numbers
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 (closed shells) or 2 (alpha and beta), got {channels}")
        if cutoff < rc_s:
            raise ValueError(f"cutoff {cutoff} Å must reach the features' rc_s {rc_s} Å")
        if coulomb not in ("simple", "dsf", "none"):
            raise ValueError(f"coulomb must be 'simple', 'dsf' or 'none', got {coulomb!r}")
        if coulomb == "dsf" and cutoff < dsf_rc:
            raise ValueError(f"cutoff {cutoff} Å must reach the DSF cutoff dsf_rc = {dsf_rc} Å")
        if len(hidden) < 2:
            raise ValueError("hidden needs one layer list per pass, at least two passes")
        torch.manual_seed(seed)
        self.elements: List[str] = list(elements)
        self.register_buffer("numbers", torch.tensor([atomic_numbers[e] for e in self.elements]))
        self.rc_s, self.cutoff, self.coulomb_sr = float(rc_s), float(cutoff), float(coulomb_sr)
        self.nfeature, self.nshifts, self.ncomb_v = int(nfeature), int(nshifts), int(ncomb_v)
        self.d2features, self.channels, self.passes = bool(d2features), int(channels), len(hidden)
        self.register_buffer("shifts", torch.linspace(rmin, rc_s, nshifts + 1)[:nshifts].double())
        self.eta = float((nshifts / (rc_s - rmin)) ** 2)
        width = nfeature * nshifts if d2features else nfeature
        self.embedding = torch.nn.Parameter(torch.randn(len(self.elements), width) * 0.3)
        self.agh_a = torch.nn.Parameter(torch.randn(nfeature, nshifts, ncomb_v) / math.sqrt(nshifts))
        self.agh_q = torch.nn.Parameter(torch.randn(channels, nshifts, ncomb_v) / math.sqrt(nshifts))
        conv_a = nfeature * (nshifts + ncomb_v)
        conv_q = channels * (nshifts + ncomb_v)
        mlps = [_mlp(conv_a + width, hidden[0], width + 2 * channels, last_linear=True)]
        for h in hidden[1:-1]:
            mlps.append(_mlp(conv_a + conv_q + width + channels, h, width + 2 * channels, last_linear=False))
        self.mlps = torch.nn.ModuleList(mlps)          # the passes that update the charges
        self.final = _mlp(conv_a + conv_q + width + channels, hidden[-1], aim_size, last_linear=False)
        self.coulomb = coulomb
        self.dsf_alpha, self.dsf_rc = float(dsf_alpha), float(dsf_rc)
        self.out = _mlp(aim_size, out_hidden, 1, last_linear=True)
        self.shift = torch.nn.Parameter(torch.zeros(len(self.elements)))
        # per-element chi q + hardness q^2 / 2 on the final charges (eV/e, eV/e^2): a charge-
        # equilibration baseline for E(Q); learned with charge_terms, else fixed zeros (aimnet's form)
        self.learns_charge_terms = bool(charge_terms)
        for name in ("chi", "hardness"):
            zeros = torch.zeros(len(self.elements))
            if charge_terms:
                self.register_parameter(name, torch.nn.Parameter(zeros))
            else:
                self.register_buffer(name, zeros)
        # per charge pass: sum q~, sum f, sum f phi (per channel), N
        self.reduction_widths = [3 * channels + 1] * (self.passes - 1)
        self.k_e = float(COULOMB_EV_A)
        self.epsilon = EPSILON

    def metadata(self) -> ModelMetadata:
        dtype = "float64" if self.embedding.dtype == torch.float64 else "float32"
        return ModelMetadata(
            name="aimnet2", elements=tuple(self.elements), cutoff=self.cutoff, hops=self.passes,
            dtype=dtype, citation=CITATION, outputs=("energies", "charges") + (("spin_charges",) if self.channels == 2 else ()),
            uses_charge=True,
            uses_spin=self.channels == 2, reductions=tuple(self.reduction_widths),
            description=f"AIMNet2-class: {self.passes} passes, {self.channels} charge channel(s) "
                        f"normalised to the exact totals, features to {self.rc_s} Å, Coulomb "
                        f"{self.coulomb} to {self.dsf_rc if self.coulomb == 'dsf' else self.cutoff} Å; eV, e")

    def set_self_energies(self, energies: Sequence[float]) -> None:
        """Per-element energy shifts (eV), in the order of ``elements`` (the trainer's
        composition fit)."""
        with torch.no_grad():
            self.shift.copy_(torch.tensor(list(energies), dtype=self.shift.dtype))

    def set_charge_terms(self, chi: Sequence[float], hardness: Sequence[float]) -> None:
        """Per-element chi (eV/e) and hardness J (eV/e^2) of the charge terms."""
        with torch.no_grad():
            self.chi.copy_(torch.tensor(list(chi), dtype=self.chi.dtype))
            self.hardness.copy_(torch.tensor(list(hardness), dtype=self.hardness.dtype))

    # -- pieces ----------------------------------------------------------------------------
    def _channel_totals(self, state: Tensor) -> Tensor:
        """(n, channels) each atom's group's total per channel from state (n, 3) [Q, M, phi]."""
        q = state[:, 0:1]
        if self.channels == 1:
            return q
        unpaired = state[:, 1:2] - 1.0
        return torch.cat([0.5 * (q + unpaired), 0.5 * (q - unpaired)], 1)

    def _basis(self, edge_index: Tensor, edge_vectors: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """(centres, neighbours, g_sv (E', G, 4)) of the edges inside rc_s."""
        r = torch.linalg.vector_norm(edge_vectors, dim=1)
        near = torch.nonzero(r < self.rc_s).squeeze(1)
        r, vec = r[near], edge_vectors[near]
        fc = 0.5 * (torch.cos(r * (math.pi / self.rc_s)) + 1.0)
        gs = torch.exp(-self.eta * (r.unsqueeze(1) - self.shifts.to(r.dtype)) ** 2) * fc.unsqueeze(1)
        gv = gs.unsqueeze(2) * (vec / r.unsqueeze(1)).unsqueeze(1)
        return edge_index[0][near], edge_index[1][near], torch.cat([gs.unsqueeze(2), gv], 2)

    def _conv(self, feats: Tensor, g_sv: Tensor, i: Tensor, j: Tensor, agh: Tensor) -> Tensor:
        """ConvSV: feats (n, A, G) or (n, A) -> (n, A G + A H)."""
        fj = feats[j]
        if fj.dim() == 2:
            fj = fj.unsqueeze(2)                                     # (E, A, 1): broadcast over G
        n, width, shifts = feats.shape[0], fj.shape[1], g_sv.shape[1]
        # the four components (scalar, x, y, z) one at a time: an (E, A, G) temporary each
        # instead of one (E, A, G, 4), which bounds the memory of large ghost shells
        parts: List[Tensor] = []
        for d in range(4):
            m = fj * g_sv[:, :, d].unsqueeze(1)                       # (E, A, G)
            parts.append(torch.zeros((n, width, shifts), dtype=m.dtype, device=m.device).index_add(0, i, m))
        scalar = parts[0].flatten(1)
        vectors = torch.stack(parts[1:], 3)                           # (n, A, G, 3)
        vector = torch.einsum("agh,nagd->nahd", agh, vectors).pow(2).sum(3).flatten(1)
        return torch.cat([scalar, vector], 1)

    def _input(self, a: Tensor, q: Tensor, g_sv: Tensor, i: Tensor, j: Tensor, first: bool) -> Tensor:
        flat = a.flatten(1) if self.d2features else a
        parts = [flat, self._conv(a, g_sv, i, j, self.agh_a)]
        if not first:
            parts += [q, self._conv(q, g_sv, i, j, self.agh_q)]
        return torch.cat(parts, 1)

    def _normalise(self, raw: Tensor, f: Tensor, sums: Tensor, target: Tensor, phi: Tensor) -> Tensor:
        """raw, f (n, c); sums (n, 3c + 1) of each atom's group [sum q~, sum f, sum f phi, N];
        target (n, c) channel totals; phi (n, 1) external potential, V."""
        c, eps = self.channels, self.epsilon
        lam = (target - sums[:, :c] + sums[:, 2 * c:3 * c]) / (sums[:, c:2 * c] + eps)
        return raw + (f + eps / sums[:, 3 * c:3 * c + 1]) * lam - f * phi

    def _state(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, target: Tensor,
               phi: Tensor, sums: List[Tensor], n_local: int, group: Optional[Tensor],
               n_groups: int) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Run the charge passes whose sums are given, and the next one: (features, charges
        normalised by the last given sums, raw charges and weights of the next pass, and the
        edges inside rc_s: centres, neighbours, basis).  With ``group`` ((n,) each atom's
        group in [0, n_groups); one domain holding every atom) the sums are taken here,
        per group over the local atoms, and every charge pass runs once."""
        i, j, g_sv = self._basis(edge_index, edge_vectors)
        n, c = species.shape[0], self.channels
        a = self.embedding[species].to(edge_vectors.dtype)
        if self.d2features:
            a = a.unflatten(1, (self.nfeature, self.nshifts))
        q = torch.zeros((n, c), dtype=edge_vectors.dtype, device=edge_vectors.device)
        raw, f = q, q
        done = len(sums) if group is None else len(self.mlps)
        for k, mlp in enumerate(self.mlps):
            if k <= done:
                x = mlp(self._input(a, q, g_sv, i, j, k == 0))
                dq, df, da = x.split([c, c, x.shape[1] - 2 * c], 1)
                raw = dq if k == 0 else q + dq
                f = df * df
                a = a + da.view_as(a)
                if group is not None:
                    parts = self._parts(raw, f, phi, n_local)
                    local = group[:n_local]
                    totals = torch.zeros((n_groups, parts.shape[1]), dtype=parts.dtype, device=parts.device).index_add(0, local, parts)
                    q = self._normalise(raw, f, totals[group], target, phi)
                elif k < done:
                    q = self._normalise(raw, f, sums[k], target, phi)
        return a, q, raw, f, i, j, g_sv

    def _parts(self, raw: Tensor, f: Tensor, phi: Tensor, n_local: int) -> Tensor:
        """Each local atom's part of a pass's sums: [q~, f, f phi (per channel), 1]."""
        ones = torch.ones((n_local, 1), dtype=raw.dtype, device=raw.device)
        return torch.cat([raw[:n_local], f[:n_local], (f * phi)[:n_local], ones], 1)

    @torch.jit.export
    def reduction_inputs_grouped(self, stage: int, species: Tensor, edge_index: Tensor,
                                 edge_vectors: Tensor, n_local: int, state: Tensor,
                                 sums: List[Tensor]) -> Tensor:
        state = state.to(edge_vectors.dtype)
        target, phi = self._channel_totals(state), state[:, 2:3]
        _, _, raw, f, _, _, _ = self._state(species, edge_index, edge_vectors, target, phi, sums[:stage],
                                            n_local, None, 0)
        return self._parts(raw, f, phi, n_local)

    @torch.jit.export
    def forward_grouped(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                        state: Tensor, sums: List[Tensor]) -> Dict[str, Tensor]:
        state = state.to(edge_vectors.dtype)
        target, phi = self._channel_totals(state), state[:, 2:3]
        a, _, raw, f, i, j, g_sv = self._state(species, edge_index, edge_vectors, target, phi,
                                               sums[:len(sums) - 1], n_local, None, 0)
        q = self._normalise(raw, f, sums[len(sums) - 1], target, phi)
        return self._outputs(a, q, phi, species, edge_index, edge_vectors, n_local, i, j, g_sv)

    @torch.jit.export
    def forward_inline(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                       state: Tensor, group: Tensor, n_groups: int) -> Dict[str, Tensor]:
        """GroupReduced's forward_inline with each pass run once, its sums per group taken as it
        goes (the staged methods recompute the earlier passes per stage)."""
        state = state.to(edge_vectors.dtype)
        target, phi = self._channel_totals(state), state[:, 2:3]
        a, q, _, _, i, j, g_sv = self._state(species, edge_index, edge_vectors, target, phi, [], n_local,
                                             group, n_groups)
        return self._outputs(a, q, phi, species, edge_index, edge_vectors, n_local, i, j, g_sv)

    def _outputs(self, a: Tensor, q: Tensor, phi: Tensor, species: Tensor, edge_index: Tensor,
                 edge_vectors: Tensor, n_local: int, i: Tensor, j: Tensor, g_sv: Tensor) -> Dict[str, Tensor]:
        """Energies, charges and spin charges from the last pass's features and final charges."""
        aim = self.final(self._input(a, q, g_sv, i, j, False))
        energies = self.out(aim[:n_local]).squeeze(1) + self.shift[species[:n_local]].to(aim.dtype)
        total = q.sum(1)
        mine_q, mine_s = total[:n_local], species[:n_local]
        energies = energies + (self.chi[mine_s].to(aim.dtype) + 0.5 * self.hardness[mine_s].to(aim.dtype)
                               * mine_q) * mine_q + mine_q * phi[:n_local, 0]   # + q phi: the external potential
        out: Dict[str, Tensor] = {"charges": total[:n_local]}
        if self.channels == 2:
            out["spin_charges"] = (q[:, 0] - q[:, 1])[:n_local]
        if self.coulomb == "none":
            out["energies"] = energies
            return out
        # Coulomb on the final charges, every edge from a local atom, aimnet's exp envelope
        ci, cj = edge_index[0], edge_index[1]
        mine = torch.nonzero(ci < n_local).squeeze(1)
        r = torch.linalg.vector_norm(edge_vectors[mine], dim=1)
        x = torch.clamp(r / self.coulomb_sr, 0.0, 1.0 - 1e-6)
        envelope = torch.exp(-1.0 / (1.0 - x * x)) / math.exp(-1.0)
        qq = 0.5 * self.k_e * total[ci[mine]] * total[cj[mine]]
        if self.coulomb == "dsf":
            alpha, rc = self.dsf_alpha, self.dsf_rc
            erfc_rc = math.erfc(alpha * rc)
            slope = erfc_rc / (rc * rc) + 2.0 * alpha / math.sqrt(math.pi) * math.exp(-alpha * alpha * rc * rc) / rc
            kernel = torch.special.erfc(alpha * r) / r - erfc_rc / rc + (r - rc) * slope
            kernel = torch.where(r < rc, kernel, torch.zeros_like(r)) - envelope / r
            q_local = total[:n_local]
            self_term = erfc_rc / (2.0 * rc) + alpha / math.sqrt(math.pi)
            energies = energies - self.k_e * self_term * q_local * q_local
        else:
            kernel = (1.0 - envelope) / r
        out["energies"] = energies.index_add(0, ci[mine], qq * kernel)
        return out


def from_aimnet2(model, elements: Sequence[str], cutoff: float = 12.0,
                 coulomb_sr: float | None = None) -> AIMNet2Potential:
    """Our AIMNet2Potential with the weights of an ``aimnet.models.AIMNet2`` module (aimnet
    0.2.0), for ``elements``; cutoff in Å.  The Coulomb term is the module's LRCoulomb (its
    "simple" form) or, for a core model whose file says it needs one (aimnet's own files),
    ``coulomb_sr`` (Å, the envelope radius); neither: no Coulomb term."""
    aev = model.aev
    coulomb = [m for m in model.outputs.children() if type(m).__name__ == "LRCoulomb"]
    method, alpha, dsf_rc = "simple", 0.2, 15.0
    if coulomb and (coulomb[0].method not in ("simple", "dsf") or coulomb[0].envelope != "exp"
                    or not coulomb[0].subtract_sr):
        raise ValueError(f"from_aimnet2 matches aimnet's 'simple' and 'dsf' Coulomb with the 'exp' envelope "
                         f"subtracted, not {coulomb[0].method!r} with {coulomb[0].envelope!r}")
    if coulomb:
        coulomb_sr = float(coulomb[0].rc)
        method, alpha, dsf_rc = coulomb[0].method, float(coulomb[0].dsf_alpha), float(coulomb[0].dsf_rc)
        if method == "dsf":
            cutoff = max(cutoff, dsf_rc)
    if aev._dual_basis:
        raise ValueError("from_aimnet2: models with a separate vector basis (rc_v) are not supported")
    shifts = aev.shifts_s.detach().double()
    rc_s = float(aev.rc_s)
    hidden = [[m.out_features for m in mlp if isinstance(m, torch.nn.Linear)][:-1] for mlp in model.mlps]
    aim_size = [m for m in model.mlps[-1] if isinstance(m, torch.nn.Linear)][-1].out_features
    outputs = {type(m).__name__: m for m in model.outputs.children()}
    out_mlp = outputs["Output"].mlp
    ours = AIMNet2Potential(
        elements, rc_s=rc_s, nshifts=model.nshifts_s, rmin=float(shifts[0]), nfeature=model.nfeature,
        d2features=model.d2features, ncomb_v=model.conv_a.ncomb_v, hidden=hidden,
        aim_size=aim_size,
        out_hidden=[m.out_features for m in out_mlp if isinstance(m, torch.nn.Linear)][:-1],
        channels=model.num_charge_channels,
        coulomb_sr=coulomb_sr if coulomb_sr is not None else 4.6, cutoff=cutoff,
        coulomb=method if coulomb_sr is not None else "none", dsf_alpha=alpha, dsf_rc=dsf_rc)
    ours.shifts = shifts.clone()
    ours.eta = float(aev.eta_s)
    z = ours.numbers
    with torch.no_grad():
        ours.embedding.copy_(model.afv.weight[z].to(ours.embedding.dtype))
        ours.agh_a.copy_(model.conv_a.agh)
        ours.agh_q.copy_(model.conv_q.agh)
        for theirs, mine in zip(model.mlps, [*ours.mlps, ours.final]):
            mine.load_state_dict(theirs.state_dict())
        ours.out.load_state_dict(out_mlp.state_dict())
        ours.shift.copy_(outputs["AtomicShift"].shifts.weight[z, 0] if "AtomicShift" in outputs else 0.0)
    return ours


def convert_file(path: str, output: str, cutoff: float = 12.0) -> str:
    """``multiscale convert aimnet2``: an aimnet model file (its state-dict format with the
    configuration inside, read by ``aimnet.models.base.load_model``) as our model file."""
    from ase.data import chemical_symbols
    from aimnet.models.base import load_model
    from ..model.artifact import export
    model, meta = load_model(path)
    if type(model).__name__ != "AIMNet2":
        raise ValueError(f"{path} holds an aimnet {type(model).__name__}, not an AIMNet2")
    if meta.get("needs_dispersion") or meta.get("has_embedded_d3ts"):
        raise ValueError(f"{path} needs D3 dispersion, which the multiscale AIMNet2 does not have yet")
    sr = None
    if meta.get("needs_coulomb"):
        if (meta.get("coulomb_sr_envelope") or "exp") != "exp":
            raise ValueError(f"{path}: Coulomb envelope {meta.get('coulomb_sr_envelope')!r}; only 'exp' is matched")
        sr = float(meta.get("coulomb_sr_rc") or 4.6)
    species = meta.get("implemented_species") or []
    if not species:
        raise ValueError(f"{path} does not list its elements (implemented_species)")
    ours = from_aimnet2(model.double(), [chemical_symbols[int(z)] for z in species], cutoff, coulomb_sr=sr)
    export(ours.double(), output)
    return output
