"""Every code block of README.md, ARCHITECTURE.md and docs/ runs as written (tests/docs_blocks.py
says how blocks are marked); each page's blocks run in one scratch folder that looks like a
checkout (the repository's top-level entries linked into it)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from docs_blocks import ROOT, RUN, blocks, pages

BIN = Path(sys.executable).parent


def _parsed():
    out = []
    for page in pages():
        try:
            out += blocks(page)
        except ValueError:   # reported by test_every_page_parses_and_every_block_is_classified
            pass
    return out


BLOCKS = [b for b in _parsed() if b.language in RUN]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    made = {}

    def folder(page):
        if page not in made:
            path = tmp_path_factory.mktemp(page.stem.lower())
            for entry in ROOT.iterdir():
                if entry.name not in (".git", "results", "build") and not (path / entry.name).exists():
                    (path / entry.name).symlink_to(entry)
            made[page] = path
        return made[page]
    return folder


def _env():
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _run(cmd, cwd, what):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, env=_env())
    assert proc.returncode == 0, f"{what} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_every_page_parses_and_every_block_is_classified():
    names = [p.name for p in pages()]
    assert "README.md" in names and len(names) >= 10
    for page in pages():
        blocks(page)   # raises on an untagged or unterminated block or an unknown mark


def test_a_broken_block_fails(tmp_path):
    """The runner is not a rubber stamp: an unknown name, an untagged fence and a bad mark fail."""
    from docs_blocks import Block
    with pytest.raises(AssertionError):
        _run([sys.executable, "-c", "print(undefined_name)"], tmp_path, "a broken block")
    (tmp_path / "page.md").write_text("text\n\n```\nx = 1\n```\n")
    with pytest.raises(ValueError, match="must name one of"):
        blocks(tmp_path / "page.md")
    (tmp_path / "page.md").write_text("<!-- docs-test: skip -->\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="needs a value"):
        blocks(tmp_path / "page.md")
    orphan = Block(tmp_path / "page.md", 1, "python", "x\n", {"continues": ""})
    with pytest.raises(ValueError, match="no python block before"):
        orphan.program()


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_block_runs_as_written(block, folders, tmp_path):
    if block.language == "python":
        compile(block.program(), block.name, "exec")
    if "skip" in block.mark:
        pytest.skip(f"marked: {block.mark['skip']}")
    cwd = folders(block.page)
    if block.language == "python":
        script = cwd / f"block_{block.line}.py"
        script.write_text(block.program())
        _run([sys.executable, script.name], cwd, block.name)
    elif block.language == "bash":
        script = cwd / f"block_{block.line}.sh"
        script.write_text("set -eo pipefail\n" + block.source)
        _run(["bash", script.name], cwd, block.name)
    elif block.language == "lammps":
        text = block.source
        if "frame" in block.mark:
            frame = (ROOT / block.mark["frame"]).read_text()
            assert "SNIPPET" in frame, f"{block.mark['frame']} has no SNIPPET line"
            text = frame.replace("SNIPPET\n", block.source)
        script = cwd / f"block_{block.line}.in"
        script.write_text(text)
        _run([str(BIN / "multiscale"), "lmp", "-in", script.name, "-log", "none", "-nocite"],
             cwd, block.name)
    else:
        _check_toml(block, tmp_path)


def _check_toml(block, tmp_path):
    from multiscale.config import parse_toml
    raw = parse_toml(block.source, block.name)
    path = tmp_path / "config.toml"
    path.write_text(block.source)
    read = False
    if "model" in raw:
        from multiscale.learning.config import read_config
        read_config(path).build_model(0)
        read = True
    if "active" in raw:
        from multiscale.learning.active_learning import read_active
        read_active(path)
        read = True
    assert read, f"{block.name}: no reader for sections {sorted(raw)}"
