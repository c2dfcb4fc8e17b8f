"""ANI neural network potentials (Smith, Isayev, Roitberg 2017) under the model contract.

E = sum_i [ NN_{Z_i}(G_i) + E_self(Z_i) ]: each local atom's AEV G_i (see ``aev.py``) goes
through the multilayer perceptron of its element. Energies are in eV (torchani works in
Hartree; :func:`from_torchani` converts). ``ANIEnsemble`` averages several models on one
shared AEV and exports ``member_energies`` for query-by-committee active learning.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor

from ..model.contract import ModelMetadata
from .aev import ANI1X_ELEMENTS, ANI2X_ELEMENTS, AEVComputer, AEVParameters
from .repulsion import ZBL, build_repulsion, describe as _core

CITATION = ("J. S. Smith, O. Isayev and A. E. Roitberg, ANI-1: an extensible neural network "
            "potential with DFT accuracy at force field computational cost, "
            "Chem. Sci. 8, 3192 (2017)")

# hidden layer widths of torchani's ANI-1x and ANI-2x element networks
ANI1X_HIDDEN = {"H": (160, 128, 96), "C": (144, 112, 96), "N": (128, 112, 96), "O": (128, 112, 96)}
ANI2X_HIDDEN = {"H": (256, 192, 160), "C": (224, 192, 160), "N": (192, 160, 128),
                "O": (192, 160, 128), "S": (160, 128, 96), "F": (160, 128, 96), "Cl": (160, 128, 96)}

Hidden = Union[Sequence[int], Mapping[str, Sequence[int]]]


def _mlp(n_in: int, hidden: Sequence[int], activation: torch.nn.Module) -> torch.nn.Sequential:
    layers: List[torch.nn.Module] = []
    for width in hidden:
        layers += [torch.nn.Linear(n_in, int(width)), copy.deepcopy(activation)]
        n_in = int(width)
    layers.append(torch.nn.Linear(n_in, 1))
    return torch.nn.Sequential(*layers)


class AtomicNetworks(torch.nn.Module):
    """One MLP per element, AEV -> atomic energy in eV, plus each element's self energy (eV)."""

    def __init__(self, aev_length: int, hidden: Sequence[Sequence[int]], activation: torch.nn.Module,
                 self_energies: Sequence[float]):
        super().__init__()
        self.networks = torch.nn.ModuleList([_mlp(aev_length, h, activation) for h in hidden])
        # a float64 tensor kept out of buffers, so converting the model to float32 and back
        # never rounds it (TorchScript's torch.tensor(List[float]) would round through float32)
        self.self_energies = torch.tensor([float(e) for e in self_energies], dtype=torch.float64)

    def forward(self, inputs: List[Tensor], species: Tensor, groups: List[Tensor]) -> Tensor:
        """Per-atom energies (n,) eV. species: (n,); groups: each element's atoms (AEVComputer.by_element);
        inputs[k]: the AEVs of the atoms groups[k], (len(groups[k]), length)."""
        energies = self.self_energies.to(device=species.device, dtype=inputs[0].dtype)[species]
        for k, network in enumerate(self.networks):
            # no branch on an empty group (an empty matmul costs nothing): torch.export traces
            # the loop without guarding on a data-dependent size
            energies = energies.index_add(0, groups[k], network(inputs[k]).squeeze(1))
        return energies


def _dtype_name(module: torch.nn.Module) -> str:
    return "float64" if next(module.parameters()).dtype == torch.float64 else "float32"


