"""ANI atomic environment vectors (AEVs) computed on the contract's edge lists.

J. S. Smith, O. Isayev and A. E. Roitberg, Chem. Sci. 8, 3192 (2017), eqs. (2)-(4),
with the conventions of NeuroChem and torchani, so that our AEVs equal torchani's
number for number:

    fc(r)        = 0.5 cos(pi r / Rc) + 0.5                                  (r < Rc)
    radial       G_i[Z, s]    = sum_{j of element Z}  0.25 exp(-EtaR (r_ij - ShfR_s)^2) fc_Rcr(r_ij)
    angular      G_i[ZZ', s, z] = sum_{j<k, elements {Z, Z'}}
                     2^(1-Zeta) (1 + cos(theta_ijk - ShfZ_z))^Zeta
                     exp(-EtaA ((r_ij + r_ik)/2 - ShfA_s)^2) fc_Rca(r_ij) fc_Rca(r_ik)
                 with theta_ijk = acos(0.95 cos theta) (torchani's guard against acos(±1)).

Layout of one AEV (as torchani's): radial blocks by neighbour element (len(ShfR) each),
then angular blocks by unordered element pair in upper-triangle order (0,0), (0,1), ...,
(0,n-1), (1,1), ..., each block shift-major: index s * len(ShfZ) + z.
"""

from __future__ import annotations

import dataclasses
import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from .graph import scatter_sum, triplets

ANI1X_ELEMENTS = ("H", "C", "N", "O")
ANI2X_ELEMENTS = ("H", "C", "N", "O", "S", "F", "Cl")


def _sections(n: int) -> Tuple[float, ...]:
    """n angle sections centred in [0, pi]: pi (2k + 1) / (2n)."""
    return tuple(math.pi * (2 * k + 1) / (2 * n) for k in range(n))


@dataclasses.dataclass(frozen=True)
class AEVParameters:
    """AEV constants, named as in NeuroChem parameter files and torchani; lengths in Å.

    Rcr, Rca: radial and angular cutoffs; EtaR, ShfR: radial width (1/Å^2) and shifts;
    EtaA, Zeta, ShfA, ShfZ: angular radial width, angular sharpness, radial shifts and
    angle sections (radians).
    """

    Rcr: float
    Rca: float
    EtaR: float
    ShfR: Tuple[float, ...]
    EtaA: float
    Zeta: float
    ShfA: Tuple[float, ...]
    ShfZ: Tuple[float, ...]

    def __post_init__(self):
        for name in ("ShfR", "ShfA", "ShfZ"):
            values = tuple(float(v) for v in getattr(self, name))
            if not values:
                raise ValueError(f"AEVParameters.{name} must hold at least one value")
            object.__setattr__(self, name, values)
        for name in ("Rcr", "Rca", "EtaR", "EtaA", "Zeta"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"AEVParameters.{name} must be a positive number, got {value!r}")
            object.__setattr__(self, name, value)

    @property
    def cutoff(self) -> float:
        """The edge cutoff a model built on these parameters needs, Å."""
        return max(self.Rcr, self.Rca)

    @classmethod
    def ani1x(cls) -> "AEVParameters":
        """ANI-1x / ANI-1ccx (torchani ``AEVComputer.like_1x``): 384 features for H C N O."""
        return cls(Rcr=5.2, Rca=3.5, EtaR=16.0,
                   ShfR=(0.9, 1.16875, 1.4375, 1.70625, 1.975, 2.24375, 2.5125, 2.78125,
                         3.05, 3.31875, 3.5875, 3.85625, 4.125, 4.39375, 4.6625, 4.93125),
                   EtaA=8.0, Zeta=32.0, ShfA=(0.9, 1.55, 2.2, 2.85), ShfZ=_sections(8))

    @classmethod
    def ani2x(cls) -> "AEVParameters":
        """ANI-2x (torchani ``AEVComputer.like_2x``): 1008 features for H C N O S F Cl."""
        return cls(Rcr=5.1, Rca=3.5, EtaR=19.7,
                   ShfR=(0.8, 1.06875, 1.3375, 1.60625, 1.875, 2.14375, 2.4125, 2.68125,
                         2.95, 3.21875, 3.4875, 3.75625, 4.025, 4.29375, 4.5625, 4.83125),
                   EtaA=12.5, Zeta=14.1,
                   ShfA=(0.8, 1.1375, 1.475, 1.8125, 2.15, 2.4875, 2.825, 3.1625), ShfZ=_sections(4))

    @classmethod
    def evenly(cls, Rcr: float, Rca: float, EtaR: float, n_radial: int, EtaA: float, Zeta: float,
               n_angular: int, n_sections: int, start: float = 0.9) -> "AEVParameters":
        """Shifts spread evenly from ``start`` up to (not including) each cutoff, sections
        centred in [0, pi]: how the ANI parameter sets were made (e.g. for silicon with
        longer cutoffs)."""
        return cls(Rcr=Rcr, Rca=Rca, EtaR=EtaR,
                   ShfR=tuple(start + (Rcr - start) * k / n_radial for k in range(n_radial)),
                   EtaA=EtaA, Zeta=Zeta,
                   ShfA=tuple(start + (Rca - start) * k / n_angular for k in range(n_angular)),
                   ShfZ=_sections(n_sections))


