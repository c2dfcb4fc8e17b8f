"""The Ziegler-Biersack-Littmark (ZBL) screened nuclear repulsion, LAMMPS' ``pair_style zbl``.

phi(r) = Z_i Z_j e^2 / (4 pi eps0 r) * sum_k c_k exp(-d_k r / a),  a = 0.46850 / (Z_i^0.23 + Z_j^0.23) Å,

plus LAMMPS' switching polynomial between ``inner`` and ``outer`` (Å): for t = r - inner > 0
it adds A t^3 / 3 + B t^4 / 4 and everywhere a constant C, chosen so that the energy and its
first two derivatives vanish at ``outer``; zero beyond.  Energies in eV.  ``pairs`` may give
an element pair its own (inner, outer): a molecule's heavy atoms need a wider core than its
hydrogens (C-C bonds are never shorter than 1.1 Å, H2's is 0.74 Å), which LAMMPS' zbl, with
one global pair of radii, cannot express.

Used on its own (a contract model, equal to native ``pair_style zbl inner outer``) and as the
repulsive core of the neural potentials (``repulsion=`` of ANIModel and
MessagePassingPotential): a network's features saturate or vanish at short range, so
without a core two atoms can fuse.  With ``outer`` below the shortest distance in the
training data the core is exactly zero on it and changes nothing the network learned.
"""

from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional, Sequence

import torch
from torch import Tensor

from ..model.contract import ModelMetadata
from ..units import COULOMB_EV_A
from .graph import scatter_sum

CITATION = ("J. F. Ziegler, J. P. Biersack and U. Littmark, The Stopping and Range of Ions in "
            "Matter, Pergamon (1985)")

# the universal screening function's coefficients and exponents, and the screening length
C = (0.18175, 0.50986, 0.28022, 0.02817)
D = (3.19980, 0.94229, 0.40290, 0.20162)
A0 = 0.46850  # Å
P = 0.23


def _derivatives(r: float, zi: float, zj: float) -> tuple[float, float, float]:
    """phi, phi', phi'' of the unswitched ZBL pair energy at r (eV, eV/Å, eV/Å^2)."""
    inv_a = (zi ** P + zj ** P) / A0
    zz = zi * zj * COULOMB_EV_A
    s = sum(c * math.exp(-d * inv_a * r) for c, d in zip(C, D))
    s1 = sum(-c * d * inv_a * math.exp(-d * inv_a * r) for c, d in zip(C, D))
    s2 = sum(c * (d * inv_a) ** 2 * math.exp(-d * inv_a * r) for c, d in zip(C, D))
    phi = zz * s / r
    phi1 = zz * (s1 / r - s / r ** 2)
    phi2 = zz * (s2 / r - 2.0 * s1 / r ** 2 + 2.0 * s / r ** 3)
    return phi, phi1, phi2