class ANIModel(torch.nn.Module):
    """An ANI potential: AEVs, one MLP per element, self energies; eV and Å.

    elements:      chemical symbols in the order ``species`` indexes them
    aev_params:    AEVParameters (``AEVParameters.ani1x()``, ``.ani2x()`` or your own)
    hidden:        hidden layer widths, one tuple for every element or a dict per element
    self_energies: {element: eV} added to every atom of that element; None for zeros
    activation:    module between layers; default CELU(alpha=0.1) as in ANI
    seed:          seed for the random initial weights (the global generator is left alone)
    repulsion:     a ZBL core added to the networks' energies (``repulsion.ZBL`` or a table
                   {inner, outer} in Å), or None
    """

    def __init__(self, elements: Sequence[str], aev_params: AEVParameters, hidden: Hidden = (160, 128, 96),
                 self_energies: Optional[Mapping[str, float]] = None,
                 activation: Optional[torch.nn.Module] = None, seed: Optional[int] = None,
                 repulsion: Union[ZBL, Mapping[str, Any], None] = None):
        super().__init__()
        self.elements: List[str] = list(elements)
        if not self.elements or len(set(self.elements)) != len(self.elements):
            raise ValueError(f"elements must be distinct chemical symbols, got {self.elements}")
        if isinstance(hidden, Mapping):
            missing = [el for el in self.elements if el not in hidden]
            if missing:
                raise ValueError(f"hidden gives no layer widths for element(s) {missing}")
            widths = [tuple(int(w) for w in hidden[el]) for el in self.elements]
        else:
            widths = [tuple(int(w) for w in hidden)] * len(self.elements)
        if any(w < 1 for h in widths for w in h):
            raise ValueError(f"hidden layer widths must be positive integers, got {widths}")
        self_energies = dict(self_energies or {el: 0.0 for el in self.elements})
        missing = [el for el in self.elements if el not in self_energies]
        if missing:
            raise ValueError(f"self_energies gives no value for element(s) {missing}")
        self.hidden = widths
        self.cutoff = aev_params.cutoff
        self.aev = AEVComputer(aev_params, len(self.elements))
        activation = torch.nn.CELU(0.1) if activation is None else activation
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.networks = AtomicNetworks(self.aev.length, widths, activation,
                                           [self_energies[el] for el in self.elements])
        self.repulsion = build_repulsion(self.elements, repulsion)

    def set_self_energies(self, values: Sequence[float]) -> None:
        """Per-element self energies in eV, in the order of ``elements`` (training starts here)."""
        if len(values) != len(self.elements):
            raise ValueError(f"{len(values)} self energies for {len(self.elements)} elements")
        self.networks.self_energies = torch.tensor([float(v) for v in values], dtype=torch.float64)

    @classmethod
    def like_ani1x(cls, seed: Optional[int] = None, **kwargs) -> "ANIModel":
        """ANI-1x's elements, AEV and layer widths (384 -> 160/144/128 -> ... -> 1), random weights."""
        return cls(ANI1X_ELEMENTS, AEVParameters.ani1x(), ANI1X_HIDDEN, seed=seed, **kwargs)

    @classmethod
    def like_ani2x(cls, seed: Optional[int] = None, **kwargs) -> "ANIModel":
        """ANI-2x's elements, AEV and layer widths (1008 -> 256/224/... -> 1), random weights."""
        return cls(ANI2X_ELEMENTS, AEVParameters.ani2x(), ANI2X_HIDDEN, seed=seed, **kwargs)

    def metadata(self) -> ModelMetadata:
        p = self.aev.params
        layers = ", ".join(f"{el} {'-'.join(map(str, (self.aev.length,) + h + (1,)))}"
                           for el, h in zip(self.elements, self.hidden))
        return ModelMetadata(
            name="ani", elements=tuple(self.elements), cutoff=self.cutoff, hops=1,
            dtype=_dtype_name(self), citation=CITATION,
            description=f"ANI: {self.aev.length} AEV features (Rcr {p.Rcr} Å, Rca {p.Rca} Å), "
                        f"element networks {layers}{_core(self.repulsion)}; energies in eV")

    @torch.jit.unused
    def native(self, scripted: bool = True) -> torch.nn.Module:
        """The inference form (stacked.ANIInference; ``native_ops.fuse`` calls this), for
        TorchScript: AOTInductor cannot lower its batched products on data-dependent sizes."""
        return _inference(self, [self.networks]) if scripted else self

    def forward(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                charge: float = 0.0, spin: int = 1) -> Dict[str, Tensor]:
        local = species[:n_local]
        groups, inputs = self.aev.by_element(species, edge_index, edge_vectors, n_local)
        energies = self.networks(inputs, local, groups)
        if self.repulsion is not None:
            energies = energies + self.repulsion.atom_energies(species, edge_index, edge_vectors, n_local)
        return {"energies": energies}


