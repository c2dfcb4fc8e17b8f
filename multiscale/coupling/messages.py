"""The messages between the continuum rank and an atomistic group, as types.

The continuum sends commands (:class:`Init`, :class:`Relax`, :class:`Advance`, :class:`State`,
:class:`Restore`, :class:`Stop`, :class:`Trace`); the group root answers each but ``Stop`` with a
:class:`Reply`.  They travel pickled over MPI (``multiscale.coupling.transport``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Init:
    """Build the region: its spec (potential resolved, lattice constant fixed) and the
    material constants the continuum computed for it (``Material.as_dict()``); ``md``: the
    [md] parameters of mode "md" (the region then runs MD between exchanges), else None."""
    spec: dict[str, Any]
    material: dict[str, float]
    increment: int | None = None
    md: dict[str, Any] | None = None
    op = "init"


@dataclass
class Relax:
    """Place the shell at reference + ``displacements`` (n_b, 2) Å and relax the interior; ``scale``:
    first scale every atom's displacement by it (the load fell by that factor: feedback runs)."""
    displacements: np.ndarray
    increment: int
    scale: float | None = None
    op = "relax"


@dataclass
class Advance:
    """Mode "md": move the shell to reference + ``displacements`` (n_b, 2) Å over one exchange's MD
    steps (the first exchange relaxes instead)."""
    displacements: np.ndarray
    increment: int
    op = "md"


@dataclass
class State:
    """Send the region's state for a checkpoint."""
    increment: int | None = None
    op = "state"


@dataclass
class Restore:
    """Put the region back into a checkpointed ``state``."""
    state: dict[str, Any]
    increment: int | None = None
    op = "restore"


@dataclass
class Stop:
    """Close the region; the group's ranks exit with ``status``."""
    status: int = 0
    increment: int | None = None
    op = "stop"


@dataclass
class Trace:
    """Trace the region's lattice-trapping curve under flexible boundaries (mode "trapping"):
    its spec, material (``Material.as_dict()``) and the [trapping] parameters."""
    spec: dict[str, Any]
    material: dict[str, float]
    parameters: dict[str, float]
    increment: int | None = None
    op = "trace"


Command = Init | Relax | Advance | State | Restore | Stop | Trace


@dataclass
class Failure:
    """Why a group could not carry out a command, and where."""
    region: str
    group: int                 # 1-based
    rank: int                  # world rank that reports
    ranks: list[int]
    increment: int | None
    op: str
    kind: str                  # RegionError kind ("nan", "lost_atoms", "diverged") or exception name
    message: str

    def describe(self) -> str:
        when = "set-up" if self.increment is None else f"increment {self.increment}"
        return (f"region {self.region} (group {self.group}, world rank {self.rank}) failed at {when} "
                f"({self.op}): {self.kind}: {self.message}")


@dataclass
class Reply:
    """A group's answer: ``data`` holds the command's result (``boundary_reference`` for Init,
    ``result`` for Relax and Advance, ``state`` for State, ``curve`` for Trace); ``error`` is set instead when it failed."""
    data: dict[str, Any] = field(default_factory=dict)
    error: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.error is None
