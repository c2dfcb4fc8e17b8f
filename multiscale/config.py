"""The one TOML reader of multiscale's configuration files and the one ConfigError.

Training, active-learning, field-training, fine-tuning and coupled-run configurations all
read through :func:`read_toml` (or :func:`read_sections` for files made of known sections
with defaults) and raise :class:`ConfigError`, whose message names the file, the key and
what to change.
"""

from __future__ import annotations

import tomllib
from pathlib import Path


class ConfigError(ValueError):
    """A configuration that cannot be run; the message says what to change."""


def read_toml(path: str | Path, what: str = "configuration") -> dict:
    """The TOML file ``path`` as a dict; ConfigError if it is missing or not valid TOML."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    return parse_toml(path.read_text(), str(path))


def parse_toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None


def read_sections(path: str | Path, defaults: dict, paths=(), what: str = "training") -> dict:
    """A TOML file's sections over ``defaults`` (unknown sections or keys are errors), with the
    (section, key) entries in ``paths`` made absolute relative to the file's folder."""
    path = Path(path)
    user = read_toml(path, f"{what} configuration")
    cfg = {}
    for section, known in defaults.items():
        given = user.pop(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {unknown} in [{section}]; known: {sorted(known)}")
        cfg[section] = {**known, **given}
    if user:
        raise ConfigError(f"{path}: unknown section(s) {sorted(user)}; known: {sorted(defaults)}")
    for section, key in paths:
        if cfg[section][key] is not None:
            cfg[section][key] = str((path.parent / cfg[section][key]).resolve())
    return cfg
