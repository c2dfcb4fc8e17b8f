"""OpenMM: the TorchForce against ASE, LAMMPS and OpenMM's own forces; float32; NVE;
openmm-ml's MLPotential (createSystem, mechanical embedding, interpolation); errors; the example.

Tolerances are the ones docs/openmm.md states.
"""

import copy
import dataclasses
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.neighborlist import natural_cutoffs, neighbor_list

import multiscale
from multiscale.potentials import LennardJones, MessagePassingPotential
from multiscale.engines.openmm import create_force, create_python_force
from native_lammps import relative, single_point as lammps_single_point
from openmm_systems import (EV_TO_KJ_PER_MOL, single_point, solvated_capped_alanine, system_of,
                            topology_of)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KB = 0.0083144626181532  # kJ/mol/K, as OpenMM
PLATFORMS = ["Reference", "CPU"]

FLOAT64 = 1e-6            # float64: energy and forces, relative, every engine against every other
FLOAT32_ENERGY = 1e-6     # float32 model on CPU: energy, relative to the float64 energy
FLOAT32_FORCES = 1e-5     # float32 model on CPU: max |dF| / max |F| of the float64 forces
NVE_SOLID = 1e-4          # max |E(t) - E(0)| / (3/2 N kT0): periodic silicon, 1 fs, 1000 steps
NVE_MOLECULE = 3e-3       # the same for ethanol, 0.25 fs, 1000 steps (C-H bonds unconstrained)


def mp_sic():
    return MessagePassingPotential(["Si", "C"], cutoff=3.6, hops=2, features=16, seed=3)


@pytest.fixture(scope="module")
def sic_models(model_dir):
    """The same two-hop Si/C network exported in float64 and in float32."""
    f64 = multiscale.export(mp_sic(), model_dir / "omm_sic64.pt")
    m = mp_sic()  # a fresh copy: export converts the module it is given in place
    f32 = multiscale.export(m, model_dir / "omm_sic32.pt",
                            metadata=dataclasses.replace(m.metadata(), dtype="float32"))
    return {"float64": f64, "float32": f32}


@pytest.fixture(scope="module")
def hcno_model(model_dir):
    model = MessagePassingPotential(["H", "C", "N", "O"], cutoff=4.0, hops=2, features=16, seed=5)
    return multiscale.export(model, model_dir / "omm_hcno.pt")


def sic_cell() -> Atoms:
    """64 atoms of Si with 30 % C on diamond sites, in a sheared (triclinic) periodic cell.

    The cell is lower-triangular with small tilts, the reduced form OpenMM and LAMMPS share.
    """
    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    edge = atoms.cell[0, 0]
    atoms.set_cell([[1.02 * edge, 0, 0], [0.7, 0.97 * edge, 0], [-0.6, 0.5, 1.01 * edge]], scale_atoms=True)
    symbols = np.array(atoms.get_chemical_symbols())
    symbols[np.random.default_rng(1).random(len(atoms)) < 0.3] = "C"
    atoms.set_chemical_symbols(symbols)
    atoms.rattle(0.1, seed=2)
    return atoms


def sic_cluster() -> Atoms:
    """A non-periodic Si/C cluster: the atoms of the cell within 5 Å of its centre."""
    atoms = sic_cell()
    atoms = atoms[np.linalg.norm(atoms.positions - atoms.cell.sum(0) / 2, axis=1) < 5.0]
    atoms.pbc = False
    atoms.cell = np.zeros((3, 3))
    return atoms


def ase_single_point(atoms: Atoms, model) -> tuple[float, np.ndarray]:
    atoms = atoms.copy()
    atoms.calc = multiscale.MultiscaleCalculator(model)
    return atoms.get_potential_energy(), atoms.get_forces()


def assert_close(energy, forces, ref_energy, ref_forces, tol, what):
    assert abs(energy - ref_energy) <= tol * abs(ref_energy), what
    assert relative(forces, ref_forces) <= tol, what


# -- parity ------------------------------------------------------------------------------


