"""The atomistic side of a coupled run: one group of ranks serving one CrackRegion.

Every rank of the group runs :func:`serve`: the group root receives a command from the
continuum (world rank 0), the group broadcasts it, every rank executes it (CrackRegion's
methods are collective over the group), and the root sends the reply.  Commands and replies
are the types of :mod:`multiscale.coupling.messages`; errors become replies with a
:class:`~multiscale.coupling.messages.Failure` naming the group, rank and increment, so the
continuum can stop the run cleanly instead of hanging in a collective.

The ``debug`` keys (tests only, docs/coupling.md) inject faults at one increment:
``inject_nan_at`` (NaN boundary displacements), ``hang_at`` (the group sleeps forever) and
``exit_at`` (the group's last rank exits at once, like a killed process).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ..reference.material import Material
from . import transport
from .messages import Advance, Command, Failure, Init, Relax, Reply, Restore, State, Stop, Trace


class RegionWorker:
    """Executes commands for the region ``index`` on the group communicator ``comm``."""

    def __init__(self, index: int, name: str, comm, world_ranks: list[int], output: Path,
                 debug: dict | None = None, log=print):
        self.index, self.name, self.comm = index, name, comm
        self.world_ranks = world_ranks
        self.output = output
        self.debug = debug if debug and debug.get("region") == name else {}
        self.log = log
        self.region = None

    @property
    def world_rank(self) -> int:
        return self.world_ranks[self.comm.rank]

    def handle(self, command: Command) -> Reply:
        """Run ``command`` (collective over the group); the reply for the continuum."""
        try:
            if isinstance(command, Init):
                return Reply(self._init(command))
            if isinstance(command, (Relax, Advance)):
                displacements = self._inject(np.asarray(command.displacements, float), command.increment)
                if isinstance(command, Relax) and command.scale is not None:
                    self.region.scale_displacements(command.scale)
                step = self.region.relax if isinstance(command, Relax) else self.region.advance
                return Reply({"result": step(displacements, command.increment)})
            if isinstance(command, State):
                return Reply({"state": self.region.state()})
            if isinstance(command, Restore):
                self.region.restore(command.state)
                return Reply()
            if isinstance(command, Stop):
                self.close()
                return Reply()
            if isinstance(command, Trace):
                return Reply({"curve": self._trace(command)})
            raise TypeError(f"unknown command {command!r}")
        except Exception as exc:  # reported to the continuum, which stops the run
            kind = getattr(exc, "kind", type(exc).__name__)
            message = " ".join(str(exc).split()) or type(exc).__name__
            self.close()
            return Reply(error=Failure(self.name, self.index + 1, self.world_rank, self.world_ranks,
                                       getattr(command, "increment", None), getattr(command, "op", "?"),
                                       kind, message))

    def _init(self, command: Init) -> dict:
        from ..atomistic.region import CrackRegion
        from ..atomistic.thermal import ThermalCrackRegion
        workdir = self.output / self.name
        if self.comm.rank == 0:
            workdir.mkdir(parents=True, exist_ok=True)
        self.comm.Barrier()
        log = self.log if self.comm.rank == 0 else (lambda *a, **k: None)
        material = Material(**command.material)
        if command.md is not None:
            self.region = ThermalCrackRegion(command.spec, self.comm, workdir, log=log, material=material,
                                             md=command.md)
        else:
            self.region = CrackRegion(command.spec, self.comm, workdir, log=log, material=material)
        return {"boundary_reference": np.asarray(self.region.boundary_reference, float),
                "reference_xy": np.asarray(self.region.reference[:, :2], float)}

    def _trace(self, command: Trace):
        """The region's trapping curve (atomistic/trapping.py) on the group's LAMMPS; the group
        root keeps the curve so far in NAME/trapping_partial.h5 after every point."""
        from ..atomistic.flexible import FlexibleCrack
        from ..atomistic.trapping import past_folds, trace
        workdir = self.output / self.name
        if self.comm.rank == 0:
            workdir.mkdir(parents=True, exist_ok=True)
        log = self.log if self.comm.rank == 0 else (lambda *a, **k: None)
        p = command.parameters
        crack = FlexibleCrack(command.spec["potential"], radius=command.spec["radius"], far=p["far"],
                              material=Material(**command.material), comm=self.comm, log=log)
        try:
            keep = workdir / "trapping_partial.h5" if self.comm.rank == 0 else None
            curve = trace(crack, length=p["length"], back=p["back"], ds=p["ds"], ds_max=p["ds_max"], K_unit=p["K_unit"],
                          fmax=p["fmax"], tip_weight=p["tip_weight"], outer=p["outer"] or None, log=log,
                          keep=keep)
            past_folds(crack, curve, lambda line: None)   # beyond K+ and K- (the continuum logs the lines)
            return curve
        finally:
            crack.close()

    def _inject(self, displacements: np.ndarray, increment: int) -> np.ndarray:
        if self.debug.get("exit_at") == increment and self.comm.rank == self.comm.size - 1:
            self.log(f"debug: world rank {self.world_rank} of region {self.name} exits at increment "
                     f"{increment}", flush=True)
            os._exit(9)
        if self.debug.get("hang_at") == increment:
            self.log(f"debug: region {self.name} hangs at increment {increment}", flush=True)
            while True:
                time.sleep(3600)
        if self.debug.get("inject_nan_at") == increment:
            displacements = np.full_like(displacements, np.nan)
        return displacements

    def close(self) -> None:
        if self.region is not None:
            region, self.region = self.region, None
            region.close()


def serve(world, comm, worker: RegionWorker) -> int:
    """Serve commands until ``stop`` or an error; the exit status the run ends with."""
    root = comm.rank == 0
    while True:
        command = transport.receive(world, 0, transport.TAG_COMMAND) if root else None
        command = transport.broadcast(comm, command)
        reply = worker.handle(command)
        if root and not isinstance(command, Stop):
            transport.wait(world.isend(reply, dest=0, tag=transport.TAG_REPLY))
        if not reply.ok:
            return 1
        if isinstance(command, Stop):
            return int(command.status)
