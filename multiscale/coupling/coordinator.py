"""The coordinator of a coupled crack run: the continuum loop over the regions' groups.

World rank 0 runs the continuum model and each region's :class:`QuasiStaticLoading`; each
``[[region]]`` gets the next ``ranks`` world ranks as its atomistic group (worker.py).  One
increment: for every active region, the continuum evaluates its boundary displacements and
sends them to the group root; all groups relax at the same time; the continuum collects the
replies (polling with a deadline of ``[run] timeout`` seconds) and applies
``loading.next``.  With one MPI rank, every region runs in turn on rank 0.

Failures: a group's error reply raises :class:`RunFailed`, a group that does not answer in
time :class:`~multiscale.coupling.transport.ExchangeTimeout`; :mod:`.launch` turns them into
exit statuses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import checkpoint, output, transport
from .messages import Advance, Command, Init, Relax, Reply, Restore, State, Stop, Trace
from .config import K_UNITS, ConfigError, RegionConfig, RunConfig
from ..reference.material import Material, material
from .continuum import ContinuumModel, build_continuum
from .worker import RegionWorker

CHECKPOINT = "checkpoint.h5"


class RunFailed(RuntimeError):
    """The run stopped on a region's error; the message is the one-line report and
    ``index`` the failed region (its group has already stopped)."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


# -- groups as the continuum sees them ----------------------------------------------------------
class RemoteGroup:
    """A region's group on other ranks: commands go to its root, replies come back."""

    def __init__(self, world, index: int, world_ranks: list[int]):
        self.world, self.index, self.world_ranks = world, index, world_ranks
        self.root = world_ranks[0]
        self._sends = []

    def submit(self, command: Command) -> None:
        self._sends.append(self.world.isend(command, dest=self.root, tag=transport.TAG_COMMAND))
        self.sent = time.perf_counter()

    def poll(self):
        done, reply = transport.try_receive(self.world, self.root, transport.TAG_REPLY)
        if done:
            self.received = time.perf_counter()
        return done, reply

    def flush(self, deadline: float) -> None:
        """Wait until every command sent has been delivered."""
        for request in self._sends:
            transport.wait(request, deadline, f"delivery to {self.describe()}")
        self._sends.clear()

    def describe(self) -> str:
        ranks = self.world_ranks
        span = f"{ranks[0]}" if len(ranks) == 1 else f"{ranks[0]}-{ranks[-1]}"
        return f"group {self.index + 1} (world ranks {span})"


class LocalGroup(RemoteGroup):
    """A region on rank 0 itself (one-rank runs): commands run at once, in turn."""

    def __init__(self, worker: RegionWorker):
        self.worker, self.index, self.world_ranks = worker, worker.index, [0]

    def submit(self, command: Command) -> None:
        self.sent = time.perf_counter()
        self._reply = self.worker.handle(command)
        self.received = time.perf_counter()

    def poll(self):
        return True, self._reply

    def flush(self, deadline: float) -> None:
        pass


@dataclass
class Track:
    """Everything the continuum keeps about one region."""
    config: RegionConfig
    group: RemoteGroup
    material: Material
    model: ContinuumModel
    loading: object
    current: tuple[float, np.ndarray]          # (K GPa sqrt(Å), continuum tip (2,) Å) to apply next
    boundary_reference: np.ndarray | None = None
    samples: list[dict] = field(default_factory=list)
    done: bool = False
    trapping: object = None                    # mode "trapping": the region's TrappingCurve
    schwarz: object = None                     # [continuum] feedback: the region's SchwarzCoupling
    stress: float = float("nan")               # feedback: the remote stress (GPa) of the last increment
    x: np.ndarray | None = None                # feedback: its converged shell displacements (n_b, 2) Å
    fe_compliance: float = float("nan")        # feedback: the FE specimen's own compliance (Å/GPa)
    resume: dict | None = None                 # feedback: the checkpoint's x, stress, extension

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def rows(self) -> list[dict]:
        """The region's history, one row per increment: the loading's own record."""
        return self.loading.history

    @property
    def k_g(self) -> float:
        return self.model.k_g