def test_periodic_triclinic_openmm_ase_lammps_agree(sic_models):
    """The same float64 model in OpenMM (Reference, CPU), ASE and the LAMMPS plugin."""
    path = sic_models["float64"]
    ref = lammps_single_point(sic_cell(), [f"pair_style multiscale {path}", "pair_coeff * * Si C"],
                              plugin=True, specorder=["Si", "C"])
    atoms = ref["atoms"]  # the structure as LAMMPS holds it
    assert abs(atoms.cell[1, 0]) > 0.5 and abs(atoms.cell[2, 0]) > 0.5  # really triclinic
    assert np.abs(ref["forces"]).max() > 1e-2
    e_ase, f_ase = ase_single_point(atoms, path)
    assert_close(e_ase, f_ase, ref["energy"], ref["forces"], FLOAT64, "ASE vs LAMMPS")
    top = topology_of(atoms)
    for platform in PLATFORMS:
        e, f = single_point(system_of(top, create_force(path, top)), atoms.positions, platform)
        assert_close(e, f, ref["energy"], ref["forces"], FLOAT64, f"OpenMM {platform} vs LAMMPS")
        assert_close(e, f, e_ase, f_ase, FLOAT64, f"OpenMM {platform} vs ASE")


def test_periodic_images_and_wrapping_do_not_matter(sic_models):
    """OpenMM hands the force unwrapped positions; shifting atoms by lattice vectors changes nothing."""
    atoms = sic_cell()
    top = topology_of(atoms)
    system = system_of(top, create_force(sic_models["float64"], top))
    e0, f0 = single_point(system, atoms.positions, "CPU")
    shifts = np.random.default_rng(3).integers(-2, 3, size=(len(atoms), 3)) @ atoms.cell.array
    e1, f1 = single_point(system, atoms.positions + shifts + 3.3, "CPU")
    assert abs(e1 - e0) <= 1e-12 * abs(e0)
    assert relative(f1, f0) <= 1e-10


@pytest.mark.parametrize("name", ["SiC cluster", "ethanol"])
def test_molecule_openmm_equals_ase(name, sic_models, hcno_model):
    atoms, path = (sic_cluster(), sic_models["float64"]) if name == "SiC cluster" else \
        (molecule("CH3CH2OH"), hcno_model)
    e_ase, f_ase = ase_single_point(atoms, path)
    assert np.abs(f_ase).max() > 1e-3
    top = topology_of(atoms)
    assert top.getPeriodicBoxVectors() is None
    for platform in PLATFORMS:
        e, f = single_point(system_of(top, create_force(path, top)), atoms.positions, platform)
        assert_close(e, f, e_ase, f_ase, FLOAT64, platform)


def test_float32_model_on_cpu(sic_models):
    atoms = sic_cell()
    top = topology_of(atoms)
    e64, f64 = single_point(system_of(top, create_force(sic_models["float64"], top)), atoms.positions, "CPU")
    e32, f32 = single_point(system_of(top, create_force(sic_models["float32"], top)), atoms.positions, "CPU")
    assert e32 != e64  # the float32 file really ran in float32
    assert abs(e32 - e64) <= FLOAT32_ENERGY * abs(e64)
    assert np.abs(f32 - f64).max() <= FLOAT32_FORCES * np.abs(f64).max()


def test_lennard_jones_equals_nonbonded_force(model_dir):
    """Unshifted LJ == NonbondedForce (CutoffPeriodic, no charges, no dispersion correction)."""
    epsilon, sigma, cutoff = 0.0104, 3.405, 8.0  # eV, Å, Å (argon)
    path = multiscale.export(LennardJones(["Ar"], epsilon, sigma, cutoff), model_dir / "omm_lj_ar.pt")
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True) * (4, 4, 4)  # 256 atoms, 21 Å box
    atoms.rattle(0.1, seed=5)
    top = topology_of(atoms)
    nonbonded = openmm.NonbondedForce()
    nonbonded.setNonbondedMethod(openmm.NonbondedForce.CutoffPeriodic)
    nonbonded.setCutoffDistance(cutoff * 0.1)
    nonbonded.setUseDispersionCorrection(False)
    for _ in range(len(atoms)):
        nonbonded.addParticle(0.0, sigma * 0.1, epsilon * EV_TO_KJ_PER_MOL)
    e_ref, f_ref = single_point(system_of(top, nonbonded), atoms.positions, "Reference")
    assert e_ref < 0 and np.abs(f_ref).max() > 1e-3
    for platform in PLATFORMS:
        e, f = single_point(system_of(top, create_force(path, top)), atoms.positions, platform)
        assert_close(e, f, e_ref, f_ref, FLOAT64, platform)


# -- dynamics ----------------------------------------------------------------------------


def covalent_bonds(atoms: Atoms) -> openmm.HarmonicBondForce:
    """Harmonic bonds at the current lengths: they hold a molecule together, since a
    network with random weights does not bind."""
    bonds = openmm.HarmonicBondForce()
    i, j = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.2))
    for a, b in zip(i, j):
        if a < b:
            bonds.addBond(int(a), int(b), atoms.get_distance(a, b) * 0.1, 2.0e5)
    return bonds


