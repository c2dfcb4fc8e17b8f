"""Extended Hückel (multiscale.quantum, textbook parameters) energy + forces, and the shipped
ML-EHM model ``ehm-chno`` (exported TorchScript, through the ASE calculator), against
GFN2-xTB (tblite) energy + gradient, per call, for linear alkanes C_nH_2n+2 of growing size.
All in one run, one thread, interleaved, medians; the ratios show how the O(m^3)
eigenproblem and the O(N^2) overlaps scale against the reference's SCF.

    .venv/bin/python benchmarks/huckel.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.units import Bohr

from multiscale.quantum import extended_huckel
from multiscale.quantum.huckel import Basis, hamiltonian, overlap, solve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import interleaved_medians  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "huckel.json"


def alkane(n: int) -> Atoms:
    """A zig-zag C_nH_2n+2 (C-C 1.54 Å, C-H 1.09 Å, tetrahedral angles), not relaxed."""
    from ase.build import molecule
    if n == 1:
        return molecule("CH4")
    positions, symbols = [], []
    dx, dy = 1.54 * np.sin(np.radians(109.47 / 2)), 1.54 * np.cos(np.radians(109.47 / 2))
    for k in range(n):
        c = np.array([k * dx, (k % 2) * dy, 0.0])
        positions.append(c)
        symbols.append("C")
        up = -1.0 if k % 2 == 0 else 1.0
        for z in (0.89, -0.89):
            positions.append(c + np.array([0.0, 0.51 * up, z]))
            symbols.append("H")
        if k in (0, n - 1):
            positions.append(c + np.array([-1.03 if k == 0 else 1.03, 0.36 * up, 0.0]))
            symbols.append("H")
    return Atoms(symbols, positions)


def huckel_call(atoms: Atoms) -> None:
    x = torch.tensor(atoms.positions, requires_grad=True)
    energy = extended_huckel(atoms.get_chemical_symbols(), x).energy
    torch.autograd.grad(energy, x)


def ehm_call(atoms: Atoms) -> None:
    atoms.calc.reset()
    atoms.get_forces()


def xtb_call(atoms: Atoms) -> None:
    from tblite.interface import Calculator
    calc = Calculator("GFN2-xTB", atoms.numbers, atoms.positions / Bohr)
    calc.set("verbosity", 0)
    calc.singlepoint().get("gradient")


def split(atoms: Atoms, rounds: int) -> dict[str, float]:
    """Where one energy + forces call goes, ms (medians): overlaps, the solve (Cholesky,
    eigenproblems, occupations, charges), the backward pass."""
    symbols = atoms.get_chemical_symbols()
    parts = {"overlap": [], "solve": [], "backward": []}
    for _ in range(rounds + 1):
        basis = Basis(symbols)
        x = torch.tensor(atoms.positions, requires_grad=True)
        t0 = time.perf_counter()
        S = overlap(basis, x)
        t1 = time.perf_counter()
        energy = solve(basis, hamiltonian(S, basis.textbook_energies()), S).energy
        t2 = time.perf_counter()
        torch.autograd.grad(energy, x)
        t3 = time.perf_counter()
        for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2)):
            parts[key].append(dt)
    return {f"ms_{k}": 1e3 * float(np.median(v[1:])) for k, v in parts.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="three sizes, three rounds")
    p.add_argument("--json", default=str(RESULTS))
    args = p.parse_args()
    torch.set_num_threads(1)
    sizes, rounds = ([1, 4, 8], 3) if args.quick else ([1, 2, 4, 8, 16, 24], 7)
    from multiscale import MultiscaleCalculator
    ehm = MultiscaleCalculator("ehm-chno")
    rows = []
    for n in sizes:
        atoms = alkane(n)
        atoms.calc = ehm
        med = interleaved_medians({"huckel": lambda: huckel_call(atoms), "ml_ehm": lambda: ehm_call(atoms),
                                   "xtb": lambda: xtb_call(atoms)}, rounds)
        orbitals = sum(1 if s == "H" else 4 for s in atoms.get_chemical_symbols())
        rows.append({"molecule": f"C{n}H{2 * n + 2}", "atoms": len(atoms), "orbitals": orbitals,
                     "ms_huckel": 1e3 * med["huckel"], "ms_ml_ehm": 1e3 * med["ml_ehm"],
                     "ms_gfn2_xtb": 1e3 * med["xtb"], "xtb_over_huckel": med["xtb"] / med["huckel"],
                     "xtb_over_ml_ehm": med["xtb"] / med["ml_ehm"]})
        print(f"    {rows[-1]}", flush=True)
    where = {"molecule": rows[-1]["molecule"], **split(alkane(sizes[-1]), rounds)}
    print(f"    {where}", flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"alkanes": rows, "time_split": where}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
