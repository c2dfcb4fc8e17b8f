"""Electrostatic embedding in OpenMM: the model's charges respond to the MM point charges and
interact with them.  The mixed system's energy is the MM part plus the model in the MM
potential (evaluated in Python), its forces on ML and MM atoms are the energy's derivatives,
the charges still sum to Q, and a field from the ASE side gives the same response."""

import numpy as np
import pytest
import torch
from ase.build import molecule

import multiscale
from lmp_runs import relative
from multiscale.engines import neighbors
from multiscale.engines.scatter import evaluate
from multiscale.potentials.aimnet2 import AIMNet2Potential
from multiscale.units import COULOMB_EV_A, EV_TO_KJ_PER_MOL

ELEMENTS = ["C", "H", "N", "O"]
TIP3P = {"O": (-0.834, 3.15061, 0.6364), "H": (0.417, 1.0, 0.0)}   # q e, sigma Å, epsilon kJ/mol


@pytest.fixture(scope="module")
def model_file(model_dir):
    model = AIMNet2Potential(ELEMENTS, rc_s=3.0, nshifts=6, nfeature=4, ncomb_v=4, hidden=((16,), (16,), (16,)),
                             aim_size=16, out_hidden=(8,), coulomb="dsf", dsf_rc=4.0, cutoff=4.0,
                             charge_terms=True, seed=5).double()
    return multiscale.export(model, model_dir / "aimnet2_embedding.pt")


def solvated(n_water=6, seed=0):
    """Methanol (the ML region, atoms 0-5) and n_water TIP3P waters around it (Å)."""
    rng = np.random.default_rng(seed)
    ml = molecule("CH3OH")
    ml.positions -= ml.get_center_of_mass()
    waters = []
    for k in range(n_water):
        w = molecule("H2O")
        direction = rng.normal(size=3)
        w.positions += direction / np.linalg.norm(direction) * (3.3 + 0.4 * k) - w.get_center_of_mass()
        waters.append(w)
    return ml, waters


def build(ml, waters, embedding, model_file, charge=1.0, spin=2):
    import openmm
    import openmm.app as app
    import openmm.unit as unit
    from openmmml import MLPotential
    topology = app.Topology()
    chain = topology.addChain()
    res = topology.addResidue("MOL", chain)
    for s in ml.get_chemical_symbols():
        topology.addAtom(s, app.Element.getBySymbol(s), res)
    system = openmm.System()
    nb = openmm.NonbondedForce()
    nb.setNonbondedMethod(openmm.NonbondedForce.NoCutoff)
    for s in ml.get_chemical_symbols():     # the MM model of the ML region: replaced by the model
        system.addParticle(app.Element.getBySymbol(s).mass)
        nb.addParticle(0.1, 0.3, 0.4)
    positions = [*ml.positions]
    for w in waters:
        res = topology.addResidue("HOH", chain)
        for s, p in zip(w.get_chemical_symbols(), w.positions):
            topology.addAtom(s, app.Element.getBySymbol(s), res)
            system.addParticle(app.Element.getBySymbol(s).mass)
            q, sigma, eps = TIP3P[s]
            nb.addParticle(q, sigma * 0.1, eps)
            positions.append(p)
        first = system.getNumParticles() - 3
        for a, b in ((0, 1), (0, 2), (1, 2)):
            nb.addException(first + a, first + b, 0.0, 0.1, 0.0)
    system.addForce(nb)
    mixed = MLPotential("multiscale", modelFile=str(model_file)).createMixedSystem(
        topology, system, list(range(len(ml))), embedding=embedding, forceGroup=1, charge=charge,
        multiplicity=spin)
    context = openmm.Context(mixed, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(np.array(positions) * 0.1 * unit.nanometer)
    return mixed, context, np.array(positions)


def _state(context, groups=-1):
    import openmm.unit as unit
    st = context.getState(getEnergy=True, getForces=True, groups=groups)
    return (st.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            st.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.angstrom))


def _model_in_potential(model_file, ml, phi, charge=1.0, spin=2):
    loaded = multiscale.load(model_file)
    species = torch.tensor([ELEMENTS.index(s) for s in ml.get_chemical_symbols()])
    edge_index, vectors = neighbors.edges(ml.positions, np.zeros((3, 3)), [False] * 3, loaded.metadata.cutoff)
    return evaluate(loaded, species, edge_index, vectors, len(ml), charge=charge, spin=spin,
                    potential=torch.tensor(phi))


