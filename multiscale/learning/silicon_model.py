"""The shipped silicon models: data, training, validation, in one command.

    multiscale build-silicon-model [--model si-ani|si-attention] [--scale 1.5]

1. configurations (multiscale.reference.silicon) labelled by native Stillinger-Weber
   (training set, seed 0) and a held-out test set (seed 1), shared by both models;
2. the model's ensemble trained on them (multiscale/data/si_ani.toml: ANI-style;
   si_attention.toml: the equivariant transformer);
3. validation: held-out energy MAE and force RMSE; lattice constant, C11, C12, C44 and
   the relaxed (111) surface energy computed in LAMMPS through pair_style multiscale and
   with native pair_style sw;
4. writes multiscale/data/<model>.pt and <model>.json (the figures in
   docs/silicon_model.md and docs/attention.md).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from ..model.registry import DATA

CONFIGS = {"si-ani": DATA / "si_ani.toml", "si-attention": DATA / "si_attention.toml"}
WORK = DATA / "si_ani_run"      # the SW data both models train on


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


def material_of(props: dict):
    """The Material of a validation record's property block (the inverse of ``record``)."""
    from ..reference.material import Material
    return Material(props["lattice_constant_A"], props["C11_GPa"], props["C12_GPa"], props["C44_GPa"],
                    props["surface_energy_111_J_per_m2"])


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


def make_data(scale: float = 1.5, work: Path = WORK, log=print) -> Path:
    """train.h5 (seed 0) and test.h5 (seed 1, 0.3 x the size) in ``work``, labelled by native
    SW; kept, so that a second model trains on the same structures.  Returns ``work``."""
    from ..reference.silicon import configurations
    from ..reference.oracles import label, lammps_oracle
    from . import write_structures

    work.mkdir(parents=True, exist_ok=True)
    oracle = lammps_oracle()
    for name, seed, s in (("train", 0, scale), ("test", 1, 0.3 * scale)):
        path = work / f"{name}.h5"
        if not path.exists():
            kinds = configurations(scale=s, seed=seed, progress=log)
            structures = [a for group in kinds.values() for a in group]
            write_structures(path, label(structures, oracle, progress=log))
            log(f"{name} set: {len(structures)} structures -> {path}")
    return work


def build(model: str = "si-ani", scale: float = 1.5, output: Path | None = None, log=print) -> Path:
    """Regenerate the shipped silicon ``model`` (a key of CONFIGS) and its validation record,
    with its parameter count and training time."""
    from ..reference.material import ship
    from .config import read_config
    from .run import train_from_config, training_record

    if model not in CONFIGS:
        raise ValueError(f"no silicon model {model!r}; choose one of {sorted(CONFIGS)}")
    work = make_data(scale, log=log)
    config = work / CONFIGS[model].name
    shutil.copy(CONFIGS[model], config)
    trained = train_from_config(config, log=log)
    report = validate(trained, work / "test.h5", log=log, figure=work / f"{config.stem}_parity.png")
    report["training"] = training_record(trained, read_config(config).folder)
    target = Path(output) if output else DATA / CONFIGS[model].with_suffix(".pt").name
    shutil.copy(trained, target)
    (target.with_suffix(".json")).write_text(json.dumps(report, indent=2))
    if output is None:   # the shipped model: its constants go into the shipped material cache
        ship(target, material_of(report["properties"]["model"]))
    log(f"shipped model {target}; report {target.with_suffix('.json')}")
    return target

