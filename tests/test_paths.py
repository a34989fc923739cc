"""Tests for agent.paths: mapping both ways, path styles, and the write-guard."""

from __future__ import annotations

import os
import random
import string
from pathlib import Path

import pytest

from agent.errors import ConfigError, PathError
from agent.paths import Mapping, PathMapper, join_remote, parse_path, resolve_inside, validate_mapping


def test_longest_prefix_wins() -> None:
    """A deeper mapping beats a shallower one regardless of list order."""
    mapper = PathMapper([Mapping("/data", "/srv/data"), Mapping("/data/movies", "/srv/movies")])
    assert mapper.to_local("/data/movies/X (1999)/X.mkv") == "/srv/movies/X (1999)/X.mkv"
    assert mapper.to_local("/data/tv/Show/s.mkv") == "/srv/data/tv/Show/s.mkv"
    reversed_order = PathMapper([Mapping("/data/movies", "/srv/movies"), Mapping("/data", "/srv/data")])
    assert reversed_order.to_local("/data/movies/a.mkv") == "/srv/movies/a.mkv"


def test_whole_segments_only() -> None:
    """`/movies` covers `/movies/x` and `/movies` itself but never `/movies2/x`."""
    mapper = PathMapper([{"remote": "/movies", "local": "/srv/media/movies"}])
    assert mapper.to_local("/movies") == "/srv/media/movies"
    assert mapper.to_local("/movies/a.mkv") == "/srv/media/movies/a.mkv"
    with pytest.raises(PathError, match=r"no path mapping covers '/movies2/a\.mkv'"):
        mapper.to_local("/movies2/a.mkv")


def test_error_names_path_and_mappings() -> None:
    """The error says which path failed and which mappings were tried, in the direction used."""
    mapper = PathMapper([{"remote": "/movies", "local": "/srv/media/movies"}], name="radarr")
    with pytest.raises(PathError) as err:
        mapper.to_local("/data/x.mkv")
    assert err.value.message == (
        "radarr: no path mapping covers '/data/x.mkv' (tried: /movies -> /srv/media/movies)"
    )
    with pytest.raises(PathError) as err2:
        mapper.to_remote("/elsewhere/x.mkv")
    assert "(tried: /srv/media/movies -> /movies)" in err2.value.message


def test_trailing_slashes_ignored_in_mappings_and_kept_on_input() -> None:
    """A mapping's trailing slash does not matter; a folder input keeps its trailing slash."""
    for remote, local in [("/movies/", "/srv/m/"), ("/movies", "/srv/m"), ("/movies//", "/srv/m")]:
        mapper = PathMapper([Mapping(remote, local)])
        assert mapper.to_local("/movies/X/a.mkv") == "/srv/m/X/a.mkv"
        assert mapper.to_local("/movies/X/") == "/srv/m/X/"
        assert mapper.to_local("/movies") == "/srv/m"
        assert mapper.to_remote("/srv/m/X/") == "/movies/X/"


def test_kodi_smb_remote() -> None:
    """A Kodi smb:// remote gets forward slashes and a folder keeps its trailing slash."""
    mapper = PathMapper([{"remote": "smb://nas/movies/", "local": "/srv/media/movies"}], name="kodi")
    assert mapper.to_remote("/srv/media/movies/X (1999)/") == "smb://nas/movies/X (1999)/"
    assert mapper.to_remote("/srv/media/movies/X (1999)/X.mkv") == "smb://nas/movies/X (1999)/X.mkv"
    assert mapper.to_local("smb://nas/movies/X (1999)/X.mkv") == "/srv/media/movies/X (1999)/X.mkv"
    assert mapper.to_local("SMB://NAS/movies/a.mkv") == "/srv/media/movies/a.mkv"
    with pytest.raises(PathError):
        mapper.to_local("smb://nas/Movies/a.mkv")
    with pytest.raises(PathError):
        mapper.to_local("nfs://nas/movies/a.mkv")


def test_nfs_and_file_urls() -> None:
    """Other URL schemes work the same way; an empty host (file:///) survives."""
    mapper = PathMapper([Mapping("nfs://10.0.0.2/export/tv", "/srv/tv")])
    assert mapper.to_remote("/srv/tv/Show/Season 01/") == "nfs://10.0.0.2/export/tv/Show/Season 01/"
    assert parse_path("file:///srv/x").render() == "file:///srv/x"


def test_windows_drive_case_insensitive_and_backslashes() -> None:
    """Windows remotes match regardless of case and either separator; results use `\\`."""
    mapper = PathMapper([Mapping("D:\\Movies", "/srv/movies")])
    assert mapper.to_local("d:\\MOVIES\\Film (2001)\\Film.mkv") == "/srv/movies/Film (2001)/Film.mkv"
    assert mapper.to_local("D:/Movies/Film/Film.mkv") == "/srv/movies/Film/Film.mkv"
    assert mapper.to_remote("/srv/movies/Film (2001)/Film.mkv") == "D:\\Movies\\Film (2001)\\Film.mkv"
    assert mapper.to_remote("/srv/movies/Film/") == "D:\\Movies\\Film\\"
    with pytest.raises(PathError):
        mapper.to_local("D:\\Movies2\\x.mkv")
    with pytest.raises(PathError):
        mapper.to_local("E:\\Movies\\x.mkv")