class ZBL(torch.nn.Module):
    """ZBL repulsion between every pair closer than its ``outer``; eV and Å.

    elements: chemical symbols (their atomic numbers set Z); inner < outer: the switching
    range in Å; pairs: optional ``{"C-O": (inner, outer), ...}`` for the element pairs whose
    range differs (either order of the two symbols).  Each local atom gets half of each
    pair energy it takes part in.
    """

    def __init__(self, elements: Sequence[str], inner: float, outer: float,
                 pairs: Optional[Mapping[str, Sequence[float]]] = None):
        super().__init__()
        from ase.data import atomic_numbers

        self.elements: List[str] = list(elements)
        unknown = [el for el in self.elements if el not in atomic_numbers]
        if unknown:
            raise ValueError(f"ZBL: unknown chemical symbol(s) {unknown}")
        self.inner = float(inner)
        self.outer = float(outer)
        n = len(self.elements)
        radii = [[(self.inner, self.outer)] * n for _ in range(n)]
        for key, value in (pairs or {}).items():
            i, j = self._pair_indices(key)
            if len(value) != 2:
                raise ValueError(f"ZBL pair {key!r}: give [inner, outer] in Å, got {value!r}")
            radii[i][j] = radii[j][i] = (float(value[0]), float(value[1]))
        for i in range(n):
            for j in range(n):
                a, b = radii[i][j]
                if not 0.0 < a < b:
                    raise ValueError(f"ZBL needs 0 < inner < outer (Å), got inner={a}, outer={b} "
                                     f"for {self.elements[i]}-{self.elements[j]}")
        self.cutoff = max(b for row in radii for _, b in row)
        z = [float(atomic_numbers[el]) for el in self.elements]
        tables = {name: torch.zeros(n, n, dtype=torch.float64)
                  for name in ("zz", "inv_a", "a3", "b4", "c", "inner_radii", "outer_radii")}
        for i in range(n):
            for j in range(n):
                a, b = radii[i][j]
                tc = b - a
                fc, fp, fpp = _derivatives(b, z[i], z[j])
                tables["zz"][i, j] = z[i] * z[j] * COULOMB_EV_A
                tables["inv_a"][i, j] = (z[i] ** P + z[j] ** P) / A0
                tables["a3"][i, j] = (-3.0 * fp + tc * fpp) / tc ** 2 / 3.0
                tables["b4"][i, j] = (2.0 * fp - tc * fpp) / tc ** 3 / 4.0
                tables["c"][i, j] = -fc + 0.5 * tc * fp - tc ** 2 / 12.0 * fpp
                tables["inner_radii"][i, j], tables["outer_radii"][i, j] = a, b
        for name, table in tables.items():
            self.register_buffer(name, table)
        self.register_buffer("coefficients", torch.tensor(C, dtype=torch.float64))
        self.register_buffer("exponents", torch.tensor(D, dtype=torch.float64))

    @torch.jit.unused
    def _pair_indices(self, key: str) -> tuple:
        parts = key.split("-")
        if len(parts) != 2 or any(p not in self.elements for p in parts):
            raise ValueError(f"ZBL pair {key!r}: write two of the model's elements {self.elements} "
                             "joined by '-', e.g. 'C-O'")
        return self.elements.index(parts[0]), self.elements.index(parts[1])

    def metadata(self) -> ModelMetadata:
        return ModelMetadata(name="zbl", elements=tuple(self.elements), cutoff=self.cutoff, hops=1,
                             citation=CITATION,
                             description=f"ZBL screened nuclear repulsion, switched off between "
                                         f"{self.inner} and {self.outer} Å as LAMMPS' pair_style zbl"
                                         + _pair_text(pairs_of(self)))

    def pair_energies(self, r: Tensor, si: Tensor, sj: Tensor) -> Tensor:
        """phi(r) eV for pairs closer than ``outer``; r (m,) Å, si/sj (m,) species."""
        x = r.unsqueeze(1) * (self.inv_a[si, sj].unsqueeze(1) * self.exponents)
        screened = (self.coefficients * torch.exp(-x)).sum(1)
        t = torch.clamp(r - self.inner_radii[si, sj], min=0.0)
        t3 = t * t * t
        switch = t3 * (self.a3[si, sj] + self.b4[si, sj] * t) + self.c[si, sj]
        return self.zz[si, sj] * screened / r + switch

    def atom_energies(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                      n_local: int) -> Tensor:
        """(n_local,) eV: half of each pair energy to each local atom of the pair."""
        i, j = edge_index[0], edge_index[1]
        r = torch.linalg.vector_norm(edge_vectors, dim=1)
        # only the few edges inside the core: a network's edges reach much further
        near = torch.nonzero((r < self.cutoff) & (i < n_local)).squeeze(1)
        close = near[r[near] < self.outer_radii[species[i[near]], species[j[near]]]]
        phi = self.pair_energies(r[close], species[i[close]], species[j[close]])
        return scatter_sum(0.5 * phi.to(edge_vectors.dtype), i[close], n_local)

    def forward(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                charge: float = 0.0, spin: int = 1) -> Dict[str, Tensor]:
        return {"energies": self.atom_energies(species, edge_index, edge_vectors, n_local)}


def describe(core: "ZBL | None") -> str:
    """The core as a model description names it ("" for none)."""
    return "" if core is None else f", ZBL core {core.inner}-{core.outer} Å{_pair_text(pairs_of(core))}"


def pairs_of(core) -> Dict[str, List[float]]:
    """{"C-O": [inner, outer], ...}: the pairs of a ZBL core (eager or scripted) whose range
    differs from its global one (none in a file written before pairs existed)."""
    if not hasattr(core, "inner_radii"):
        return {}
    elements, n = list(core.elements), len(core.elements)
    out = {}
    for i in range(n):
        for j in range(i, n):
            # rounded: a float32 export holds 0.3 as 0.30000001
            radii = [round(float(core.inner_radii[i, j]), 6), round(float(core.outer_radii[i, j]), 6)]
            if radii != [round(float(core.inner), 6), round(float(core.outer), 6)]:
                out[f"{elements[i]}-{elements[j]}"] = radii
    return out


def _pair_text(pairs: Dict[str, List[float]]) -> str:
    return "".join(f", {key} {a}-{b} Å" for key, (a, b) in pairs.items())


def build_repulsion(elements: Sequence[str], table) -> ZBL | None:
    """A ZBL core from a TOML table ``{inner = Å, outer = Å}`` (``kind = "zbl"`` and a subtable
    ``pairs = {"C-C" = [inner, outer], ...}`` optional), a ZBL as it is, None for None."""
    if table is None:
        return None
    if isinstance(table, ZBL):
        if list(table.elements) != list(elements):
            raise ValueError(f"repulsion elements {table.elements} differ from the model's {list(elements)}")
        return table
    table = dict(table)
    kind = table.pop("kind", "zbl")
    if kind != "zbl":
        raise ValueError(f"repulsion kind must be 'zbl', got {kind!r}")
    missing = [k for k in ("inner", "outer") if k not in table]
    extra = sorted(set(table) - {"inner", "outer", "pairs"})
    if missing or extra:
        raise ValueError(f"repulsion takes inner and outer (Å) and optional pairs; missing {missing}, "
                         f"unknown {extra}")
    return ZBL(elements, table["inner"], table["outer"], table.get("pairs"))
