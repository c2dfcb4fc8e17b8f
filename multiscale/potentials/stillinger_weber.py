"""Stillinger-Weber potential read from a LAMMPS ``.sw`` file (any number of elements).

E = sum_i sum_{j != i} phi2(r_ij) / 2 + sum_i sum_{j<k} phi3(r_ij, r_ik, theta_jik)

phi2 = A eps (B (sigma/r)^p - (sigma/r)^q) exp(sigma / (r - a sigma))              [entry i j j]
phi3 = lambda eps (cos theta - cos theta0)^2                                       [entry i j k]
       * exp(gamma_ij sigma_ij / (r_ij - a_ij sigma_ij)) * exp(gamma_ik sigma_ik / (r_ik - a_ik sigma_ik))

Energies and per-atom virials are attributed as LAMMPS' ``pair_style sw`` does
(two-body halves, three-body thirds to i, j and k), so ``compute pe/atom`` and
``compute stress/atom`` agree with the native style atom by atom.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from ..model.contract import ModelMetadata
from ..paths import lammps_potential
from .graph import scatter_sum, triplets

# column order of a LAMMPS .sw entry after the three element names
_COLUMNS = ("epsilon", "sigma", "a", "lambda_", "gamma", "costheta0", "A", "B", "p", "q", "tol")


def read_sw_file(path: str | Path, elements: Sequence[str]) -> Dict[str, Tensor]:
    """Parameter tables (n, n, n) float64 for ``elements`` from a LAMMPS .sw file.

    Raises ValueError naming a missing or duplicate element triplet, as LAMMPS does.
    """
    path = lammps_potential(path)
    words: List[str] = []
    for line in path.read_text().splitlines():
        words.extend(line.split("#", 1)[0].split())
    width = 3 + len(_COLUMNS)
    if len(words) % width:
        raise ValueError(f"{path}: {len(words)} fields is not a multiple of {width} per entry")
    index = {el: n for n, el in enumerate(elements)}
    n = len(elements)
    table = {c: torch.full((n, n, n), float("nan"), dtype=torch.float64) for c in _COLUMNS}
    seen = set()
    for start in range(0, len(words), width):
        names = words[start:start + 3]
        if not all(el in index for el in names):
            continue
        key = tuple(index[el] for el in names)
        if key in seen:
            raise ValueError(f"{path}: duplicate entry for {' '.join(names)}")
        seen.add(key)
        for c, value in zip(_COLUMNS, words[start + 3:start + width]):
            table[c][key] = float(value)
    for key in itertools.product(range(n), repeat=3):
        if key not in seen:
            names = " ".join(elements[k] for k in key)
            raise ValueError(f"{path}: no entry for element triplet {names}")
    return table


class StillingerWeber(torch.nn.Module):
    """Stillinger-Weber model under the contract; parameters from a LAMMPS .sw file.

    elements: the model's elements, in the order species indexes them.
    """

    def __init__(self, sw_file: str | Path, elements: Sequence[str]):
        super().__init__()
        self.elements: List[str] = list(elements)
        self.source = lammps_potential(sw_file).name
        p = read_sw_file(sw_file, elements)
        cut = p["sigma"] * p["a"]
        # LAMMPS shortens the neighbour cutoff by sigma/ln(tol) (gamma sigma/ln(tol) if gamma < 1)
        tol = p["tol"].clamp(max=0.01)
        shorten = torch.where(p["gamma"] < 1.0, p["gamma"] * p["sigma"], p["sigma"]) / torch.log(tol)
        rcut = torch.where(tol > 0.0, cut + shorten, cut)
        diag = torch.arange(len(self.elements))
        pair = lambda t: t[:, diag, diag]  # entry i j j  # noqa: E731
        self.register_buffer("cut2", pair(cut))
        self.register_buffer("rcut2", pair(rcut))
        self.register_buffer("sigma2", pair(p["sigma"]))
        self.register_buffer("sigma_gamma2", pair(p["sigma"] * p["gamma"]))
        self.register_buffer("c_rep", pair(p["A"] * p["epsilon"] * p["B"] * p["sigma"] ** p["p"]))
        self.register_buffer("c_att", pair(p["A"] * p["epsilon"] * p["sigma"] ** p["q"]))
        self.register_buffer("p", pair(p["p"]))
        self.register_buffer("q", pair(p["q"]))
        self.register_buffer("lambda_epsilon3", p["lambda_"] * p["epsilon"])
        self.register_buffer("costheta3", p["costheta0"])
        self.cutoff = float(rcut.max())

    def metadata(self) -> ModelMetadata:
        return ModelMetadata(
            name="stillinger-weber", elements=tuple(self.elements), cutoff=self.cutoff, hops=1,
            outputs=("energies", "virials"), ghost_energies="tally",   # three-body thirds on j, k
            citation="F. H. Stillinger and T. A. Weber, Phys. Rev. B 31, 5262 (1985)",
            description=f"reference Stillinger-Weber potential from {self.source}")

    def forward(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                charge: float = 0.0, spin: int = 1) -> Dict[str, Tensor]:
        n_all = species.shape[0]
        i, j = edge_index[0], edge_index[1]
        si, sj = species[i], species[j]
        r = torch.linalg.vector_norm(edge_vectors, dim=1)
        short = (i < n_local) & (r < self.rcut2[si, sj])
        edges = torch.nonzero(short).squeeze(1)

        # two-body: half of phi2 for every edge of a local atom
        ei, ej, si2, sj2 = i[edges], j[edges], si[edges], sj[edges]
        v2 = edge_vectors[edges]
        r2 = torch.linalg.vector_norm(v2, dim=1)
        p, q = self.p[si2, sj2], self.q[si2, sj2]
        e2 = (0.5 * (self.c_rep[si2, sj2] * r2 ** (-p) - self.c_att[si2, sj2] * r2 ** (-q))
              * torch.exp(self.sigma2[si2, sj2] / (r2 - self.cut2[si2, sj2])))

        # three-body: each angle j-i-k once
        e1, e3 = triplets(i[edges], edges, n_all)
        ti, tj, tk = i[e1], j[e1], j[e3]
        va, vb = edge_vectors[e1], edge_vectors[e3]
        ra = torch.linalg.vector_norm(va, dim=1)
        rb = torch.linalg.vector_norm(vb, dim=1)
        s_i, s_j, s_k = species[ti], species[tj], species[tk]
        cos = (va * vb).sum(1) / (ra * rb)
        e3t = (self.lambda_epsilon3[s_i, s_j, s_k] * (cos - self.costheta3[s_i, s_j, s_k]) ** 2
               * torch.exp(self.sigma_gamma2[s_i, s_j] / (ra - self.cut2[s_i, s_j]))
               * torch.exp(self.sigma_gamma2[s_i, s_k] / (rb - self.cut2[s_i, s_k])))

        # e2 is half a pair energy (the reverse edge holds the other half), kept by i;
        # this gives every atom half of each of its pairs, as LAMMPS tallies them
        energies = (scatter_sum(e2, ei, n_all).index_add_(0, ti, e3t / 3.0)
                    .index_add_(0, tj, e3t / 3.0).index_add_(0, tk, e3t / 3.0))
        out = {"energies": energies}
        if edge_vectors.requires_grad:
            out["virials"] = self._virials(e2, e3t, v2, va, vb, ei, ej, ti, tj, tk, n_all)
        return out

    def _virials(self, e2: Tensor, e3t: Tensor, v2: Tensor, va: Tensor, vb: Tensor, ei: Tensor,
                 ej: Tensor, ti: Tensor, tj: Tensor, tk: Tensor, n_all: int) -> Tensor:
        """Per-atom virials (n_all, 3, 3) eV: two-body halves, three-body thirds (LAMMPS' v_tally3)."""
        grads = torch.autograd.grad([e2.sum() + e3t.sum()], [v2, va, vb], retain_graph=True,
                                    allow_unused=True)
        g2: Optional[Tensor] = grads[0]
        ga: Optional[Tensor] = grads[1]
        gb: Optional[Tensor] = grads[2]
        w = torch.zeros((n_all, 3, 3), dtype=v2.dtype, device=v2.device)
        if g2 is not None:
            w2 = -0.5 * v2.unsqueeze(2) * g2.unsqueeze(1)
            w.index_add_(0, ei, w2).index_add_(0, ej, w2)
        if ga is not None and gb is not None:
            w3 = -(va.unsqueeze(2) * ga.unsqueeze(1) + vb.unsqueeze(2) * gb.unsqueeze(1)) / 3.0
            w.index_add_(0, ti, w3).index_add_(0, tj, w3).index_add_(0, tk, w3)
        return w
