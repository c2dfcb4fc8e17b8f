"""The training loop: energy + force (+ stress, charge, dipole) loss, validation, early
stopping, checkpoints.

Loss per batch: mean(((E - E_ref) / N)^2) + force_weight * mean((F - F_ref)^2)
+ stress_weight * mean((sigma - sigma_ref)^2) + charge_weight * mean((q - q_ref)^2)
+ dipole_weight * mean((mu - mu_ref)^2), E in eV, F in eV/Å, sigma in GPa over the
periodic structures that have a reference stress, q in e over the atoms that have reference
charges, mu = sum q_i r_i in e Å over the molecules that have a reference dipole, N atoms
per structure.  A model with per-group reductions (charge-normalising models,
multiscale.model.reductions.GroupReduced) gets each structure's total charge and
multiplicity and normalises its charges per structure.  Forces come from the edge-vector gradient exactly as
the engines compute them, so what is trained is what LAMMPS, OpenMM and ASE run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch

from ..engines.scatter import edge_forces, edge_virials
from ..model.reductions import Reduced, grouped_forward, supports_groups
from ..units import EV_PER_A3_TO_GPA
from .data import GraphBatch, StructureDataset


@dataclasses.dataclass
class TrainConfig:
    """Settings of one training run (units: eV, Å)."""

    epochs: int = 200
    batch_size: int = 16
    learning_rate: float = 1e-3
    force_weight: float = 10.0
    stress_weight: float = 0.0     # per GPa^2; needs reference stresses (periodic structures)
    charge_weight: float = 0.0     # per e^2; needs reference atomic charges and a model that outputs them
    dipole_weight: float = 0.0     # per (e Å)^2; dipole sum q_i r_i of molecules against the reference
    validation_fraction: float = 0.1
    patience: int = 30             # epochs without improvement before stopping
    lr_factor: float = 0.5         # ReduceLROnPlateau factor
    lr_patience: int = 8
    min_learning_rate: float = 1e-6
    seed: int = 0
    checkpoint: Optional[str] = None  # file; resumed from if it exists
    log_every: int = 1
    workers: int = 1               # ensemble members trained at once, one process each


class Prediction(NamedTuple):
    """energy (S,) eV; forces (n, 3) eV/Å; stress (S, 3, 3) GPa or None; charges (n,) e or None."""

    energy: torch.Tensor
    forces: torch.Tensor
    stress: Optional[torch.Tensor]
    charges: Optional[torch.Tensor]


def _outputs(model: torch.nn.Module, batch: GraphBatch, vectors: torch.Tensor,
             potential: torch.Tensor) -> dict:
    """The model's outputs on a batch: each structure's own total charge and multiplicity,
    its sums taken per structure for a model that normalises charges; ``potential`` (n,) V
    the applied fields' potential at the atoms."""
    n = batch.species.shape[0]
    if supports_groups(model):
        totals = torch.stack([batch.charge, batch.spin.to(batch.charge.dtype)], 1)
        return grouped_forward(model, batch.species, batch.edge_index, vectors, n, batch.structure, totals,
                               potential)
    if bool((batch.field != 0).any()):
        raise ValueError(f"the data has structures in an electric field, which {type(model).__name__} "
                         "cannot take (it has no external-potential input, GroupReduced); drop them")
    if isinstance(model, Reduced) and len(batch.n_atoms) > 1:
        raise ValueError(f"{type(model).__name__} takes its sums over one whole system and has no "
                         "per-group reductions; train it with batch_size = 1, or derive it from "
                         "multiscale.model.reductions.GroupReduced")
    if len(batch.n_atoms) == 1:
        return model(batch.species, batch.edge_index, vectors, n, float(batch.charge[0]), int(batch.spin[0]))
    return model(batch.species, batch.edge_index, vectors, n, 0.0, 1)


