"""The shipped molecular attention model ``et-chno``: data, training, validation.

    multiscale build-et-chno [--conformers 25]

1. the G2 molecules of C, H, N, O that aimnet-chno is trained on (the same molecules held
   out: multiscale.learning.aimnet_chno.split_molecules), neutral and closed-shell only (an
   equivariant transformer takes no total charge or spin), each at its G2 geometry and
   ``conformers - 1`` random displacements, labelled by GFN2-xTB (tblite);
2. an equivariant transformer (multiscale/data/et_chno.toml) trained on energies + forces;
3. validation on the held-out molecules: energy MAE, force RMSE, for et-chno and, on the same
   structures, aimnet-chno; parameter count and training time; written to
   multiscale/data/et_chno.json (docs/attention.md quotes it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

from ..model.registry import DATA

CONFIG = DATA / "et_chno.toml"
WORK = DATA / "et_chno_run"
AMPLITUDE = (0.02, 0.10)   # Å, random displacements: wider than aimnet-chno's, for MD


def neutral_singlets(names, count: int, seed: int):
    """Each molecule's G2 geometry and ``count - 1`` displacements, neutral closed shells only."""
    from ..reference.charge_states import geometries
    return [a for a in geometries(names, count, seed, amplitude=AMPLITUDE, charges=(0,), field_fraction=0.0)
            if a.info["spin"] == 1]


def make_data(work: Path = WORK, conformers: int = 25, log: Callable[[str], None] = print) -> tuple[Path, Path]:
    """train.h5 and test.h5 in ``work`` (kept: a second build reuses them)."""
    from .aimnet_chno import write_split
    return write_split(work, (conformers, max(2, conformers // 5)), neutral_singlets, "neutral singlets", log)


def held_out_errors(model_file, test_file) -> dict:
    """Energy MAE (meV/atom), force RMSE (eV/Å) and parameter count of a model file on the held-out set."""
    import multiscale
    from .aimnet_chno import per_state_errors
    errors = per_state_errors(model_file, test_file)["all"]
    return {"structures": errors["structures"], "energy_mae_meV_per_atom": errors["energy_mae_meV_per_atom"],
            "force_rmse_eV_per_A": errors["force_rmse_eV_per_A"],
            "parameters": int(sum(p.numel() for p in multiscale.load(model_file).module.parameters()))}


def shortest_distances(path) -> dict:
    """{"C-H": Å, ...}: the shortest distance of each element pair (symbols in alphabetical
    order) over the molecules of a data file; a ZBL core must switch off below them."""
    import numpy as np
    from .data import read_structures
    out: dict = {}
    for atoms in read_structures(path):
        d = atoms.get_all_distances()
        symbols = atoms.get_chemical_symbols()
        i, j = np.triu_indices(len(atoms), 1)
        for a, b, r in zip(i, j, d[i, j]):
            key = "-".join(sorted((symbols[a], symbols[b])))
            out[key] = min(out.get(key, np.inf), float(r))
    return dict(sorted(out.items()))


def build(conformers: int = 25, log: Callable[[str], None] = print, output: Path | None = None) -> Path:
    """Regenerate et_chno.pt and its validation record."""
    from .aimnet_chno import split_molecules
    from .config import read_config
    from .run import train_from_config, training_record
    train, test = make_data(WORK, conformers, log)
    pairs = {name: shortest_distances(path) for name, path in (("training", train), ("held_out", test))}
    shortest = {name: min(d.values()) for name, d in pairs.items()}
    log(f"shortest distance of each element pair (Å): {pairs}")
    config = WORK / CONFIG.name
    shutil.copy(CONFIG, config)
    model = train_from_config(config, log=log)
    _, held = split_molecules()
    report = {"held_out_molecules": held, "training": training_record(model, read_config(config).folder),
              "shortest_distance_A": shortest,
              "errors": {"et-chno": held_out_errors(model, test),
                         "aimnet-chno": held_out_errors(DATA / "aimnet_chno.pt", test)}}
    log(json.dumps(report["errors"]))
    target = Path(output) if output else DATA / "et_chno.pt"
    shutil.copy(model, target)
    target.with_suffix(".json").write_text(json.dumps(report, indent=1))
    log(f"shipped model {target}; report {target.with_suffix('.json')}")
    return target