def test_names_are_kept_verbatim() -> None:
    """Spaces at the ends of names, brackets and non-ASCII letters pass through untouched."""
    mapper = PathMapper([Mapping("/movies", "/srv/movies")])
    assert mapper.to_local("/movies/Amélie [2001]/x .mkv ") == "/srv/movies/Amélie [2001]/x .mkv "


def test_posix_remote_is_case_sensitive() -> None:
    """Linux remotes do not fold case."""
    mapper = PathMapper([Mapping("/movies", "/srv/movies")])
    with pytest.raises(PathError):
        mapper.to_local("/Movies/x.mkv")


def test_unc_paths() -> None:
    """UNC remotes: case-insensitive server and share, backslashes out."""
    mapper = PathMapper([Mapping("\\\\nas\\media\\movies", "/srv/movies")])
    assert mapper.to_local("\\\\NAS\\Media\\Movies\\A\\a.mkv") == "/srv/movies/A/a.mkv"
    assert mapper.to_remote("/srv/movies/A/a.mkv") == "\\\\nas\\media\\movies\\A\\a.mkv"
    with pytest.raises(PathError, match="server and a share"):
        parse_path("\\\\nas")


def test_windows_local_side() -> None:
    """A Windows local side is matched case-insensitively when mapping back to a player."""
    mapper = PathMapper([Mapping("smb://nas/movies", "C:\\Media\\Movies")])
    assert mapper.to_remote("c:\\media\\movies\\X\\x.mkv") == "smb://nas/movies/X/x.mkv"
    assert mapper.to_local("smb://nas/movies/X/x.mkv") == "C:\\Media\\Movies\\X\\x.mkv"


def test_dotdot_is_applied_before_matching() -> None:
    """`..` cannot smuggle a path out of a mapping's prefix."""
    mapper = PathMapper([Mapping("/movies", "/srv/movies")])
    assert mapper.to_local("/movies/a/../b.mkv") == "/srv/movies/b.mkv"
    with pytest.raises(PathError, match="no path mapping covers"):
        mapper.to_local("/movies/../etc/passwd")
    with pytest.raises(PathError, match="climbs above its root"):
        mapper.to_local("/movies/../../../etc/passwd")


def test_relative_and_empty_paths_are_errors() -> None:
    """Relative or empty inputs raise PathError with a hint instead of crashing."""
    mapper = PathMapper([Mapping("/movies", "/srv/movies")], name="sonarr")
    with pytest.raises(PathError, match=r"sonarr: path 'movies/x\.mkv' is not absolute"):
        mapper.to_local("movies/x.mkv")
    with pytest.raises(PathError, match="empty path"):
        mapper.to_local("")


def test_identity_when_empty() -> None:
    """No mappings: the sender sees our paths (only normalised); the flag can switch that off."""
    mapper = PathMapper([])
    assert mapper.identity
    assert mapper.to_local("/srv/movies//X/./x.mkv") == "/srv/movies/X/x.mkv"
    assert mapper.to_remote("/srv/movies/X/") == "/srv/movies/X/"
    strict = PathMapper([], name="jellyfin", identity_if_empty=False)
    with pytest.raises(PathError, match=r"jellyfin: no path mapping covers '/srv/x' \(tried: none\)"):
        strict.to_local("/srv/x")
    assert not strict.covers_remote("/srv/x")


def test_validate_mapping_messages() -> None:
    """Config validation gets a message for each kind of bad mapping and None for good ones."""
    assert validate_mapping("/movies", "/srv/movies") is None
    assert validate_mapping("/srv/movies", "/srv/movies") is None
    assert validate_mapping("smb://nas/movies/", "/srv/movies") is None
    assert validate_mapping("D:\\Movies", "/srv/movies") is None
    assert validate_mapping("", "/srv") == "remote path is empty"
    assert validate_mapping("/movies", "  ") == "local path is empty"
    assert "not absolute" in (validate_mapping("/movies", "srv/movies") or "")
    assert "remote path 'movies' is not absolute" in (validate_mapping("movies", "/srv") or "")
    assert "is a URL" in (validate_mapping("/movies", "smb://nas/x") or "")
    assert validate_mapping(None, "/srv") == "remote must be a string, got NoneType"


def test_constructor_rejects_bad_mappings() -> None:
    """Building a mapper from bad config names the entry and the problem."""
    with pytest.raises(ConfigError, match=r"radarr path_mappings\[1\]: local path is empty"):
        PathMapper([Mapping("/a", "/b"), {"remote": "/m", "local": ""}], name="radarr")
    with pytest.raises(ConfigError, match="unknown key 'lcoal'"):
        PathMapper([{"remote": "/m", "lcoal": "/x"}])
    with pytest.raises(ConfigError, match="got list"):
        PathMapper([["/m", "/x"]])  # type: ignore[list-item]


