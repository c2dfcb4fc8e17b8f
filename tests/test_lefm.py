"""Near-tip LEFM fields (multiscale.continuum.lefm): isotropic limit of the cubic (Stroh)
solution, equilibrium, traction-free faces, Griffith loads, and input errors."""

import math

import numpy as np
import pytest
from matscipy.fracture_mechanics.crack import CubicCrystalCrack

from multiscale.continuum.lefm import J_PER_M2_TO_GPA_A, NearTipField

E, NU = 150.0, 0.25
LAM, MU = E * NU / ((1 + NU) * (1 - 2 * NU)), E / (2 * (1 + NU))
SI_SW = dict(C11=151.4, C12=76.4, C44=56.4)   # Stillinger-Weber silicon, GPa
POINTS = np.array([[1.0, 0.5], [-2.0, 0.3], [0.2, -1.5], [-1.0, -0.01], [3.0, 0.0], [0.0, 2.0]])


@pytest.mark.parametrize("orientation", [dict(crack_plane=(0, 1, 0), crack_front=(0, 0, 1)),
                                         dict(crack_plane=(1, 1, 1), crack_front=(1, -1, 0))])
@pytest.mark.parametrize("k1, k2", [(1.0, 0.0), (0.0, 1.0), (0.7, -0.4)])
def test_cubic_with_zener_ratio_one_is_isotropic(orientation, k1, k2):
    # matscipy splits the degenerate (isotropic) Stroh roots slightly: agreement to ~3e-8
    iso = NearTipField.isotropic(E, NU)
    cubic = NearTipField.cubic(LAM + 2 * MU, LAM, MU, **orientation)
    u_iso, s_iso = iso.displacements(POINTS, k1, k2), iso.stresses(POINTS, k1, k2)
    np.testing.assert_allclose(cubic.displacements(POINTS, k1, k2), u_iso, rtol=0, atol=1e-7 * np.abs(u_iso).max())
    np.testing.assert_allclose(cubic.stresses(POINTS, k1, k2), s_iso, rtol=0, atol=1e-7 * np.abs(s_iso).max())
    assert cubic.plane_strain_modulus() == pytest.approx(E / (1 - NU ** 2), rel=1e-10)


def test_nearly_isotropic_cubic_converges_linearly_to_isotropic():
    iso = NearTipField.isotropic(E, NU)
    errors = []
    for anisotropy in (1e-2, 1e-3, 1e-4):
        cubic = NearTipField.cubic(LAM + 2 * MU, LAM, MU * (1 + anisotropy),
                                   crack_plane=(0, 1, 0), crack_front=(0, 0, 1))
        ref = iso.stresses(POINTS, 1.0, 1.0)
        errors.append(np.abs(cubic.stresses(POINTS, 1.0, 1.0) - ref).max() / np.abs(ref).max())
    assert errors[0] > 1e-4
    assert errors[1] == pytest.approx(errors[0] / 10, rel=0.2)
    assert errors[2] == pytest.approx(errors[1] / 10, rel=0.2)


@pytest.mark.parametrize("k1, k2", [(1.0, 0.0), (0.0, 1.0)])
def test_cubic_silicon_field_is_in_equilibrium(k1, k2):
    field = NearTipField.cubic(**SI_SW)
    rng = np.random.default_rng(1)
    r, theta = rng.uniform(0.5, 2.0, 50), rng.uniform(-0.9 * np.pi, 0.9 * np.pi, 50)
    xy = np.stack([r * np.cos(theta), r * np.sin(theta)], 1)
    h = 1e-5
    dx = (field.stresses(xy + [h, 0], k1, k2) - field.stresses(xy - [h, 0], k1, k2)) / (2 * h)
    dy = (field.stresses(xy + [0, h], k1, k2) - field.stresses(xy - [0, h], k1, k2)) / (2 * h)
    div = np.stack([dx[:, 0] + dy[:, 2], dx[:, 2] + dy[:, 1]], 1)      # d_j sigma_ij
    scale = np.abs(field.stresses(xy, k1, k2)).max(axis=1) / r         # |sigma| / r
    assert np.abs(div).max(axis=1).max() < 1e-6 * scale.min()
    # the divergence vanishes by cancellation of terms that are each of order |sigma| / r
    assert np.abs(np.concatenate([dx, dy], 1)).max(axis=1).min() > 0.05 * scale.min()


