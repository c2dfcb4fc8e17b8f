"""Reference and neural potentials under the model contract."""

from .pair import LennardJones, Morse
from .message_passing import MessagePassingPotential
from .equivariant_transformer import EquivariantTransformer, from_torchmdnet
from .stillinger_weber import StillingerWeber, read_sw_file
from .aev import AEVComputer, AEVParameters
from .ani import ANIEnsemble, ANIModel, committee_disagreement, from_torchani
from .repulsion import ZBL

__all__ = ["LennardJones", "Morse", "MessagePassingPotential", "EquivariantTransformer",
           "from_torchmdnet", "StillingerWeber", "read_sw_file",
           "AEVParameters", "AEVComputer", "ANIModel", "ANIEnsemble", "from_torchani",
           "committee_disagreement", "ZBL"]
