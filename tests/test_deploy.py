"""Deploy files without Docker: a build context with nothing secret, PUID/PGID at run time, a clean /opt venv.

The entrypoint runs for real (as root, with util-linux's setpriv) against a temp data folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DOCKER = REPO / "deploy" / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"
MUST_EXCLUDE = ("**/.env", "config/agent.yaml", "data", "media", ".venv", ".git", "artifacts")


def patterns(path: Path) -> list[str]:
    """The patterns of a .dockerignore file (comments and blank lines dropped)."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("ignore", [REPO / ".dockerignore", DOCKER / "Dockerfile.dockerignore"],
                         ids=["classic builder", "BuildKit"])
def test_build_context_excludes_secrets_and_personal_folders(ignore: Path) -> None:
    """Both builders' filters keep .env (anywhere), the user's config, data, media, venv, git, artifacts out."""
    found = patterns(ignore)
    assert [p for p in MUST_EXCLUDE if p not in found] == []
    for app in ("radarr", "sonarr", "jellyfin"):  # compose's app folders, should anyone run it in place
        assert f"deploy/docker/{app}" in found


def test_both_ignore_files_say_the_same() -> None:
    """BuildKit reads Dockerfile.dockerignore instead of /.dockerignore: one list, two copies."""
    assert patterns(REPO / ".dockerignore") == patterns(DOCKER / "Dockerfile.dockerignore")


def test_puid_pgid_are_runtime_variables_not_build_arguments() -> None:
    """No ARG PUID or USER in the image; compose sets PUID/PGID as environment and builds nothing in place."""
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    instructions = [line.split()[0] for line in dockerfile.splitlines() if line and not line.startswith(("#", " "))]
    assert "USER" not in instructions
    assert "ARG PUID" not in dockerfile and "ARG PGID" not in dockerfile
    assert 'ENTRYPOINT ["metarr-entrypoint"]' in dockerfile
    assert "deploy/docker/entrypoint.sh /usr/local/bin/metarr-entrypoint" in dockerfile
    service = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))["services"]["metarr-agent"]
    assert "build" not in service and service["image"] == "metarr-agent:local"
    assert service["environment"]["PUID"] == "1000" and service["environment"]["PGID"] == "1000"
    assert all(not v.startswith("./") or v.startswith("./agent.yaml:") for v in service["volumes"])


def test_scripts_parse() -> None:
    """The entrypoint and the /opt installer are valid POSIX sh (shellcheck too, when installed)."""
    for script in (ENTRYPOINT, REPO / "deploy" / "install.sh"):
        assert os.access(script, os.X_OK), script
        done = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        if shutil.which("shellcheck"):
            check = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True)
            assert check.returncode == 0, check.stdout


def entrypoint(tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the entrypoint with METARR_DATA in tmp_path and the given environment."""
    full = {"PATH": os.environ["PATH"], "METARR_DATA": str(tmp_path / "data"), **env}
    return subprocess.run(["sh", str(ENTRYPOINT), *argv], env=full, capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_entrypoint_drops_to_puid_pgid_chosen_at_start(tmp_path: Path) -> None:
    """PUID/PGID from the environment: the data folder is handed over, the command runs as them, no groups."""
    (tmp_path / "data" / "cache").mkdir(parents=True)
    (tmp_path / "data" / "metarr.sqlite").write_bytes(b"")
    done = entrypoint(tmp_path, "sh", "-c", "id -u; id -g; id -G; echo $HOME; umask",
                      PUID="1234", PGID="2345", UMASK="002")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1234", "2345", "2345", str(tmp_path / "data"), "0002"]
    for path in (tmp_path / "data", tmp_path / "data" / "cache", tmp_path / "data" / "metarr.sqlite"):
        assert (path.stat().st_uid, path.stat().st_gid) == (1234, 2345)

    again = entrypoint(tmp_path, "sh", "-c", "id -u", PUID="1500", PGID="1500")  # changed at the next start
    assert again.stdout.strip() == "1500" and (tmp_path / "data" / "metarr.sqlite").stat().st_uid == 1500


def test_entrypoint_refuses_a_non_numeric_id(tmp_path: Path) -> None:
    """PUID=abc is one clear line and exit 1 (as root); nothing is run."""
    if os.geteuid() != 0:
        pytest.skip("the ids are only read when started as root")
    done = entrypoint(tmp_path, "sh", "-c", "echo ran", PUID="abc", PGID="1000")
    assert done.returncode == 1 and done.stdout == ""
    assert "PUID must be a number, got 'abc'" in done.stderr


def test_entrypoint_runs_agent_commands_through_metarr_agent(tmp_path: Path) -> None:
    """`docker run IMAGE check-config ...` and `--version` run metarr-agent (found on PATH)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "metarr-agent"
    fake.write_text('#!/bin/sh\necho "metarr-agent $*"\n', encoding="utf-8")
    fake.chmod(0o755)
    path = f"{bin_dir}:{os.environ['PATH']}"
    for argv, expected in ((["check-config", "--config", "/config/agent.yaml"],
                            "metarr-agent check-config --config /config/agent.yaml"),
                           (["--version"], "metarr-agent --version"),
                           ([], "metarr-agent serve --config /config/agent.yaml")):
        done = entrypoint(tmp_path, *argv, PATH=path, PUID=str(os.getuid()), PGID=str(os.getgid()))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected


def test_opt_install_builds_its_own_venv() -> None:
    """The guide installs with deploy/install.sh, which makes a fresh venv and never copies the clone's."""
    guide = (REPO / "deploy" / "README.md").read_text(encoding="utf-8")
    assert "sudo metarr-agent/deploy/install.sh /opt/metarr-agent" in guide
    assert "cp -r metarr-agent /opt" not in guide
    script = (REPO / "deploy" / "install.sh").read_text(encoding="utf-8")
    assert '-m venv --clear "$prefix/.venv"' in script
    assert "--exclude=./.venv" in script and "pip install --quiet \"$stage\"" in script
    assert " -e " not in script  # never editable: the installed agent must not point at the clone
