"""Extended Hückel theory in torch: a minimal valence basis of Slater-type orbitals, the
Wolfsberg-Helmholz Hamiltonian, the generalised eigenproblem HC = SCE, occupations from the
total charge Q and multiplicity M, band energy, orbital energies and Mulliken charges.

    result = extended_huckel(["C", "C", "H", "H", "H", "H"], positions)     # textbook parameters
    result.orbital_energies, result.energy, result.charges                  # eV, eV, e

The network of ML-EHM predicts the on-site energies alpha (m,) and the bond factors K (m, m)
that :func:`hamiltonian` takes in place of the textbook ones.  Everything is differentiable:
forces are -d(energy)/d(positions) through the overlaps, the Cholesky factor of S and the
occupations (multiscale.quantum.occupation keeps them finite at degeneracies).  Lengths in
Å, energies in eV, orbital exponents in 1/bohr.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

import torch

from .occupation import density, free_energy
from .slater import diatomic, rotate


@dataclasses.dataclass(frozen=True)
class Shell:
    """A valence shell: principal and angular quantum numbers, STO exponent (1/bohr) and the
    textbook on-site energy H_ii (eV)."""

    n: int
    l: int
    zeta: float
    energy: float


# Hoffmann's parameters (J. Chem. Phys. 39, 1397 (1963) and the EHT literature after it)
TEXTBOOK: dict[str, tuple[Shell, ...]] = {
    "H": (Shell(1, 0, 1.300, -13.6),),
    "C": (Shell(2, 0, 1.625, -21.4), Shell(2, 1, 1.625, -11.4)),
    "N": (Shell(2, 0, 1.950, -26.0), Shell(2, 1, 1.950, -13.4)),
    "O": (Shell(2, 0, 2.275, -32.3), Shell(2, 1, 2.275, -14.8)),
}
VALENCE_ELECTRONS = {"H": 1, "C": 4, "N": 5, "O": 6}
WOLFSBERG_HELMHOLZ_K = 1.75


class Basis:
    """The minimal valence basis of a list of elements: orbitals per atom s, then p_x, p_y, p_z."""

    def __init__(self, symbols: Sequence[str], shells: dict[str, tuple[Shell, ...]] = TEXTBOOK):
        unknown = sorted(set(symbols) - shells.keys())
        if unknown:
            raise ValueError(f"no valence basis for {unknown}; extended Hückel here has {sorted(shells)}")
        self.symbols = list(symbols)
        self.shells = []            # (atom, Shell, first orbital)
        orbital_atom, orbital_shell = [], []
        for atom, symbol in enumerate(symbols):
            for shell in shells[symbol]:
                self.shells.append((atom, shell, len(orbital_atom)))
                orbital_atom += [atom] * (2 * shell.l + 1)
                orbital_shell += [len(self.shells) - 1] * (2 * shell.l + 1)
        self.orbital_atom = torch.tensor(orbital_atom)
        self.orbital_shell = torch.tensor(orbital_shell)
        self.size = len(orbital_atom)
        self.valence = torch.tensor([VALENCE_ELECTRONS[s] for s in symbols], dtype=torch.float64)

    def textbook_energies(self) -> torch.Tensor:
        """H_ii (m,) eV of every orbital."""
        return torch.tensor([self.shells[s][1].energy for s in self.orbital_shell.tolist()], dtype=torch.float64)

    def electrons(self, charge: float = 0.0, multiplicity: int = 1) -> tuple[int, int]:
        """(alpha, beta) electron counts for total charge Q and multiplicity M = 2S + 1."""
        total = float(self.valence.sum()) - charge
        if abs(total - round(total)) > 1e-9 or total < 0:
            raise ValueError(f"charge {charge} leaves {total} valence electrons: it must leave a whole, "
                             "non-negative number")
        total = int(round(total))
        if multiplicity < 1 or (total + multiplicity - 1) % 2:
            raise ValueError(f"multiplicity {multiplicity} is impossible for {total} electrons: "
                             f"use an {'odd' if total % 2 == 0 else 'even'} multiplicity")
        alpha, beta = (total + multiplicity - 1) // 2, (total - multiplicity + 1) // 2
        if beta < 0 or alpha > self.size:
            raise ValueError(f"{total} electrons with multiplicity {multiplicity} do not fit into "
                             f"{self.size} valence orbitals")
        return alpha, beta


def overlap(basis: Basis, positions: torch.Tensor) -> torch.Tensor:
    """The overlap matrix S (m, m) of ``basis`` at ``positions`` (n, 3) Å."""
    dtype = positions.dtype
    m = basis.size
    rows, cols, values = [], [], []
    groups: dict[tuple, list] = {}
    for p, (atom_a, a, first_a) in enumerate(basis.shells):
        for atom_b, b, first_b in basis.shells[p + 1:]:
            if atom_b != atom_a:
                groups.setdefault((a.n, a.l, b.n, b.l), []).append((atom_a, a.zeta, first_a, atom_b, b.zeta, first_b))
    for (na, la, nb, lb), pairs in groups.items():
        ia = torch.tensor([q[0] for q in pairs])
        ib = torch.tensor([q[3] for q in pairs])
        za = torch.tensor([q[1] for q in pairs], dtype=dtype)
        zb = torch.tensor([q[4] for q in pairs], dtype=dtype)
        vec = positions[ib] - positions[ia]
        dist = vec.norm(dim=1)
        sigma, pi = diatomic(na, la, za, nb, lb, zb, dist)
        block = rotate(la, lb, sigma, pi, vec / dist.unsqueeze(1))          # (P, 2la+1, 2lb+1)
        fa = torch.tensor([q[2] for q in pairs]).view(-1, 1, 1) + torch.arange(2 * la + 1).view(1, -1, 1)
        fb = torch.tensor([q[5] for q in pairs]).view(-1, 1, 1) + torch.arange(2 * lb + 1).view(1, 1, -1)
        fa, fb = torch.broadcast_tensors(fa, fb)
        rows.append(fa.reshape(-1))
        cols.append(fb.reshape(-1))
        values.append(block.reshape(-1))
    upper = torch.zeros((m, m), dtype=dtype)
    if values:
        upper = upper.index_put((torch.cat(rows), torch.cat(cols)), torch.cat(values), accumulate=True)
    return upper + upper.T + torch.eye(m, dtype=dtype)


def hamiltonian(S: torch.Tensor, alpha: torch.Tensor, K: torch.Tensor | float = WOLFSBERG_HELMHOLZ_K) -> torch.Tensor:
    """Wolfsberg-Helmholz H (m, m) eV: H_mm = alpha_m, H_mn = K_mn S_mn (alpha_m + alpha_n) / 2."""
    mean = 0.5 * (alpha.unsqueeze(0) + alpha.unsqueeze(1))
    off = K * S * mean
    eye = torch.eye(S.shape[0], dtype=torch.bool)
    return torch.where(eye, torch.diag_embed(alpha), off)


class Result(NamedTuple):
    """energy: band (free) energy, eV; orbital_energies (m,) eV ascending; charges (n,) e
    (Mulliken); density (m, m) total AO density matrix; overlap (m, m)."""

    energy: torch.Tensor
    orbital_energies: torch.Tensor
    charges: torch.Tensor
    density: torch.Tensor
    overlap: torch.Tensor


def solve(basis: Basis, H: torch.Tensor, S: torch.Tensor, charge: float = 0.0, multiplicity: int = 1,
          kT: float = 0.05) -> Result:
    """Occupy the solutions of HC = SCE with the alpha and beta electrons of (Q, M) at electronic
    temperature kT (eV): band energy sum_sigma A_sigma (Mermin free energy per spin),
    orbital energies, Mulliken charges q_A = Z_A - sum_{mu on A} (P S)_mu,mu."""
    n_alpha, n_beta = basis.electrons(charge, multiplicity)
    L = torch.linalg.cholesky(S)
    X = torch.linalg.solve_triangular(L, torch.eye(S.shape[0], dtype=S.dtype), upper=False)   # L^-1
    Hp = X @ H @ X.T
    Hp = 0.5 * (Hp + Hp.T)
    if n_alpha == n_beta:                   # closed shell: both spins alike, solved once
        energy, P_orth = 2.0 * free_energy(Hp, n_alpha, kT), 2.0 * density(Hp, n_alpha, kT)
    else:
        energy = free_energy(Hp, n_alpha, kT) + free_energy(Hp, n_beta, kT)
        P_orth = density(Hp, n_alpha, kT) + density(Hp, n_beta, kT)
    P = X.T @ P_orth @ X
    population = (P * S).sum(dim=1)                                     # (P S)_mu,mu, S symmetric
    electrons = torch.zeros(len(basis.symbols), dtype=S.dtype).index_add(0, basis.orbital_atom, population)
    charges = basis.valence.to(S.dtype) - electrons
    return Result(energy, torch.linalg.eigvalsh(Hp), charges, P, S)


def extended_huckel(symbols: Sequence[str], positions, charge: float = 0.0, multiplicity: int = 1,
                    kT: float = 0.05) -> Result:
    """Extended Hückel with the textbook parameters (TEXTBOOK, K = 1.75) at ``positions`` (n, 3) Å."""
    basis = Basis(symbols)
    positions = torch.as_tensor(positions, dtype=torch.float64)
    S = overlap(basis, positions)
    return solve(basis, hamiltonian(S, basis.textbook_energies()), S, charge, multiplicity, kT)