class ANIEnsemble(torch.nn.Module):
    """The mean of several ANI models that share elements and AEV parameters; eV and Å.

    The AEV is computed once for all members. ``member_energies`` (exported with the
    model) gives each member's per-atom energies, (n_members, n_local), for the committee
    disagreement std_m(E_m) / sqrt(N) that selects new training data.
    """

    def __init__(self, members: Sequence[ANIModel]):
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("an ANIEnsemble needs at least one member")
        first = members[0]
        for k, m in enumerate(members[1:], 1):
            if m.elements != first.elements:
                raise ValueError(f"member {k} has elements {m.elements}, member 0 {first.elements}")
            if m.aev.params != first.aev.params:
                raise ValueError(f"member {k} has other AEV parameters than member 0")
            if _dtype_name(m) != _dtype_name(first):
                raise ValueError(f"member {k} is {_dtype_name(m)}, member 0 {_dtype_name(first)}")
            if _core(m.repulsion) != _core(first.repulsion):
                raise ValueError(f"member {k} has another repulsive core than member 0")
        self.elements: List[str] = list(first.elements)
        self.cutoff = first.cutoff
        self.aev = copy.deepcopy(first.aev)
        self.members = torch.nn.ModuleList([m.networks for m in members])
        self.repulsion = copy.deepcopy(first.repulsion)

    def metadata(self) -> ModelMetadata:
        p = self.aev.params
        return ModelMetadata(
            name="ani-ensemble", elements=tuple(self.elements), cutoff=self.cutoff, hops=1,
            dtype=_dtype_name(self), citation=CITATION,
            description=f"ensemble of {len(self.members)} ANI models on one AEV of "
                        f"{self.aev.length} features (Rcr {p.Rcr} Å, Rca {p.Rca} Å)"
                        f"{_core(self.repulsion)}; energies "
                        f"are the members' mean, member_energies() gives each; eV")

    @torch.jit.unused
    def native(self, scripted: bool = True) -> torch.nn.Module:
        """The inference form (stacked.ANIInference; ``native_ops.fuse`` calls this), for
        TorchScript: AOTInductor cannot lower its batched products on data-dependent sizes."""
        return _inference(self, list(self.members)) if scripted else self

    @torch.jit.export
    def member_energies(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                        n_local: int) -> Tensor:
        """Per-atom energies of every member, (n_members, n_local) eV."""
        local = species[:n_local]
        groups, inputs = self.aev.by_element(species, edge_index, edge_vectors, n_local)
        each = torch.stack([member(inputs, local, groups) for member in self.members])
        if self.repulsion is not None:
            each = each + self.repulsion.atom_energies(species, edge_index, edge_vectors, n_local)
        return each

    def forward(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                charge: float = 0.0, spin: int = 1) -> Dict[str, Tensor]:
        return {"energies": self.member_energies(species, edge_index, edge_vectors, n_local).mean(0)}


def _inference(model: torch.nn.Module, members: list) -> torch.nn.Module:
    from .stacked import ANIInference, stackable
    if not stackable(members):
        return model
    return ANIInference(model.aev, members, model.repulsion)


def build_ani(elements: Sequence[str], aev: Union[str, Mapping[str, Any]] = "ani1x",
              hidden: Hidden = (160, 128, 96), self_energies: Optional[Mapping[str, float]] = None,
              seed: Optional[int] = None, repulsion: Optional[Mapping[str, Any]] = None) -> ANIModel:
    """An ANIModel from plain values, as a TOML ``[model]`` table gives them.

    aev: "ani1x", "ani2x", a table of AEVParameters fields (Rcr, Rca, EtaR, ShfR, EtaA, Zeta,
    ShfA, ShfZ) or of ``AEVParameters.evenly`` arguments (Rcr, Rca, EtaR, n_radial, EtaA,
    Zeta, n_angular, n_sections, start); hidden, self_energies (eV), seed: as ANIModel;
    repulsion: a table {inner, outer} in Å for a ZBL core (``repulsion.py``).
    """
    if isinstance(aev, str):
        makers = {"ani1x": AEVParameters.ani1x, "ani2x": AEVParameters.ani2x}
        if aev not in makers:
            raise ValueError(f"aev must be one of {sorted(makers)} or a table of parameters, got {aev!r}")
        params = makers[aev]()
    else:
        table = dict(aev)
        explicit = "ShfR" in table
        make = AEVParameters if explicit else AEVParameters.evenly
        try:
            params = make(**table)
        except TypeError as exc:
            fields = ("Rcr, Rca, EtaR, ShfR, EtaA, Zeta, ShfA, ShfZ" if explicit else
                      "Rcr, Rca, EtaR, n_radial, EtaA, Zeta, n_angular, n_sections[, start]")
            raise ValueError(f"aev table {sorted(table)} does not fit ({exc}); give {fields}") from None
    return ANIModel(elements, params, hidden, self_energies, seed=seed, repulsion=repulsion)