def predict(model: torch.nn.Module, batch: GraphBatch, create_graph: bool,
            stress: bool = False) -> Prediction:
    """Energies, forces, stresses if asked (ASE's sign: (1/V) dE/d(strain), from the same edge
    gradients; meaningless where ``batch.volume`` is 0) and the model's charges if it has them.
    In an applied field E (potential phi_i = -E.r_i) the force gains (dE/dphi_i) E."""
    vectors = batch.edge_vectors.detach().requires_grad_(True)
    n = batch.species.shape[0]
    field = batch.field[batch.structure]
    potential = -(field * batch.positions).sum(1)
    in_field = bool((batch.field != 0).any())
    if in_field:
        potential = potential.detach().requires_grad_(True)
    out = _outputs(model, batch, vectors, potential)
    energies = out["energies"]
    energy = torch.zeros(len(batch.n_atoms), dtype=energies.dtype).index_add_(0, batch.structure, energies)
    if in_field:
        grad, grad_phi = torch.autograd.grad(energy.sum(), [vectors, potential], create_graph=create_graph)
    else:
        (grad,) = torch.autograd.grad(energy.sum(), vectors, create_graph=create_graph)
    forces = edge_forces(grad, batch.edge_index, n)
    if in_field:
        forces = forces + grad_phi.unsqueeze(1) * field
    sigma = None
    if stress:
        i = batch.edge_index[0]
        per_edge = -edge_virials(vectors.detach(), grad).transpose(1, 2)  # dE/dr_a r_b
        virial = torch.zeros((len(batch.n_atoms), 3, 3), dtype=grad.dtype).index_add(
            0, batch.structure[i], per_edge)
        volume = batch.volume.to(grad.dtype)
        # a safe divisor where there is no cell (not NaN: NaN would poison the gradients of
        # the periodic structures through the masked-out entries)
        sigma = EV_PER_A3_TO_GPA * virial / torch.where(volume > 0, volume, 1.0).view(-1, 1, 1)
    return Prediction(energy, forces, sigma, out.get("charges"))


class Errors(NamedTuple):
    """Per-atom energy errors (S,) eV; force errors (n, 3) eV/Å; stress errors (m, 3, 3) GPa
    of the m structures with a reference stress; charge errors (k,) e of the atoms with
    reference charges; dipole errors (d, 3) e Å of the molecules with a reference dipole."""

    energy: torch.Tensor
    forces: torch.Tensor
    stress: torch.Tensor
    charges: torch.Tensor
    dipole: torch.Tensor


def batch_loss(model: torch.nn.Module, batch: GraphBatch, force_weight: float, create_graph: bool,
               stress_weight: float = 0.0, charge_weight: float = 0.0,
               dipole_weight: float = 0.0) -> tuple[torch.Tensor, Errors]:
    """(loss, errors) of one batch; see the module docstring for the loss."""
    energy, forces, sigma, charges = predict(model, batch, create_graph, stress=True)
    n = batch.n_atoms.to(energy.dtype)
    e_err = (energy - batch.energy) / n
    f_err = forces - batch.forces
    loss = (e_err ** 2).mean() + force_weight * (f_err ** 2).mean()
    has = torch.isfinite(batch.stress).all(dim=2).all(dim=1) & (batch.volume > 0)
    s_err = sigma[has] - EV_PER_A3_TO_GPA * batch.stress[has]
    if stress_weight > 0 and bool(has.any()):
        loss = loss + stress_weight * (s_err ** 2).mean()
    q_err = mu_err = torch.zeros(0, dtype=energy.dtype)
    if charges is not None:
        known = torch.isfinite(batch.charges)
        q_err = charges[known] - batch.charges[known]
        if charge_weight > 0 and bool(known.any()):
            loss = loss + charge_weight * (q_err ** 2).mean()
        mu = torch.zeros((len(batch.n_atoms), 3), dtype=charges.dtype).index_add(
            0, batch.structure, charges.unsqueeze(1) * batch.positions)
        has_mu = torch.isfinite(batch.dipole).all(dim=1)
        mu_err = mu[has_mu] - batch.dipole[has_mu]
        if dipole_weight > 0 and bool(has_mu.any()):
            loss = loss + dipole_weight * (mu_err ** 2).mean()
    errors = Errors(e_err.detach(), f_err.detach(), s_err.detach(), q_err.detach(), mu_err.detach())
    return loss, errors


