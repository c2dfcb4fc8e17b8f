"""Start a coupled crack run on MPI_COMM_WORLD (``multiscale run``): split the ranks into the
continuum (world rank 0) and one group per ``[[region]]``, run the coordinator or serve a
group, and turn failures into exit statuses.

A group's error reply stops the run cleanly (every rank exits with status 1, the last
checkpoint stays); a group that does not answer in time (hung or killed) is reported and the
run ends with MPI_Abort, the only way to stop a rank stuck inside LAMMPS.  Configuration
errors exit with status 2, bugs with 3.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from . import transport
from .config import ConfigError, RunConfig, check_world_size, read_config
from .coordinator import CHECKPOINT, Coordinator, LocalGroup, RemoteGroup, RunFailed
from .worker import RegionWorker, serve


class Log:
    """Progress lines on stdout and in ``run.log``."""

    def __init__(self, path: Path):
        self.file = open(path, "a", buffering=1)

    def __call__(self, *parts, **_):
        line = " ".join(str(p) for p in parts)
        print(line, flush=True)
        self.file.write(line + "\n")

    def error(self, line: str) -> None:
        """A failure: one line on stderr and in run.log."""
        print(line, file=sys.stderr, flush=True)
        self.file.write(line + "\n")

    def close(self):
        self.file.close()


def _layout(config: RunConfig) -> list[list[int]]:
    """World ranks of each region's group (rank 0 is the continuum)."""
    ranks, start = [], 1
    for rc in config.regions:
        ranks.append(list(range(start, start + rc.ranks)))
        start += rc.ranks
    return ranks


def _continuum(world, config: RunConfig, restart: bool, workers: list | None, layout) -> int:
    config.output.mkdir(parents=True, exist_ok=True)
    log = Log(config.output / "run.log")
    if workers is not None:
        for w in workers:
            w.log = log
        groups = [LocalGroup(w) for w in workers]
    else:
        groups = [RemoteGroup(world, i, ranks) for i, ranks in enumerate(layout)]
    log(f"multiscale run: {len(config.regions)} region(s) on {world.size} MPI rank(s), continuum "
        f"{config.continuum!r}, output {config.output}")
    if not restart:
        (config.output / "config.toml").write_text(config.text)
    coordinator = Coordinator(config, groups, log, world)
    status = 0
    try:
        coordinator.setup(restart)
        coordinator.run()
        coordinator.stop_groups(0)
        coordinator.finish()
        log(f"done: results in {config.output / 'results.h5'}")
    except RunFailed as exc:
        log.error(f"multiscale run: error: {exc}{_restart_hint(config)}")
        coordinator.stop_groups(1, {exc.index})
        _finish_quietly(coordinator, log)
        status = 1
    except transport.ExchangeTimeout as exc:
        message = f"multiscale run: error: {exc}; aborting all ranks (a rank inside LAMMPS cannot be stopped " \
                  f"otherwise){_restart_hint(config)}"
        log.error(message)
        _finish_quietly(coordinator, log)
        log.close()
        world.Abort(1)
    except (ConfigError, FileNotFoundError, NotImplementedError) as exc:  # before any region was built
        log.error(f"multiscale run: error: {exc}")
        coordinator.stop_groups(2)
        status = 2
    log.close()
    return status


def _restart_hint(config: RunConfig) -> str:
    """Where to restart from, if a checkpoint exists; else nothing is promised."""
    path = config.output / CHECKPOINT
    if path.is_file():
        return f"; the last checkpoint is {path} (restart with --restart)"
    if not config.checkpoint_every:
        return "; no checkpoint was written ([run] checkpoint_every = 0)"
    return "; no checkpoint was written yet"


def _finish_quietly(coordinator: Coordinator, log) -> None:
    try:
        coordinator.finish()
    except Exception as exc:  # the run already failed; report, do not mask the first error
        log(f"could not write the results: {type(exc).__name__}: {exc}")


def main(config_path=None, restart: bool = False, output=None) -> int:
    """``multiscale run``: every rank of MPI_COMM_WORLD calls this; returns its exit status."""
    from mpi4py import MPI
    world = MPI.COMM_WORLD
    try:
        config = read_config(config_path, output)
        check_world_size(config, world.size)
    except (ConfigError, FileNotFoundError) as exc:
        if world.rank == 0:
            print(f"multiscale run: error: {exc}", file=sys.stderr, flush=True)
        return 2
    layout = _layout(config)
    try:
        if world.size == 1:
            workers = [RegionWorker(i, rc.name, MPI.COMM_SELF, [0], config.output, config.debug)
                       for i, rc in enumerate(config.regions)]
            status = _continuum(world, config, restart, workers, layout)
        else:
            index = 0 if world.rank == 0 else next(i for i, r in enumerate(layout) if world.rank in r) + 1
            comm = world.Split(index, world.rank)
            if index == 0:
                status = _continuum(world, config, restart, None, layout)
            else:
                rc = config.regions[index - 1]
                log = (lambda *a, **k: print(f"[{rc.name}]", *a, flush=True)) if comm.rank == 0 else print
                worker = RegionWorker(index - 1, rc.name, comm, layout[index - 1], config.output,
                                      config.debug, log=log)
                status = serve(world, comm, worker)
            transport.barrier(world)
    except Exception:  # a bug, not a region's error: never leave the other ranks waiting
        traceback.print_exc()
        sys.stderr.flush()
        if world.size > 1:
            world.Abort(3)
        return 3
    return status