def _exp(x: Tensor) -> Tensor:
    """exp(x) with x floored at -80: exp(-80) ~ 2e-35 is nothing next to AEV entries of
    order 1 in either dtype, and torch's CPU exp is ten times slower where float32 would
    underflow (x < -87), which most Gaussian tails of an AEV are."""
    return torch.exp(torch.clamp(x, min=-80.0))


class RadialTerms(torch.nn.Module):
    """ANI's radial terms summed into rows, with torch operations (differentiable twice).

    forward(vectors (E, 3) Å: edges with r < Rcr, row (E,) int64: each edge's output row,
    rows) gives (rows, len(ShfR)).
    """

    def __init__(self, params: AEVParameters):
        super().__init__()
        self.params = params  # for native(); TorchScript uses the plain copies below
        self.Rcr = params.Rcr
        self.EtaR = params.EtaR
        # a float64 tensor kept out of buffers, so .to(float32) never rounds it
        self.ShfR = torch.tensor(params.ShfR, dtype=torch.float64)

    def forward(self, vectors: Tensor, row: Tensor, rows: int) -> Tensor:
        r = torch.linalg.vector_norm(vectors, dim=1)
        shf_r = self.ShfR.to(device=vectors.device, dtype=vectors.dtype)
        fc = 0.5 * torch.cos(r * (math.pi / self.Rcr)) + 0.5
        terms = 0.25 * _exp(-self.EtaR * (r.unsqueeze(1) - shf_r) ** 2) * fc.unsqueeze(1)
        return scatter_sum(terms, row, rows)

    @torch.jit.unused
    def native(self, scripted: bool = True) -> "FusedRadialTerms":
        """The same terms by the native operator (``native_ops.fuse`` calls this)."""
        return FusedRadialTerms(self.params)


class FusedRadialTerms(torch.nn.Module):
    """RadialTerms by ``torch.ops.multiscale.ani_radial`` (CPU; no second derivative);
    other devices run RadialTerms."""

    def __init__(self, params: AEVParameters):
        super().__init__()
        self.fallback = RadialTerms(params)
        self.ShfR: List[float] = list(params.ShfR)   # the operator takes a list of floats

    def forward(self, vectors: Tensor, row: Tensor, rows: int) -> Tensor:
        t = self.fallback
        if vectors.device.type != "cpu":
            return t(vectors, row, rows)
        return torch.ops.multiscale.ani_radial(vectors, row, rows, t.Rcr, t.EtaR, self.ShfR)


def _pair_index(n_elements: int) -> Tensor:
    """(n, n) int64: the angular block of unordered element pair {a, b}, upper-triangle order."""
    upper = torch.triu_indices(n_elements, n_elements)
    pair_index = torch.zeros((n_elements, n_elements), dtype=torch.long)
    pair_index[upper[0], upper[1]] = torch.arange(upper.shape[1])
    pair_index[upper[1], upper[0]] = torch.arange(upper.shape[1])
    return pair_index


