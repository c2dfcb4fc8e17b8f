"""Training throughput of the shipped silicon ANI configuration (multiscale/data/si_ani.toml), CPU.

One training step is what ``multiscale.learning.Trainer`` does per batch: assemble the batch
graph, energies and forces (forces by the edge-vector gradient, with create_graph so the
force loss can be differentiated), the energy + force loss, backward through both, Adam
step.  Reported per step of one ensemble member, as structures/s and atom-steps/s (atoms
in the batch / step time), for float64 (the configuration's dtype) and float32, with 1 and
with one thread per core (``[training] workers`` trains members in parallel, one thread each).

Structures: 64-atom diamond cells, randomly strained (up to 3 %) and rattled (Gaussian, 0.05-0.2 Å),
labelled by native Stillinger-Weber; or any dataset with --data.

    .venv/bin/python benchmarks/training.py [--quick] [--data FILE] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk

from multiscale.reference.oracles import label, lammps_oracle
from multiscale.learning import StructureDataset, read_structures
from multiscale.learning.config import read_config
from multiscale.learning.trainer import batch_loss

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "multiscale" / "data" / "si_ani.toml"
RESULTS = Path(__file__).resolve().parent / "results" / "training.json"


def silicon_cells(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        atoms = bulk("Si", "diamond", a=5.431, cubic=True) * (2, 2, 2)
        strain = rng.uniform(-0.03, 0.03, (3, 3))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.5 * (strain + strain.T)), scale_atoms=True)
        atoms.rattle(rng.uniform(0.05, 0.2), seed=k)
        out.append(atoms)
    return label(out, lammps_oracle(), progress=lambda _m: None)


class Case:
    """One ensemble member's training steps in one dtype with a number of torch threads."""

    def __init__(self, model: torch.nn.Module, threads: int):
        self.model, self.threads = model, threads
        self.dtype = next(model.parameters()).dtype
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        self.times: list[float] = []

    def epoch(self, dataset: StructureDataset, batch_size: int, force_weight: float, record: bool) -> None:
        """One pass over ``dataset``; with ``record`` each step's seconds are kept."""
        torch.set_num_threads(self.threads)
        for b in range(0, len(dataset) - batch_size + 1, batch_size):
            start = time.perf_counter()
            batch = dataset.batch(list(range(b, b + batch_size))).to(self.dtype)
            loss, *_ = batch_loss(self.model, batch, force_weight, create_graph=True)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            if record:
                self.times.append(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer structures and epochs, 1 thread only")
    parser.add_argument("--data", type=Path, help="time on this dataset (.extxyz/.h5) instead")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()

    cfg = read_config(CONFIG)
    structures = read_structures(args.data) if args.data else silicon_cells(16 if args.quick else 48)
    model0 = cfg.build_model(seed=cfg.training.seed)
    dataset = StructureDataset(structures, cfg.elements, model0.metadata().cutoff)
    n_atoms = sum(len(a) for a in structures)
    n_edges = sum(item[1].shape[1] for item in dataset.items)
    batch_size = cfg.training.batch_size
    epochs = 1 if args.quick else 8
    cores = len(os.sched_getaffinity(0))
    threads = [1] if args.quick else sorted({1, cores})
    out = {"what": "training step (batch graph, energies, forces with create_graph, loss, backward, Adam), "
                   "one ensemble member, median over steps, cases interleaved epoch by epoch",
           "config": str(CONFIG.relative_to(ROOT)), "model": model0.metadata().description,
           "data": str(args.data) if args.data else "64-atom strained, rattled diamond cells (SW labels)",
           "structures": len(structures), "atoms_per_structure": n_atoms / len(structures),
           "edges_per_atom": n_edges / n_atoms, "batch_size": batch_size,
           "force_weight": cfg.training.force_weight,
           "cpu": platform.processor() or platform.machine(), "cores": cores,
           "torch": torch.__version__, "cases": []}
    print(f"{out['model']}\n{len(structures)} structures, {out['atoms_per_structure']:.0f} atoms each, "
          f"{out['edges_per_atom']:.1f} edges per atom, batches of {batch_size}")
    print(f"{'dtype':>8} {'threads':>7} {'ms/step':>8} {'structures/s':>13} {'atom-steps/s':>13}")
    cases = [Case(cfg.build_model(seed=cfg.training.seed).to(dtype), n)
             for dtype in (torch.float64, torch.float32) for n in threads]
    for epoch in range(epochs + 1):  # the cases take turns, so a passing load slows all alike
        for case in cases:
            case.epoch(dataset, batch_size, cfg.training.force_weight, record=epoch > 0)
    atoms_per_step = batch_size * n_atoms / len(structures)
    for case in cases:
        step = statistics.median(case.times)
        row = {"dtype": str(case.dtype).removeprefix("torch."), "threads": case.threads,
               "steps": len(case.times), "ms_per_step": 1e3 * step, "structures_per_s": batch_size / step,
               "atom_steps_per_s": atoms_per_step / step}
        out["cases"].append(row)
        print(f"{row['dtype']:>8} {row['threads']:>7} {row['ms_per_step']:>8.1f} "
              f"{row['structures_per_s']:>13.1f} {row['atom_steps_per_s']:>13.0f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