# -- the continuum loop ---------------------------------------------------------------------
class Coordinator:
    def __init__(self, config: RunConfig, groups: list[RemoteGroup], log, world):
        self.config, self.groups, self.log, self.world = config, groups, log, world
        self.tracks: list[Track] = []
        self.increment = 0

    def exchange(self, commands: dict, what: str) -> dict[int, Reply]:
        """Send ``commands`` (track index -> command) and collect the replies (index -> reply)."""
        for i, command in commands.items():
            self.groups[i].submit(command)
        pending, replies = set(commands), {}

        def collect():
            for i in sorted(pending):
                done, reply = self.groups[i].poll()
                if done:
                    replies[i] = reply
                    pending.discard(i)
            return not pending, replies

        try:
            transport.poll(collect, time.monotonic() + self.config.timeout, what)
        except transport.ExchangeTimeout:
            late = [f"region {self.config.regions[i].name} ({self.groups[i].describe()})" for i in sorted(pending)]
            raise transport.ExchangeTimeout(
                f"{', '.join(late)} did not answer {what} within [run] timeout = {self.config.timeout:g} s "
                "(hung or killed rank)", sorted(pending)) from None
        for i, reply in sorted(replies.items()):
            if not reply.ok:
                if self.tracks:
                    self.tracks[i].done = True   # its group has stopped
                raise RunFailed(reply.error.describe(), i)
        return replies

    # -- set-up -----------------------------------------------------------------------------
    def setup(self, restart: bool) -> None:
        from mpi4py import MPI
        from .loading import DynamicLoading, QuasiStaticLoading
        if restart and self.config.mode == "trapping":
            raise ConfigError('--restart resumes a K ramp; a mode = "trapping" run starts again (each region '
                              'kept the curve it had traced in NAME/trapping_partial.h5)')
        saved = self._load_checkpoint() if restart else None
        materials: dict[tuple, Material] = {}
        for i, rc in enumerate(self.config.regions):
            key = (rc.spec["potential"], rc.spec["lattice_constant"])
            if saved is not None:
                materials[key] = Material(**saved["regions"][rc.name]["material"])
            elif key not in materials:
                t0 = time.perf_counter()
                materials[key] = m = material(rc.spec["potential"], MPI.COMM_SELF, rc.spec["lattice_constant"],
                                              log=self.log)
                self.log(f"material for {Path(rc.spec['potential']).name}: a = {m.lattice_constant:.5f} Å, "
                         f"C11/C12/C44 = {m.C11:.1f}/{m.C12:.1f}/{m.C44:.1f} GPa, gamma(111) = "
                         f"{m.surface_energy:.3f} J/m^2 ({time.perf_counter() - t0:.1f} s)")
            model = build_continuum(self.config.continuum, materials[key], self.config.specimen)
            unit = K_UNITS[self.config.k_unit] or model.k_g
            load = rc.loading
            if self.config.mode == "md":
                md = self.config.md
                loading = DynamicLoading(k_start=load["k_start"] * unit, k_rate=md["k_rate"] * unit,
                                         k_max=load["k_max"] * unit, duration=md["duration"],
                                         interval=md["exchange_every"] * md["timestep"] / 1000.0)
            else:
                loading = QuasiStaticLoading(k_start=load["k_start"] * unit, k_step=load["k_step"] * unit,
                                             k_max=load["k_max"] * unit, advance_threshold=load["advance_threshold"])
            k, tip = loading.initial()
            self.tracks.append(Track(rc, self.groups[i], materials[key], model, loading,
                                     (float(k), np.asarray(tip, float))))
            self.log(f"region {rc.name}: {self.groups[i].describe()}, K_G = {model.k_g:.3f} GPa*sqrt(A) "
                     f"({model.k_g / 100:.4f} MPa*sqrt(m))")
        if saved is not None:
            self._restore(saved)
        if self.config.mode == "trapping":
            return                  # no fixed-shell regions to build: run() sends Trace
        live = {i: t for i, t in enumerate(self.tracks) if not t.done}
        md = self.config.md or None
        replies = self.exchange({i: Init({**t.config.spec, "lattice_constant": t.material.lattice_constant},
                                         t.material.as_dict(), md=md)
                                 for i, t in live.items()}, "init")
        for i, reply in replies.items():
            self.tracks[i].boundary_reference = np.asarray(reply.data["boundary_reference"], float)
            if self.config.specimen.get("feedback"):
                self._feedback(self.tracks[i], np.asarray(reply.data["reference_xy"], float))
        if saved is not None:
            self.exchange({i: Restore(saved["regions"][t.name]["region"]) for i, t in live.items()}, "restore")
            self.log(f"restarted from {self.config.output / CHECKPOINT} at increment {self.increment}")
        for i, t in enumerate(self.tracks):
            if t.done:
                self.groups[i].submit(Stop(0))

    def _feedback(self, t: Track, atoms: np.ndarray) -> None:
        """[continuum] feedback: the region's Schwarz coupling with the specimen in the potential's
        anisotropic constants (continuum/clamped.py, coupling/schwarz.py)."""
        from dataclasses import replace

        from ..continuum.boundary import plane_strain_stiffness
        from ..continuum.fem import solve
        from .schwarz import SchwarzCoupling
        sp = self.config.specimen
        specimen = replace(t.model.specimen, stiffness_matrix=plane_strain_stiffness(t.material))
        hole = sp["hole"] if sp["hole"] is not None else t.config.spec["radius"] - t.config.spec["boundary"] - 8.0
        t.schwarz = SchwarzCoupling(specimen, hole, t.boundary_reference, atoms, tol=sp["schwarz_tol"],
                                    max_iterations=sp["schwarz_iterations"])
        t.fe_compliance = solve(specimen, tip_size=1.0).compliance
        if t.resume:
            t.x, t.stress = np.asarray(t.resume["x"], float), float(t.resume["stress"])
            t.schwarz._cut(float(t.resume["extension"]))
        self.log(f"region {t.name}: feedback into the FE specimen through a disc of {hole:g} A (Schwarz to "
                 f"{sp['schwarz_tol']:g} A); the specimen alone: {t.fe_compliance:.4f} A/GPa")

    def _load_checkpoint(self) -> dict:
        saved = checkpoint.load(self.config.output / CHECKPOINT)
        mine = self._regions_config()
        theirs = saved["regions_config"]
        if mine != theirs:
            raise ConfigError(f"{self.config.output / CHECKPOINT} was written for other regions or loads: "
                              f"{'; '.join(_differences(theirs, mine))}; restart with the configuration "
                              "the run started with (only [run] keys may change)")
        return saved

    def _regions_config(self) -> dict:
        """What a restart must keep: each region's spec and loading (and mode "md"'s [md])."""
        md = {"md": self.config.md} if self.config.md else {}
        return {rc.name: {"spec": rc.spec, "loading": rc.loading} | md for rc in self.config.regions}

    def _restore(self, saved: dict) -> None:
        self.increment = int(saved["next_increment"])
        for t in self.tracks:
            s = saved["regions"][t.name]
            t.loading.restore(s["loading"])
            t.current = (float(s["current_k"]), np.asarray(s["current_tip"], float))
            t.samples, t.done = list(s["samples"]), bool(s["done"])
            t.resume = s.get("schwarz")             # feedback: applied once the coupling exists

    # -- increments --------------------------------------------------------------------------
    def step(self) -> None:
        if self.config.specimen.get("feedback"):
            return self._step_feedback()
        k = self.increment
        t_start = time.perf_counter()
        commands, t_model = {}, {}
        kind = Advance if self.config.mode == "md" else Relax
        for i, t in enumerate(self.tracks):
            if t.done:
                continue
            t0 = time.perf_counter()
            K, tip = t.current
            displacements = t.model.boundary_displacements(t.boundary_reference, K, tip)
            t_model[i] = time.perf_counter() - t0
            commands[i] = kind(displacements, k)
        replies = self.exchange(commands, f"increment {k}")
        record = self._record_md if self.config.mode == "md" else self._record
        for i, reply in replies.items():
            record(i, reply.data["result"], t_model[i], time.perf_counter() - t_start)

    def _step_feedback(self) -> None:
        """One increment with the atoms acting back on the specimen: every live region's Schwarz
        iteration at the remote stress that gives K at its current tip, interleaved (one Relax
        exchange per iteration for all regions still iterating).  Once the atoms' tip passed the
        advance threshold the iteration ends there, and the loading's next K at the new tip
        lowers the stress: the crack grows under crack-length control, not running away."""
        k, t_start = self.increment, time.perf_counter()
        runs, scales, t_model, totals = {}, {}, {}, {}
        for i, t in enumerate(self.tracks):
            if t.done:
                continue
            t0 = time.perf_counter()
            K, tip = t.current
            stress = K / t.model.k_per_stress(tip)
            if t.x is None:
                x0 = t.schwarz.continuum_only(stress)
            else:
                x0 = t.x * (stress / t.stress)
                if stress < t.stress:
                    scales[i] = stress / t.stress          # the atoms unload with the shell
            runs[i] = t.schwarz.start(stress, x0, stop_at_tip=tip[0] + t.loading.advance_threshold)
            t.stress, t_model[i], totals[i] = stress, time.perf_counter() - t0, [0.0, 0]
        pending = set(runs)
        while pending:
            replies = self.exchange({i: Relax(runs[i].proposal, k, scales.pop(i, None)) for i in sorted(pending)},
                                    f"increment {k}")
            for i, reply in replies.items():
                result = reply.data["result"]
                totals[i][0] += float(result.get("seconds_lammps", 0.0))
                totals[i][1] += int(result.get("iterations", 0))
                t0 = time.perf_counter()
                if runs[i].feed(result):
                    pending.discard(i)
                t_model[i] += time.perf_counter() - t0
        for i, run in runs.items():
            t, out = self.tracks[i], run.outcome
            t.x = out.x
            wall = time.perf_counter() - t_start
            C = out.solution.compliance
            self._record(i, {**out.result, "seconds_lammps": totals[i][0], "iterations": totals[i][1]}, t_model[i],
                         wall, {"stress": t.stress, "compliance": C, "load_line_displacement": C * t.stress,
                                "schwarz_iterations": out.iterations, "schwarz_residual": out.residuals[-1],
                                "interface_force_change": out.force_residuals[-1], "schwarz_converged": out.converged,
                                "seconds_coupling": max(wall - totals[i][0] - t_model[i], 0.0)})
            self.log(f"         {t.name:<10s} | Schwarz {out.iterations} iterations to {out.residuals[-1]:.1e} A"
                     f"{'' if out.converged else ' (stopped: ' + ('the tip advanced' if out.result['tip'][0] >= run.stop_at_tip else 'iteration limit') + ')'}"
                     f" | sigma = {t.stress:.4f} GPa | compliance {C:.4f} A/GPa ({C / t.fe_compliance:.3f} x the "
                     "specimen alone)")

    def _record(self, i: int, result: dict, t_model: float, t_increment: float, extra: dict | None = None) -> None:
        t, k = self.tracks[i], self.increment
        K, tip = t.current
        t0 = time.perf_counter()
        xy = np.asarray(result["stress_xy"], float).reshape(-1, 2)
        keep = np.hypot(*(xy - tip).T) > 1e-6   # the K-field is singular at the tip itself
        continuum = np.full((len(xy), 3), np.nan)
        continuum[keep] = t.model.stresses(xy[keep], K, tip)
        t_model += time.perf_counter() - t0
        timings = self._timings(t, result, t_model, t_increment)
        lammps = timings["seconds_lammps"]
        nxt = t.loading.next(result, {
            "increment": k, "K_over_KG": K / t.k_g, "continuum_tip_x": tip[0], "continuum_tip_y": tip[1],
            "iterations": int(result.get("iterations", 0)), "n_atoms": int(result.get("n_atoms", 0)), **timings,
            **(extra or {})})
        advanced = t.rows[-1]["advanced"]
        t.samples.append({"increment": k, "K": K, "tip": np.asarray(tip, float), "xy": xy,
                          "atomistic": np.asarray(result["stress"], float).reshape(-1, 3),
                          "continuum": continuum})
        limit = self.config.stop_after_advances
        r = t.rows[-1]
        self._go_on(t, nxt, bool(limit and sum(row["advanced"] for row in t.rows) >= limit),
                    f"inc {k:4d} | {t.name:<10s} | K = {K:8.3f} GPa*sqrt(A) ({K / t.k_g:5.3f} K_G) | tip "
                    f"({r['tip_x']:7.2f}, {r['tip_y']:6.2f}) A{' advanced' if advanced else ''} | E = "
                    f"{r['energy']:.4f} eV | {r['iterations']} it | LAMMPS {lammps:.2f} s | coupling "
                    f"{r['seconds_coupling']:.3f} s")

    def _go_on(self, t: Track, nxt, stop: bool, line: str) -> None:
        """Take the loading's next (K, tip), or end the track (``nxt`` None or ``stop``) and stop
        its group; log the increment's ``line``."""
        t.done = stop or nxt is None
        if not t.done:
            t.current = (float(nxt[0]), np.asarray(nxt[1], float))
        self.log(line + (" | done" if t.done else ""))
        if t.done:
            t.group.submit(Stop(0))

    def _timings(self, t, result: dict, t_model: float, t_increment: float) -> dict:
        """The exchange's seconds: LAMMPS, the continuum model, the coupling (round trip less LAMMPS)."""
        lammps = float(result.get("seconds_lammps", 0.0))
        return {"seconds_lammps": lammps, "seconds_continuum": t_model,
                "seconds_coupling": max(t.group.received - t.group.sent - lammps, 0.0),
                "seconds_increment": t_increment}

    def _record_md(self, i: int, result: dict, t_model: float, t_increment: float) -> None:
        """Mode "md": one exchange's row (time, tip, velocity, temperatures, K) and the next (K, tip)."""
        t, k = self.tracks[i], self.increment
        K, tip = t.current
        nxt = t.loading.next(result, {"K_over_KG": K / t.k_g, "continuum_tip_x": tip[0], "continuum_tip_y": tip[1],
                                      "steps": int(result.get("steps", 0)), "n_atoms": int(result.get("n_atoms", 0)),
                                      **self._timings(t, result, t_model, t_increment)})
        r = t.rows[-1]
        self._go_on(t, nxt, False,
                    f"exc {k:4d} | {t.name:<10s} | t = {r['time']:7.3f} ps | K = {K / t.k_g:5.3f} K_G | tip "
                    f"{r['tip_x']:7.2f} A | v = {r['velocity']:6.0f} m/s | T = {r['temperature']:5.0f} K (layer "
                    f"{r['temperature_layer']:4.0f}) | LAMMPS {r['seconds_lammps']:.3f} s | coupling "
                    f"{r['seconds_coupling']:.4f} s")

    def save_checkpoint(self) -> None:
        live = {i: t for i, t in enumerate(self.tracks) if not t.done}
        states = self.exchange({i: State(self.increment) for i in live}, "checkpoint")
        data = {"next_increment": self.increment, "config": self.config.text,
                "regions_config": self._regions_config(),
                "regions": {}}
        for i, t in enumerate(self.tracks):
            data["regions"][t.name] = {
                "material": t.material.as_dict(), "loading": t.loading.state(),
                "region": states[i].data["state"] if i in states else {}, "current_k": t.current[0],
                "current_tip": np.asarray(t.current[1], float), "samples": t.samples, "done": t.done}
            if t.schwarz is not None and t.x is not None:
                data["regions"][t.name]["schwarz"] = {"x": np.asarray(t.x, float), "stress": t.stress,
                                                      "extension": t.schwarz.extension}
        checkpoint.save(self.config.output / CHECKPOINT, data)
        self.write_results()

    def write_results(self) -> None:
        output.write_results(self.config.output / "results.h5", self.config, self.tracks)

    def trace(self) -> None:
        """Mode "trapping": every region traces its lattice-trapping curve at once (one exchange,
        within [run] timeout); the curves go into results.h5."""
        replies = self.exchange({i: Trace({**t.config.spec, "lattice_constant": t.material.lattice_constant},
                                          t.material.as_dict(), self.config.trapping)
                                 for i, t in enumerate(self.tracks)}, "the trapping curves")
        for i, reply in sorted(replies.items()):
            t = self.tracks[i]
            t.trapping = reply.data["curve"]       # the group still serves: stop_groups stops it
            for line in t.trapping.events():
                self.log(f"region {t.name}: {line}")
            for name, line in t.trapping.past.items():
                self.log(f"region {t.name}: past {name.replace('_minus', '-').replace('_plus', '+')}: {line}")
            folds, missing = [], []
            for name in ("K_minus", "K_plus"):
                try:
                    folds.append(f"{name} = {getattr(t.trapping, name) / t.k_g:.4f} K_G")
                except ValueError:
                    missing.append(name)
            if missing:
                folds.append(f"{' and '.join(missing)} not reached between alpha = {t.trapping.alpha[0]:+.2f} and "
                             f"{t.trapping.alpha[-1]:+.2f} A (NaN in results.h5; a lattice period is about 3.3 A: "
                             "raise [trapping] length)")
            self.log(f"region {t.name}: {', '.join(folds)} (K_G = {t.k_g:.4f} GPa*sqrt(A), radius "
                     f"{t.trapping.radius:g} A); largest force on the boundary shell (region II) "
                     f"{t.trapping.max_force_boundary.max():.1e} eV/A"
                     f"{'; stopped: ' + t.trapping.stopped if t.trapping.stopped else ''}")

    def run(self) -> None:
        if self.config.mode == "trapping":
            self.trace()
            return
        every = self.config.checkpoint_every
        while self.increment < self.config.max_increments and not all(t.done for t in self.tracks):
            self.step()
            self.increment += 1
            if every and self.increment % every == 0:
                self.save_checkpoint()
        if every:
            self.save_checkpoint()

    def stop_groups(self, status: int, stopped: set[int] = frozenset()) -> None:
        """Stop every group still serving (all groups before set-up built the tracks)."""
        for i, g in enumerate(self.groups):
            t = self.tracks[i] if i < len(self.tracks) else None
            if i not in stopped and (t is None or not t.done):
                if t is not None:
                    t.done = True
                g.submit(Stop(status))
        deadline = time.monotonic() + self.config.timeout
        for g in self.groups:
            g.flush(deadline)

    def finish(self) -> None:
        self.write_results()
        if self.config.mode == "trapping":
            output.plot_trapping(self.config.output / "trapping.png", self.tracks)
        elif self.config.mode == "md":
            output.plot_md(self.config.output / "md.png", self.tracks)
        else:
            output.plot_all(self.config.output, self.tracks, self.config.continuum)
            if self.config.specimen.get("feedback"):
                output.plot_load_displacement(self.config.output / "load_displacement.png", self.tracks)


def _differences(saved: dict, current: dict, where: str = "") -> list[str]:
    """'region.key: checkpoint X, configuration Y' for every key that differs."""
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, "(absent)"), current.get(key, "(absent)")
        name = f"{where}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, name + ".")
        elif a != b:
            out.append(f"{name}: checkpoint {a!r}, configuration {b!r}")
    return out
