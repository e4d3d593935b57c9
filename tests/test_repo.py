"""The repository keeps its promises: README's first two commands are what CI runs; packaging lists every package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    return [line for block in blocks[:2] for line in block.strip().splitlines() if not line.startswith("#")]


def test_readme_opens_with_setup_and_test_commands_that_ci_runs():
    commands = readme_commands()
    assert len(commands) == 2 and "pip install" in commands[0] and "pytest" in commands[1]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert command in ci, f"README command not run by .ci/run: {command}"


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "crnn_ocr").rglob("__init__.py")}
    assert found <= listed, f"missing from pyproject packages: {sorted(found - listed)}"
    for package, folder in config["package-dir"].items():
        assert (REPO / folder / "__init__.py").is_file(), package


def test_cli_shim_only_runs_the_cli():
    """A shim that runs only as the main program: worker processes started by spawn or forkserver re-import it."""
    assert (REPO / "cli.py").read_text().strip().splitlines() == ["from crnn_ocr.cli import run", "",
                                                                 'if __name__ == "__main__":', "    run()"]


@pytest.mark.parametrize("module", ["cli.data", "cli.export", "cli.gan", "cli.dbn", "cli.common", "cli.recognize", "cli.train",
                                    "cli.detector", "cli.serve", "cli"])
def test_every_cli_module_can_be_imported_first(module):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", f"import crnn_ocr.{module}"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_no_tracked_file_is_over_10_mb():
    import shutil
    import subprocess

    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    big = [(name.decode(), size) for name in tracked if name
           and (path := REPO / name.decode()).is_file() and (size := path.stat().st_size) > 10 << 20]
    assert not big, f"tracked files over 10 MB (keep artefacts out of git): {big}"
