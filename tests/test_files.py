"""tfbert.files: standard JSON, atomic files and folders."""

import json
import math

import numpy as np
import pytest

from tfbert.files import atomic_dir, cache_root, json_safe, read_json, write_json, write_text


def test_json_safe_turns_numpy_and_non_finite_values_into_standard_json(tmp_path):
    value = {"a": np.float32(0.5), "b": np.arange(3), "c": float("nan"), "d": (1, math.inf), 3: tmp_path}
    safe = json_safe(value)
    assert safe == {"a": 0.5, "b": [0, 1, 2], "c": None, "d": [1, None], "3": str(tmp_path)}
    path = write_json(tmp_path / "x.json", value)
    assert json.loads(path.read_text(encoding="utf-8")) == safe  # strict JSON: no NaN
    assert read_json(path) == safe and read_json(tmp_path / "missing.json") is None


def test_write_text_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    write_text(target, "one")
    write_text(target, "two")
    assert target.read_text(encoding="utf-8") == "two"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_atomic_dir_replaces_the_folder_only_when_complete(tmp_path):
    out = tmp_path / "export"
    with atomic_dir(out) as tmp:
        (tmp / "f").write_text("new")
    assert (out / "f").read_text() == "new"
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "f").write_text("half")
            raise RuntimeError("killed while writing")
    assert (out / "f").read_text() == "new"  # the earlier folder is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temporary left behind


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TFBERT_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