class AngularTerms(torch.nn.Module):
    """ANI's angular terms of every triplet j-i-k, summed into blocks by centre and element
    pair, with torch operations (differentiable twice).

    forward(vectors (A, 3) Å: the edges with r < Rca, centre (A,) int64: each edge's centre
    row in [0, n_centres), species (A,) int64: its neighbour's element, n_centres) gives
    (n_centres * n_pairs, len(ShfA) * len(ShfZ)), pair blocks in upper-triangle order, each
    shift-major.
    """

    def __init__(self, params: AEVParameters, n_elements: int):
        super().__init__()
        self.params = params  # for native(); TorchScript uses the plain copies below
        self.n_elements = n_elements
        self.n_pairs = n_elements * (n_elements + 1) // 2
        self.register_buffer("pair_index", _pair_index(n_elements), persistent=False)
        self.Rca = params.Rca
        self.EtaA = params.EtaA
        self.Zeta = params.Zeta
        # float64 tensors kept out of buffers, so .to(float32) never rounds them
        self.ShfA = torch.tensor(params.ShfA, dtype=torch.float64)
        self.ShfZ = torch.tensor(params.ShfZ, dtype=torch.float64)

    def forward(self, vectors: Tensor, centre: Tensor, species: Tensor, n_centres: int) -> Tensor:
        dtype, device = vectors.dtype, vectors.device
        # each unordered pair of edges with one centre, once
        first, second = triplets(centre, torch.arange(centre.shape[0], device=device), n_centres)
        block = centre[first] * self.n_pairs + self.pair_index[species[first], species[second]]
        r = torch.linalg.vector_norm(vectors, dim=1)
        fc = 0.5 * torch.cos(r * (math.pi / self.Rca)) + 0.5
        # one gather per side: vector, length and cutoff of each triplet's two edges
        per_edge = torch.cat([vectors, r.unsqueeze(1), fc.unsqueeze(1)], dim=1)
        side1, side2 = per_edge.index_select(0, first), per_edge.index_select(0, second)
        r1, r2 = side1[:, 3], side2[:, 3]
        cos_theta = (side1[:, :3] * side2[:, :3]).sum(1) / torch.clamp(r1 * r2, min=1e-10)
        # cos(acos(c) - ShfZ) = c cos(ShfZ) + sqrt(1 - c^2) sin(ShfZ), c = 0.95 cos(theta)
        c = (0.95 * cos_theta).unsqueeze(1)
        shf_z = self.ShfZ.to(device=device, dtype=dtype)
        cos_shifted = c * torch.cos(shf_z) + torch.sqrt(1.0 - c * c) * torch.sin(shf_z)
        # 2 ((1 + cos) / 2)^Zeta, as exp(Zeta log(.)): cheaper than pow, forward and backward
        half = torch.clamp(0.5 * (1.0 + cos_shifted), min=1e-30)
        angle_part = 2.0 * _exp(self.Zeta * torch.log(half))
        shf_a = self.ShfA.to(device=device, dtype=dtype)
        mean_r = 0.5 * (r1 + r2)
        radial_part = (_exp(-self.EtaA * (mean_r.unsqueeze(1) - shf_a) ** 2)
                       * (side1[:, 4] * side2[:, 4]).unsqueeze(1))
        terms = (radial_part.unsqueeze(2) * angle_part.unsqueeze(1)).flatten(1)
        return scatter_sum(terms, block, n_centres * self.n_pairs)

    @torch.jit.unused
    def native(self, scripted: bool = True) -> "FusedAngularTerms":
        """The same terms by the native operator (``native_ops.fuse`` calls this)."""
        return FusedAngularTerms(self.params, self.n_elements)


class FusedAngularTerms(torch.nn.Module):
    """AngularTerms by the native operator ``torch.ops.multiscale.ani_angular`` (CPU: the
    triplets, their terms and the backward in one pass each; no second derivative).
    Other devices run AngularTerms. ``native_ops.load()`` must have run before scripting
    or loading a model that holds it (``native_ops.fuse`` and ``multiscale.load`` do)."""

    def __init__(self, params: AEVParameters, n_elements: int):
        super().__init__()
        self.fallback = AngularTerms(params, n_elements)
        self.ShfA: List[float] = list(params.ShfA)   # the operator takes lists of floats
        self.ShfZ: List[float] = list(params.ShfZ)

    def forward(self, vectors: Tensor, centre: Tensor, species: Tensor, n_centres: int) -> Tensor:
        t = self.fallback
        if vectors.device.type != "cpu":
            return t(vectors, centre, species, n_centres)
        return torch.ops.multiscale.ani_angular(vectors, centre, species, t.pair_index, n_centres,
                                                t.Rca, t.EtaA, t.Zeta, self.ShfA, self.ShfZ)