@pytest.mark.parametrize("name", ["silicon", "ethanol"])
def test_nve_conserves_energy(name, model_dir):
    temperature, steps = 300.0, 1000
    if name == "silicon":
        atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
        atoms.rattle(0.05, seed=1)
        model = MessagePassingPotential(["Si"], cutoff=4.0, hops=2, features=16, seed=3)
        timestep, bound, extra = 1.0, NVE_SOLID, []
    else:
        atoms = molecule("CH3CH2OH")
        model = MessagePassingPotential(["H", "C", "O"], cutoff=4.0, hops=2, features=16, seed=3)
        timestep, bound, extra = 0.25, NVE_MOLECULE, [covalent_bonds(atoms)]
    path = multiscale.export(model, model_dir / f"omm_nve_{name}.pt")
    top = topology_of(atoms)
    system = system_of(top, create_force(path, top, force_group=1), *extra)
    integrator = openmm.VerletIntegrator(timestep * unit.femtosecond)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"))
    context.setPositions(atoms.positions * 0.1)
    context.setVelocitiesToTemperature(temperature * unit.kelvin, 7)
    total, neural, spread = [], [], []
    for _ in range(steps // 20 + 1):
        state = context.getState(getEnergy=True, getPositions=True)
        energy = state.getPotentialEnergy() + state.getKineticEnergy()
        total.append(energy.value_in_unit(unit.kilojoule_per_mole))
        neural.append(context.getState(getEnergy=True, groups={1}).getPotentialEnergy()
                      .value_in_unit(unit.kilojoule_per_mole))
        x = state.getPositions(asNumpy=True).value_in_unit(unit.angstrom)
        spread.append(np.max(np.linalg.norm(x - x.mean(0), axis=1)))
        integrator.step(20)
    scale = 1.5 * len(atoms) * KB * temperature
    drift = np.max(np.abs(np.array(total) - total[0])) / scale
    assert drift <= bound, f"energy drift {drift:.2e} of 3/2 N kT"
    # the neural force did work during the run, far beyond the drift allowed
    assert np.ptp(neural) > 20 * bound * scale
    if name == "ethanol":  # still a molecule: every atom within the model's reach
        assert max(spread) < 3.0


# -- openmm-ml ----------------------------------------------------------------------------


def test_mlpotential_create_system(hcno_model):
    from openmmml import MLPotential

    atoms = molecule("CH3CH2OH")
    system = MLPotential("multiscale", modelFile=str(hcno_model)).createSystem(topology_of(atoms))
    assert any(isinstance(f, openmm.CMMotionRemover) for f in system.getForces())
    e_ase, f_ase = ase_single_point(atoms, hcno_model)
    for platform in PLATFORMS:
        e, f = single_point(system, atoms.positions, platform)
        assert_close(e, f, e_ase, f_ase, FLOAT64, platform)


@pytest.fixture(scope="module")
def solvated():
    """ACE-ALA-NME in a 2 nm TIP3P box, amber14, PME (0.95 nm)."""
    modeller, forcefield, peptide = solvated_capped_alanine(box_nm=2.0)
    mm = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                 nonbondedCutoff=0.95 * unit.nanometer)
    positions = np.array(modeller.getPositions().value_in_unit(unit.angstrom))
    return modeller.topology, mm, peptide, positions


def system_of_count(n: int) -> openmm.System:
    system = openmm.System()
    for _ in range(n):
        system.addParticle(1.0)
    return system


