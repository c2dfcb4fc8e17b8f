"""Extended Hückel (multiscale.quantum, textbook parameters) energy + forces against GFN2-xTB
(tblite) energy + gradient, per call, for linear alkanes C_nH_2n+2 of growing size.  Both in
one run, one thread, interleaved, medians; the ratio shows how the O(m^3) eigenproblem and
the O(N^2) overlaps scale against the reference's SCF.

    .venv/bin/python benchmarks/huckel.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.units import Bohr

from multiscale.quantum import extended_huckel

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


def xtb_call(atoms: Atoms) -> None:
    from tblite.interface import Calculator
    calc = Calculator("GFN2-xTB", atoms.numbers, atoms.positions / Bohr)
    calc.set("verbosity", 0)
    calc.singlepoint().get("gradient")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="three sizes, three rounds")
    p.add_argument("--json", default=str(RESULTS))
    args = p.parse_args()
    torch.set_num_threads(1)
    sizes, rounds = ([1, 4, 8], 3) if args.quick else ([1, 2, 4, 8, 16, 24], 7)
    rows = []
    for n in sizes:
        atoms = alkane(n)
        huckel_call(atoms), xtb_call(atoms)                   # warm-up
        times = {"huckel": [], "xtb": []}
        for _ in range(rounds):
            for name, call in (("huckel", huckel_call), ("xtb", xtb_call)):
                start = time.perf_counter()
                call(atoms)
                times[name].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        orbitals = sum(1 if s == "H" else 4 for s in atoms.get_chemical_symbols())
        rows.append({"molecule": f"C{n}H{2 * n + 2}", "atoms": len(atoms), "orbitals": orbitals,
                     "ms_huckel": 1e3 * med["huckel"], "ms_gfn2_xtb": 1e3 * med["xtb"],
                     "xtb_over_huckel": med["xtb"] / med["huckel"]})
        print(f"    {rows[-1]}", flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"alkanes": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