def from_torchani(model) -> Union[ANIModel, ANIEnsemble]:
    """Our model with the weights of a torchani ``ANI`` model (e.g. ``torchani.models.ANI2x()``).

    Energies are converted from Hartree to eV (ase.units.Hartree, torchani's own constant)
    by scaling each network's last layer and the self energies. An ensemble gives an
    ANIEnsemble. Only ANI's standard radial and angular terms with the cosine cutoff and
    no extra potentials (repulsion, dispersion) are supported.
    """
    from ase.units import Hartree
    from torchani.aev import ANIAngular, ANIRadial
    from torchani.cutoffs import CutoffCosine
    from torchani.nn import Ensemble
    from torchani.nn._core import TightCELU

    aev = model.aev_computer
    radial, angular = aev.radial, aev.angular
    if type(radial) is not ANIRadial or type(angular) is not ANIAngular \
            or not isinstance(radial.cutoff_fn, CutoffCosine):
        raise ValueError("from_torchani supports ANI's standard AEV (ANIRadial, ANIAngular, "
                         "cosine cutoff) only")
    extra = [name for name in model.potentials.keys() if name != "nnp"]
    if extra:
        raise ValueError(f"from_torchani: the model has extra potentials {extra} that ANIModel lacks")
    params = AEVParameters(Rcr=radial.cutoff, Rca=angular.cutoff, EtaR=float(radial.eta),
                           ShfR=radial.shifts.tolist(), EtaA=float(angular.eta),
                           Zeta=float(angular.zeta), ShfA=angular.shifts.tolist(),
                           ShfZ=angular.sections.tolist())
    elements = list(model.symbols)
    self_energies = {el: float(e) * Hartree
                     for el, e in zip(elements, model.energy_shifter.self_energies.tolist())}
    networks = model.neural_networks
    containers = list(networks.members) if isinstance(networks, Ensemble) else [networks]
    members = []
    for container in containers:
        nets = [container.atomics[el] for el in elements]
        act = nets[0].activation
        activation = torch.nn.CELU(0.1) if isinstance(act, TightCELU) else copy.deepcopy(act)
        hidden = {el: [layer.out_features for layer in net.layers] for el, net in zip(elements, nets)}
        ours = ANIModel(elements, params, hidden, self_energies, activation)
        dtype = next(container.parameters()).dtype
        ours.to(dtype)
        with torch.no_grad():
            for theirs, mine in zip(nets, ours.networks.networks):
                linears = [m for m in mine if isinstance(m, torch.nn.Linear)]
                sources = list(theirs.layers) + [theirs.final_layer]
                for n, (src, dst) in enumerate(zip(sources, linears)):
                    scale = Hartree if n == len(sources) - 1 else 1.0
                    dst.weight.copy_(src.weight * scale)
                    dst.bias.copy_(src.bias * scale if src.bias is not None else 0.0)
        members.append(ours)
    return members[0] if len(members) == 1 else ANIEnsemble(members)


def committee_disagreement(member_energies: Tensor) -> float:
    """ANI's query-by-committee score in eV: the (unbiased) std over members of the total
    energies divided by sqrt(N atoms), as torchani's ``energies_qbcs``; 0 for one member.

    member_energies: (n_members, N) eV, from ``ANIEnsemble.member_energies``.
    """
    if member_energies.shape[0] < 2:
        return 0.0
    totals = member_energies.detach().double().sum(1)
    return float(totals.std() / math.sqrt(member_energies.shape[1]))