def internal_mm_energy(mm: openmm.System, atoms: list[int], positions: np.ndarray) -> float:
    """The MM terms among ``atoms`` only (eV), summed pair by pair here, independently of
    how OpenMM or openmm-ml exclude them: bonds, angles and torsions within the set, and
    Coulomb + LJ between its atoms (1-4 pairs scaled, 1-2 and 1-3 excluded).

    The plain Coulomb sum equals what PME loses when the pairs are excluded, as long as
    every pair is closer than the cutoff (checked).
    """
    inside = set(atoms)
    bonded = system_of_count(mm.getNumParticles())
    copies = {openmm.HarmonicBondForce: ("Bond", 2), openmm.HarmonicAngleForce: ("Angle", 3),
              openmm.PeriodicTorsionForce: ("Torsion", 4)}
    for force in mm.getForces():
        if type(force) in copies:
            kind, n = copies[type(force)]
            mine = type(force)()
            for k in range(getattr(force, f"getNum{kind}s")()):
                params = getattr(force, f"get{kind}Parameters")(k)
                if set(params[:n]) <= inside:
                    getattr(mine, f"add{kind}")(*params)
            bonded.addForce(mine)
    e_bonded = single_point(bonded, positions)[0]

    (nb,) = [f for f in mm.getForces() if isinstance(f, openmm.NonbondedForce)]
    exceptions = {}
    for k in range(nb.getNumExceptions()):
        i, j, q, s, e = nb.getExceptionParameters(k)
        exceptions[min(i, j), max(i, j)] = (q, s, e)
    x = positions * 0.1
    cutoff = nb.getCutoffDistance().value_in_unit(unit.nanometer)
    # e^2 N_A / (4 pi eps0) in kJ/mol nm from CODATA 2018, as OpenMM 8 uses
    k_e = 1.602176634e-19 ** 2 * 6.02214076e23 / (4 * np.pi * 8.8541878128e-12) * 1e6
    pairs = 0.0
    for i, j in combinations(sorted(atoms), 2):
        r = np.linalg.norm(x[i] - x[j])
        assert r < cutoff
        if (i, j) in exceptions:
            q, s, e = exceptions[i, j]
        else:
            (qi, si, ei), (qj, sj, ej) = nb.getParticleParameters(i), nb.getParticleParameters(j)
            q, s, e = qi * qj, (si + sj) / 2, unit.sqrt(ei * ej)
        q = q.value_in_unit(unit.elementary_charge ** 2)
        s = s.value_in_unit(unit.nanometer)
        e = e.value_in_unit(unit.kilojoule_per_mole)
        pairs += k_e * q / r + 4 * e * ((s / r) ** 12 - (s / r) ** 6)
    return e_bonded + pairs / EV_TO_KJ_PER_MOL


def test_mixed_system_ml_group_is_the_model_on_the_molecule(solvated, hcno_model):
    from openmmml import MLPotential

    topology, mm, peptide, positions = solvated
    assert len(peptide) == 22 and topology.getNumAtoms() > 600
    # periodic PME system: works without mlLongRange (the model declares itself local)
    mixed = MLPotential("multiscale", modelFile=str(hcno_model)).createMixedSystem(
        topology, mm, peptide, forceGroup=1)
    alone = Atoms([a.element.symbol for a in topology.atoms() if a.index in set(peptide)],
                  positions=positions[peptide])
    e_ase, f_ase = ase_single_point(alone, hcno_model)
    for platform in PLATFORMS:
        e, f = single_point(mixed, positions, platform, groups={1})
        assert_close(e, f[peptide], e_ase, f_ase, FLOAT64, platform)
        assert np.all(f[len(peptide):] == 0.0)


def test_mixed_system_interpolation(solvated, hcno_model):
    """lambda_interpolate = 0: the MM system; 1: MM without the molecule's internal terms, plus ML."""
    from openmmml import MLPotential

    topology, mm, peptide, positions = solvated
    potential = MLPotential("multiscale", modelFile=str(hcno_model))
    interpolating = potential.createMixedSystem(topology, mm, peptide, interpolate=True)
    mixed = potential.createMixedSystem(topology, mm, peptide)
    energy = {lam: single_point(interpolating, positions, parameters={"lambda_interpolate": lam})[0]
              for lam in (0.0, 0.5, 1.0)}
    e_mm = single_point(mm, positions)[0]
    alone = Atoms([a.element.symbol for a in topology.atoms() if a.index in set(peptide)],
                  positions=positions[peptide])
    e_ml = ase_single_point(alone, hcno_model)[0]
    e_internal = internal_mm_energy(mm, peptide, positions)
    assert abs(e_internal) > 0.5  # eV: the check below is not vacuous
    tol = 1e-6  # eV; openmm-ml's interpolation uses 138.935456 for 1/(4 pi eps0), OpenMM 138.9354576...
    assert abs(energy[0.0] - e_mm) <= tol
    assert abs(energy[1.0] - (e_mm - e_internal + e_ml)) <= tol
    assert abs(energy[1.0] - single_point(mixed, positions)[0]) <= 1e-9
    assert abs(energy[0.5] - (energy[0.0] + energy[1.0]) / 2) <= 1e-9


def test_python_force_survives_copy_and_serialization(hcno_model):
    """create_python_force: the copyable twin of create_force (interpolation needs it)."""
    atoms = molecule("CH3CH2OH")
    top = topology_of(atoms)
    system = system_of(top, create_python_force(hcno_model, top))
    e, f = single_point(system, atoms.positions)
    e_ase, f_ase = ase_single_point(atoms, hcno_model)
    assert_close(e, f, e_ase, f_ase, FLOAT64, "PythonForce")
    xml = openmm.XmlSerializer.serialize(system)
    for twin in (copy.deepcopy(system), openmm.XmlSerializer.deserialize(xml)):
        assert_close(*single_point(twin, atoms.positions), e, f, 1e-12, "copy")


