"""Handbook stress intensity factors (Tada, Paris and Irwin, The Stress Analysis of Cracks
Handbook, 3rd ed. 2000) used as references for the finite-element models.

Units: stress GPa, lengths L, K in GPa sqrt(L).
"""

from __future__ import annotations

import math

from .specimen import Specimen


def sent_k1(stress: float, crack_length: float, width: float) -> float:
    """Single-edge-notched strip in tension, ends free to rotate (Tada p. 2.11, better than
    0.5 % for any a/W; assumes a long strip, H/W >= 2 here agrees to within 1 % for a/W <= 0.6)."""
    x = crack_length / width
    angle = math.pi * x / 2
    factor = (math.sqrt(math.tan(angle) / angle)
              * (0.752 + 2.02 * x + 0.37 * (1 - math.sin(angle)) ** 3) / math.cos(angle))
    return stress * math.sqrt(math.pi * crack_length) * factor


def ccp_k1(stress: float, half_length: float, width: float) -> float:
    """Centre-cracked strip in tension, Tada's correction of Feddersen's secant formula
    (better than 0.1 % for any 2a/W when H/W >= 3)."""
    x = 2 * half_length / width
    factor = (1 - 0.025 * x ** 2 + 0.06 * x ** 4) / math.sqrt(math.cos(math.pi * x / 2))
    return stress * math.sqrt(math.pi * half_length) * factor


def inclined_k(stress: float, half_length: float, angle_deg: float) -> tuple[float, float]:
    """K_I, K_II of a crack of length 2a inclined by ``angle_deg`` in an infinite plate under
    remote uniaxial stress normal to the unrotated crack: s sqrt(pi a) (cos^2 b, sin b cos b)."""
    b = math.radians(angle_deg)
    k0 = stress * math.sqrt(math.pi * half_length)
    return k0 * math.cos(b) ** 2, k0 * math.sin(b) * math.cos(b)


def reference_k1(specimen: Specimen) -> float:
    """Handbook K_I of a straight (crack_angle 0) sent or ccp specimen."""
    if specimen.crack_angle != 0:
        raise ValueError("the sent/ccp handbook formulas are for straight cracks (crack_angle 0)")
    fn = sent_k1 if specimen.kind == "sent" else ccp_k1
    return fn(specimen.stress, specimen.crack_length, specimen.width)
