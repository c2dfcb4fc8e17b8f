"""An equivariant transformer potential (TorchMD-Net's ET, Thölke & De Fabritiis, ICLR 2022).

Atoms carry scalar features x (n, F) and vector features v (n, 3, F). Each layer lets every
atom attend to its neighbours within the cutoff (and to itself): per head, the weight of
neighbour j for atom i is silu(sum_d q_i k_j dk(r_ij)) with distance-dependent keys dk; the
values, scaled by distance filters dv(r_ij), update x and v (v also along the bond
direction). There is no softmax over neighbours, so energies stay local and size-extensive.

Smoothness: every value that crosses an edge is multiplied by the cosine cutoff
(TorchMD-Net's ``vector_cutoff=True``): the original ET cut off only the attention weights,
so the vector path (v_j dv and the bond-direction term) jumped at the cutoff. Energies are
C1 in the positions (the cosine cutoff and its slope vanish at r_c).

Layer by layer the same operations as ``torchmdnet.models.torchmd_et.TorchMD_ET`` (with
``vector_cutoff=True``, ``distance_influence="both"``, expnorm RBFs, neighbour embedding)
and its ``Scalar`` head, written here on our edge contract (centre i = row 0, r_j - r_i) so
that engines supply edges and ghosts; :func:`from_torchmdnet` copies a TorchMD-Net model's
weights and tests/test_attention.py checks the outputs agree. Written by hand because
torchmd-net's module computes its own neighbour list from positions, which LAMMPS and
OpenMM domains cannot hand it.
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence

import torch
from torch import Tensor

from ..model.contract import ModelMetadata
from .graph import scatter_sum
from .atom_terms import AtomTerms
from .repulsion import describe


def cosine_cutoff(r: Tensor, cutoff: float) -> Tensor:
    """0.5 (cos(pi r / r_c) + 1) for r < r_c, else 0: value and slope vanish at r_c."""
    return 0.5 * (torch.cos(r * (math.pi / cutoff)) + 1.0) * (r < cutoff)


class ExpNormalBasis(torch.nn.Module):
    """(E,) distances in Å -> (E, n) PhysNet exp-normal functions times the cosine cutoff:
    exp(-beta_k (exp(-alpha r) - mu_k)^2), alpha = 5 / r_c; mu and beta trainable."""

    def __init__(self, cutoff: float, n: int):
        super().__init__()
        self.cutoff = float(cutoff)
        self.alpha = 5.0 / self.cutoff
        start = math.exp(-self.cutoff)
        self.means = torch.nn.Parameter(torch.linspace(start, 1.0, n))
        self.betas = torch.nn.Parameter(torch.full((n,), (2.0 / n * (1.0 - start)) ** -2))

    def forward(self, r: Tensor) -> Tensor:
        r = r.unsqueeze(-1)
        return cosine_cutoff(r, self.cutoff) * torch.exp(
            -self.betas * (torch.exp(-self.alpha * r) - self.means) ** 2)


class NeighbourEmbedding(torch.nn.Module):
    """x_i <- W [x_i, sum_j (filter(r_ij) cutoff(r_ij)) * e(z_j)]: a second element embedding
    of the neighbours, weighted by distance filters (ET paper eq. 3)."""

    def __init__(self, n_elements: int, features: int, n_rbf: int):
        super().__init__()
        self.embedding = torch.nn.Embedding(n_elements, features)
        self.distance_proj = torch.nn.Linear(n_rbf, features)
        self.combine = torch.nn.Linear(2 * features, features)

    def forward(self, species: Tensor, x: Tensor, i: Tensor, j: Tensor, cut: Tensor, rbf: Tensor) -> Tensor:
        weights = self.distance_proj(rbf) * cut.unsqueeze(1)
        around = scatter_sum(weights * self.embedding(species)[j], i, x.shape[0])
        return self.combine(torch.cat([x, around], dim=1))


class EquivariantAttention(torch.nn.Module):
    """One ET layer: (x (n, F), v (n, 3, F)) -> (dx, dv) and the attention weights (E, H).

    Edges include one self-loop per atom (r = 0, no direction), as in TorchMD-Net; ``cut``
    (E,) is the cosine cutoff of each edge, ``rbf`` (E, n_rbf) its radial functions.
    """

    def __init__(self, features: int, heads: int, n_rbf: int):
        super().__init__()
        if features % heads:
            raise ValueError(f"features ({features}) must be a multiple of heads ({heads})")
        self.features, self.heads, self.head_dim = features, heads, features // heads
        self.layernorm = torch.nn.LayerNorm(features)
        self.q_proj = torch.nn.Linear(features, features)
        self.k_proj = torch.nn.Linear(features, features)
        self.v_proj = torch.nn.Linear(features, 3 * features)
        self.o_proj = torch.nn.Linear(features, 3 * features)
        self.vec_proj = torch.nn.Linear(features, 3 * features, bias=False)
        self.dk_proj = torch.nn.Linear(n_rbf, features)
        self.dv_proj = torch.nn.Linear(n_rbf, 3 * features)
        for layer in (self.q_proj, self.k_proj, self.v_proj, self.o_proj, self.dk_proj, self.dv_proj):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
        torch.nn.init.xavier_uniform_(self.vec_proj.weight)

    def forward(self, x: Tensor, vec: Tensor, i: Tensor, j: Tensor, cut: Tensor, rbf: Tensor,
                direction: Tensor):
        n, F, H, D = x.shape[0], self.features, self.heads, self.head_dim
        x = self.layernorm(x)
        q = self.q_proj(x).reshape(n, H, D)
        k = self.k_proj(x).reshape(n, H, D)
        v = self.v_proj(x).reshape(n, H, 3 * D)
        vec1, vec2, vec3 = torch.split(self.vec_proj(vec), F, dim=-1)
        vec_dot = (vec1 * vec2).sum(dim=1)

        dk = torch.nn.functional.silu(self.dk_proj(rbf)).reshape(-1, H, D)
        dv = torch.nn.functional.silu(self.dv_proj(rbf)).reshape(-1, H, 3 * D)
        attention = torch.nn.functional.silu((q[i] * k[j] * dk).sum(dim=-1))  # (E, H)
        values = v[j] * dv * cut.reshape(-1, 1, 1)  # every value crossing the edge is cut off
        x_msg, vec1_msg, vec2_msg = torch.split(values, D, dim=2)
        x_msg = x_msg * attention.unsqueeze(2)
        vec_msg = (vec.reshape(n, 3, H, D)[j] * vec1_msg.unsqueeze(1)
                   + vec2_msg.unsqueeze(1) * direction.reshape(-1, 3, 1, 1))
        x_new = scatter_sum(x_msg.reshape(-1, F), i, n)
        vec_new = scatter_sum(vec_msg.reshape(-1, 3 * F), i, n).reshape(n, 3, F)

        o1, o2, o3 = torch.split(self.o_proj(x_new), F, dim=1)
        return vec_dot * o2 + o3, vec3 * o1.unsqueeze(1) + vec_new, attention * cut.unsqueeze(1)


class EquivariantTransformer(torch.nn.Module):
    """Per-atom energies (eV) from ``layers`` equivariant attention layers; Å.

    An atom's energy depends on atoms up to ``layers + 1`` cutoffs away (the neighbour
    embedding, then each layer): ``hops = layers + 1`` sizes the engines' ghost shell.

    elements: chemical symbols; cutoff: Å; features: F (a multiple of heads); n_rbf: radial
    functions; repulsion: a ZBL core (``repulsion.ZBL`` or {inner, outer} in Å).  Outputs
    ``energies`` (n_local,) and ``attention`` (n_edges, layers, heads): the weight each edge
    (centre i attending to neighbour j) carries in each layer and head, cutoff included.
    """

    def __init__(self, elements: Sequence[str], cutoff: float = 5.0, layers: int = 2,
                 features: int = 64, heads: int = 4, n_rbf: int = 32, seed: int = 0,
                 repulsion=None):
        super().__init__()
        torch.manual_seed(seed)
        self.elements: List[str] = list(elements)
        self.cutoff = float(cutoff)
        # the neighbour embedding is one round of message passing before the layers
        self.hops = int(layers) + 1
        self.features, self.heads = int(features), int(heads)
        self.embedding = torch.nn.Embedding(len(self.elements), features)
        self.rbf = ExpNormalBasis(self.cutoff, n_rbf)
        self.neighbour_embedding = NeighbourEmbedding(len(self.elements), features, n_rbf)
        self.attention_layers = torch.nn.ModuleList(
            [EquivariantAttention(features, heads, n_rbf) for _ in range(layers)])
        self.out_norm = torch.nn.LayerNorm(features)
        self.head = torch.nn.Sequential(torch.nn.Linear(features, features // 2), torch.nn.SiLU(),
                                        torch.nn.Linear(features // 2, 1))
        for layer in (self.neighbour_embedding.distance_proj, self.neighbour_embedding.combine,
                      self.head[0], self.head[2]):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
        self.atom_terms = AtomTerms(self.elements, repulsion)

    def set_self_energies(self, values) -> None:
        """Per-element energies in eV, in the order of ``elements`` (training starts here)."""
        self.atom_terms.set_self_energies(values)

    def metadata(self) -> ModelMetadata:
        return ModelMetadata(
            name="equivariant-transformer", elements=tuple(self.elements), cutoff=self.cutoff,
            hops=self.hops, outputs=("energies", "attention"),
            description=f"equivariant transformer, {len(self.attention_layers)} layers x {self.heads} heads, "
                        f"{self.features} features{describe(self.atom_terms.repulsion)}")

    def forward(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                charge: float = 0.0, spin: int = 1) -> Dict[str, Tensor]:
        n = species.shape[0]
        r = torch.linalg.vector_norm(edge_vectors, dim=1)
        rbf = self.rbf(r)
        cut = cosine_cutoff(r, self.cutoff)
        x = self.neighbour_embedding(species, self.embedding(species), edge_index[0], edge_index[1], cut, rbf)

        # the attention layers also see one self-loop per atom (r = 0: cutoff 1, no direction)
        loops = torch.arange(n, device=species.device)
        i = torch.cat([edge_index[0], loops])
        j = torch.cat([edge_index[1], loops])
        cut_all = torch.cat([cut, torch.ones(n, dtype=r.dtype, device=r.device)])
        rbf_all = torch.cat([rbf, self.rbf(torch.zeros(1, dtype=r.dtype, device=r.device)).expand(n, -1)])
        direction = torch.cat([edge_vectors / r.clamp(min=1e-12).unsqueeze(1),
                               torch.zeros(n, 3, dtype=r.dtype, device=r.device)])

        vec = torch.zeros(n, 3, self.features, dtype=x.dtype, device=x.device)
        maps: List[Tensor] = []
        for layer in self.attention_layers:
            dx, dvec, weights = layer(x, vec, i, j, cut_all, rbf_all, direction)
            x = x + dx
            vec = vec + dvec
            maps.append(weights[: edge_index.shape[1]])
        energies = self.atom_terms(self.head(self.out_norm(x)).squeeze(1), species, edge_index, edge_vectors, n_local)
        return {"energies": energies, "attention": torch.stack(maps, dim=1)}


def from_torchmdnet(representation, head, elements: Sequence[str], atomic_numbers: Sequence[int]
                    ) -> EquivariantTransformer:
    """Our transformer with the weights of a TorchMD-Net ``TorchMD_ET`` (vector_cutoff=True,
    distance_influence="both", rbf_type="expnorm", cutoff_lower=0) and its ``Scalar`` head
    (``output_model.output_network``); ``atomic_numbers[k]`` is the Z of ``elements[k]``.
    Float64, no self energies (TorchMD-Net's prior and standardisation are not included)."""
    if not representation.attention_layers[0].vector_cutoff:
        raise ValueError("only ET models with vector_cutoff=True are smooth at the cutoff; "
                         "ours always cuts the vector path off")
    if representation.distance_influence != "both" or representation.rbf_type != "expnorm" \
            or representation.cutoff_lower != 0.0 or representation.neighbor_embedding is None:
        raise ValueError("from_torchmdnet needs distance_influence='both', rbf_type='expnorm', "
                         "cutoff_lower=0 and a neighbour embedding")
    first = representation.attention_layers[0]
    ours = EquivariantTransformer(elements, cutoff=representation.cutoff_upper,
                                  layers=representation.num_layers,
                                  features=representation.hidden_channels, heads=first.num_heads,
                                  n_rbf=representation.num_rbf).double()
    z = torch.as_tensor(list(atomic_numbers))
    theirs = {k: v.detach().double() for k, v in representation.state_dict().items()}
    with torch.no_grad():
        ours.embedding.weight.copy_(theirs["embedding.weight"][z])
        ours.neighbour_embedding.embedding.weight.copy_(theirs["neighbor_embedding.embedding.weight"][z])
        ours.rbf.means.copy_(theirs["distance_expansion.means"])
        ours.rbf.betas.copy_(theirs["distance_expansion.betas"])
        for name in ("distance_proj", "combine"):
            getattr(ours.neighbour_embedding, name).load_state_dict(
                {p: theirs[f"neighbor_embedding.{name}.{p}"] for p in ("weight", "bias")})
        for index, layer in enumerate(ours.attention_layers):
            layer.load_state_dict({key[len(f"attention_layers.{index}."):]: value
                                   for key, value in theirs.items()
                                   if key.startswith(f"attention_layers.{index}.")})
        ours.out_norm.load_state_dict({"weight": theirs["out_norm.weight"], "bias": theirs["out_norm.bias"]})
        linears = [m for m in head.output_network.layers if isinstance(m, torch.nn.Linear)]
        if len(linears) != 2:
            raise ValueError("from_torchmdnet takes a Scalar head without hidden layers (num_layers=0)")
        for mine, their in zip((ours.head[0], ours.head[2]), linears):
            mine.load_state_dict({k: v.detach().double() for k, v in their.state_dict().items()})
    return ours
