"""Transfer learning: fine-tune a pretrained ANI model on a small dataset from another oracle.

    multiscale transfer PRETRAINED.pt DATA --mode frozen|adapted -o OUT.pt [--epochs N]

The pretrained model is any exported ANI file (``ANIModel`` or ``ANIEnsemble``: what
``multiscale train``, ``multiscale active-learn``, ``from_torchani`` and this module write)
or the Python model itself.  An exported file is rebuilt as a trainable Python model from
what the TorchScript archive already holds (elements, AEV constants, layer widths,
activation, weights, self energies), so the fine-tuned file can be fine-tuned again; the
rebuilt model is checked against the file on a probe molecule before it is used.

Two modes (the AEV has no weights and is fixed in both):

- ``frozen``: only the last ``layers`` linear layers of each element network learn
  (default 1, the output layer), the rest keep the pretrained features;
- ``adapted``: every layer learns, with a smaller learning rate than training from scratch.

Before training, the self energies are refit on the new data: the composition fit
(least squares on element counts, as ``learning.trainer.fit_self_energies``) of what the
pretrained networks leave unexplained, E_ref - E_networks.  Two oracles usually differ by
a large per-element offset; this moves it into the self energies at once, so the
networks only learn the change in shape.  Ensembles are fine-tuned member by member.

``examples/transfer/gfn1_to_gfn2.py`` runs the demonstration of docs/training.md: an ANI
model pretrained on GFN1-xTB, fine-tuned on 20 GFN2-xTB structures and compared with
training from scratch on them.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
from ase import Atoms

from ..potentials.aev import AEVParameters
from ..potentials.ani import ANIEnsemble, ANIModel
from ..potentials.repulsion import ZBL, pairs_of
from ..potentials.stacked import unstack
from .data import StructureDataset
from .trainer import TrainConfig, Trainer

MODES = ("frozen", "adapted")
ANIModule = Union[ANIModel, ANIEnsemble]
# activations an exported ANI network may use: TorchScript name -> rebuilt module
_ACTIVATIONS = {"CELU": lambda m: torch.nn.CELU(float(m.alpha)), "SiLU": lambda m: torch.nn.SiLU(),
                "Tanh": lambda m: torch.nn.Tanh(), "ReLU": lambda m: torch.nn.ReLU()}


class TransferError(ValueError):
    """A model or request that transfer learning cannot handle; the message says why."""


# -- pretrained models -------------------------------------------------------------------------
def _rebuild_repulsion(scripted, elements: Sequence[str]) -> Optional[ZBL]:
    """The exported model's ZBL core (its inner and outer radii), or None if it has none."""
    core = getattr(scripted, "repulsion", None)
    return None if core is None else ZBL(elements, float(core.inner), float(core.outer),
                                      pairs_of(core))


def _rebuild_networks(scripted, elements: Sequence[str], params: AEVParameters,
                      dtype: torch.dtype, repulsion: Optional[ZBL] = None) -> ANIModel:
    """An ANIModel with the layer widths, activation, weights and self energies of one
    exported ``AtomicNetworks`` (``scripted``), and the ZBL core ``repulsion``."""
    hidden, activation = [], None
    for _, net in scripted.networks.named_children():
        layers = list(net.named_children())
        hidden.append([int(m.out_features) for _, m in layers[:-1] if m.original_name == "Linear"])
        acts = [m for _, m in layers if m.original_name != "Linear"]
        if activation is None and acts:
            activation = acts[0]
    member = {"hidden": hidden, "activation": activation, "state": scripted.state_dict(),
              "self_energies": scripted.self_energies}
    return _rebuild_member(member, elements, params, dtype, repulsion)


def _rebuild_member(member: dict, elements: Sequence[str], params: AEVParameters, dtype: torch.dtype,
                    repulsion: Optional[ZBL] = None) -> ANIModel:
    """An ANIModel from one exported member as plain values (``stacked.unstack``'s form):
    hidden widths per element, the TorchScript activation, the networks' state, self energies."""
    act = member["activation"]
    if act is not None and act.original_name not in _ACTIVATIONS:
        raise TransferError(f"activation {act.original_name} cannot be rebuilt; supported: {sorted(_ACTIVATIONS)}")
    activation = None if act is None else _ACTIVATIONS[act.original_name](act)
    model = ANIModel(elements, params, dict(zip(elements, member["hidden"])),
                     dict(zip(elements, member["self_energies"].tolist())), activation,
                     repulsion=copy.deepcopy(repulsion)).to(dtype)
    model.networks.load_state_dict(member["state"])
    return model


