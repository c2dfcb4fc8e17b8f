"""Active learning by query by committee.

Each round: train the ensemble on the labelled set; measure it on a held-out set; run MD
and minimisations *with the current model* in LAMMPS (pair_style multiscale) from the seed
structures; score every sampled configuration by the committee's disagreement (standard
deviation of the members' energies / sqrt(N), eV/atom); label the most disputed with the
oracle; add them; repeat.  Every round is logged (JSON lines) and plotted.

    [active]
    rounds = 4
    temperatures = [300.0, 900.0]    # K, MD driven by the current model
    snapshots = 10                    # per seed structure and temperature
    select = 10                       # configurations labelled per round
    test = "test.extxyz"              # held-out set, relative to the config file
    oracle = "lammps-sw"              # or "xtb"
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..engines import neighbors
from ..reference import oracles
from ..config import ConfigError, read_toml
from .config import read_config
from .data import StructureDataset, read_structures, write_structures
from .run import make_ensemble
from .trainer import Trainer, evaluate, set_self_energies


@dataclasses.dataclass
class ActiveConfig:
    rounds: int = 3
    temperatures: tuple = (300.0, 900.0)
    snapshots: int = 8
    select: int = 8
    test: str = "test.extxyz"
    oracle: str = "lammps-sw"


def read_active(path: Path) -> ActiveConfig:
    raw = read_toml(path, "active-learning configuration").get("active", {})
    fields = {f.name for f in dataclasses.fields(ActiveConfig)}
    bad = sorted(raw.keys() - fields)
    if bad:
        raise ConfigError(f"{path}: unknown [active] key(s) {bad}; allowed: {sorted(fields)}")
    if raw.get("oracle", "lammps-sw") not in ("lammps-sw", "xtb"):
        raise ConfigError(f"{path}: [active] oracle must be 'lammps-sw' or 'xtb'")
    return ActiveConfig(**{**raw, "temperatures": tuple(raw.get("temperatures", (300.0, 900.0)))})


def disagreement(ensemble, structures, elements) -> np.ndarray:
    """Committee disagreement per structure: std over members of the energy / sqrt(N), eV/atom."""
    index = {el: k for k, el in enumerate(elements)}
    out = []
    with torch.no_grad():
        for atoms in structures:
            edge_index, vectors = neighbors.edges(atoms.positions, atoms.cell.array, atoms.pbc,
                                                  ensemble.metadata().cutoff)
            species = torch.tensor([index[s] for s in atoms.get_chemical_symbols()])
            dtype = next(ensemble.parameters()).dtype
            member = ensemble.member_energies(species, edge_index, vectors.to(dtype), len(atoms))
            out.append(float(member.sum(1).std()) / math.sqrt(len(atoms)))
    return np.array(out)


def run(config_path: str | Path, log: Callable[[str], None] = print) -> list[dict]:
    """Run active learning as the TOML file says; returns one row per round."""
    from ..model.artifact import export
    from .plots import active_learning_rounds
    from ..reference.sampling import md_snapshots, minimised

    config_path = Path(config_path)
    cfg = read_config(config_path)
    active = read_active(config_path)
    if cfg.ensemble < 2:
        raise ConfigError(f"{config_path}: query by committee needs [model] ensemble >= 2")
    cfg.folder.mkdir(parents=True, exist_ok=True)
    oracle = oracles.lammps_oracle(elements=cfg.elements) if active.oracle == "lammps-sw" \
        else oracles.xtb_oracle()
    labelled = read_structures(cfg.data)
    seeds = [a.copy() for a in labelled]
    test = read_structures(config_path.parent / active.test)
    members = [cfg.build_model(seed=cfg.training.seed + m) for m in range(cfg.ensemble)]
    cutoff = members[0].metadata().cutoff
    test_set = StructureDataset(test, cfg.elements, cutoff)
    rows: list[dict] = []
    log_file = cfg.folder / "active_learning.jsonl"
    log_file.write_text("")
    for rnd in range(active.rounds + 1):
        dataset = StructureDataset(labelled, cfg.elements, cutoff)
        for m, model in enumerate(members):
            if rnd == 0:
                set_self_energies(model, dataset, len(cfg.elements))
            member_cfg = dataclasses.replace(cfg.training, seed=cfg.training.seed + 100 * rnd + m,
                                             checkpoint=None)
            Trainer(model, dataset, member_cfg, log=lambda _msg: None).run()
        ensemble = make_ensemble(members)
        test_metrics = evaluate(ensemble, test_set, range(len(test)))
        test_score = disagreement(ensemble, test, cfg.elements)
        model_file = export(ensemble, cfg.folder / f"round{rnd}.pt")
        row = {"round": rnd, "training_structures": len(labelled),
               "test_energy_mae_meV_per_atom": test_metrics["energy_mae_meV_per_atom"],
               "test_force_rmse_eV_per_A": test_metrics["force_rmse_eV_per_A"],
               "test_mean_disagreement_eV_per_atom": float(test_score.mean()),
               "test_max_disagreement_eV_per_atom": float(test_score.max())}
        if rnd < active.rounds:
            pair_lines = [f"pair_style multiscale {model_file}", f"pair_coeff * * {' '.join(cfg.elements)}"]
            candidates = []
            for k, start in enumerate(seeds):
                for temperature in active.temperatures:
                    try:
                        candidates += md_snapshots(start, pair_lines, temperature, active.snapshots,
                                                   interval=50, equilibrate=100, plugin=True,
                                                   elements=cfg.elements, seed=1 + k + 1000 * rnd)
                    except Exception as exc:  # an unstable model loses atoms: that sample is skipped
                        log(f"round {rnd}: MD from seed {k} at {temperature} K failed ({exc}); skipped")
                try:
                    candidates.append(minimised(start, pair_lines, plugin=True, elements=cfg.elements))
                except Exception as exc:
                    log(f"round {rnd}: minimisation from seed {k} failed ({exc}); skipped")
            score = disagreement(ensemble, candidates, cfg.elements)
            chosen = np.argsort(score)[::-1][: active.select]
            labelled += oracles.label([candidates[c] for c in chosen], oracle, progress=lambda _m: None)
            row.update({"candidates": len(candidates), "selected": len(chosen),
                        "candidates_mean_disagreement_eV_per_atom": float(score.mean()),
                        "selected_min_disagreement_eV_per_atom": float(score[chosen].min())})
        rows.append(row)
        log(json.dumps(row))
        with log_file.open("a") as f:
            f.write(json.dumps(row) + "\n")
        active_learning_rounds(rows, cfg.folder / "active_learning.png")
    write_structures(cfg.folder / "labelled.extxyz", labelled)
    export(make_ensemble(members), cfg.output_model)
    return rows
