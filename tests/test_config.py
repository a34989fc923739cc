"""Config validation: every error names its key path and line; env expansion, relative paths, the CLI."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import API_KEY, free_port, subprocess_env

from agent.cli import main
from agent.config import load_config
from agent.config_checks import effective
from agent.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def media(tmp_path: Path) -> None:
    """Create the two library folders the YAML below points at (relative to the config file)."""
    (tmp_path / "media" / "movies").mkdir(parents=True, exist_ok=True)
    (tmp_path / "media" / "tv").mkdir(parents=True, exist_ok=True)


# Line numbers matter: each case names the line its error must point at.
BASE = """\
server:
  port: 7979
data_dir: ./data
libraries:
  - name: Movies
    kind: movies
    path: media/movies
    watch: off
"""


def write(tmp_path: Path, text: str) -> Path:
    """Write YAML text as tmp_path/agent.yaml with the library folders present."""
    media(tmp_path)
    path = tmp_path / "agent.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    """The ConfigError message for a config text (fails the test if it loads)."""
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return info.value.message


ERRORS = [
    ("unknown top-level key", BASE + "serverr:\n  port: 1\n", "serverr: unknown key (line 9)"),
    ("unknown nested key", BASE.replace("path: media/movies", "pth: media/movies"),
     "libraries[0].pth: unknown key (line 7); did you mean 'path'?"),
    ("unknown key in section", BASE.replace("  port: 7979", "  prot: 7979"),
     "server.prot: unknown key (line 2)"),
    ("quoted number", BASE.replace("port: 7979", 'port: "7979"'),
     "server.port: expected an integer, got '7979' (line 2) (remove the quotes)"),
    ("wrong type", BASE.replace("port: 7979", "port: abc"),
     "server.port: expected an integer, got 'abc' (line 2)"),
    ("wrong type list", BASE.replace("    kind: movies", "    kind: [movies]"),
     "libraries[0].kind: expected a string, got ['movies'] (line 6)"),
    ("missing path", BASE.replace("    path: media/movies\n", ""),
     "libraries[0].path: required key is missing (in the mapping at line 5)"),
    ("duplicate name", BASE + "  - name: movies\n    kind: movies\n    path: media/tv\n",
     "libraries[1].name: duplicate library name 'movies' (line 9)"),
    ("path missing", BASE.replace("media/movies", "media/nope"),
     "libraries[0].path: folder does not exist: "),
    ("port zero", BASE.replace("port: 7979", "port: 0"),
     "server.port: must be between 1 and 65535, got 0 (line 2)"),
    ("port too big", BASE.replace("port: 7979", "port: 70000"),
     "server.port: must be between 1 and 65535, got 70000 (line 2)"),
    ("empty remote", BASE + "sources:\n  radarr:\n    path_mappings:\n      - {remote: '', local: /srv/m}\n",
     "sources.radarr.path_mappings[0]: remote path is empty (line 12)"),
    ("relative local",
     BASE + "sources:\n  sonarr:\n    path_mappings:\n      - remote: /tv\n        local: tv\n",
     "sources.sonarr.path_mappings[0]: local path 'tv' is not absolute"),
    ("unknown mapping key", BASE + "players:\n  - name: k\n    type: kodi\n    url: http://127.0.0.1:8080\n"
     "    path_mappings: [{remote: /a, locl: /b}]\n",
     "players[0].path_mappings[0].locl: unknown key (line 13)"),
    ("unknown artwork", BASE + "artwork:\n  types: [poster,\n    poser]\n",
     "artwork.types: unknown artwork type 'poser' (line 11;"),
    ("bad watch", BASE.replace("watch: off", "watch: sometimes"),
     "libraries[0].watch: must be auto, poll or off, got 'sometimes' (line 8)"),
    ("watch true", BASE.replace("watch: off", "watch: on"),
     "libraries[0].watch: must be auto, poll or off, got True"),
    ("bad kind", BASE.replace("kind: movies", "kind: films"),
     "libraries[0].kind: must be 'movies' or 'series', got 'films' (line 6)"),
    ("unknown source", BASE + "sources:\n  sabnzbd: {}\n", "sources.sabnzbd: unknown source"),
    ("bad player url", BASE + "players:\n  - name: k\n    type: kodi\n    url: kodi.local\n",
     "players[0].url: must be an http:// or https:// URL, got 'kodi.local' (line 12)"),
    ("plex without token", BASE + "players:\n  - name: p\n    type: plex\n    url: http://127.0.0.1:32400\n",
     "players[0].token: a Plex player needs its token (the server owner's X-Plex-Token)"),
    ("plex with api_key", BASE + "players:\n  - name: p\n    type: plex\n    url: http://127.0.0.1:32400\n"
     "    token: plex-token-123\n    api_key: jellyfin-key-1\n",
     "players[0].api_key: a Plex player takes a token, not an api_key"),
    ("token on kodi", BASE + "players:\n  - name: k\n    type: kodi\n    url: http://127.0.0.1:8080\n"
     "    token: plex-token-123\n",
     "players[0].token: only a Plex player takes a token; a kodi player uses username and password"),
    ("unknown player type", BASE + "players:\n  - name: e\n    type: emby\n    url: http://127.0.0.1:8096\n",
     "players[0].type: must be 'kodi', 'jellyfin' or 'plex', got 'emby'"),
    ("not a mapping", "- just\n- a list\n", "config: expected a mapping (line 1)"),
    ("section not a mapping", BASE + "jobs: 4\n", "jobs: expected a mapping (line 9)"),
    ("libraries not a list", "data_dir: ./data\nlibraries:\n  name: Movies\n",
     "libraries: expected a list (line 2)"),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in ERRORS], ids=[n for n, _, _ in ERRORS])
def test_error_names_key_and_line(tmp_path: Path, text: str, expected: str) -> None:
    """Each invalid config is refused with a message naming the key path and the line."""
    message = error_of(tmp_path, text)
    assert message.startswith(expected) or expected in message, message
    assert "line " in message


def test_path_that_is_a_file_is_not_a_folder(tmp_path: Path) -> None:
    """A library path pointing at a file is refused."""
    media(tmp_path)
    (tmp_path / "media" / "file.mkv").write_bytes(b"x")
    message = error_of(tmp_path, BASE.replace("media/movies", "media/file.mkv"))
    assert message.startswith("libraries[0].path: not a folder: ") and "(line 7)" in message


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    """Broken YAML names the file and the line of the problem."""
    message = error_of(tmp_path, BASE + "jobs:\n  workers: [1, 2\n  limits: {}\n")
    assert "not valid YAML at line" in message
    line = int(message.split("at line ")[1].split(",")[0])
    assert line in (10, 11)
    assert str(tmp_path / "agent.yaml") in message


def test_duplicate_yaml_key_reports_line(tmp_path: Path) -> None:
    """The same key twice in a mapping is an error, not a silent override."""
    message = error_of(tmp_path, BASE.replace("  port: 7979\n", "  port: 7979\n  port: 8000\n"))
    assert message == "duplicate key 'port' at line 3"


def test_missing_file(tmp_path: Path) -> None:
    """A config path that does not exist is a clear error."""
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_watch_off_bare_yaml_false_accepted(tmp_path: Path) -> None:
    """`watch: off` is YAML false; it means off."""
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.libraries[0].watch == "off"
    cfg = load_config(write(tmp_path, BASE.replace("watch: off", "watch: poll")))
    assert cfg.libraries[0].watch == "poll"
    cfg = load_config(write(tmp_path, BASE.replace("    watch: off\n", "")))
    assert cfg.libraries[0].watch == "auto"


def test_env_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """${NAME} expands; ${NAME:-default} falls back when unset or empty; numbers from env are numbers."""
    monkeypatch.setenv("MA_KEY", "from-env")
    monkeypatch.setenv("MA_EMPTY", "")
    monkeypatch.delenv("MA_UNSET", raising=False)
    monkeypatch.setenv("MA_WORKERS", "5")
    server = "  port: ${MA_PORT:-8123}\n  api_key: k-${MA_KEY}-${MA_UNSET}\n"
    text = BASE.replace("  port: 7979\n", server) + (
        "providers:\n  tmdb:\n    api_key: ${MA_EMPTY:-fallback}\n    language: ${MA_UNSET:-de-DE}\n"
        "  fanart:\n    api_key: ${MA_UNSET}\n"
        "jobs:\n  workers: ${MA_WORKERS}\n")
    cfg = load_config(write(tmp_path, text))
    assert cfg.server.port == 8123
    assert cfg.server.api_key == "k-from-env-"
    assert cfg.providers.tmdb.api_key == "fallback"
    assert cfg.providers.tmdb.language == "de-DE"
    assert cfg.providers.fanart.api_key == ""
    assert cfg.jobs.workers == 5


def test_env_number_that_is_not_a_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A port from the environment that is not a number names the key and line, without a quotes hint."""
    monkeypatch.setenv("MA_PORT", "eighty")
    message = error_of(tmp_path, BASE.replace("port: 7979", "port: ${MA_PORT}"))
    assert message == "server.port: expected an integer, got 'eighty' (line 2)"


