"""The atomistic side of a crack run: one crack-tip region in LAMMPS (``region``), its spec
(``spec``, shared with the run config's validation) and its tip finder (``tip``)."""
