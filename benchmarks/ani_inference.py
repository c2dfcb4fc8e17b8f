"""Inference time of our ANI models against torchani's, same architecture and weights, CPU.

Time per atom-step (energy + forces: forward and backward) on one system of acetamide
molecules (C/H/N/O), as a periodic box and as the same atoms without a cell:

- ours, model:   the exported TorchScript file called on edges built once by vesin;
- ours, ASE:     the whole MultiscaleCalculator path (vesin neighbour list, model, forces,
                 virials and per-atom stresses);
- torchani:      its model (eager and TorchScript) with its own neighbour list, on coordinates;
- torchani, ASE: torchani's own ASE calculator.

The torchani models get random weights; ours are converted from them with
``from_torchani``, so both sides run the same networks.

    .venv/bin/python benchmarks/ani_inference.py [--quick] [--threads N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.build import molecule  # noqa: E402
from ase.calculators.calculator import all_changes  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

import multiscale  # noqa: E402
from multiscale.engines import neighbors  # noqa: E402
from multiscale.potentials import from_torchani  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "ani_inference.json"
OURS_MODEL = "ours, model (TorchScript, vesin edges built once)"
SYMBOLS = {"ani1x": ("H", "C", "N", "O"), "ani2x": ("H", "C", "N", "O", "S", "F", "Cl")}


def acetamide_box(grid: tuple[int, int, int], spacing: float = 4.6, seed: int = 0) -> Atoms:
    """Randomly oriented acetamide molecules on a grid, about liquid density (1 g/cm^3)."""
    rng = np.random.default_rng(seed)
    unit = molecule("CH3CONH2")
    unit.positions -= unit.get_center_of_mass()
    atoms = Atoms(cell=np.diag(np.array(grid) * spacing), pbc=True)
    for index in np.ndindex(*grid):
        m = unit.copy()
        rotation = Rotation.random(random_state=int(rng.integers(2**31))).as_matrix()
        m.positions = m.positions @ rotation.T + spacing * (np.array(index) + 0.5)
        atoms += m
    return atoms


def torchani_model(kind: str, members: int, neighborlist: str, seed: int = 0):
    import torchani
    asm = torchani.arch.Assembler(periodic_table_index=True)
    asm.set_symbols(SYMBOLS[kind])
    asm.set_global_cutoff_fn("cosine")
    asm.set_aev_computer(angular=kind, radial=kind)
    asm.set_atomic_networks(ctor=kind)
    asm.set_neighborlist(neighborlist)
    asm.set_gsaes_as_self_energies("wb97x-631gd")
    torch.manual_seed(seed)
    return asm.assemble(members).requires_grad_(False)


def seconds(calls: dict, repeats: int, warmup: int = 2) -> dict:
    """Median wall time of each callable; the calls take turns in every round, so a
    passing load on the machine slows all of them alike."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def case(kind: str, members: int, atoms: Atoms, dtype: torch.dtype, repeats: int, workdir: Path) -> dict:
    periodic = bool(atoms.pbc.any())
    n = len(atoms)
    reference = torchani_model(kind, members, "all_pairs").to(dtype)
    ours = from_torchani(reference)
    path = multiscale.export(ours, workdir / f"{kind}-{members}-{dtype}.pt")
    loaded = multiscale.load(path)
    index = {el: k for k, el in enumerate(loaded.metadata.elements)}
    species = torch.tensor([index[s] for s in atoms.get_chemical_symbols()])
    edge_index, edge_vectors = neighbors.edges(atoms.positions, atoms.cell.array, atoms.pbc,
                                               loaded.metadata.cutoff)
    edge_vectors = edge_vectors.to(dtype)

    def ours_model():
        vectors = edge_vectors.detach().requires_grad_(True)
        energy = loaded.module(species, edge_index, vectors, n, 0.0, 1)["energies"].sum()
        torch.autograd.grad(energy, vectors)

    calc = multiscale.MultiscaleCalculator(loaded)

    def ours_ase():
        calc.calculate(atoms, ["energy", "forces"], all_changes)

    numbers = torch.tensor(atoms.numbers).unsqueeze(0)
    coords = torch.tensor(atoms.positions, dtype=dtype).unsqueeze(0)
    cell = torch.tensor(atoms.cell.array, dtype=dtype) if periodic else None
    pbc = torch.tensor([True, True, True]) if periodic else None

    def torchani_call(model):
        def call():
            c = coords.detach().requires_grad_(True)
            energy = model((numbers, c), cell, pbc).energies.sum()
            torch.autograd.grad(energy, c)
        return call

    calls = {OURS_MODEL: ours_model, "ours, ASE calculator (vesin + model + forces + stress)": ours_ase}
    for nl in ["all_pairs", "cell_list"] if periodic else ["all_pairs"]:
        model = torchani_model(kind, members, nl).to(dtype)
        model.load_state_dict(reference.state_dict())
        calls[f"torchani, eager, {nl}"] = torchani_call(model)
        calls[f"torchani, TorchScript, {nl}"] = torchani_call(torch.jit.script(model))
        if members > 1:  # torchani's inference-optimised ensemble (batched matmuls)
            calls[f"torchani, TorchScript, {nl}, to_infer_model()"] = torchani_call(
                torch.jit.script(model.to_infer_model()))
    if dtype == torch.float32:  # torchani's ASE calculator runs in the model's float32
        ase_atoms = atoms.copy()
        ase_atoms.calc = reference.ase()

        def torchani_ase():
            ase_atoms.calc.calculate(ase_atoms, ["energy", "forces"], all_changes)
        calls["torchani, ASE calculator (all_pairs)"] = torchani_ase
    rows = seconds(calls, repeats)

    # the two sides compute the same energy (a check, not a timing)
    calc.calculate(atoms, ["energy"], all_changes)
    with torch.no_grad():
        theirs = float(reference((numbers, coords), cell, pbc).energies.sum()) * 27.211386024367243
    ours_model_time = rows[OURS_MODEL]
    return {"model": f"{kind} x{members}", "system": "periodic box" if periodic else "cluster (no cell)",
            "atoms": n, "edges": int(edge_index.shape[1]), "dtype": str(dtype).replace("torch.", ""),
            "energy_relative_difference": abs(calc.results["energy"] - theirs) / abs(theirs),
            "us_per_atom_step": {k: v / n * 1e6 for k, v in rows.items()},
            "time_over_ours_model": {k: v / ours_model_time for k, v in rows.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, ANI-1x only")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--grid", type=int, nargs=3, default=(4, 4, 2),
                        help="molecules per box edge (default 4 4 2: 288 atoms)")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 5 if args.quick else 15
    box = acetamide_box(tuple(args.grid))
    cluster = box.copy()
    cluster.pbc = False
    cluster.cell = None
    models = [("ani1x", 1)] if args.quick else [("ani1x", 1), ("ani2x", 8)]
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"ani-benchmark-{os.getpid()}"
    results = []
    for kind, members in models:
        for atoms in (box, cluster):
            for dtype in (torch.float32, torch.float64):
                results.append(case(kind, members, atoms, dtype, repeats, workdir))
                report(results[-1])
    for f in workdir.glob("*.pt"):
        f.unlink()
    workdir.rmdir()
    out = {"what": "time per atom-step (energy + forces), median, CPU",
           "time_over_ours_model": "each time / ours, model call (> 1: slower than ours)",
           "threads": args.threads, "repeats": repeats, "molecule_grid": list(args.grid),
           "cpu": platform.processor() or platform.machine(),
           "torch": torch.__version__, "cases": results}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {args.json}")


def report(result: dict) -> None:
    print(f"\n{result['model']}, {result['system']}, {result['atoms']} atoms, {result['edges']} edges, "
          f"{result['dtype']} (energies differ by {result['energy_relative_difference']:.1e} relative)")
    print(f"  {'':62s} {'us/atom-step':>12s} {'/ ours model':>13s}")
    for name, value in result["us_per_atom_step"].items():
        print(f"  {name:62s} {value:12.1f} {result['time_over_ours_model'][name]:12.2f}x")


if __name__ == "__main__":
    main()
