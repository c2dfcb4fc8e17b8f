"""Engine adapters: marshal an engine's atoms and neighbours into the contract's tensors, call
the model, scatter energies, forces and virials back.

``scatter`` (the one edge-gradient scatter, shared with training), ``neighbors`` (vesin
neighbour lists), ``ase_calculator`` (ASE), ``lammps`` (the pair-style plugin: loader,
environment, pair lines), ``openmm`` (openmm-torch and openmm-ml).  Nothing is imported here,
so that ``multiscale lmp`` starts LAMMPS without importing torch first.
"""
