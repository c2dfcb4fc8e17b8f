"""ANI element networks in their inference form: the members of an ensemble stacked, the
first layer over only the AEV features this system can make non-zero.

The training form (``ani.AtomicNetworks``, one per member) runs, per element and member,
a chain of small products: an ANI-2x ensemble of 8 makes ~400 of them per call forward and
as many backward, most on a few dozen atoms.  Here, per element, the 8 first layers are one
product (n, L') x (L', 8 h1) and the deeper layers one batched product each (bmm), as
torchani's ``to_infer_model`` does.  L' < L: the AEV features of an element that is absent
from the system (radial blocks of S, F, Cl in a CHNO molecule; angular blocks of pairs with
one of them) are exactly zero, so their columns of the first layer are skipped: 62 % of
ANI-2x's first-layer work for organic CHNO systems, and the result is the same.  TorchScript
keeps the columns it gathered while the system's elements stay the same.

``ANIModel.native()`` / ``ANIEnsemble.native()`` build an :class:`ANIInference`;
``native_ops.fuse`` (``multiscale.export``) calls them for TorchScript files (AOTInductor
cannot lower the batched products on data-dependent sizes: ``.pt2`` files keep the training
form, with the native AEV; a TorchScript file in this form is compiled one member at a time,
``StackedElement.per_member``).  Training uses the training form.
"""

from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from .aev import AEVComputer


class StackedLayer(torch.nn.Module):
    """One hidden or output layer of M members: (M, n, in) -> (M, n, out)."""

    def __init__(self, weights: Sequence[Tensor], biases: Sequence[Tensor]):
        super().__init__()
        self.register_buffer("weight", torch.stack([w.detach().t() for w in weights]))     # (M, in, out)
        self.register_buffer("bias", torch.stack([b.detach() for b in biases]).unsqueeze(1))  # (M, 1, out)

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class StackedElement(torch.nn.Module):
    """The networks of one element in all M members; forward((n, L') AEVs, columns (L',))
    gives (M, n) atomic energies, eV."""

    def __init__(self, networks: Sequence[torch.nn.Sequential]):
        super().__init__()
        linears = [[m for m in net if isinstance(m, torch.nn.Linear)] for net in networks]
        self.members = len(networks)
        first = [layers[0] for layers in linears]
        self.width = first[0].out_features
        self.register_buffer("first_weight", torch.cat([f.weight.detach() for f in first]))   # (M h1, L)
        self.register_buffer("first_bias", torch.cat([f.bias.detach() for f in first]))       # (M h1,)
        self.layers = torch.nn.ModuleList([
            StackedLayer([layers[k].weight for layers in linears], [layers[k].bias for layers in linears])
            for k in range(1, len(linears[0]))])
        self.activation = copy.deepcopy(next(m for m in networks[0] if not isinstance(m, torch.nn.Linear)))
        # CELU's alpha where the activation is CELU (ANI's): those run multiscale::ani_networks
        self.alpha = float(self.activation.alpha) if isinstance(self.activation, torch.nn.CELU) else -1.0
        # the first layer's columns last gathered, and which
        self.kept_columns = torch.zeros(0, dtype=torch.long)
        self.kept_weight = torch.zeros(0)

    def first_layer_weight(self, columns: Tensor) -> Tensor:
        """(M h1, L') the first layer's weights on ``columns``, gathered once per column set
        (and multiplied transposed: MKL's faster layout for these shapes).  TorchScript only:
        Python and torch.export take ``per_member``."""
        kept = self.kept_columns
        if (kept.shape[0] != columns.shape[0] or kept.device != columns.device
                or self.kept_weight.dtype != self.first_weight.dtype or not bool(torch.equal(kept, columns))):
            self.kept_weight = self.first_weight.index_select(1, columns)
            self.kept_columns = columns.clone()
        return self.kept_weight

    @torch.jit.unused
    def per_member(self, x: Tensor) -> Tensor:
        """(M, n) from all L AEV columns, one member at a time: what torch.export traces (the
        batched products and a data-dependent column count do not lower in AOTInductor)."""
        out = []
        for m in range(self.members):
            rows = slice(m * self.width, (m + 1) * self.width)
            h = self.act(torch.addmm(self.first_bias[rows], x, self.first_weight[rows].t()))
            for k, layer in enumerate(self.layers):
                if k > 0:
                    h = self.act(h)
                h = torch.addmm(layer.bias[m, 0], h, layer.weight[m])
            out.append(h.squeeze(1))
        return torch.stack(out)

    @torch.jit.unused
    def act(self, h: Tensor) -> Tensor:
        """The activation; CELU written out, so that its derivative is exact like the native
        operator's (torch's own CELU backward rounds 1/alpha to float32)."""
        if self.alpha <= 0.0:
            return self.activation(h)
        return torch.where(h > 0, h, self.alpha * torch.expm1(torch.clamp(h, max=0.0) / self.alpha))

    def forward(self, x: Tensor, columns: Tensor) -> Tensor:
        if not torch.jit.is_scripting():   # Python: torch.export's trace of a compiled file
            return self.per_member(x)
        x = x.index_select(1, columns)
        if self.alpha > 0.0 and x.device.type == "cpu":   # CELU networks: the native operator
            weights: List[Tensor] = []
            biases: List[Tensor] = []
            for layer in self.layers:
                weights.append(layer.weight)
                biases.append(layer.bias)
            return torch.ops.multiscale.ani_networks(x, self.first_layer_weight(columns), self.first_bias,
                                                     weights, biases, self.alpha)
        n = x.shape[0]
        h = torch.addmm(self.first_bias, x, self.first_layer_weight(columns).t())
        h = self.activation(h).view(n, self.members, self.width).transpose(0, 1)   # (M, n, h1)
        for k, layer in enumerate(self.layers):
            if k > 0:
                h = self.activation(h)
            h = layer(h)
        return h.squeeze(2)


