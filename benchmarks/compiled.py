"""Compiled (.pt2, torch.export + AOTInductor) against TorchScript (.pt) model files, and against torchani.

Time per atom-step (energy + forces: forward and backward), one thread, CPU, each case's calls
interleaved (benchmarks/timing.py) so the machine's noise hits all alike:

- TorchScript / compiled, model: the .pt and the .pt2 of the same model on edges built once;
- ours, ASE: the whole MultiscaleCalculator path with the .pt2 and with the .pt (vesin
  neighbour list, model, forces): the same work per call as torchani's; the faster of the two
  is compared with torchani (the .pt holds the stacked ANI networks, potentials/stacked.py);
- torchani TorchScript: its model with its own neighbour list (cell list in a box, all pairs
  in a cluster), energy and forces, same networks and weights as ours (``from_torchani``).

Models: ANI-1x (1 network) and ANI-2x (8 networks) on acetamide (288 atoms; 4,032 atoms),
float32 and float64; the 2-hop message-passing model (Si/C, 64 features) and the shipped si-ani
on diamond silicon (216; 4,096 atoms), float64.  The network FLOP floor of the ANI models is
their element networks' multiply-adds (forward and input backward, 4 x in x out per layer and
atom) at the matmul rate this machine measures for a 1024 x 384 x 160 product.

    .venv/bin/python benchmarks/compiled.py [--quick | --only ani2x] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")

import torch  # noqa: E402
from ase.build import bulk  # noqa: E402
from ase.calculators.calculator import all_changes  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import multiscale  # noqa: E402
from ani_inference import acetamide_box, torchani_model  # noqa: E402
from multiscale.engines import neighbors  # noqa: E402
from multiscale.model.compiler import compile_file  # noqa: E402
from multiscale.potentials import MessagePassingPotential, from_torchani  # noqa: E402
from timing import interleaved_medians  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "compiled.json"
HARTREE_EV = 27.211386024367243


def model_call(loaded, atoms):
    """Forward + backward of a loaded model on edges built once."""
    index = {el: k for k, el in enumerate(loaded.metadata.elements)}
    species = torch.tensor([index[s] for s in atoms.get_chemical_symbols()])
    edge_index, vectors = neighbors.edges(atoms.positions, atoms.cell.array, atoms.pbc, loaded.metadata.cutoff)
    vectors = vectors.to(loaded.dtype)
    n = len(atoms)

    def call():
        v = vectors.detach().requires_grad_(True)
        energy = loaded.module(species, edge_index, v, n, 0.0, 1)["energies"].sum()
        torch.autograd.grad(energy, v)
    return call, int(edge_index.shape[1])


def ase_call(path, atoms):
    calc = multiscale.MultiscaleCalculator(path)
    atoms = atoms.copy()
    return lambda: calc.calculate(atoms, ["energy", "forces"], all_changes)


def torchani_call(model, atoms, dtype):
    periodic = bool(atoms.pbc.any())
    numbers = torch.tensor(atoms.numbers).unsqueeze(0)
    coords = torch.tensor(atoms.positions, dtype=dtype).unsqueeze(0)
    cell = torch.tensor(atoms.cell.array, dtype=dtype) if periodic else None
    pbc = torch.tensor([True, True, True]) if periodic else None

    def call():
        c = coords.detach().requires_grad_(True)
        energy = model((numbers, c), cell, pbc).energies.sum()
        torch.autograd.grad(energy, c)
    return call


def matmul_rate(dtype) -> float:
    """FLOP/s of a (1024 x 384) @ (384 x 160) product, one thread (the ANI networks' shapes)."""
    a, b = torch.randn(1024, 384, dtype=dtype), torch.randn(384, 160, dtype=dtype)
    best = float("inf")
    for _ in range(30):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * 1024 * 384 * 160 / best


def network_flops(model, atoms) -> float:
    """Multiply-adds x 2 of the element networks' forward and input backward, per atom (mean)."""
    symbols = atoms.get_chemical_symbols()
    members = model.members if hasattr(model, "members") else [model.networks]   # AtomicNetworks each
    total = 0.0
    for member in members:
        for k, element in enumerate(model.elements):
            count = symbols.count(element)
            layers = [m for m in member.networks[k] if isinstance(m, torch.nn.Linear)]
            total += count * sum(4.0 * layer.in_features * layer.out_features for layer in layers)
    return total / len(symbols)


def silicon(size: int, carbon: bool, seed: int = 1):
    atoms = bulk("Si", "diamond", 5.431, cubic=True).repeat(size)
    atoms.rattle(0.05, seed=seed)
    if carbon:
        atoms.symbols[::4] = "C"
    return atoms


def case(label, pt, pt2, systems, repeats, torchani=None, python_model=None) -> list[dict]:
    rows = []
    loaded = {"TorchScript": multiscale.load(pt), "compiled": multiscale.load(pt2)}
    dtype = loaded["compiled"].dtype
    rate = matmul_rate(dtype) if python_model is not None else None
    for system, atoms in systems:
        calls = {}
        for kind, model in loaded.items():
            calls[f"{kind}, model"], edges = model_call(model, atoms)
        calls["ours, ASE (.pt2: neighbour list + model + forces)"] = ase_call(pt2, atoms)
        calls["ours, ASE (.pt: neighbour list + model + forces)"] = ase_call(pt, atoms)
        if torchani is not None:
            calls["torchani TorchScript (its neighbour list + model + forces)"] = torchani_call(
                torchani[bool(atoms.pbc.any())], atoms, dtype)
        rounds = repeats if len(atoms) < 1000 else max(3, repeats // 3)
        seconds = interleaved_medians(calls, rounds)
        n = len(atoms)
        row = {"model": label, "system": system, "atoms": n, "edges": edges, "dtype": str(dtype).split(".")[1],
               "us_per_atom_step": {k: v / n * 1e6 for k, v in seconds.items()},
               "compiled_speedup_over_torchscript": seconds["TorchScript, model"] / seconds["compiled, model"]}
        if torchani is not None:   # against our faster file: .pt2, or the .pt's stacked networks
            fastest = min(("ours, ASE (.pt2: neighbour list + model + forces)",
                           "ours, ASE (.pt: neighbour list + model + forces)"), key=seconds.__getitem__)
            row["ours_fastest"] = fastest
            row["torchani_over_ours_same_work"] = (
                seconds["torchani TorchScript (its neighbour list + model + forces)"] / seconds[fastest])
        if python_model is not None:
            flops = network_flops(python_model, atoms)
            row["network_flops_per_atom_step"] = flops
            row["flop_floor_us_per_atom_step"] = flops / rate * 1e6
            row["compiled_over_floor"] = row["us_per_atom_step"]["compiled, model"] / row["flop_floor_us_per_atom_step"]
        rows.append(row)
        report(row)
    return rows


def report(row: dict) -> None:
    print(f"\n{row['model']}, {row['system']}, {row['atoms']} atoms, {row['edges']} edges, {row['dtype']}: "
          f"compiled / TorchScript speed-up {row['compiled_speedup_over_torchscript']:.2f}x"
          + (f", torchani / ours {row['torchani_over_ours_same_work']:.2f}x" if "torchani_over_ours_same_work" in row else "")
          + (f", compiled / FLOP floor {row['compiled_over_floor']:.0f}x" if "compiled_over_floor" in row else ""),
          flush=True)
    for name, value in row["us_per_atom_step"].items():
        print(f"  {name:64s} {value:10.1f} us/atom-step", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="ANI-1x float32 and si-ani, 288 atoms only")
    parser.add_argument("--only", choices=["ani1x", "ani2x"],
                        help="that ANI model alone (float32 and float64), for a quick look; not for the README")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats = 5 if args.quick else 11
    work = Path(tempfile.mkdtemp(prefix="compiled-benchmark-"))
    box = acetamide_box((4, 4, 2))
    cluster = box.copy()
    cluster.pbc, cluster.cell = False, None
    molecules = [("periodic box", box), ("cluster (no cell)", cluster)]
    if not args.quick:
        molecules.append(("periodic box", acetamide_box((8, 8, 7))))
    crystals = [("periodic box", silicon(3, False))] + ([] if args.quick else [("periodic box", silicon(8, False))])
    results = []
    ani = [("ani1x", 1, torch.float32)] if args.quick else [
        ("ani1x", 1, torch.float32), ("ani1x", 1, torch.float64), ("ani2x", 8, torch.float32), ("ani2x", 8, torch.float64)]
    if args.only:
        ani = [a for a in ani if a[0] == args.only]
        if args.json == RESULTS:
            args.json = RESULTS.with_name(f"compiled_{args.only}.json")
    for kind, members, dtype in ani:
        reference = torchani_model(kind, members, "all_pairs").to(dtype)
        ours = from_torchani(reference)
        tag = f"{kind}-{members}-{str(dtype).split('.')[1]}"
        start = time.perf_counter()
        pt, pt2 = multiscale.export(ours, work / f"{tag}.pt"), multiscale.export(ours, work / f"{tag}.pt2")
        print(f"{tag}: compiled in {time.perf_counter() - start:.0f} s", flush=True)
        theirs = {}
        for periodic, nl in ((True, "cell_list"), (False, "all_pairs")):
            model = torchani_model(kind, members, nl).to(dtype)
            model.load_state_dict(reference.state_dict())
            theirs[periodic] = torch.jit.script(model.to_infer_model() if members > 1 else model)
        results += case(f"{kind} x{members}", pt, pt2, molecules, repeats, torchani=theirs, python_model=ours)
    if not args.quick and not args.only:
        mp = MessagePassingPotential(["Si", "C"], cutoff=4.0, hops=2, features=64, seed=0)
        results += case("message passing (2 hops, 64 features)", multiscale.export(mp, work / "mp.pt"),
                        multiscale.export(mp, work / "mp.pt2"),
                        [(s, silicon(size, True)) for s, size in (("periodic box", 3), ("periodic box", 8))], repeats)
    if not args.only:
        start = time.perf_counter()
        si_ani = compile_file("si-ani", work / "si_ani.pt2")
        print(f"si-ani: compiled in {time.perf_counter() - start:.0f} s", flush=True)
        results += case("si-ani (ensemble of 2)", "si-ani", si_ani, crystals, repeats)
    out = {"what": "time per atom-step (energy + forces), median of interleaved rounds, CPU, one thread",
           "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
           "repeats": repeats, "cases": results}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    for f in work.iterdir():
        f.unlink()
    work.rmdir()
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