def test_join_remote_uses_the_folder_style() -> None:
    """Radarr's folderPath + relativePath keeps the sender's separators."""
    assert join_remote("C:\\testpath", "Season 01/x.mkv") == "C:\\testpath\\Season 01\\x.mkv"
    assert join_remote("/tv/Show/", "Season 01/x.mkv") == "/tv/Show/Season 01/x.mkv"
    with pytest.raises(PathError):
        join_remote("/tv/Show", "../../etc/passwd")


def _segment(rng: random.Random) -> str:
    """A random file-name segment with spaces, dots, brackets and non-ASCII letters."""
    alphabet = string.ascii_letters + string.digits + " ._-()[]'éü"
    while True:
        seg = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))).strip()
        if seg not in ("", ".", ".."):
            return seg


REMOTE_ROOTS = [
    "/movies",
    "/data/tv",
    "smb://nas/media/",
    "nfs://10.0.0.2/export",
    "D:\\Movies",
    "\\\\nas\\share",
]


def test_round_trip_property() -> None:
    """For random covered paths, to_remote(to_local(p)) == p and the result starts with the local root."""
    rng = random.Random(20261124)
    mappings = [Mapping(r, f"/srv/media/{i}") for i, r in enumerate(REMOTE_ROOTS)]
    mapper = PathMapper(mappings)
    for _ in range(500):
        i = rng.randrange(len(REMOTE_ROOTS))
        root = parse_path(REMOTE_ROOTS[i])
        segs = [_segment(rng) for _ in range(rng.randint(0, 5))]
        trailing = bool(segs) and rng.random() < 0.3
        remote = root.render((*root.segments, *segs), trailing=trailing)
        local = mapper.to_local(remote)
        assert local.startswith(f"/srv/media/{i}")
        assert local.endswith("/") == trailing
        assert mapper.to_remote(local) == remote
        if root.case_insensitive:
            assert mapper.to_local(remote.swapcase()).casefold() == local.casefold()


def test_segment_boundary_property() -> None:
    """A random sibling that shares a textual prefix with a mapping is never covered by it."""
    rng = random.Random(7)
    for _ in range(200):
        base = "/" + "/".join(_segment(rng) for _ in range(rng.randint(1, 3)))
        mapper = PathMapper([Mapping(base, "/srv/x")])
        sibling = base + _segment(rng).replace("/", "")
        with pytest.raises(PathError):
            mapper.to_local(sibling + "/file.mkv")
        assert mapper.to_local(base + "/file.mkv") == "/srv/x/file.mkv"


def test_resolve_inside_accepts_paths_in_roots(tmp_path: Path) -> None:
    """Paths inside a root, including not-yet-existing files, resolve and pass."""
    lib = tmp_path / "lib"
    (lib / "Movie").mkdir(parents=True)
    expected = lib.resolve() / "Movie" / "movie.nfo"
    assert resolve_inside(str(lib / "Movie" / "movie.nfo"), [str(lib)]) == expected
    assert resolve_inside(lib, [tmp_path / "other", lib]) == lib.resolve()


def test_resolve_inside_rejects_dotdot_escape(tmp_path: Path) -> None:
    """`..` that leaves the root is rejected with the path and roots in the message."""
    lib = tmp_path / "lib"
    lib.mkdir()
    with pytest.raises(PathError) as err:
        resolve_inside(f"{lib}/../secret.txt", [str(lib)])
    assert "../secret.txt" in err.value.message and str(lib) in err.value.message
    with pytest.raises(PathError):
        resolve_inside(f"{lib}2/x", [str(lib)])


def test_resolve_inside_rejects_symlink_escape(tmp_path: Path) -> None:
    """A symlink inside the library pointing outside it does not open a way out."""
    lib = tmp_path / "lib"
    outside = tmp_path / "outside"
    lib.mkdir()
    outside.mkdir()
    os.symlink(outside, lib / "link")
    with pytest.raises(PathError, match="outside every allowed folder"):
        resolve_inside(str(lib / "link" / "poster.jpg"), [str(lib)])


def test_resolve_inside_follows_symlinked_root(tmp_path: Path) -> None:
    """A root that is itself a symlink still contains its own files."""
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "alias")
    assert resolve_inside(str(tmp_path / "alias" / "a.nfo"), [str(tmp_path / "alias")]) == real / "a.nfo"
    assert resolve_inside(str(real / "a.nfo"), [str(tmp_path / "alias")]) == real / "a.nfo"


def test_resolve_inside_rejects_relative_and_no_roots(tmp_path: Path) -> None:
    """Relative paths and an empty root list are refused."""
    with pytest.raises(PathError, match="not absolute"):
        resolve_inside("lib/x", [str(tmp_path)])
    with pytest.raises(PathError, match=r"\(none\)"):
        resolve_inside(str(tmp_path / "x"), [])
