"""The shipped silicon model against its reference, Stillinger-Weber (issue: shipped model)."""

import json

import numpy as np
import pytest

import multiscale
from multiscale.learning.silicon_model import record as validation_record
from multiscale.reference.material import SHIPPED, Material, cache_key
from multiscale.cli import main as cli_main
from multiscale.reference.silicon import configurations
from multiscale.reference.oracles import label, lammps_oracle
from multiscale.model.registry import model_path, shipped_models

MODEL = model_path("si-ani")


def test_listed_with_its_path(capsys):
    assert shipped_models()["si-ani"]["path"] == str(MODEL)
    assert cli_main(["models"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("si-ani")][0]
    assert str(MODEL) in line
    meta = multiscale.load(MODEL).metadata
    assert list(meta.elements) == ["Si"] and meta.cutoff >= 3.77 and meta.dtype == "float64"


@pytest.mark.slow
def test_fresh_sw_configurations():
    # configurations the model never saw (another seed), labelled now by native SW
    kinds = configurations(scale=0.1, seed=12345, progress=lambda _m: None)
    structures = label([a for group in kinds.values() for a in group], lammps_oracle(),
                       progress=lambda _m: None)
    calc = multiscale.MultiscaleCalculator(MODEL)
    de, df = [], []
    for ref in structures:
        atoms = ref.copy()
        atoms.calc = calc
        de.append(abs(atoms.get_potential_energy() - ref.get_potential_energy()) / len(atoms))
        df.append(((atoms.get_forces() - ref.get_forces()) ** 2).ravel())
    assert np.mean(de) * 1e3 <= 2.0
    assert np.sqrt(np.mean(np.concatenate(df))) <= 0.1


# both materials computed in LAMMPS on the 2 ranks of one mpiexec (half the time of one rank)
MATERIALS_ON_TWO_RANKS = """
import json, sys
from mpi4py import MPI
from multiscale.reference.material import compute
out = {p: compute(p, MPI.COMM_WORLD, log=lambda m: None).as_dict() for p in ("sw", sys.argv[1])}
if MPI.COMM_WORLD.Get_rank() == 0:
    json.dump(out, open(sys.argv[2], "w"))
"""


@pytest.mark.slow
@pytest.mark.mpi
def test_properties_in_lammps_match_native_sw(tmp_path):
    """Computed now in LAMMPS on 2 ranks (no cache): the model's a, C_ij and gamma(111) against
    native SW's; and the values shipped in the material cache (computed on one rank) and in
    the validation record are these."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    bin_dir = Path(sys.executable).parent
    mpiexec = shutil.which("mpiexec", path=str(bin_dir)) or "mpiexec"
    out = tmp_path / "materials.json"
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, "-c", MATERIALS_ON_TWO_RANKS,
                           str(MODEL), str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.loads(out.read_text())
    ref, ours = Material(**fresh["sw"]), Material(**fresh[str(MODEL)])
    assert abs(ours.lattice_constant - ref.lattice_constant) / ref.lattice_constant <= 0.003
    for k in ("C11", "C12", "C44", "surface_energy"):
        assert abs(getattr(ours, k) - getattr(ref, k)) / getattr(ref, k) <= 0.05, (k, ours, ref)
    record = json.loads(MODEL.with_suffix(".json").read_text())["properties"]
    shipped = json.loads(SHIPPED.read_text())
    for potential, fresh, name in (("sw", ref, "native_sw"), (MODEL, ours, "model")):
        cached = Material(**shipped[cache_key(potential)])
        for k, v in fresh.as_dict().items():
            assert getattr(cached, k) == pytest.approx(v, rel=1e-9), (potential, k)
        for k, v in record[name].items():
            assert v == pytest.approx(validation_record(fresh)[k], rel=1e-6), (name, k)
