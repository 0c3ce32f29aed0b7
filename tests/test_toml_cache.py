"""The parsed-TOML cache (estimators/toml_cache.py): the same dict as a fresh parse, rebuilt when the file changes,
skipped when the cache cannot be read or written. Every test points XDG_CACHE_HOME at tmp_path: the real home is
never written."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from estimators import catalog as catalog_module
from estimators.errors import EstimateError
from estimators.toml_cache import cache_dir, load_toml


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    catalog_module._load.cache_clear()
    yield tmp_path / "cache" / "advisor"
    catalog_module._load.cache_clear()


def no_parser(monkeypatch):
    """From here on a parse fails the test: what is returned must come from the cache."""

    def boom(*args, **kwargs):
        raise AssertionError("tomllib.loads called: the cache was not used")

    monkeypatch.setattr(tomllib, "loads", boom)


def test_same_result_as_a_fresh_parse_and_read_back(cache_home, monkeypatch):
    fresh = tomllib.loads(catalog_module.CATALOG_PATH.read_text(encoding="utf-8"))
    assert load_toml(catalog_module.CATALOG_PATH) == fresh
    assert [p.suffix for p in cache_home.iterdir()] == [".marshal"]
    no_parser(monkeypatch)
    assert load_toml(catalog_module.CATALOG_PATH) == fresh


def test_the_catalog_is_the_same_from_the_cache(monkeypatch):
    parsed = catalog_module.catalog(), catalog_module.shorthands(), catalog_module.aliases()
    catalog_module._load.cache_clear()
    no_parser(monkeypatch)
    assert (catalog_module.catalog(), catalog_module.shorthands(), catalog_module.aliases()) == parsed


def test_a_changed_file_is_parsed_again(tmp_path, monkeypatch):
    path = tmp_path / "t.toml"
    path.write_text("a = 1\n")
    assert load_toml(path) == {"a": 1}
    path.write_text("a = 22\n")  # another size
    assert load_toml(path) == {"a": 22}
    stat = path.stat()
    path.write_text("a = 33\n")  # same size, the old mtime put back: the checksum still sees it
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load_toml(path) == {"a": 33}
    no_parser(monkeypatch)
    assert load_toml(path) == {"a": 33}  # and the rebuilt cache is used


def test_a_corrupt_cache_file_is_rebuilt(tmp_path, cache_home, monkeypatch):
    path = tmp_path / "t.toml"
    path.write_text("a = 1\n")
    load_toml(path)
    (stored,) = cache_home.iterdir()
    for junk in (b"", b"\x00garbage", stored.read_bytes()[:10]):
        stored.write_bytes(junk)
        assert load_toml(path) == {"a": 1}
    no_parser(monkeypatch)
    assert load_toml(path) == {"a": 1}


def test_an_unwritable_cache_dir_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # advisor/ cannot be made under a file
    path = tmp_path / "t.toml"
    path.write_text("a = [1, 2]\n")
    assert load_toml(path) == {"a": [1, 2]}
    assert load_toml(path) == {"a": [1, 2]}
    assert blocker.read_text() == "not a directory"
    assert list(tmp_path.glob("**/*.tmp")) == []
    assert catalog_module.catalog()  # the catalog still loads


def test_no_home_means_no_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert cache_dir() is None
    path = tmp_path / "t.toml"
    path.write_text("a = 1\n")
    assert load_toml(path) == {"a": 1}


def test_values_marshal_cannot_hold_are_parsed_every_time(tmp_path, cache_home):
    path = tmp_path / "t.toml"
    path.write_text("when = 2026-12-03\n")
    first = load_toml(path)
    assert load_toml(path) == first and str(first["when"]) == "2026-12-03"
    assert not cache_home.exists() or list(cache_home.iterdir()) == []


def test_errors_are_a_fresh_parse_s(tmp_path, monkeypatch):
    bad = tmp_path / "bad.toml"
    bad.write_text("a = = 1\n")
    with pytest.raises(tomllib.TOMLDecodeError):
        load_toml(bad)
    with pytest.raises(FileNotFoundError):
        load_toml(tmp_path / "missing.toml")
    monkeypatch.setattr(catalog_module, "CATALOG_PATH", bad)
    with pytest.raises(EstimateError, match="cannot read the model catalog"):
        catalog_module.catalog()
