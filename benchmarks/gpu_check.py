"""GPU checks and benchmarks in one run (issue 20), for a machine with an NVIDIA GPU:

    .venv/bin/python benchmarks/gpu_check.py [--device cuda] [--json benchmarks/results/gpu.json]

Correctness, each result on the GPU against the same model on the CPU (float64 to 1e-10
relative, float32 to 1e-5; OpenMM to 1e-6, its CUDA platform sums forces in fixed point):
  ase     energy, forces and per-atom stress: si-ani, Stillinger-Weber (float64 and float32)
          and a two-hop message-passing model, through MultiscaleCalculator(device=...)
  lammps  `pair_style multiscale ... device cuda` on 1 and 2 ranks against `device cpu` on
          1 rank (energy, forces, per-atom energies and stresses), the same models
  openmm  openmm-torch's TorchForce on the CUDA platform (double precision) against Reference
  pt2     si-ani compiled for the GPU (`multiscale compile --device cuda`) in ASE and in
          LAMMPS on 1 and 2 ranks, against the .pt on the CPU
Benchmarks (ratios taken in this run): LAMMPS time per atom-step of si-ani on the GPU (.pt
and .pt2) against one CPU rank with one thread, at 4,096 and 32,768 atoms.

``--device cpu`` runs every step with the CPU in place of the GPU: a dry run of the script's
code paths on a machine without one (its figures compare the CPU with itself).  Exit status 1
if any check fails; everything measured goes to the JSON file either way.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))   # the tests' LAMMPS runner (lmp_runs)
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from ase.build import bulk  # noqa: E402

import multiscale  # noqa: E402
from lammps_plugin import crystal, lmp_seconds_per_step  # noqa: E402
from lmp_runs import relative, run_ok, skewed_cell  # noqa: E402
from multiscale.model.compiler import compile_file  # noqa: E402
from multiscale.model.device import resolve  # noqa: E402
from multiscale.paths import SILICON_SW, lammps_potential  # noqa: E402
from multiscale.potentials import MessagePassingPotential  # noqa: E402
from multiscale.potentials.stillinger_weber import StillingerWeber  # noqa: E402

FLOAT64, FLOAT32, OPENMM = 1e-10, 1e-5, 1e-6


def build_models(folder: Path, device: str) -> dict:
    """name -> (model file, elements, tolerance): the shipped si-ani, SW in float64 and float32,
    a two-hop message-passing model on Si and C; "si-ani.pt2" compiled for ``device``."""
    sw = StillingerWeber(lammps_potential(SILICON_SW), ["Si"])
    models = {"si-ani": (multiscale.load("si-ani").path, "Si Si", FLOAT64)}
    for name, dtype, tol in (("sw", "float64", FLOAT64), ("sw32", "float32", FLOAT32)):
        path = multiscale.export(sw, folder / f"{name}.pt", metadata=replace(sw.metadata(), dtype=dtype))
        models[name] = (path, "Si Si", tol)
    mp = MessagePassingPotential(["Si", "C"], cutoff=3.6, hops=2, features=16, seed=3)
    models["mp"] = (multiscale.export(mp, folder / "mp.pt"), "Si C", FLOAT64)
    started = time.perf_counter()
    pt2 = compile_file("si-ani", folder / "si_ani_device.pt2", device=device)
    models["si-ani.pt2"] = (pt2, "Si Si", FLOAT64)
    print(f"compiled si-ani for {device} in {time.perf_counter() - started:.0f} s", flush=True)
    return models


def structure(name: str):
    atoms = bulk("Si", "diamond", 5.43, cubic=True).repeat(3)
    if name == "mp":
        atoms.symbols[::5] = "C"
    atoms.rattle(0.1, seed=5)
    return atoms


def ase_results(model, atoms, device: str) -> list[np.ndarray]:
    atoms.calc = multiscale.MultiscaleCalculator(model, device=device)
    return [np.array(atoms.get_potential_energy()), atoms.get_forces(), atoms.get_stresses()]


def check_ase(models: dict, device: str) -> dict:
    out = {}
    for name, (path, _, tol) in models.items():
        reference = models["si-ani"][0] if name == "si-ani.pt2" else path
        atoms = structure(name)
        want = ase_results(reference, atoms, "cpu")
        got = ase_results(path, atoms, device)
        errors = [relative(g, w) for g, w in zip(got, want)]
        out[name] = {"energy": errors[0], "forces": errors[1], "stresses": errors[2],
                     "tolerance": tol, "ok": max(errors) <= tol}
    return out


def check_lammps(models: dict, device: str, folder: Path) -> dict:
    out = {}
    for name, (path, elements, tol) in models.items():
        reference = models["si-ani"][0] if name == "si-ani.pt2" else path
        want = run_ok(skewed_cell(f"{reference} device cpu", elements), folder / f"{name}_cpu")
        for ranks in (1, 2):
            got = run_ok(skewed_cell(f"{path} device {device}", elements), folder / f"{name}_{device}_{ranks}", ranks)
            errors = {key: relative(got[key], want[key]) for key in ("pe", "forces", "energies", "stresses")}
            out[f"{name} {ranks} rank(s)"] = {**errors, "tolerance": tol, "ok": max(errors.values()) <= tol}
    return out


def check_openmm(models: dict, device: str) -> dict:
    import openmm

    from multiscale.engines.openmm.force import create_force
    from openmm_systems import single_point, system_of, topology_of
    platform = "CUDA" if device.startswith("cuda") else "CPU"
    out = {}
    for name in ("si-ani", "sw", "mp"):
        path, _, _ = models[name]
        atoms = structure(name)
        top = topology_of(atoms)
        e_ref, f_ref = single_point(system_of(top, create_force(path, top)), atoms.positions)
        e, f = single_point(system_of(top, create_force(path, top)), atoms.positions, platform,
                            properties={"Precision": "double"} if platform == "CUDA" else None)
        errors = {"energy": abs(e - e_ref) / abs(e_ref), "forces": relative(f, f_ref)}
        out[f"{name} ({platform})"] = {**errors, "tolerance": OPENMM, "ok": max(errors.values()) <= OPENMM}
    if openmm.Platform.getPluginLoadFailures():   # e.g. why OpenMM has no CUDA platform here
        out["plugin load failures"] = list(openmm.Platform.getPluginLoadFailures())
    return out


def benchmark(models: dict, device: str, folder: Path, sizes: list[int]) -> dict:
    """µs per atom-step of si-ani in LAMMPS (NVE at 600 K, 5 steps after 5 of warm-up)."""
    rows = {}
    for cells in sizes:
        runs = {"cpu .pt (1 rank, 1 thread)": (models["si-ani"][0], "cpu"),
                f"{device} .pt": (models["si-ani"][0], device),
                f"{device} .pt2": (models["si-ani.pt2"][0], device)}
        row = {}
        for label, (path, where) in runs.items():
            lines = crystal("si", cells, [f"pair_style multiscale {path} device {where}", "pair_coeff * * Si"])
            seconds, atoms = lmp_seconds_per_step(lines, 5, 1, folder / f"bench_{cells}_{label.split()[0]}")
            row[label] = 1e6 * seconds / atoms
        base = row["cpu .pt (1 rank, 1 thread)"]
        row["speed-up .pt"] = base / row[f"{device} .pt"]
        row["speed-up .pt2"] = base / row[f"{device} .pt2"]
        rows[f"{atoms} atoms"] = row
        print(f"{atoms} atoms: " + ", ".join(f"{k} {v:.3g}" for k, v in row.items()), flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a dry run")
    parser.add_argument("--json", default=str(HERE / "results" / "gpu.json"))
    parser.add_argument("--sizes", default="8,16", help="crystal sizes in unit cells (8 atoms each) for the benchmark")
    args = parser.parse_args(argv)
    device = str(resolve(args.device))        # a clear error where there is no such GPU
    started = time.perf_counter()
    report = {"device": device, "torch": torch.__version__,
              "gpu": torch.cuda.get_device_name(resolve(device)) if device.startswith("cuda") else "none (dry run)"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = build_models(folder, device)
        for part, check in (("ase", lambda: check_ase(models, device)),
                            ("lammps", lambda: check_lammps(models, device, folder)),
                            ("openmm", lambda: check_openmm(models, device))):
            t = time.perf_counter()
            report[part] = check()
            bad = [k for k, v in report[part].items() if isinstance(v, dict) and not v["ok"]]
            print(f"{part}: {'all agree' if not bad else 'FAILED ' + ', '.join(bad)} "
                  f"({time.perf_counter() - t:.0f} s)", flush=True)
        report["benchmark"] = benchmark(models, device, folder, [int(s) for s in args.sizes.split(",")])
    report["seconds"] = time.perf_counter() - started
    failed = [f"{part} {k}" for part in ("ase", "lammps", "openmm")
              for k, v in report[part].items() if isinstance(v, dict) and not v["ok"]]
    report["failed"] = failed
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    print(f"{'FAILED: ' + '; '.join(failed) if failed else 'every check passed'} in {report['seconds']:.0f} s; "
          f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