def load_pretrained(path: Union[str, Path]) -> ANIModule:
    """The trainable Python model (ANIModel or ANIEnsemble) of an exported ANI file.

    Raises TransferError for files that hold another kind of model, and if the rebuilt
    model does not reproduce the file's energies on a probe molecule.
    """
    from ..model.artifact import load

    loaded = load(path)
    meta, module = loaded.metadata, loaded.module
    if meta.name not in ("ani", "ani-ensemble"):
        raise TransferError(f"{path} holds a {meta.name!r} model; transfer learning needs an ANI "
                            "model (ANIModel or ANIEnsemble, metadata name 'ani' or 'ani-ensemble')")
    aev = module.aev
    params = AEVParameters(Rcr=aev.Rcr, Rca=aev.Rca, EtaR=aev.EtaR, ShfR=aev.ShfR.tolist(),
                           EtaA=aev.EtaA, Zeta=aev.Zeta, ShfA=aev.ShfA.tolist(),
                           ShfZ=aev.ShfZ.tolist())
    elements = list(meta.elements)
    core = _rebuild_repulsion(module, elements)
    if getattr(getattr(module, "networks", None), "original_name", "") == "StackedNetworks":   # an inference-form file
        members = [_rebuild_member(member, elements, params, loaded.dtype, core)
                   for member in unstack(module.networks)]
        model = members[0] if meta.name == "ani" else ANIEnsemble(members)
    elif meta.name == "ani":
        model: ANIModule = _rebuild_networks(module.networks, elements, params, loaded.dtype, core)
    else:
        model = ANIEnsemble([_rebuild_networks(member, elements, params, loaded.dtype, core)
                             for _, member in module.members.named_children()])
    _check_rebuilt(model, module, elements, str(path))
    return model


def _probe(elements: Sequence[str]) -> Atoms:
    """A few atoms of every element at bonding distances, one of each per 1.4 Å."""
    rng = np.random.default_rng(0)
    symbols = [el for el in elements for _ in range(2)]
    positions = np.array([[1.4 * k, 0.0, 0.0] for k in range(len(symbols))])
    return Atoms(symbols, positions + rng.normal(0.0, 0.3, positions.shape))


def _check_rebuilt(model: ANIModule, scripted, elements: Sequence[str], where: str) -> None:
    from ..engines import neighbors

    atoms = _probe(elements)
    edge_index, vectors = neighbors.edges(atoms.positions, atoms.cell.array, atoms.pbc, model.cutoff)
    dtype = next(model.parameters()).dtype
    species = torch.tensor([list(elements).index(s) for s in atoms.get_chemical_symbols()])
    args = (species, edge_index, vectors.to(dtype), len(atoms), 0.0, 1)
    with torch.no_grad():
        ours, theirs = model(*args)["energies"], scripted(*args)["energies"]
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    if not torch.allclose(ours, theirs, rtol=tol, atol=tol):
        raise TransferError(f"{where}: the rebuilt model differs from the file by "
                            f"{float((ours - theirs).abs().max()):.3g} eV per atom; cannot fine-tune it")


def members_of(model: ANIModule) -> list[ANIModel]:
    """Independent copies of a model's members as ANIModels (one for an ANIModel)."""
    if isinstance(model, ANIModel):
        return [copy.deepcopy(model)]
    if not isinstance(model, ANIEnsemble):
        raise TransferError(f"transfer learning needs an ANIModel or ANIEnsemble, got {type(model).__name__}")
    out = []
    for networks in model.members:
        member = ANIModel(model.elements, model.aev.params, [1], seed=0,   # networks replaced below
                          repulsion=copy.deepcopy(model.repulsion))
        member.networks = copy.deepcopy(networks)
        member.hidden = [tuple(m.out_features for m in net if isinstance(m, torch.nn.Linear))[:-1]
                         for net in networks.networks]
        out.append(member.to(next(model.parameters()).dtype))
    return out


