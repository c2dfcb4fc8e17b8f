"""The loadings of a coupled run: the quasi-static rule (ramp K_I until the atomistic crack
advances, then let the continuum tip follow it) and the K rate of MD runs.  Pure Python (no MPI, no LAMMPS): the coordinator and the tests share it.

Stress intensity factors in GPa sqrt(Å), positions in Å (the crack frame of
:class:`multiscale.atomistic.region.CrackRegion`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


class _Rows:
    """What every loading keeps and how: K, the continuum tip (2,) Å and one row per exchange."""

    history: list[dict]
    k: float
    tip: np.ndarray

    def initial(self) -> tuple[float, np.ndarray]:
        """(K, tip) of increment 0: k_start, tip at the origin."""
        return self.k, self.tip.copy()

    @staticmethod
    def _atom_tip(result: dict) -> np.ndarray:
        atom_tip = np.asarray(result["tip"], float).reshape(2)
        if not np.all(np.isfinite(atom_tip)):
            raise ValueError(f"the region reported a non-finite crack tip {atom_tip}")
        return atom_tip

    def first_advance(self) -> dict | None:
        """The history row of the first crack advance (its K is the K at first advance)."""
        return next((row for row in self.history if row["advanced"]), None)

    def state(self) -> dict:
        return {"k": self.k, "tip": self.tip.tolist(), "history": [dict(r) for r in self.history]}

    def restore(self, state: dict) -> None:
        self.k = float(state["k"])
        self.tip = np.asarray(state["tip"], float).reshape(2).copy()
        self.history = [dict(r) for r in state["history"]]


@dataclass
class QuasiStaticLoading(_Rows):
    """K-ramp with crack advance.

    Each increment the region is relaxed at (K, tip); :meth:`next` reads its result: if the
    atomistic tip moved along x by more than ``advance_threshold`` Å from the continuum tip,
    the crack advanced, K is kept and the continuum tip moves to the atomistic tip; otherwise K
    grows by ``k_step``.  The run ends (``None``) when K would exceed ``k_max`` or the tip
    reached ``result["tip_limit"]`` (the region's edge, when the region reports one).
    """

    k_start: float
    k_step: float
    k_max: float
    advance_threshold: float = 2.0
    history: list[dict] = field(default_factory=list)
    k: float = field(init=False)
    tip: np.ndarray = field(init=False)

    def __post_init__(self):
        for name in ("k_start", "k_step", "k_max", "advance_threshold"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"QuasiStaticLoading: {name} = {getattr(self, name)} is not a finite number")
        if self.k_start < 0 or self.k_step <= 0 or self.advance_threshold <= 0:
            raise ValueError(f"QuasiStaticLoading needs k_start >= 0, k_step > 0 and advance_threshold > 0; "
                             f"got k_start={self.k_start}, k_step={self.k_step}, "
                             f"advance_threshold={self.advance_threshold}")
        if self.k_max < self.k_start:
            raise ValueError(f"QuasiStaticLoading: k_max = {self.k_max} is below k_start = {self.k_start}; "
                             "raise k_max")
        self.k = float(self.k_start)
        self.tip = np.zeros(2)

    def next(self, result: dict, extra: dict | None = None) -> tuple[float, np.ndarray] | None:
        """(K, tip) for the next increment from the region's ``result`` of this one, or None.
        Appends the increment's row to ``history`` with the columns ``extra`` adds (the coupled
        run keeps this one history)."""
        atom_tip = self._atom_tip(result)
        advanced = bool(atom_tip[0] - self.tip[0] > self.advance_threshold)
        self.history.append({"increment": len(self.history), "K": self.k, "tip_x": float(atom_tip[0]),
                             "tip_y": float(atom_tip[1]), "energy": float(result.get("energy", math.nan)),
                             "advanced": advanced, **(extra or {})})
        if atom_tip[0] >= float(result.get("tip_limit", math.inf)):
            return None
        if advanced:
            self.tip = atom_tip.copy()
        else:
            k = self.k + self.k_step
            if k > self.k_max * (1 + 1e-12):
                return None
            self.k = k
        return self.k, self.tip.copy()



@dataclass
class DynamicLoading(_Rows):
    """K rising at a constant rate while the region runs MD (mode "md").

    Exchange 0 relaxes the crack at ``k_start`` (time 0); the boundary of every later exchange is
    the field at K(t) = min(k_start + k_rate t, k_max) for the time t the exchange ends at, about
    the continuum tip: the median of the last ``follow`` atomistic tips, so a bond that breaks for
    one exchange and closes again (thermal flicker) does not jolt the shell by a lattice step and back.  The run ends
    (``None``) after ``duration`` ps or when the tip reached ``result["tip_limit"]``.  Units:
    GPa sqrt(Å), ps, Å; velocities in m/s.
    """

    k_start: float
    k_rate: float                 # GPa sqrt(Å) per ps
    k_max: float
    interval: float               # ps between exchanges
    duration: float               # ps
    window: int = 5               # exchanges in the tip velocity's least-squares slope
    follow: int = 3               # the continuum tip is the median of this many last atomistic tips
    history: list[dict] = field(default_factory=list)
    k: float = field(init=False)
    tip: np.ndarray = field(init=False)

    def __post_init__(self):
        values = {n: getattr(self, n) for n in ("k_start", "k_rate", "k_max", "interval", "duration")}
        bad = [f"{n} = {v}" for n, v in values.items() if not math.isfinite(v) or v < 0]
        if bad or self.interval <= 0 or self.duration <= 0 or self.k_max < self.k_start:
            raise ValueError(f"DynamicLoading needs finite k_start, k_rate >= 0, k_max >= k_start and positive "
                             f"interval and duration; got {values}")
        self.k = float(self.k_start)
        self.tip = np.zeros(2)

    def next(self, result: dict, extra: dict | None = None) -> tuple[float, np.ndarray] | None:
        """(K, tip) the next exchange ends at, from this exchange's ``result`` (keys ``time`` ps,
        ``tip`` Å, ``energy``, ``temperature``, ``tip_limit``), or None; appends the row."""
        atom_tip = self._atom_tip(result)
        time = float(result["time"])
        times = np.array([r["time"] for r in self.history[-(self.window - 1):]] + [time])
        tips = np.array([r["tip_x"] for r in self.history[-(self.window - 1):]] + [atom_tip[0]])
        velocity = float(np.polyfit(times, tips, 1)[0]) * 100.0 if len(times) > 1 else 0.0   # Å/ps -> m/s
        self.history.append({
            "increment": len(self.history), "time": time, "K": self.k, "tip_x": float(atom_tip[0]),
            "tip_y": float(atom_tip[1]), "velocity": velocity, "energy": float(result.get("energy", math.nan)),
            "temperature": float(result.get("temperature", math.nan)),
            "temperature_layer": float(result.get("temperature_layer", math.nan)),
            "advanced": bool(atom_tip[0] > self.tip[0] + 1e-6), **(extra or {})})
        if atom_tip[0] >= float(result.get("tip_limit", math.inf)):
            return None
        t_next = time + self.interval
        if t_next > self.duration * (1 + 1e-12):
            return None
        self.k = min(self.k_start + self.k_rate * t_next, self.k_max)
        recent = [r["tip_x"] for r in self.history[-self.follow:]]
        self.tip = np.array([float(np.median(recent)), 0.0])
        return self.k, self.tip.copy()
