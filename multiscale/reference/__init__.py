"""Reference data: oracles that label structures (LAMMPS' native potentials, GFN-xTB), LAMMPS
sampling (MD, minimisation), material properties of a potential (with one cache) and the
silicon training configurations."""