class AEVComputer(torch.nn.Module):
    """AEVs (n_local, length) of the local atoms from the contract's edges.

    params: AEVParameters; n_elements: number of elements species indexes.
    forward(species (n_all,) int64, edge_index (2, E) int64, edge_vectors (E, 3) Å, n_local)
    uses every edge whose centre is local; its neighbour may be a ghost.
    """

    def __init__(self, params: AEVParameters, n_elements: int):
        super().__init__()
        if n_elements < 1:
            raise ValueError(f"n_elements must be >= 1, got {n_elements}")
        self.params = params  # kept for Python users; TorchScript uses the plain copies below
        self.Rcr = params.Rcr
        self.Rca = params.Rca
        self.EtaR = params.EtaR
        # float64 tensors kept out of buffers, so .to(float32) never rounds them; forward
        # casts them (TorchScript's torch.tensor(List[float]) would round through float32)
        self.ShfR = torch.tensor(params.ShfR, dtype=torch.float64)
        # the angular constants again, for readers of a file (transfer learning)
        self.EtaA = params.EtaA
        self.Zeta = params.Zeta
        self.ShfA = torch.tensor(params.ShfA, dtype=torch.float64)
        self.ShfZ = torch.tensor(params.ShfZ, dtype=torch.float64)
        self._owners(params, n_elements)
        self.radial: torch.nn.Module = RadialTerms(params)
        self.angular: torch.nn.Module = AngularTerms(params, n_elements)
        self.n_elements = n_elements
        self.n_pairs = n_elements * (n_elements + 1) // 2
        self.radial_length = n_elements * len(params.ShfR)
        self.angular_length = self.n_pairs * len(params.ShfA) * len(params.ShfZ)
        self.length = self.radial_length + self.angular_length

    def forward(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                n_local: int, rank: Optional[Tensor] = None) -> Tensor:
        """rank: (n_local,) int64, the output row of each local atom (default: its index)."""
        n_el = self.n_elements
        i, j = edge_index[0], edge_index[1]
        r = torch.linalg.vector_norm(edge_vectors.detach(), dim=1)  # selects; terms get their own
        keep = torch.nonzero((i < n_local) & (r < self.Rcr)).squeeze(1)
        i, r, vectors = i[keep], r[keep], edge_vectors[keep]
        sj = species[j[keep]]
        if rank is not None:
            i = rank[i]

        radial = self.radial(vectors, i * n_el + sj, n_local * n_el)

        # angular: each unordered pair of edges j-i-k with both r < Rca, once
        near = torch.nonzero(r < self.Rca).squeeze(1)
        angular = self.angular(vectors[near], i[near], sj[near], n_local)
        return torch.cat([radial.reshape(n_local, self.radial_length),
                          angular.reshape(n_local, self.angular_length)], dim=1)

    @torch.jit.unused
    def _owners(self, params: AEVParameters, n_elements: int) -> None:
        """Buffers: the element of each radial feature, the element pair of each angular one."""
        n_radial, n_angular = len(params.ShfR), len(params.ShfA) * len(params.ShfZ)
        upper = torch.triu_indices(n_elements, n_elements)
        self.register_buffer("radial_owner", torch.arange(n_elements).repeat_interleave(n_radial),
                             persistent=False)
        self.register_buffer("angular_owners", upper.repeat_interleave(n_angular, dim=1), persistent=False)

    def live_columns(self, species: Tensor) -> Tensor:
        """(L',) int64: the AEV features that can be non-zero for a system of ``species``
        (n_all,): radial blocks of the elements present, angular blocks of pairs of them."""
        present = torch.zeros(self.n_elements, dtype=torch.long, device=species.device).index_add_(
            0, species, torch.ones_like(species)) > 0
        live = torch.cat([present[self.radial_owner],
                          present[self.angular_owners[0]] & present[self.angular_owners[1]]])
        return torch.nonzero(live).squeeze(1)

    @torch.jit.unused
    def upgrade_unscripted(self) -> None:
        """Files written before the radial and angular terms became submodules hold their
        constants on this module only: rebuild the submodules from them (unscript calls this)."""
        if "radial" in self._modules:
            return
        self.params = AEVParameters(Rcr=self.Rcr, Rca=self.Rca, EtaR=self.EtaR, ShfR=self.ShfR.tolist(),
                                    EtaA=self.EtaA, Zeta=self.Zeta, ShfA=self.ShfA.tolist(),
                                    ShfZ=self.ShfZ.tolist())
        self._owners(self.params, self.n_elements)
        self.radial = RadialTerms(self.params)
        self.angular = AngularTerms(self.params, self.n_elements)

    def by_element(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                   n_local: int) -> Tuple[List[Tensor], List[Tensor]]:
        """(groups, inputs): the local atoms of each element, (n_k,) int64, and their AEVs
        (n_k, length), for one network per element.

        TorchScript computes the AEV rows already sorted by element and splits them, so the
        backward joins the pieces in one buffer (gathering each element's rows would fill one
        AEV-sized buffer per element, a tenth of an ANI-1x call).  torch.export cannot split
        on data-dependent sizes, and Python (training) needs no speed: they gather.
        """
        local = species[:n_local]
        if torch.jit.is_scripting():
            order = torch.argsort(local, stable=True)
            rank = torch.empty_like(order)
            rank[order] = torch.arange(n_local, device=local.device)
            sizes: List[int] = torch.bincount(local, minlength=self.n_elements).tolist()
            aev = self.forward(species, edge_index, edge_vectors, n_local, rank)
            return list(torch.split(order, sizes)), list(torch.split(aev, sizes))
        aev = self.forward(species, edge_index, edge_vectors, n_local)
        groups = [torch.nonzero(local == k).squeeze(1) for k in range(self.n_elements)]
        return groups, [aev.index_select(0, atoms) for atoms in groups]

