"""Reference and neural potentials under the model contract."""

from .pair import LennardJones, Morse
from .message_passing import MessagePassingPotential
from .stillinger_weber import StillingerWeber, read_sw_file

__all__ = ["LennardJones", "Morse", "MessagePassingPotential", "StillingerWeber", "read_sw_file"]