class StackedNetworks(torch.nn.Module):
    """The element networks of M members (``ani.AtomicNetworks`` each, same layer widths)
    stacked; forward(inputs, species, groups, columns) gives (M, n) per-atom energies, eV,
    self energies included."""

    def __init__(self, members: Sequence[torch.nn.Module]):
        super().__init__()
        members = list(members)
        self.elements = torch.nn.ModuleList([
            StackedElement([m.networks[k] for m in members]) for k in range(len(members[0].networks))])
        self.self_energies = torch.stack([m.self_energies for m in members])   # (M, n_el) float64

    def forward(self, inputs: List[Tensor], species: Tensor, groups: List[Tensor], columns: Tensor) -> Tensor:
        energies = self.self_energies.to(device=species.device, dtype=inputs[0].dtype)[:, species]
        for k, element in enumerate(self.elements):
            energies = energies.index_add(1, groups[k], element(inputs[k], columns))
        return energies


def stackable(members: Sequence[torch.nn.Module]) -> bool:
    """Whether members' networks can be stacked: the same layer widths and activation, and
    at least one hidden layer."""
    def shape(m):
        return [[(type(x).__name__, getattr(x, "in_features", None), getattr(x, "out_features", None),
                  float(getattr(x, "alpha", 0.0))) for x in net] for net in m.networks]
    first = shape(members[0])
    return all(len(net) >= 3 for net in first) and all(shape(m) == first for m in members[1:])


class ANIInference(torch.nn.Module):
    """An ANI model or ensemble for inference: its AEV (native terms after
    ``native_ops.fuse``), stacked element networks over the live AEV columns, its ZBL core.

    forward gives the members' mean energies; member_energies each member's, (M, n_local) eV.
    """

    def __init__(self, aev: AEVComputer, members: Sequence[torch.nn.Module],
                 repulsion: Optional[torch.nn.Module]):
        super().__init__()
        self.aev = copy.deepcopy(aev)
        self.networks = StackedNetworks(members)
        self.repulsion = copy.deepcopy(repulsion)

    @torch.jit.export
    def member_energies(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                        n_local: int) -> Tensor:
        """Per-atom energies of every member, (n_members, n_local) eV."""
        groups, inputs = self.aev.by_element(species, edge_index, edge_vectors, n_local)
        # the live columns (TorchScript); torch.export traces every column (StackedElement.per_member)
        columns = self.aev.live_columns(species) if torch.jit.is_scripting() else species[:0]
        each = self.networks(inputs, species[:n_local], groups, columns)
        if self.repulsion is not None:
            each = each + self.repulsion.atom_energies(species, edge_index, edge_vectors, n_local)
        return each

    def forward(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                charge: float = 0.0, spin: int = 1) -> Dict[str, Tensor]:
        return {"energies": self.member_energies(species, edge_index, edge_vectors, n_local).mean(0)}


def unstack(networks) -> List[dict]:
    """Each member of a (Python or TorchScript) StackedNetworks as plain values: per member
    {"hidden": [widths per element], "activation": module, "state": AtomicNetworks state
    dict, "self_energies": (n_el,) float64}: what training needs to rebuild it."""
    out = []
    members = int(networks.self_energies.shape[0])
    for m in range(members):
        hidden, state = [], {}
        activation = None
        for k, element in enumerate(networks.elements.children()):
            width = int(element.width)
            rows = slice(m * width, (m + 1) * width)
            state[f"networks.{k}.0.weight"] = element.first_weight[rows].clone()
            state[f"networks.{k}.0.bias"] = element.first_bias[rows].clone()
            widths = [width]
            for j, layer in enumerate(element.layers.children(), 1):
                state[f"networks.{k}.{2 * j}.weight"] = layer.weight[m].t().clone()
                state[f"networks.{k}.{2 * j}.bias"] = layer.bias[m, 0].clone()
                widths.append(int(layer.weight.shape[2]))
            hidden.append(widths[:-1])
            activation = element.activation
        out.append({"hidden": hidden, "activation": activation, "state": state,
                    "self_energies": networks.self_energies[m].clone()})
    return out
