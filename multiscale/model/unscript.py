"""Rebuild the Python modules behind a TorchScript model file.

``torch.export`` traces Python code; it cannot trace a TorchScript module (the interpreter
specialises every shape it sees).  A model file written by :func:`multiscale.export` holds,
for each submodule, its class's qualified name (``__torch__.multiscale.potentials.ani.ANIModel``)
and the attributes its compiled methods read.  :func:`unscript` makes an instance of each
class without calling its constructor (whose arguments the file does not keep) and gives it
those attributes, parameters, buffers and children, so the class's own Python ``forward``
runs on the file's weights; a class whose submodules have changed since may rebuild them from
those attributes (its ``upgrade_unscripted()``).  Nothing here is checked for equality: the caller compares the
rebuilt module with the TorchScript one (``compiled.write`` does, on several systems).

Written here because no library does it: torch offers scripting, not its inverse.
"""

from __future__ import annotations

import importlib
import re
import sys

import torch

from .contract import ModelContractError

_MANGLE = re.compile(r"\.___torch_mangle_\d+")
_GETATTR = re.compile(r'prim::GetAttr\[name="([^"]+)"\]\(%self')


def python_class(qualified: str) -> type:
    """The Python class of a TorchScript type name, e.g. ``__torch__.torch.nn.modules.linear.Linear``."""
    name = _MANGLE.sub("", qualified).removeprefix("__torch__.")
    module, _, cls = name.rpartition(".")
    try:
        found = importlib.import_module(module)
        if hasattr(found, cls):
            return getattr(found, cls)
    except ImportError:
        pass
    # the class has moved since the file was written: the one class of that name in the package
    package = module.split(".")[0]
    moved = {getattr(m, cls) for key, m in list(sys.modules.items())
             if m is not None and key.split(".")[0] == package and isinstance(getattr(m, cls, None), type)}
    if len(moved) == 1:
        return moved.pop()
    raise ModelContractError(f"the model file's class {name} cannot be imported here; compile the "
                             "model from Python: multiscale.export(model, 'model.pt2')")


def _attribute_names(script: torch.jit.ScriptModule) -> set[str]:
    """Every attribute of ``self`` that a compiled method of ``script`` reads."""
    names: set[str] = set()
    for method in script._c._method_names():
        graph = str(script._c._get_method(method).graph)
        names.update(_GETATTR.findall(graph))
    return names


def unscript(script: torch.jit.ScriptModule) -> torch.nn.Module:
    """A Python module of the file's own classes, holding the script module's state."""
    cls = python_class(script._c._type().qualified_name())
    if not issubclass(cls, torch.nn.Module):
        raise ModelContractError(f"{cls.__qualname__} is not a torch.nn.Module")
    module = cls.__new__(cls)
    torch.nn.Module.__init__(module)
    children = dict(script.named_children())
    parameters = dict(script.named_parameters(recurse=False))
    buffers = dict(script.named_buffers(recurse=False))
    for name, child in children.items():
        module.add_module(name, unscript(child))
    for name, value in parameters.items():
        module.register_parameter(name, torch.nn.Parameter(value.detach().clone(), value.requires_grad))
    for name, value in buffers.items():
        module.register_buffer(name, value.detach().clone())
    if isinstance(module, (torch.nn.ModuleList, torch.nn.Sequential)):
        return module
    # constants (torch.nn's __constants__, Final attributes) are inlined into the code, not read
    constants = {name for name in getattr(cls, "__constants__", ()) if hasattr(script, name)}
    for name in (_attribute_names(script) | constants) - children.keys() - parameters.keys() - buffers.keys():
        value = script._c.getattr(name) if script._c.hasattr(name) else getattr(script, name)
        if isinstance(value, torch.Tensor):
            value = value.detach().clone()
        object.__setattr__(module, name, value) if name == "training" else setattr(module, name, value)
    if hasattr(module, "upgrade_unscripted"):   # a class whose layout changed since the file was written
        module.upgrade_unscripted()
    module.train(False)
    return module
