"""Active learning by query by committee: a tiny silicon run with the Stillinger-Weber oracle."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

import multiscale
from multiscale.learning import active_learning
from multiscale.engines.lammps import pair_lines
from multiscale.reference.oracles import label, lammps_oracle
from multiscale.reference.sampling import md_snapshots
from multiscale.learning import write_structures

SW_LINES = pair_lines("sw")[0]   # native Stillinger-Weber (LAMMPS Si.sw)

CONFIG = Path(__file__).resolve().parent / "data" / "si_active.toml"


@pytest.fixture
def run_folder(tmp_path) -> Path:
    """The configuration with a deliberately small seed set (4 near-equilibrium cells) and a
    held-out set of Stillinger-Weber MD snapshots at 300, 900 and 1500 K."""
    shutil.copy(CONFIG, tmp_path)
    rng = np.random.default_rng(0)
    seeds = []
    for k in range(4):
        atoms = bulk("Si", "diamond", a=5.431, cubic=True)
        atoms.set_cell(atoms.cell.array * (1 + rng.uniform(-0.01, 0.01)), scale_atoms=True)
        atoms.rattle(0.03, seed=k)
        seeds.append(atoms)
    test = []
    for k, temperature in enumerate((300.0, 900.0, 1500.0)):
        test += md_snapshots(bulk("Si", "diamond", a=5.431, cubic=True), SW_LINES, temperature,
                             count=5, interval=100, seed=11 + k)
    oracle = lammps_oracle()
    write_structures(tmp_path / "seed.extxyz", label(seeds, oracle, progress=lambda _m: None))
    write_structures(tmp_path / "test.extxyz", label(test, oracle, progress=lambda _m: None))
    return tmp_path


@pytest.mark.slow
def test_held_out_force_error_falls_round_over_round(run_folder):
    rows = active_learning.run(run_folder / CONFIG.name, log=lambda _m: None)
    assert [row["round"] for row in rows] == [0, 1, 2]
    assert [row["training_structures"] for row in rows] == [4, 10, 16]  # select = 6 per round
    rmse = [row["test_force_rmse_eV_per_A"] for row in rows]
    assert all(later < earlier for earlier, later in zip(rmse, rmse[1:])), rmse
    assert rmse[-1] < 0.5 * rmse[0], rmse

    folder = run_folder / "run"
    logged = [json.loads(line) for line in (folder / "active_learning.jsonl").read_text().splitlines()]
    assert logged == json.loads(json.dumps(rows))  # one row per round, as returned
    assert (folder / "active_learning.png").stat().st_size > 0
    for path in [folder / f"round{k}.pt" for k in range(3)] + [run_folder / "si_active.pt"]:
        assert multiscale.load(path).metadata.name == "ani-ensemble"  # every round's committee