def test_numeric_secret_from_env_stays_a_string(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An all-digit key from the environment is still a string key."""
    monkeypatch.setenv("MA_KEY", "12345678")
    cfg = load_config(write(tmp_path, BASE.replace("  port: 7979\n", "  api_key: ${MA_KEY}\n")))
    assert cfg.server.api_key == "12345678"


def test_relative_paths_resolve_against_config_folder(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """data_dir, library paths and nfo.templates are relative to the config file, not the cwd."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (tmp_path / "templates").mkdir()
    media(tmp_path)
    path = conf / "agent.yaml"
    path.write_text(BASE.replace("./data", "../data").replace("media/movies", "../media/movies")
                    + "nfo:\n  templates: ../templates\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(path)
    root = tmp_path.resolve()
    assert cfg.data_dir == root / "data"
    assert cfg.libraries[0].path == root / "media" / "movies"
    assert cfg.nfo.templates == root / "templates"


def test_effective_masks_secrets_and_keeps_library_paths(tmp_path: Path) -> None:
    """effective() masks api keys and passwords and still shows every library's folder."""
    text = BASE.replace("  port: 7979\n", "  port: 7979\n  api_key: srv-secret\n") + (
        "providers:\n  tmdb:\n    api_key: tmdb-secret\n"
        "players:\n  - name: k\n    type: kodi\n    url: http://127.0.0.1:8080\n    password: kodi-secret\n")
    out = effective(load_config(write(tmp_path, text)))
    dumped = yaml.safe_dump(out)
    for secret in ("srv-secret", "tmdb-secret", "kodi-secret"):
        assert secret not in dumped
    assert out["server"]["api_key"] == "********"
    assert out["players"][0]["password"] == "********"
    assert out["providers"]["fanart"]["api_key"] == ""
    assert out["libraries"][0]["path"] == str((tmp_path / "media" / "movies").resolve())


# ---------------------------------------------------------------- CLI


def test_check_config_bad_exits_1_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check-config on a bad file: exit 1, one line on stderr naming the key and line, no traceback."""
    path = write(tmp_path, BASE.replace("port: 7979", 'port: "80"'))
    assert main(["check-config", "--config", str(path)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "server.port" in lines[0] and "line 2" in lines[0] and "remove the quotes" in lines[0]
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_check_config_good_prints_masked_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check-config on a good file: exit 0 and the effective config with secrets masked."""
    text = BASE.replace("  port: 7979\n", f"  port: 7979\n  api_key: {API_KEY}\n") + (
        "players:\n  - name: k\n    type: kodi\n    url: http://127.0.0.1:8080\n    password: hunter22\n")
    path = write(tmp_path, text)
    assert main(["check-config", "--config", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert API_KEY not in captured.out and "hunter22" not in captured.out
    body = yaml.safe_load(captured.out)
    assert body["server"] == {"host": "127.0.0.1", "port": 7979, "api_key": "********"}
    assert body["players"][0]["password"] == "********"
    assert body["libraries"][0]["name"] == "Movies"
    assert captured.out.splitlines()[0] == f"# {path}: OK"


def test_example_config_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """config/agent.example.yaml passes check-config once its demo folders exist beside it."""
    for name in ("METARR_API_KEY", "TMDB_API_KEY", "FANART_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "agent.example.yaml", tmp_path / "config" / "agent.example.yaml")
    for folder in ("media/movies", "media/tv", "nfo_templates"):
        (tmp_path / folder).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert main(["check-config"]) == 0, capsys.readouterr().err
    body = yaml.safe_load(capsys.readouterr().out)
    assert [lib["name"] for lib in body["libraries"]] == ["Movies", "TV"]
    assert body["data_dir"] == str((tmp_path / "data" / "example").resolve())  # the demo's own, not data/
    assert body["server"]["api_key"] == ""


def test_word_for_a_number_gets_no_quotes_hint(tmp_path: Path) -> None:
    """Only a quoted number is told to remove its quotes; a word is just the wrong type."""
    message = error_of(tmp_path, BASE.replace("port: 7979", "port: abc"))
    assert message == "server.port: expected an integer, got 'abc' (line 2)"
    message = error_of(tmp_path, BASE + "artwork:\n  max_asset_mb: '2.5'\n")
    assert message == "artwork.max_asset_mb: expected a number, got '2.5' (line 10) (remove the quotes)"


# ---------------------------------------------------------------- hostile and mistaken configs (issue 11)


def run_cli(*args: str, limit_memory: bool = False, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run `python -m agent ARGS` as the user would; memory can be capped (1 GiB) so a blow-up fails, not swaps."""
    start = ["-m", "agent"]
    if limit_memory:
        start = ["-c", "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
                       "sys.argv[0] = 'metarr-agent'; runpy.run_module('agent', run_name='__main__')"]
    return subprocess.run([sys.executable, *start, *args], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a user error (exit 1, nothing on stdout, no traceback)."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("metarr-agent: error: "), proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    return lines[0]


def test_data_dir_inside_a_library_is_refused(tmp_path: Path) -> None:
    """data_dir inside a library (the agent's writes would rescan forever) is refused naming both paths."""
    path = write(tmp_path, BASE.replace("data_dir: ./data", "data_dir: media/movies/.metarr"))
    line = one_error_line(run_cli("check-config", "--config", str(path)))
    data_dir, movies = (tmp_path / "media/movies/.metarr").resolve(), (tmp_path / "media/movies").resolve()
    assert "data_dir" in line and str(data_dir) in line and str(movies) in line and "Movies" in line
    served = run_cli("serve", "--config", str(path), timeout=20)
    assert one_error_line(served) == line
    assert not data_dir.exists()


def test_library_inside_data_dir_is_refused(tmp_path: Path) -> None:
    """A library inside data_dir is refused as well, naming both paths."""
    (tmp_path / "data" / "movies").mkdir(parents=True)
    path = write(tmp_path, BASE.replace("path: media/movies", "path: data/movies"))
    line = one_error_line(run_cli("check-config", "--config", str(path)))
    assert str((tmp_path / "data").resolve()) in line and str((tmp_path / "data/movies").resolve()) in line


def test_latin1_byte_names_file_and_line(tmp_path: Path) -> None:
    """A byte that is not UTF-8 is a one-line user error naming the file, the byte and its line."""
    path = write(tmp_path, BASE)
    path.write_bytes(BASE.encode() + b"# caf\xe9 au lait\n")
    line = one_error_line(run_cli("check-config", "--config", str(path)))
    assert str(path) in line and "0xe9" in line and "line 9" in line and "UTF-8" in line


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    """data_dir pointing at a file (or below one) is a user error naming it, for check-config and serve."""
    (tmp_path / "notes.txt").write_text("x")
    for where in ("notes.txt", "notes.txt/data"):
        path = write(tmp_path, BASE.replace("data_dir: ./data", f"data_dir: {where}"))
        line = one_error_line(run_cli("check-config", "--config", str(path)))
        assert "data_dir" in line and str((tmp_path / "notes.txt").resolve()) in line and "line 3" in line
    assert one_error_line(run_cli("serve", "--config", str(path), timeout=20)) == line


def test_unresolvable_host_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """server.host that does not resolve (a fake resolver: no DNS in tests) exits 1 naming it."""

    def no_such_host(host: str, *args: object, **kwargs: object) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    path = write(tmp_path, BASE.replace("  port: 7979\n", "  port: 7979\n  host: foo.invalid\n"))
    assert main(["check-config", "--config", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "server.host 'foo.invalid' does not resolve" in err[0] and "line 3" in err[0]
    assert load_config(write(tmp_path, BASE.replace("  port: 7979\n", "  host: 0.0.0.0\n"))).server.host


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    """A billion-laughs document of anchors and aliases is refused in about a second, not expanded."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = write(tmp_path, BASE + "x-bomb:\n" + "".join(f"  {line}\n" for line in lines))
    started = time.monotonic()
    line = one_error_line(run_cli("check-config", "--config", str(path), limit_memory=True, timeout=30))
    assert time.monotonic() - started < 15
    assert "alias" in line and "line" in line


def test_deep_yaml_nesting_is_a_user_error(tmp_path: Path) -> None:
    """Thousands of nested flow lists are refused with a message, not a RecursionError."""
    message = error_of(tmp_path, BASE + "jobs: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested" in message and "line 9" in message


NUMBERS = [
    ("jobs:\n  timeout_seconds: -1\n", "jobs.timeout_seconds: must be greater than 0, got -1.0 (line 10)"),
    ("jobs:\n  timeout_seconds: .nan\n", "jobs.timeout_seconds: must be a finite number, got nan (line 10)"),
    ("jobs:\n  grace_seconds: .inf\n", "jobs.grace_seconds: must be a finite number, got inf (line 10)"),
    ("jobs:\n  prune_completed_days: -3\n", "jobs.prune_completed_days: must be at least 0, got -3.0"),
    ("jobs:\n  max_retries: 100000\n", "jobs.max_retries: must be between 0 and 100, got 100000"),
    ("watcher:\n  poll_interval: 0\n", "watcher.poll_interval: must be greater than 0, got 0.0"),
    ("watcher:\n  quiet_seconds: -0.5\n", "watcher.quiet_seconds: must be at least 0, got -0.5"),
    ("watcher:\n  missing_grace_days: .nan\n", "watcher.missing_grace_days: must be a finite number"),
    ("playback:\n  expire_hours: -1\n", "playback.expire_hours: must be greater than 0"),
    ("artwork:\n  max_asset_mb: 0\n", "artwork.max_asset_mb: must be greater than 0"),
    ("artwork:\n  extrafanart: -2\n", "artwork.extrafanart: must be between 0 and 100, got -2"),
    ("artwork:\n  gc_grace_days: -1\n", "artwork.gc_grace_days: must be at least 0"),
    ("providers:\n  tmdb:\n    ttl_days: -1\n", "providers.tmdb.ttl_days: must be at least 0"),
    ("players:\n  - {name: k, type: kodi, url: 'http://127.0.0.1:8080', ws_port: 0}\n",
     "players[0].ws_port: must be between 1 and 65535, got 0"),
]


@pytest.mark.parametrize(("extra", "expected"), NUMBERS, ids=[e.split(":")[0] for _, e in NUMBERS])
def test_numbers_out_of_range_are_refused(tmp_path: Path, extra: str, expected: str) -> None:
    """Every numeric key is checked: finite, and within the range its meaning allows."""
    assert expected in error_of(tmp_path, BASE + extra)


def test_check_config_lists_every_error_at_once(tmp_path: Path) -> None:
    """Several mistakes in different places are all reported, one line each, exit 1."""
    text = BASE.replace("port: 7979", "port: 0").replace("kind: movies", "kind: films") + (
        "jobs:\n  timeout_seconds: -5\n  wokers: 2\nplayers:\n  - {name: k, type: kodi, url: kodi.local}\n")
    proc = run_cli("check-config", "--config", str(write(tmp_path, text)))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    expected = ["server.port: must be between 1 and 65535", "libraries[0].kind: must be 'movies' or 'series'",
                "jobs.timeout_seconds: must be greater than 0", "jobs.wokers: unknown key",
                "players[0].url: must be an http:// or https:// URL"]
    assert len(lines) == len(expected), proc.stderr
    for line, want in zip(lines, expected, strict=True):
        assert line.startswith("metarr-agent: error: ") and want in line, proc.stderr


# ---------------------------------------------------------------- secrets (issue 11, item 16)


PLAYER = "players:\n  - name: k\n    type: kodi\n    url: {url}\n    password: {password}\n"


@pytest.mark.parametrize(("where", "text", "key"), [
    ("server key", BASE.replace("  port: 7979\n", "  port: 7979\n  api_key: abc\n"), "server.api_key"),
    ("player password", BASE + PLAYER.format(url="http://127.0.0.1:8080", password="ab1"), "players[0].password"),
    ("url password", BASE + PLAYER.format(url="http://kodi:xy@127.0.0.1:8080", password="long-enough"),
     "players[0].url"),
    ("tmdb key", BASE + "providers:\n  tmdb:\n    api_key: 'no'\n", "providers.tmdb.api_key"),
])
def test_short_secrets_are_refused(tmp_path: Path, where: str, text: str, key: str) -> None:
    """A secret under 4 characters cannot be told apart from ordinary log text, so it is refused by name."""
    line = one_error_line(run_cli("check-config", "--config", str(write(tmp_path, text))))
    assert key in line and "at least 4 characters" in line


def test_check_config_masks_credentials_in_player_urls(tmp_path: Path) -> None:
    """user:password@ inside a player URL is masked in check-config's output."""
    text = BASE + PLAYER.format(url="http://kodi:kodi-pw-9@127.0.0.1:8080/jsonrpc", password="other-pw-1")
    proc = run_cli("check-config", "--config", str(write(tmp_path, text)))
    assert proc.returncode == 0, proc.stderr
    assert "kodi-pw-9" not in proc.stdout and "other-pw-1" not in proc.stdout
    assert yaml.safe_load(proc.stdout)["players"][0]["url"] == "http://kodi:********@127.0.0.1:8080/jsonrpc"


def test_debug_log_shows_no_secret(tmp_path: Path) -> None:
    """serve at log_level debug: neither the config's secrets nor URL credentials reach the log."""
    port, dead = free_port(), free_port()
    text = (BASE.replace("port: 7979", f"port: {port}\n  api_key: server-key-42")
            + "log_level: debug\nproviders:\n  tmdb:\n    api_key: tmdb-key-42\n    base_url: http://127.0.0.1:9/3\n"
            + PLAYER.format(url=f"http://kodi:url-pw-42@127.0.0.1:{dead}/jsonrpc", password="player-pw-42"))
    log = tmp_path / "serve.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "agent", "serve", "--config", str(write(tmp_path, text))],
                                cwd=REPO, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 20
            while "cannot reach Kodi" not in log.read_text(errors="replace"):
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
                time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    out = log.read_text(errors="replace")
    assert "DEBUG" in out and "kodi:********@127.0.0.1" in out
    for secret in ("server-key-42", "tmdb-key-42", "url-pw-42", "player-pw-42"):
        assert secret not in out, secret


def test_log_formatter_masks_values_by_position() -> None:
    """Known secrets anywhere, and any URL password or ?apikey= / &token= value, are masked in a log line."""
    import logging

    from agent.cli import RedactingFormatter

    record = logging.LogRecord("agent", logging.INFO, __file__, 1,
                               "GET http://u:pw@nas:8096/x?apikey=k1&token=t2 with key secret-key-1 failed",
                               None, None)
    line = RedactingFormatter(["secret-key-1"]).format(record)
    assert "pw@" not in line and "k1" not in line and "t2" not in line and "secret-key-1" not in line
    assert "http://u:********@nas:8096/x?apikey=********&token=******** with key ******** failed" in line
