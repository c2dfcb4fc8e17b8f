"""Ethylene twisted about its C=C bond, 0 to 180 degrees: HOMO and LUMO of textbook extended
Hückel (multiscale.quantum) against GFN2-xTB (tblite), with a plot.

    python examples/huckel/ethylene_twist.py [-o ethylene_twist.png]

The reference curves of the ML-EHM crossing study (issue 17; docs/huckel.md).  Geometry:
multiscale.reference.molecules.twisted_ethylene (one CH2 turned, nothing relaxed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase.units import Bohr, Hartree

from multiscale.quantum import extended_huckel
from multiscale.reference.molecules import twisted_ethylene


def frontier_xtb(symbols, positions) -> tuple[float, float]:
    """GFN2-xTB HOMO and LUMO (eV) of a neutral singlet."""
    from tblite.interface import Calculator
    numbers = np.array([{"H": 1, "C": 6, "N": 7, "O": 8}[s] for s in symbols])
    calc = Calculator("GFN2-xTB", numbers, positions / Bohr)
    calc.set("verbosity", 0)
    result = calc.singlepoint()
    levels = result.get("orbital-energies") * Hartree
    homo = int(np.flatnonzero(result.get("orbital-occupations") > 1.0)[-1])
    return float(levels[homo]), float(levels[homo + 1])


def frontier_huckel(symbols, positions) -> tuple[float, float]:
    """Textbook extended-Hückel HOMO and LUMO (eV) of a neutral singlet."""
    levels = extended_huckel(symbols, positions).orbital_energies.numpy()
    electrons = sum({"H": 1, "C": 4, "N": 5, "O": 6}[s] for s in symbols)
    return float(levels[electrons // 2 - 1]), float(levels[electrons // 2])


def scan(angles) -> dict:
    rows = {"angle_deg": [], "xtb_homo": [], "xtb_lumo": [], "huckel_homo": [], "huckel_lumo": []}
    for angle in angles:
        atoms = twisted_ethylene(angle)
        symbols, positions = atoms.get_chemical_symbols(), atoms.positions
        (xh, xl), (hh, hl) = frontier_xtb(symbols, positions), frontier_huckel(symbols, positions)
        for key, value in zip(rows, (angle, xh, xl, hh, hl)):
            rows[key].append(value)
    return rows


def plot(rows: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    a = rows["angle_deg"]
    ax.plot(a, rows["xtb_homo"], "k-", label="GFN2-xTB HOMO")
    ax.plot(a, rows["xtb_lumo"], "k--", label="GFN2-xTB LUMO")
    ax.plot(a, rows["huckel_homo"], "C0-", label="extended Hückel (textbook) HOMO")
    ax.plot(a, rows["huckel_lumo"], "C0--", label="extended Hückel (textbook) LUMO")
    ax.set(xlabel="C=C twist (degrees)", ylabel="orbital energy (eV)", title="twisted ethylene")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", type=Path, default=Path("ethylene_twist.png"))
    args = p.parse_args(argv)
    rows = scan(range(0, 181, 5))
    args.output.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    gaps = {k: np.subtract(rows[f"{k}_lumo"], rows[f"{k}_homo"]) for k in ("xtb", "huckel")}
    for k, g in gaps.items():
        print(f"{k}: gap {g[0]:.2f} eV planar, {g.min():.2e} eV at {rows['angle_deg'][int(np.argmin(g))]} degrees")
    print(f"plot: {plot(rows, args.output)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
