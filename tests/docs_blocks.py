"""The code blocks of README.md, ARCHITECTURE.md and docs/*.md, as tests/test_docs.py runs them.

Every fenced block names its language: ``python``, ``bash``, ``lammps`` (a LAMMPS input),
``toml`` (a configuration) are run; ``text`` is output or a diagram.  An HTML comment on the
line before a fence changes how it runs:

    <!-- docs-test: skip: REASON -->         not run (python blocks are still compiled)
    <!-- docs-test: continues -->            python: runs after the page's previous python block
    <!-- docs-test: frame: tests/docs/F -->  lammps: the block replaces the line SNIPPET of F

A toml block is read by the readers of the sections it has ([model]: a training
configuration, [active]: active learning) and its model is built.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ("python", "bash", "lammps", "toml")
LANGUAGES = RUN + ("text",)
MARK = re.compile(r"^<!--\s*docs-test:\s*(?P<body>.*?)\s*-->\s*$")


def pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclasses.dataclass
class Block:
    page: Path
    line: int            # 1-based line of the opening fence
    language: str
    source: str
    mark: dict[str, str]  # {"skip": reason} / {"continues": ""} / {"frame": path}
    previous: "Block | None" = None   # the page's previous python block (for "continues")

    @property
    def name(self) -> str:
        return f"{_short(self.page)}:{self.line}"

    def program(self) -> str:
        """The python source to run: the chain of continued blocks, then this one."""
        parts, block = [self.source], self
        while "continues" in block.mark:
            if block.previous is None:
                raise ValueError(f"{block.name}: 'continues' but no python block before it")
            block = block.previous
            parts.insert(0, block.source)
        return "\n".join(parts)


def _short(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def _mark(text: str, where: str) -> dict[str, str]:
    m = MARK.match(text.strip())
    if not m:
        return {}
    key, _, value = m["body"].partition(":")
    key, value = key.strip(), value.strip()
    if key not in ("skip", "continues", "frame"):
        raise ValueError(f"{where}: unknown docs-test mark {key!r}")
    if key in ("skip", "frame") and not value:
        raise ValueError(f"{where}: docs-test mark {key!r} needs a value (a reason or a file)")
    return {key: value}


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page``; a ValueError for an unterminated fence, a fence without a
    language or an unknown one."""
    lines = page.read_text().splitlines()
    out: list[Block] = []
    last_python = None
    k = 0
    while k < len(lines):
        line = lines[k]
        if not line.startswith("```"):
            k += 1
            continue
        where = f"{_short(page)}:{k + 1}"
        language = line[3:].strip()
        if language == "py":
            language = "python"
        if language not in LANGUAGES:
            raise ValueError(f"{where}: a code block must name one of {LANGUAGES}, got {language!r}")
        end = next((j for j in range(k + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"{where}: unterminated code block")
        before = next((lines[j] for j in range(k - 1, -1, -1) if lines[j].strip()), "")
        block = Block(page, k + 1, language, "\n".join(lines[k + 1:end]) + "\n", _mark(before, where))
        if language == "python":
            block.previous = last_python
            last_python = block
        out.append(block)
        k = end + 1
    return out