def _phi(ml, waters):
    mm = np.concatenate([w.positions for w in waters])
    q = np.array([TIP3P[s][0] for w in waters for s in w.get_chemical_symbols()])
    r = np.linalg.norm(ml.positions[:, None] - mm[None], axis=2)
    return COULOMB_EV_A * (q[None] / r).sum(1)


def test_energy_is_mm_plus_the_model_in_the_mm_potential(model_file):
    ml, waters = solvated()
    mixed, context, _ = build(ml, waters, "electrostatic", model_file)
    assert [f.getForceGroup() for f in mixed.getForces()] == [0, 1]   # MM, then the model
    energy_ml = _state(context, groups={1})[0] / EV_TO_KJ_PER_MOL
    ref = _model_in_potential(model_file, ml, _phi(ml, waters))
    assert abs(energy_ml - ref.energy) <= 1e-10 * abs(ref.energy)
    # the ML atoms' MM charges no longer act: the rest of the system is MM-MM plus ML-MM LJ only
    import openmm
    nb = [f for f in mixed.getForces() if isinstance(f, openmm.NonbondedForce)][0]
    assert all(nb.getParticleParameters(k)[0]._value == 0.0 for k in range(len(ml)))
    # the charges respond and still sum to Q
    vacuum = _model_in_potential(model_file, ml, np.zeros(len(ml)))
    assert abs(float(ref.charges.sum()) - 1.0) <= 1e-10
    assert float((ref.charges - vacuum.charges).abs().max()) > 1e-4


def test_forces_on_ml_and_mm_atoms_are_finite_differences(model_file):
    import openmm.unit as unit
    ml, waters = solvated(n_water=3)
    _, context, positions = build(ml, waters, "electrostatic", model_file)
    _, forces = _state(context)
    h = 1e-4
    for atom, c in [(0, 0), (2, 1), (5, 2), (6, 0), (8, 2), (11, 1)]:    # ML atoms and MM atoms
        energies = []
        for sign in (1, -1):
            p = positions.copy()
            p[atom, c] += sign * h
            context.setPositions(p * 0.1 * unit.nanometer)
            energies.append(_state(context)[0])
        fd = -(energies[0] - energies[1]) / (2 * h)
        assert abs(fd - forces[atom, c]) <= 1e-5 * max(1.0, abs(forces[atom, c])), (atom, c)


def test_a_positive_charge_nearby_draws_electrons(model_file):
    """q_i = q~_i + f_i (lambda - phi_i): a larger potential at an atom lowers its charge."""
    ml, _ = solvated()
    phi = np.zeros(len(ml))
    phi[0] = 0.5
    near = _model_in_potential(model_file, ml, phi)
    vacuum = _model_in_potential(model_file, ml, np.zeros(len(ml)))
    assert float(near.charges[0]) < float(vacuum.charges[0]) and abs(float(near.charges.sum()) - 1.0) <= 1e-10


def test_uniform_field_in_ase_is_the_same_potential(model_file):
    ml, _ = solvated()
    field = np.array([0.2, -0.1, 0.3])
    atoms = ml.copy()
    atoms.calc = multiscale.MultiscaleCalculator(model_file, charge=1.0, spin=2, electric_field=field)
    ref = _model_in_potential(model_file, ml, -(ml.positions @ field))
    assert abs(atoms.get_potential_energy() - ref.energy) <= 1e-12 * abs(ref.energy)
    assert relative(atoms.get_charges(), ref.charges.numpy()) <= 1e-12
    # a uniform field pushes the ion as a whole by Q E
    assert np.allclose(atoms.get_forces().sum(0), 1.0 * field, atol=1e-6)


def test_models_without_a_potential_input_are_refused(model_dir):
    from charged_models import TwoPassCharges
    ml, waters = solvated(n_water=1)
    plain = multiscale.export(TwoPassCharges(ELEMENTS), model_dir / "two_pass_embedding.pt")
    with pytest.raises(ValueError, match="needs a model whose charges respond to an external potential"):
        build(ml, waters, "electrostatic", plain)
    atoms = ml.copy()
    atoms.calc = multiscale.MultiscaleCalculator(plain, charge=1.0, spin=2, electric_field=[0.0, 0.0, 0.1])
    with pytest.raises(ValueError, match="takes no external electrostatic potential"):
        atoms.get_potential_energy()
