"""The first run as the README tells it: `make run` picks the user's config or the demo and says which;
the runtime venv has no test tools; `make config/agent.yaml` gives the user's config a data_dir of its own.

Each test runs the real Makefile in a temp folder holding copies of the files it reads (`make -n` where
running the recipe would install packages), so the checkout itself is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from agent.config import load_config

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def copy_of_repo(tmp_path: Path) -> Path:
    """A folder with the Makefile, pyproject.toml, the example config and its demo folders; venv stamps fresh."""
    root = tmp_path / "clone"
    (root / "config").mkdir(parents=True)
    for name in ("Makefile", "pyproject.toml", "config/agent.example.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "nfo_templates", root / "nfo_templates")
    return root


def make(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run make in root (no inherited MAKEFLAGS or CONFIG)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "CONFIG")}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=60)


def fresh_stamps(root: Path) -> None:
    """Mark the venv as installed (newer than pyproject.toml), so `make -n run` shows only the run."""
    (root / ".venv").mkdir()
    for stamp in (".installed", ".installed-test"):
        (root / ".venv" / stamp).touch()
        os.utime(root / ".venv" / stamp, (os.path.getmtime(root / "pyproject.toml") + 10,) * 2)


def test_make_run_serves_the_demo_until_the_user_has_a_config(tmp_path: Path) -> None:
    """Without config/agent.yaml: the example, said in one line; with it: the user's config, said so."""
    root = copy_of_repo(tmp_path)
    fresh_stamps(root)
    demo = make(root, "-n", "run")
    assert demo.returncode == 0, demo.stderr
    assert ".venv/bin/metarr-agent serve --config config/agent.example.yaml" in demo.stdout
    assert "make run: serving the demo config config/agent.example.yaml (data in data/example)" in demo.stdout

    assert make(root, "config/agent.yaml").returncode == 0
    own = make(root, "-n", "run")
    assert own.returncode == 0, own.stderr
    assert ".venv/bin/metarr-agent serve --config config/agent.yaml" in own.stdout
    assert "make run: serving config/agent.yaml" in own.stdout and "example" not in own.stdout


def test_runtime_venv_has_no_test_extra_and_make_test_adds_it(tmp_path: Path) -> None:
    """`make run` installs the package alone; `make test` (and only it) installs `.[test]` on top."""
    root = copy_of_repo(tmp_path)
    run = make(root, "-n", "run")
    assert run.returncode == 0, run.stderr
    assert "pip install --quiet -e .\n" in run.stdout
    assert "[test]" not in run.stdout and "touch .venv/.installed\n" in run.stdout

    test = make(root, "-n", "test")
    assert test.returncode == 0, test.stderr
    assert "pip install --quiet -e '.[test]'" in test.stdout and "touch .venv/.installed-test" in test.stdout
    assert test.stdout.index("-e .\n") < test.stdout.index("'.[test]'") < test.stdout.index("pytest")


def test_the_ci_script_runs_the_readme_test_command() -> None:
    """.ci/run ends in `make test`, the README's test command."""
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == "make test"
    assert "make test   #" in (REPO / "README.md").read_text(encoding="utf-8")


def test_the_users_config_and_the_demo_never_share_a_data_dir(tmp_path: Path) -> None:
    """`make config/agent.yaml`: the example with data_dir data/ (the demo's is data/example); never overwritten."""
    root = copy_of_repo(tmp_path)
    for folder in ("media/movies", "media/tv"):
        (root / folder).mkdir(parents=True)
    made = make(root, "config/agent.yaml")
    assert made.returncode == 0, made.stderr
    assert "wrote config/agent.yaml" in made.stdout
    example = load_config(root / "config" / "agent.example.yaml")
    own = load_config(root / "config" / "agent.yaml")
    assert example.data_dir == (root / "data" / "example").resolve()
    assert own.data_dir == (root / "data").resolve()
    assert [lib.path for lib in own.libraries] == [lib.path for lib in example.libraries]
    # the rest of the file is the example's, byte for byte
    differ = [(a, b) for a, b in zip((root / "config" / "agent.example.yaml").read_text().splitlines(),
                                     (root / "config" / "agent.yaml").read_text().splitlines(), strict=True)
              if a != b]
    assert len(differ) == 1 and differ[0][1].startswith("data_dir: ../data ")

    (root / "config" / "agent.yaml").write_text(yaml.safe_dump({"data_dir": "mine"}), encoding="utf-8")
    again = make(root, "config/agent.yaml")
    assert again.returncode == 0 and "up to date" in again.stdout
    assert yaml.safe_load((root / "config" / "agent.yaml").read_text()) == {"data_dir": "mine"}