@pytest.mark.parametrize("k1, k2", [(1.0, 0.0), (0.0, 1.0), (0.5, 0.5)])
def test_cubic_silicon_crack_faces_are_traction_free(k1, k2):
    field = NearTipField.cubic(**SI_SW)
    r = np.array([0.3, 1.0, 4.0])
    for sign in (1.0, -1.0):   # upper face theta = +pi, lower face theta = -pi
        faces = np.stack([-r, np.full(3, 0.0 if sign > 0 else -0.0)], 1)   # -0.0: theta = -pi
        s = field.stresses(faces, k1, k2)
        ahead = field.stresses(np.stack([r, np.zeros(3)], 1), k1, k2)
        np.testing.assert_allclose(s[:, 1:], 0.0, atol=1e-10 * np.abs(ahead).max())
        # ahead of the tip sigma_yy = K_I / sqrt(2 pi r) and sigma_xy = K_II / sqrt(2 pi r)
        np.testing.assert_allclose(ahead[:, 1:], np.outer(1 / np.sqrt(2 * np.pi * r), [k1, k2]),
                                   atol=1e-10)


def test_griffith_k_isotropic():
    gamma = 1.2   # J/m^2
    expected = math.sqrt(2 * gamma * J_PER_M2_TO_GPA_A * E / (1 - NU ** 2))
    assert NearTipField.isotropic(E, NU).griffith_k(gamma) == pytest.approx(expected, rel=1e-12)
    # 1 MPa sqrt(m) = 100 GPa sqrt(A): a silica-like 1 J/m^2, 70 GPa gives ~0.37 MPa sqrt(m)
    assert NearTipField.isotropic(70.0, 0.17).griffith_k(1.0) / 100 == pytest.approx(
        math.sqrt(2 * 1.0 * 70e9 / (1 - 0.17 ** 2)) / 1e6, rel=1e-12)


def test_griffith_k_cubic_is_matscipy_k1g():
    gamma = 1.36   # J/m^2, SW Si(111)
    field = NearTipField.cubic(**SI_SW, crack_plane=(1, 1, 1), crack_front=(1, -1, 0))
    crack = CubicCrystalCrack([1, 1, 1], [1, -1, 0], SI_SW["C11"], SI_SW["C12"], SI_SW["C44"])
    assert field.griffith_k(gamma) == pytest.approx(crack.k1g(gamma * J_PER_M2_TO_GPA_A), rel=1e-12)


def test_bad_input_raises_clearly():
    iso = NearTipField.isotropic(E, NU)
    with pytest.raises(ValueError, match="on the crack tip"):
        iso.stresses([[0.0, 0.0]], 1.0)
    with pytest.raises(ValueError, match="on the crack tip"):
        NearTipField.cubic(**SI_SW).displacements([[1.0, 1.0]], 1.0, tip=(1.0, 1.0))
    with pytest.raises(ValueError, match="not positive definite"):
        NearTipField.cubic(C11=100.0, C12=120.0, C44=50.0)
    with pytest.raises(ValueError, match="not positive definite"):
        NearTipField.cubic(C11=100.0, C12=50.0, C44=-1.0)
    with pytest.raises(ValueError, match="must lie in the crack plane"):
        NearTipField.cubic(**SI_SW, crack_plane=(1, 1, 1), crack_front=(1, 0, 0))
    with pytest.raises(ValueError, match="-1 < nu < 0.5"):
        NearTipField.isotropic(E, 0.5)
    with pytest.raises(ValueError, match="surface energy must be positive"):
        iso.griffith_k(0.0)