def evaluate(model: torch.nn.Module, dataset: StructureDataset, indices, batch_size: int = 16) -> dict:
    """Energy MAE (meV/atom), force RMSE (eV/Å) and, where there are references, stress RMSE
    (GPa), charge RMSE (e) and dipole RMSE (e Å) of ``model`` on the given structures."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    dtype = tensors[0].dtype if tensors else torch.float64
    indices = list(indices)
    parts: list[Errors] = []
    for start in range(0, len(indices), batch_size):
        batch = dataset.batch(indices[start:start + batch_size]).to(dtype)
        parts.append(batch_loss(model, batch, 0.0, create_graph=False)[1])
    e, f, s, q, mu = (torch.cat([getattr(p, k) for p in parts]) for k in Errors._fields)
    out = {"energy_mae_meV_per_atom": 1e3 * float(e.abs().mean()),
           "force_rmse_eV_per_A": float(f.pow(2).mean().sqrt())}
    if len(s):
        out["stress_rmse_GPa"] = float(s.pow(2).mean().sqrt())
    if len(q):
        out["charge_rmse_e"] = float(q.pow(2).mean().sqrt())
    if len(mu):
        out["dipole_rmse_eA"] = float(mu.pow(2).mean().sqrt())
    return out


def fit_self_energies(dataset: StructureDataset, n_elements: int) -> np.ndarray:
    """Per-element energies (eV) from a least-squares fit of energies on composition."""
    counts = dataset.composition(n_elements).astype(float)
    solution, *_ = np.linalg.lstsq(counts, dataset.energies(), rcond=None)
    return solution


class Trainer:
    """Trains ``model`` (any module under the contract) on a StructureDataset."""

    def __init__(self, model: torch.nn.Module, dataset: StructureDataset, config: TrainConfig,
                 log: Callable[[str], None] = print):
        self.model = model
        self.dataset = dataset
        self.config = config
        self.log = log
        self.dtype = next(model.parameters()).dtype
        rng = np.random.default_rng(config.seed)
        order = rng.permutation(len(dataset))
        n_val = max(1, int(round(config.validation_fraction * len(dataset)))) if len(dataset) > 1 else 0
        self.validation = order[:n_val].tolist()
        self.train = order[n_val:].tolist()
        if not self.train:
            raise ValueError(f"{len(dataset)} structures leave none for training after the validation split")
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, factor=config.lr_factor, patience=config.lr_patience,
            min_lr=config.min_learning_rate)
        self.epoch = 0
        self.best = math.inf
        self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.stale = 0
        self.history: list[dict] = []

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        if not self.config.checkpoint:
            return
        path = Path(self.config.checkpoint)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(), "epoch": self.epoch, "best": self.best,
                    "best_state": self.best_state, "stale": self.stale, "history": self.history,
                    "rng": torch.get_rng_state()}, tmp)
        tmp.replace(path)  # never leave a half-written checkpoint

    def load_checkpoint(self) -> bool:
        path = Path(self.config.checkpoint) if self.config.checkpoint else None
        if path is None or not path.exists():
            return False
        state = torch.load(path, weights_only=True)   # plain tensors and settings: no code runs
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ValueError(f"checkpoint {path} belongs to a different model "
                             f"({str(exc).splitlines()[0]}); delete it or train into another "
                             "[output] folder") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best, self.stale = state["epoch"], state["best"], state["stale"]
        self.best_state, self.history = state["best_state"], state["history"]
        torch.set_rng_state(state["rng"])
        self.log(f"resumed from {path} at epoch {self.epoch}")
        return True

    # -- loop -----------------------------------------------------------------------------------
    def _loss(self, batch: GraphBatch, create_graph: bool):
        cfg = self.config
        return batch_loss(self.model, batch, cfg.force_weight, create_graph, cfg.stress_weight,
                          cfg.charge_weight, cfg.dipole_weight)

    def evaluate(self, indices) -> dict:
        return evaluate(self.model, self.dataset, indices, self.config.batch_size)

    def run(self) -> dict:
        """Train until ``epochs`` or early stop; the model ends with the best validation weights."""
        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.load_checkpoint()
        while self.epoch < cfg.epochs and self.stale < cfg.patience:
            start = time.perf_counter()
            self.model.train()
            # batch order from (seed, epoch): a resumed run sees the batches an uninterrupted one would
            order = np.random.default_rng([cfg.seed, self.epoch]).permutation(self.train)
            total = 0.0
            for b in range(0, len(order), cfg.batch_size):
                batch = self.dataset.batch(order[b:b + cfg.batch_size].tolist()).to(self.dtype)
                loss, *_ = self._loss(batch, create_graph=True)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"training loss is {float(loss)} at epoch {self.epoch + 1}; lower the learning "
                        "rate or check the data for non-finite energies, forces or stresses")
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                total += float(loss.detach()) * len(batch.n_atoms)
            self.model.eval()
            metrics = self.evaluate(self.validation) if self.validation else {}
            score = (metrics["energy_mae_meV_per_atom"] / 1e3) ** 2 + cfg.force_weight * \
                metrics["force_rmse_eV_per_A"] ** 2 + cfg.stress_weight * \
                metrics.get("stress_rmse_GPa", 0.0) ** 2 + cfg.charge_weight * \
                metrics.get("charge_rmse_e", 0.0) ** 2 + cfg.dipole_weight * \
                metrics.get("dipole_rmse_eA", 0.0) ** 2 if metrics else total
            self.scheduler.step(score)
            self.epoch += 1
            if score < self.best:
                self.best, self.stale = score, 0
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            else:
                self.stale += 1
            row = {"epoch": self.epoch, "train_loss": total / len(order), **metrics,
                   "lr": self.optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - start}
            self.history.append(row)
            if self.epoch % cfg.log_every == 0 or self.epoch == cfg.epochs:
                self.log(json.dumps({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}))
            self.save_checkpoint()
        if self.stale >= cfg.patience:
            self.log(f"early stop at epoch {self.epoch}: no improvement for {cfg.patience} epochs")
        self.model.load_state_dict(self.best_state)
        return {"epochs": self.epoch, **(self.evaluate(self.validation) if self.validation else {})}


def fit_charge_baseline(dataset: StructureDataset, n_elements: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-element (e_Z eV, chi_Z eV/e, J_Z eV/e^2) from a least-squares fit of the energies on
    sum_i (e_Z + chi_Z q_i + J_Z q_i^2 / 2) with the reference charges q_i (structures that
    have them)."""
    rows, energies = [], []
    for item in dataset.items:
        species, q = item.species.numpy(), item.charges.numpy()
        if not np.isfinite(q).all():
            continue
        row = np.zeros(3 * n_elements)
        np.add.at(row, species, 1.0)
        np.add.at(row, n_elements + species, q)
        np.add.at(row, 2 * n_elements + species, 0.5 * q * q)
        rows.append(row)
        energies.append(item.energy)
    solution, *_ = np.linalg.lstsq(np.array(rows), np.array(energies), rcond=None)
    return solution[:n_elements], solution[n_elements:2 * n_elements], solution[2 * n_elements:]


def set_self_energies(model: torch.nn.Module, dataset: StructureDataset, n_elements: int) -> None:
    """Start a model's per-element energies at the composition fit (models with
    ``set_self_energies``), so the networks learn only what composition does not explain;
    a model with learned charge terms (``set_charge_terms``) trained on reference charges
    starts from the fit of :func:`fit_charge_baseline` instead."""
    if hasattr(model, "set_charge_terms") and getattr(model, "learns_charge_terms", False) \
            and dataset.has_charges():
        shift, chi, hardness = fit_charge_baseline(dataset, n_elements)
        model.set_self_energies(shift.tolist())
        model.set_charge_terms(chi.tolist(), hardness.tolist())
    elif hasattr(model, "set_self_energies"):
        model.set_self_energies(fit_self_energies(dataset, n_elements).tolist())
