"""The multiscale command line."""

import json
import subprocess
import sys

from ase.build import bulk

import multiscale


def cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "multiscale.cli", *map(str, args)],
                          capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_export_reference_and_info(tmp_path, si_sw_file):
    lj = tmp_path / "lj.pt"
    cli("export-reference", "lj", "--epsilon", 0.0104, "--sigma", 3.4, "--cutoff", 8.5,
        "--elements", "Ar", "--shift", "-o", lj)
    info = json.loads(cli("info", lj).stdout)
    assert info["name"] == "lennard-jones" and info["cutoff"] == 8.5 and info["elements"] == ["Ar"]
    assert info["hops"] == 1 and info["dtype"] == "float64"

    morse = tmp_path / "morse.pt"
    cli("export-reference", "morse", "--d0", 0.3, "--alpha", 1.2, "--r0", 3.8, "--cutoff", 7,
        "--dtype", "float32", "-o", morse)
    assert json.loads(cli("info", morse).stdout)["dtype"] == "float32"

    sw = tmp_path / "sw.pt"
    cli("export-reference", "sw", "--lammps-file", si_sw_file, "--elements", "Si", "-o", sw)
    info = json.loads(cli("info", sw).stdout)
    assert info["cutoff"] == 3.77118 and info["outputs"] == ["energies", "virials"]
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    atoms.calc = multiscale.MultiscaleCalculator(sw)
    # Stillinger-Weber silicon's cohesive energy at its own lattice constant: -4.3366 eV/atom
    assert abs(atoms.get_potential_energy() / len(atoms) + 4.3366) < 1e-3


def test_errors_are_messages_not_tracebacks(tmp_path):
    proc = cli("info", tmp_path / "missing.pt", check=False)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("export-reference", "sw", "--lammps-file", tmp_path / "none.sw", "--elements", "Si",
               "-o", tmp_path / "x.pt", check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_config_commands_describe_every_key_and_name_a_runnable_config():
    """`train`, `active-learn`, `fields train` and `fields finetune` --help list every key their
    readers accept and point to a configuration that exists."""
    import dataclasses
    import re
    from pathlib import Path

    from multiscale import cli
    from multiscale.fields.finetune import DEFAULTS as FINETUNE
    from multiscale.fields.train import DEFAULTS as FIELDS
    from multiscale.learning.active_learning import ActiveConfig
    from multiscale.learning.trainer import TrainConfig
    root = Path(__file__).resolve().parent.parent
    expected = {
        "TRAIN_HELP": ["path", "kind", "elements", "ensemble", "dtype", "repulsion"]
        + [f.name for f in dataclasses.fields(TrainConfig)],
        "ACTIVE_HELP": [f.name for f in dataclasses.fields(ActiveConfig)],
        "FIELDS_TRAIN_HELP": [k for section in FIELDS.values() for k in section],
        "FINETUNE_HELP": [k for section in FINETUNE.values() for k in section],
    }
    for name, keys in expected.items():
        text = getattr(cli, name)
        missing = [k for k in keys if not re.search(rf"\b{k}\b", text)]
        assert not missing, f"{name} does not describe {missing}"
        for path in re.findall(r"\b((?:examples|multiscale/data)/[\w/]+\.toml)", text):
            assert (root / path).is_file(), f"{name} names {path}, which does not exist"
    for command in (["train"], ["active-learn"], ["fields", "train"], ["fields", "finetune"]):
        out = subprocess.run([sys.executable, "-m", "multiscale.cli", *command, "--help"],
                             capture_output=True, text=True)
        assert out.returncode == 0 and ".toml" in out.stdout, (command, out.stderr)
