"""The shipped silicon model: data, training, validation, in one command.

    multiscale build-silicon-model [--scale 1.0] [--quick]

1. configurations (multiscale.reference.silicon) labelled by native Stillinger-Weber
   (training set, seed 0) and a held-out test set (seed 1);
2. an ANI-style ensemble trained on them (multiscale/data/si_ani.toml);
3. validation: held-out energy MAE and force RMSE; lattice constant, C11, C12, C44 and
   the relaxed (111) surface energy computed in LAMMPS through pair_style multiscale and
   with native pair_style sw;
4. writes multiscale/data/si_ani.pt and multiscale/data/si_ani.json (the figures in
   docs/silicon_model.md).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from ..model.registry import DATA

CONFIG = DATA / "si_ani.toml"


def validate(model_file: str | Path, test_file: str | Path, log=print, figure: Path | None = None) -> dict:
    """Held-out errors and material properties of ``model_file`` against native SW;
    ``figure``: where to draw the held-out parity plot."""
    from ..reference.material import compute
    from . import StructureDataset, read_structures
    from .trainer import evaluate
    import multiscale

    loaded = multiscale.load(model_file)
    test = read_structures(test_file)
    module = loaded.module
    dataset = StructureDataset(test, loaded.metadata.elements, loaded.metadata.cutoff)
    errors = evaluate(module, dataset, range(len(test)))
    log(f"held-out set of {len(test)} structures: {errors}")
    result = {"test_structures": len(test), **errors, "properties": {}}
    if figure is not None:
        _parity(loaded, test, figure)
    for name, potential in (("native_sw", "sw"), ("model", model_file)):
        start = time.perf_counter()
        props = record(compute(potential, log=log))
        result["properties"][name] = props
        log(f"{name}: {props} ({time.perf_counter() - start:.1f} s)")
    ref, ours = result["properties"]["native_sw"], result["properties"]["model"]
    result["relative_differences"] = {k: (ours[k] - ref[k]) / ref[k] for k in ref}
    return result


def record(mat) -> dict[str, float]:
    """A Material as the validation record's keys (with units)."""
    return {"lattice_constant_A": mat.lattice_constant, "C11_GPa": mat.C11, "C12_GPa": mat.C12,
            "C44_GPa": mat.C44, "surface_energy_111_J_per_m2": mat.surface_energy}


def _parity(loaded, test, figure: Path) -> None:
    import numpy as np
    from ..engines.ase_calculator import MultiscaleCalculator
    from .plots import parity
    calc = MultiscaleCalculator(loaded)
    ref = {"energy_per_atom": [], "forces": []}
    ours = {"energy_per_atom": [], "forces": []}
    for atoms in test:
        ref["energy_per_atom"].append(atoms.get_potential_energy() / len(atoms))
        ref["forces"].append(atoms.get_forces().ravel())
        copy = atoms.copy()
        copy.calc = calc
        ours["energy_per_atom"].append(copy.get_potential_energy() / len(atoms))
        ours["forces"].append(copy.get_forces().ravel())
    for d in (ref, ours):
        d["forces"] = np.concatenate(d["forces"])
    parity(ref, ours, figure, title=f"held-out set vs Stillinger-Weber ({len(test)} structures)")


def build(scale: float = 1.0, output: Path | None = None, log=print) -> Path:
    """Regenerate the shipped model and its validation record."""
    from ..reference.silicon import configurations
    from ..reference.oracles import label, lammps_oracle
    from . import train_from_config, write_structures

    work = DATA / "si_ani_run"
    work.mkdir(parents=True, exist_ok=True)
    oracle = lammps_oracle()
    for name, seed, s in (("train", 0, scale), ("test", 1, 0.3 * scale)):
        path = work / f"{name}.h5"
        if not path.exists():
            kinds = configurations(scale=s, seed=seed, progress=log)
            structures = [a for group in kinds.values() for a in group]
            write_structures(path, label(structures, oracle, progress=log))
            log(f"{name} set: {len(structures)} structures -> {path}")
    config = work / "si_ani.toml"
    shutil.copy(CONFIG, config)
    model = train_from_config(config, log=log)
    report = validate(model, work / "test.h5", log=log, figure=work / "parity.png")
    target = Path(output) if output else DATA / "si_ani.pt"
    shutil.copy(model, target)
    (target.with_suffix(".json")).write_text(json.dumps(report, indent=2))
    log(f"shipped model {target}; report {target.with_suffix('.json')}")
    return target