def test_force_works_when_openmm_is_imported_before_torch(sic_models, tmp_path):
    """openmm-torch's plugins fail to load if openmm comes first; create_force loads them."""
    code = "\n".join([
        "import openmm, openmm.app as app, sys",
        "from multiscale_openmm import create_force",
        "top = app.Topology(); chain = top.addChain()",
        "for _ in range(2): top.addAtom('Si', app.Element.getBySymbol('Si'), top.addResidue('SI', chain))",
        "system = openmm.System(); [system.addParticle(28.0) for _ in range(2)]",
        "system.addForce(create_force(sys.argv[1], top))",
        "platform = openmm.Platform.getPlatformByName('Reference')",
        "context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform)",
        "context.setPositions([[0, 0, 0], [0.23, 0, 0]])",
        "energy = context.getState(getEnergy=True).getPotentialEnergy()",
        "print(energy.value_in_unit(openmm.unit.kilojoule_per_mole))"])
    proc = subprocess.run([sys.executable, "-c", code, str(sic_models["float64"])], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dimer = Atoms("Si2", positions=[[0, 0, 0], [2.3, 0, 0]])
    assert float(proc.stdout.split()[-1]) == pytest.approx(
        ase_single_point(dimer, sic_models["float64"])[0] * EV_TO_KJ_PER_MOL, rel=1e-12)


# -- errors -------------------------------------------------------------------------------


def test_unknown_element_is_named(sic_models):
    from openmmml import MLPotential

    top = topology_of(molecule("CH3CH2OH"))  # H, C, O; the model knows Si, C
    with pytest.raises(ValueError, match=r"knows elements \['Si', 'C'\].*\['H', 'O'\]"):
        create_force(sic_models["float64"], top)
    with pytest.raises(ValueError, match=r"\['H', 'O'\]"):
        MLPotential("multiscale", modelFile=str(sic_models["float64"])).createSystem(top)


def test_atom_indices_outside_the_topology_are_named(sic_models):
    top = topology_of(molecule("CO"))   # C and O; the model knows Si and C
    with pytest.raises(ValueError, match=r"atoms \[7\] are not atom indices of the topology \(it has 2 atoms"):
        create_force(sic_models["float64"], top, atoms=[0, 7])
    with pytest.raises(ValueError, match="lists an atom twice"):
        create_force(sic_models["float64"], top, atoms=[1, 1])


def test_missing_model_file(tmp_path):
    from openmmml import MLPotential

    missing = tmp_path / "missing.pt"
    with pytest.raises(multiscale.ModelContractError, match="does not exist"):
        MLPotential("multiscale", modelFile=str(missing))
    with pytest.raises(multiscale.ModelContractError, match="does not exist"):
        create_force(missing, topology_of(molecule("CH4")))


def test_mlpotential_needs_model_file():
    from openmmml import MLPotential

    with pytest.raises(ValueError, match="needs modelFile"):
        MLPotential("multiscale")


# -- the example --------------------------------------------------------------------------


def test_run_md_example(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / "openmm" / "run_md.py"), "--steps", "20",
                           "--report", "10", "--cells", "2", "--workdir", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "si_sw.pt").is_file()
    rows = [line.split("\t") for line in proc.stdout.splitlines() if line[:1].isdigit()]
    assert [int(r[0]) for r in rows] == [10, 20]
    pe, ke, total = (np.array([float(r[k]) for r in rows]) for k in (1, 2, 3))
    assert np.allclose(pe + ke, total)
    # 64 atoms of SW silicon near its minimum (-4.3366 eV/atom), energy conserved
    assert np.all(np.abs(pe / 64 / EV_TO_KJ_PER_MOL + 4.3366) < 0.1)
    assert np.ptp(total) < 1e-3 * np.abs(total).max()


def test_shipped_names_and_wrong_kind():
    """create_force takes a shipped model's name, and says so when given a crack-field predictor."""
    import multiscale
    from openmm import app
    top = app.Topology()
    chain = top.addChain()
    for _ in range(2):
        top.addAtom("Si", app.Element.getBySymbol("Si"), top.addResidue("SI", chain))
    assert create_force("si-ani", top) is not None
    with pytest.raises(multiscale.ModelContractError, match="is a crack-field predictor, not an interatomic"):
        create_force("crack-fields", top)
