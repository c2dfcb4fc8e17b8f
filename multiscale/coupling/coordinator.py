"""The coordinator of a coupled crack run: rank layout, the continuum loop, failures.

World rank 0 runs the continuum model and each region's :class:`QuasiStaticLoading`; each
``[[region]]`` gets the next ``ranks`` world ranks as its atomistic group (worker.py).  One
increment: for every active region, the continuum evaluates its boundary displacements and
sends them to the group root; all groups relax at the same time; the continuum collects the
replies (polling with a deadline of ``[run] timeout`` seconds) and applies
``loading.next``.  With one MPI rank, every region runs in turn on rank 0.

Failures: a group's error reply stops the run cleanly (every rank exits with status 1, the
last checkpoint stays); a group that does not answer in time (hung or killed) is reported
and the run ends with MPI_Abort, the only way to stop a rank stuck inside LAMMPS.
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import checkpoint, output, transport
from .config import K_UNITS, ConfigError, RegionConfig, RunConfig, check_world_size, read_config
from .continuum import ContinuumModel, Material, build_continuum, material
from .worker import RegionWorker, serve

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

    def submit(self, command: dict) -> None:
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

    def submit(self, command: dict) -> None:
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
    rows: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    done: bool = False

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def k_g(self) -> float:
        return self.model.k_g


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


# -- the continuum loop ---------------------------------------------------------------------
class Coordinator:
    def __init__(self, config: RunConfig, groups: list[RemoteGroup], log: Log, world):
        self.config, self.groups, self.log, self.world = config, groups, log, world
        self.tracks: list[Track] = []
        self.increment = 0

    def exchange(self, commands: dict[int, dict], what: str) -> dict[int, dict]:
        """Send ``commands`` (track index -> command) and collect the replies (index -> reply)."""
        for i, command in commands.items():
            self.groups[i].submit(command)
        deadline = time.monotonic() + self.config.timeout
        pending, replies = set(commands), {}
        delay = transport.POLL_MIN
        while pending:
            for i in sorted(pending):
                done, reply = self.groups[i].poll()
                if done:
                    replies[i] = reply
                    pending.discard(i)
            if pending and time.monotonic() > deadline:
                late = [f"region {self.config.regions[i].name} ({self.groups[i].describe()})" for i in sorted(pending)]
                raise transport.ExchangeTimeout(
                    f"{', '.join(late)} did not answer {what} within [run] timeout = {self.config.timeout:g} s "
                    "(hung or killed rank)", sorted(pending))
            if pending:
                time.sleep(delay)
                delay = min(delay * 1.5, transport.POLL_MAX)
        for i, reply in sorted(replies.items()):
            if not reply["ok"]:
                e = reply["error"]
                if self.tracks:
                    self.tracks[i].done = True   # its group has stopped
                when = "set-up" if e["increment"] is None else f"increment {e['increment']}"
                raise RunFailed(f"region {e['region']} (group {e['group']}, world rank {e['rank']}) failed at "
                                f"{when} ({e['op']}): {e['kind']}: {e['message']}", i)
        return replies

    # -- set-up -----------------------------------------------------------------------------
    def setup(self, restart: bool) -> None:
        from mpi4py import MPI
        from .loading import QuasiStaticLoading
        saved = self._load_checkpoint() if restart else None
        materials: dict[tuple, Material] = {}
        for i, rc in enumerate(self.config.regions):
            key = (rc.spec["potential"], rc.spec["lattice_constant"])
            if saved is not None:
                materials[key] = Material(**saved["regions"][rc.name]["material"])
            elif key not in materials:
                t0 = time.perf_counter()
                materials[key] = material(rc.spec["potential"], MPI.COMM_SELF, rc.spec["lattice_constant"])
                m = materials[key]
                self.log(f"material for {Path(rc.spec['potential']).name}: a = {m.lattice_constant:.5f} Å, "
                         f"C11/C12/C44 = {m.C11:.1f}/{m.C12:.1f}/{m.C44:.1f} GPa, gamma(111) = "
                         f"{m.surface_energy:.3f} J/m^2 ({time.perf_counter() - t0:.1f} s)")
            model = build_continuum(self.config.continuum, materials[key], self.config.specimen)
            unit = K_UNITS[self.config.k_unit] or model.k_g
            load = rc.loading
            loading = QuasiStaticLoading(k_start=load["k_start"] * unit, k_step=load["k_step"] * unit,
                                         k_max=load["k_max"] * unit, advance_threshold=load["advance_threshold"])
            k, tip = loading.initial()
            self.tracks.append(Track(rc, self.groups[i], materials[key], model, loading,
                                     (float(k), np.asarray(tip, float))))
            self.log(f"region {rc.name}: {self.groups[i].describe()}, K_G = {model.k_g:.3f} GPa*sqrt(A) "
                     f"({model.k_g / 100:.4f} MPa*sqrt(m))")
        if saved is not None:
            self._restore(saved)
        live = {i: t for i, t in enumerate(self.tracks) if not t.done}
        replies = self.exchange({i: {"op": "init", "spec": {**t.config.spec,
                                                           "lattice_constant": t.material.lattice_constant}}
                                 for i, t in live.items()}, "init")
        for i, reply in replies.items():
            self.tracks[i].boundary_reference = np.asarray(reply["boundary_reference"], float)
        if saved is not None:
            self.exchange({i: {"op": "restore", "state": saved["regions"][t.name]["region"]}
                           for i, t in live.items()}, "restore")
            self.log(f"restarted from {self.config.output / CHECKPOINT} at increment {self.increment}")
        for i, t in enumerate(self.tracks):
            if t.done:
                self.groups[i].submit({"op": "stop", "status": 0})

    def _load_checkpoint(self) -> dict:
        saved = checkpoint.load(self.config.output / CHECKPOINT)
        mine = {rc.name: {"spec": rc.spec, "loading": rc.loading} for rc in self.config.regions}
        theirs = saved["regions_config"]
        if mine != theirs:
            raise ConfigError(f"{self.config.output / CHECKPOINT} was written for other regions or loads: "
                              f"checkpoint {theirs}, configuration {mine}; restart with the configuration "
                              "the run started with (only [run] keys may change)")
        return saved

    def _restore(self, saved: dict) -> None:
        self.increment = int(saved["next_increment"])
        for t in self.tracks:
            s = saved["regions"][t.name]
            t.loading.restore(s["loading"])
            t.current = (float(s["current_k"]), np.asarray(s["current_tip"], float))
            t.rows, t.samples, t.done = list(s["rows"]), list(s["samples"]), bool(s["done"])

    # -- increments --------------------------------------------------------------------------
    def step(self) -> None:
        k = self.increment
        t_start = time.perf_counter()
        commands, t_model = {}, {}
        for i, t in enumerate(self.tracks):
            if t.done:
                continue
            t0 = time.perf_counter()
            K, tip = t.current
            displacements = t.model.boundary_displacements(t.boundary_reference, K, tip)
            t_model[i] = time.perf_counter() - t0
            commands[i] = {"op": "relax", "displacements": displacements, "increment": k}
        replies = self.exchange(commands, f"increment {k}")
        for i, reply in replies.items():
            self._record(i, reply["result"], t_model[i], time.perf_counter() - t_start)

    def _record(self, i: int, result: dict, t_model: float, t_increment: float) -> None:
        t, k = self.tracks[i], self.increment
        K, tip = t.current
        t0 = time.perf_counter()
        xy = np.asarray(result["stress_xy"], float).reshape(-1, 2)
        keep = np.hypot(*(xy - tip).T) > 1e-6   # the K-field is singular at the tip itself
        lefm = np.full((len(xy), 3), np.nan)
        lefm[keep] = t.model.stresses(xy[keep], K, tip)
        nxt = t.loading.next(result)
        t_model += time.perf_counter() - t0
        advanced = bool(t.loading.history[-1].get("advanced", False)) if t.loading.history else False
        round_trip = t.group.received - t.group.sent
        lammps = float(result.get("seconds_lammps", 0.0))
        atom_tip = np.asarray(result["tip"], float)
        t.rows.append({"increment": k, "K": K, "K_over_KG": K / t.k_g, "tip_x": atom_tip[0],
                       "tip_y": atom_tip[1], "continuum_tip_x": tip[0], "continuum_tip_y": tip[1],
                       "energy": float(result["energy"]), "advanced": advanced,
                       "iterations": int(result.get("iterations", 0)), "n_atoms": int(result.get("n_atoms", 0)),
                       "seconds_lammps": lammps, "seconds_continuum": t_model,
                       "seconds_coupling": max(round_trip - lammps, 0.0), "seconds_increment": t_increment})
        t.samples.append({"increment": k, "K": K, "tip": np.asarray(tip, float), "xy": xy,
                          "atomistic": np.asarray(result["stress"], float).reshape(-1, 3), "continuum": lefm})
        limit = self.config.stop_after_advances
        if nxt is None or (limit and sum(r["advanced"] for r in t.rows) >= limit):
            t.done = True
        else:
            t.current = (float(nxt[0]), np.asarray(nxt[1], float))
        r = t.rows[-1]
        self.log(f"inc {k:4d} | {t.name:<10s} | K = {K:8.3f} GPa*sqrt(A) ({K / t.k_g:5.3f} K_G) | tip "
                 f"({r['tip_x']:7.2f}, {r['tip_y']:6.2f}) A{' advanced' if advanced else ''} | E = "
                 f"{r['energy']:.4f} eV | {r['iterations']} it | LAMMPS {lammps:.2f} s | coupling "
                 f"{r['seconds_coupling']:.3f} s{' | done' if t.done else ''}")
        if t.done:
            t.group.submit({"op": "stop", "status": 0})

    def save_checkpoint(self) -> None:
        live = {i: t for i, t in enumerate(self.tracks) if not t.done}
        states = self.exchange({i: {"op": "state", "increment": self.increment} for i in live}, "checkpoint")
        data = {"next_increment": self.increment, "config": self.config.text,
                "regions_config": {t.name: {"spec": t.config.spec, "loading": t.config.loading}
                                   for t in self.tracks},
                "regions": {}}
        for i, t in enumerate(self.tracks):
            data["regions"][t.name] = {
                "material": t.material.as_dict(), "loading": t.loading.state(),
                "region": states[i]["state"] if i in states else {}, "current_k": t.current[0],
                "current_tip": np.asarray(t.current[1], float), "rows": t.rows, "samples": t.samples,
                "done": t.done}
        checkpoint.save(self.config.output / CHECKPOINT, data)
        self.write_results()

    def write_results(self) -> None:
        output.write_results(self.config.output / "results.h5", self.config, self.tracks)

    def run(self) -> None:
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
                g.submit({"op": "stop", "status": status})
        deadline = time.monotonic() + self.config.timeout
        for g in self.groups:
            g.flush(deadline)

    def finish(self) -> None:
        self.write_results()
        output.plot_all(self.config.output, self.tracks)


# -- entry point ------------------------------------------------------------------------------
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
        log.error(f"multiscale run: error: {exc}; the last checkpoint is {config.output / CHECKPOINT} "
                  "(restart with --restart)")
        coordinator.stop_groups(1, {exc.index})
        _finish_quietly(coordinator, log)
        status = 1
    except transport.ExchangeTimeout as exc:
        message = f"multiscale run: error: {exc}; aborting all ranks (a rank inside LAMMPS cannot be stopped " \
                  f"otherwise); restart from {config.output / CHECKPOINT} with --restart"
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