# -- fine-tuning -------------------------------------------------------------------------------
def default_config(mode: str, **overrides) -> TrainConfig:
    """Training settings for fine-tuning on tens of structures: batches of 4, a fifth held
    for validation, learning rate 1e-2 (frozen: a few small layers) or 2e-4 (adapted: all
    layers, ten times below training from scratch), and force weight 0.01: the pretrained
    forces are already close, and the energies carry most of what differs between two
    oracles (see docs/training.md)."""
    if mode not in MODES:
        raise TransferError(f"mode must be one of {MODES}, got {mode!r}")
    base = dict(epochs=300, batch_size=4, learning_rate=1e-2 if mode == "frozen" else 2e-4,
                validation_fraction=0.2, patience=60, lr_patience=15, force_weight=0.01)
    return TrainConfig(**{**base, **overrides})


def refit_self_energies(model: ANIModel, dataset: StructureDataset) -> np.ndarray:
    """Shift the self energies by the composition fit of E_ref - E_model on ``dataset``;
    returns the new self energies (eV, in the order of ``model.elements``)."""
    counts = dataset.composition(len(model.elements)).astype(float)
    predicted = np.empty(len(dataset))
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        for k in range(len(dataset)):
            batch = dataset.batch([k]).to(dtype)
            out = model(batch.species, batch.edge_index, batch.edge_vectors, len(batch.species))
            predicted[k] = float(out["energies"].sum())
    shift, *_ = np.linalg.lstsq(counts, dataset.energies() - predicted, rcond=None)
    values = model.networks.self_energies.numpy() + shift
    model.set_self_energies(values.tolist())
    return values


def freeze(model: ANIModel, mode: str, layers: int = 1) -> int:
    """Let only what ``mode`` trains require gradients; returns the number of trainable weights.

    frozen: the last ``layers`` linear layers of every element network; adapted: all.
    """
    if mode not in MODES:
        raise TransferError(f"mode must be one of {MODES}, got {mode!r}")
    depth = min(sum(isinstance(m, torch.nn.Linear) for m in net) for net in model.networks.networks)
    if mode == "frozen" and not 1 <= layers <= depth:
        raise TransferError(f"layers must be between 1 and {depth} (the networks' linear layers), "
                            f"got {layers}")
    for net in model.networks.networks:
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        train = set(map(id, linears if mode == "adapted" else linears[-layers:]))
        for m in linears:
            m.requires_grad_(id(m) in train)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fine_tune(pretrained: Union[ANIModule, str, Path], structures: Sequence[Atoms], mode: str = "frozen",
              layers: int = 1, config: Optional[TrainConfig] = None,
              log: Callable[[str], None] = print) -> ANIModule:
    """A copy of ``pretrained`` fine-tuned on labelled ``structures`` (energy and forces).

    pretrained: an ANIModel, ANIEnsemble or exported ANI file (left unchanged);
    mode: "frozen" (last ``layers`` layers learn) or "adapted" (all layers learn);
    config: TrainConfig, default ``default_config(mode)``; an ensemble's member m
    trains with seed ``config.seed + m``.
    """
    config = config or default_config(mode)
    if isinstance(pretrained, (str, Path)):
        pretrained = load_pretrained(pretrained)
    members = members_of(pretrained)
    dataset = StructureDataset(structures, members[0].elements, members[0].cutoff)
    for m, member in enumerate(members):
        values = refit_self_energies(member, dataset)
        n_trained = freeze(member, mode, layers)
        refit = {el: round(float(v), 4) for el, v in zip(member.elements, values)}
        log(f"member {m}: self energies refit to {refit} eV; "
            f"{mode}: {n_trained} of {sum(p.numel() for p in member.parameters())} weights learn")
        try:
            Trainer(member, dataset, dataclasses.replace(config, seed=config.seed + m), log=log).run()
        finally:
            member.requires_grad_(True)
    return members[0] if isinstance(pretrained, ANIModel) else ANIEnsemble(members)


def transfer_file(pretrained: Union[str, Path], data: Union[str, Path], output: Union[str, Path],
                  mode: str = "frozen", layers: int = 1, log: Callable[[str], None] = print,
                  **training) -> Path:
    """``multiscale transfer``: fine-tune an exported ANI file on a dataset file, export the result.

    training: TrainConfig fields overriding ``default_config(mode)`` (epochs, learning_rate, ...).
    """
    from ..model.artifact import export
    from .data import read_structures

    config = default_config(mode, **{k: v for k, v in training.items() if v is not None})
    structures = read_structures(data)
    model = fine_tune(pretrained, structures, mode, layers, config, log=log)
    path = export(model, output)
    log(f"wrote {path}: {model.metadata().description}")
    return path
