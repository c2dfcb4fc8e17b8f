"""Extended Hückel theory in torch (STO overlaps, occupations, the generalised eigenproblem):
the quantum layer the ML-EHM model puts between its network and the energy."""

from .huckel import Basis, Result, Shell, extended_huckel, hamiltonian, overlap, solve

__all__ = ["Basis", "Result", "Shell", "extended_huckel", "hamiltonian", "overlap", "solve"]
