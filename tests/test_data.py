"""Tests for tfbert.data: loaders, cleaning, splits, labels, the demo sample.

Uses only the tiny fixtures in tests/fixtures/data and files made in tmp_path;
never the real data sets.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfbert import data
from tfbert.data import imdb as imdb_module
from tfbert.errors import ConfigError, DataError

FIXTURES = Path(__file__).parent / "fixtures" / "data"
IMDB_TINY = FIXTURES / "imdb_tiny"


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    """Keeps extracted archives out of the user's cache."""
    monkeypatch.setenv("TFBERT_CACHE", str(tmp_path / "cache"))


def _gzip_copy(source: Path, target: Path) -> Path:
    target.write_bytes(gzip.compress(source.read_bytes()))
    return target


def _imdb_archive(tmp_path: Path) -> Path:
    """A tiny aclImdb_v1.tar.gz, with an unsup/ file that must be skipped."""
    archive = tmp_path / "aclImdb_v1.tar.gz"
    unsup = tmp_path / "unsup.txt"
    unsup.write_text("unlabelled", encoding="utf-8")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(IMDB_TINY / "aclImdb", arcname="aclImdb")
        tar.add(unsup, arcname="aclImdb/train/unsup/0_0.txt")
    return archive


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- NSMC -------------------------------------------------------------------


def test_nsmc_plain_keeps_quotes_and_empty_documents():
    df = data.load_nsmc(FIXTURES / "nsmc_small.txt")
    assert list(df.columns) == ["text", "label", "id"]
    assert len(df) == 7
    assert df["label"].dtype == np.int64
    assert df["label"].tolist() == [0, 1, 0, 0, 1, 0, 1]
    assert df.loc[1, "text"].startswith('"흠"...')  # quoting is off
    assert df.loc[4, "text"] == ""
    assert df.attrs["class_names"] == ["neg", "pos"]


def test_nsmc_gz_and_folder_and_dispatch(tmp_path):
    gz = _gzip_copy(FIXTURES / "nsmc_small.txt", tmp_path / "ratings_test.txt.gz")
    pd.testing.assert_frame_equal(data.load_nsmc(gz), data.load_nsmc(FIXTURES / "nsmc_small.txt"))
    assert len(data.load_nsmc(tmp_path, split="test")) == 7
    # A .txt with the NSMC header is recognised without the nsmc: prefix.
    assert data.load_dataset(str(FIXTURES / "nsmc_small.txt"))["text"].iloc[0].startswith("아")
    assert len(data.load_dataset(f"nsmc:{gz}")) == 7


def test_nsmc_wrong_header(tmp_path):
    path = _write(tmp_path / "n.txt", "id\ttext\tlabel\n1\thi\t0\n")
    with pytest.raises(DataError, match="NSMC header.*columns found: id, text, label"):
        data.load_nsmc(path)


def test_nsmc_extra_tab_names_line(tmp_path):
    path = _write(tmp_path / "n.txt", "id\tdocument\tlabel\n1\tok\t0\n2\tbad\tdoc\t1\n")
    with pytest.raises(DataError, match=r"line 3 of .*n\.txt has 4 fields, the header has 3"):
        data.load_nsmc(path)


# --- tables -----------------------------------------------------------------


def test_csv_with_named_columns():
    df = data.load_table(FIXTURES / "reviews.csv", text_column="review", label_column="sentiment")
    assert list(df.columns) == ["text", "label", "id"]
    assert df.loc[0, "text"] == "Great film, would watch again"
    assert df.loc[2, "text"] == "NA"  # a text is never turned into NaN
    assert df.loc[3, "text"] == 'She said "wow" at the end'
    assert df["label"].tolist() == ["pos", "neg", "neg", "pos", "neg", "pos"]


def test_tsv_plain_and_gz_and_int_labels(tmp_path):
    plain = data.load_table(FIXTURES / "reviews.tsv")
    assert list(plain.columns) == ["text", "label", "source"]
    assert plain["label"].dtype == np.int64
    assert plain.loc[2, "text"] == 'She said "wow" at the end'
    gz = _gzip_copy(FIXTURES / "reviews.tsv", tmp_path / "reviews.tsv.gz")
    pd.testing.assert_frame_equal(data.load_table(gz), plain)
    pd.testing.assert_frame_equal(data.load_dataset(str(gz)), plain)


def test_jsonl_plain_gz_and_fmt(tmp_path):
    df = data.load_table(FIXTURES / "reviews.jsonl")
    assert df["text"].tolist() == ["Great film", "Terrible acting", "Loved it", "Not for me"]
    assert df["label"].tolist() == ["pos", "neg", "pos", "neg"]
    gz = _gzip_copy(FIXTURES / "reviews.jsonl", tmp_path / "data.jsonl.gz")
    pd.testing.assert_frame_equal(data.load_table(gz), df)
    renamed = shutil.copy(FIXTURES / "reviews.jsonl", tmp_path / "reviews.data")
    pd.testing.assert_frame_equal(data.load_table(renamed, fmt="jsonl"), df)


def test_jsonl_numeric_labels_and_null_text(tmp_path):
    path = _write(
        tmp_path / "d.jsonl",
        '{"text": "a", "label": 1}\n{"text": null, "label": 0.0}\n{"text": 5, "label": "1"}\n',
    )
    df = data.load_table(path)
    assert df["label"].tolist() == [1, 0, 1]
    assert df["text"].tolist() == ["a", "", "5"]


def test_unlabelled_table(tmp_path):
    path = _write(tmp_path / "p.csv", "text\nfirst\nsecond\n")
    df = data.load_table(path, label_column=None)
    assert list(df.columns) == ["text"]
    assert len(df) == 2


def test_bom_header_is_read(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("text,label\nhi,1\nho,0\n".encode("utf-8-sig"))
    assert list(data.load_table(path).columns) == ["text", "label"]


# --- folders and IMDB ---------------------------------------------------------


def test_class_folders():
    df = data.load_class_folders(FIXTURES / "class_folders")
    assert df["label"].tolist() == ["negative"] * 3 + ["neutral"] + ["positive"] * 2
    assert df["file"].tolist()[:3] == ["negative/1.txt", "negative/2.txt", "negative/10.txt"]
    assert "ignored" not in df["text"].tolist()  # hidden file skipped
    # A folder without IMDB layout or split files is read as class folders.
    pd.testing.assert_frame_equal(data.load_dataset(str(FIXTURES / "class_folders")), df)


def test_imdb_folder_layouts():
    df = data.load_imdb(IMDB_TINY)
    assert df["label"].tolist() == [0, 0, 1, 1, 1]
    assert df["rating"].tolist() == [1, 2, 9, 10, 8]  # natural file order
    assert df.loc[2, "text"].startswith("A wonderful little film.")
    assert df.attrs["class_names"] == ["neg", "pos"]
    test = data.load_imdb(IMDB_TINY / "aclImdb", split="test")  # aclImdb itself
    assert test["file"].tolist() == ["test/neg/0_3.txt", "test/pos/0_10.txt"]
    assert len(data.load_dataset(str(IMDB_TINY), split="test")) == 2
    assert len(data.load_dataset(f"imdb:{IMDB_TINY}")) == 5


def test_imdb_archive_extracted_once(tmp_path, monkeypatch):
    archive = _imdb_archive(tmp_path)
    first = data.load_dataset(f"imdb:{archive}")
    assert len(first) == 5  # unsup/ is not a class
    extracted = list((tmp_path / "cache" / "imdb").iterdir())
    assert len(extracted) == 1 and (extracted[0] / ".complete").exists()

    def no_extraction(*args, **kwargs):
        raise AssertionError("the archive was extracted again")

    monkeypatch.setattr(imdb_module.tarfile, "open", no_extraction)
    pd.testing.assert_frame_equal(data.load_imdb(archive, split="train"), first)
    assert len(data.load_imdb(archive, split="test")) == 2


def test_imdb_download_path_uses_get_file(tmp_path, monkeypatch):
    # Stands in for tf_keras so the download path runs offline and without TF.
    archive = _imdb_archive(tmp_path)
    calls = []

    def get_file(fname, origin, cache_dir, cache_subdir):
        calls.append((fname, origin))
        return str(archive)

    package = types.ModuleType("tf_keras")
    package.__path__ = []
    utils = types.ModuleType("tf_keras.utils")
    utils.get_file = get_file
    package.utils = utils
    monkeypatch.setitem(sys.modules, "tf_keras", package)
    monkeypatch.setitem(sys.modules, "tf_keras.utils", utils)
    assert len(data.load_dataset("imdb", split="test")) == 2
    assert calls == [("aclImdb_v1.tar.gz", data.IMDB_URL)]


def test_imdb_errors(tmp_path):
    with pytest.raises(DataError, match="unknown IMDB split 'dev'"):
        data.load_imdb(IMDB_TINY, split="dev")
    with pytest.raises(DataError, match="does not have the IMDB layout"):
        data.load_imdb(FIXTURES / "class_folders")
    with pytest.raises(DataError, match="is not a tar archive"):
        data.load_imdb(FIXTURES / "reviews.csv")
    with pytest.raises(DataError, match="IMDB data not found: .*nowhere"):
        data.load_dataset(f"imdb:{tmp_path / 'nowhere'}")


def test_folder_with_split_files(tmp_path):
    shutil.copy(FIXTURES / "reviews.tsv", tmp_path / "train.tsv")
    _gzip_copy(FIXTURES / "reviews.jsonl", tmp_path / "test.jsonl.gz")
    assert len(data.load_dataset(str(tmp_path))) == 4
    assert data.load_dataset(str(tmp_path), split="test")["label"].tolist()[0] == "pos"


# --- demo sample --------------------------------------------------------------


def test_demo_sample_is_shipped_and_balanced():
    test = data.load_demo("test")
    assert list(test.columns) == ["text", "label"]
    assert len(test) == 1000
    assert test["label"].value_counts().to_dict() == {0: 500, 1: 500}
    assert test["text"].str.len().max() <= 1200
    assert test.attrs["class_names"] == ["neg", "pos"]
    with pytest.raises(DataError, match="unknown demo split"):
        data.load_demo("valid")


# --- error cases ----------------------------------------------------------------


def test_missing_file_names_path(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=r"data not found: .*nope\.csv"):
        data.load_dataset(str(missing))
    with pytest.raises(DataError, match=r"data file not found: .*nope\.csv"):
        data.load_table(missing)


def test_missing_column_lists_columns_found():
    with pytest.raises(DataError) as error:
        data.load_table(FIXTURES / "reviews.csv")
    message = str(error.value)
    assert "column 'text' not found" in message
    assert "columns found: id, review, sentiment" in message
    assert "text_column=NAME" in message
    assert "\n" not in message
    with pytest.raises(DataError, match="column 'label' not found.*columns found: id, review"):
        data.load_table(FIXTURES / "reviews.csv", text_column="review")


def test_csv_wrong_field_count_names_line(tmp_path):
    path = _write(tmp_path / "bad.csv", "text,label\ngood,1\nalso good,0\nbad, very bad,1\n")
    with pytest.raises(DataError, match=r"line 4 of .*bad\.csv has 3 fields, the header has 2"):
        data.load_table(path)


def test_unclosed_quote_names_line(tmp_path):
    path = _write(tmp_path / "q.csv", 'text,label\nfine,1\n"never closed,0\nmore,1\n')
    with pytest.raises(DataError, match="unclosed quote .* line 3"):
        data.load_table(path)


def test_bad_json_names_line(tmp_path):
    path = _write(tmp_path / "bad.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b", label: 0}\n')
    with pytest.raises(DataError, match=r"invalid JSON on line 3 of .*bad\.jsonl"):
        data.load_table(path)
    not_object = _write(tmp_path / "list.jsonl", '{"text": "a", "label": 1}\n[1, 2]\n')
    with pytest.raises(DataError, match="line 2 .* is a JSON list, expected an object"):
        data.load_table(not_object)


@pytest.mark.parametrize("content", ["", "text,label\n"])
def test_empty_file(tmp_path, content):
    path = _write(tmp_path / "empty.csv", content)
    with pytest.raises(DataError, match="empty|no data rows"):
        data.load_dataset(str(path))


def test_empty_jsonl(tmp_path):
    with pytest.raises(DataError, match="is empty"):
        data.load_table(_write(tmp_path / "e.jsonl", "\n\n"))


def test_missing_label_in_file_names_line(tmp_path):
    path = _write(tmp_path / "nan.csv", "text,label\na,1\nb,\nc,NaN\nd,0\n")
    with pytest.raises(DataError, match=r"missing label on line 3 of .*nan\.csv \(column 'label', 2 row"):
        data.load_table(path)
    jsonl = _write(tmp_path / "nan.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n')
    with pytest.raises(DataError, match="missing label on line 2"):
        data.load_table(jsonl)


def test_unknown_format_and_bad_gzip(tmp_path):
    with pytest.raises(DataError, match="cannot tell the format"):
        data.load_table(_write(tmp_path / "data.xlsx", "x"))
    with pytest.raises(DataError, match="unknown data format 'parquet'"):
        data.load_table(FIXTURES / "reviews.csv", fmt="parquet")
    with pytest.raises(DataError, match="cannot read"):
        data.load_table(_write(tmp_path / "fake.csv.gz", "text,label\n"))
    with pytest.raises(DataError, match="cannot tell the format"):
        data.load_dataset(str(_write(tmp_path / "notes.txt", "just words\n")))


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        data.load_table(path)


def test_class_folder_errors(tmp_path):
    with pytest.raises(DataError, match="has no class folders"):
        data.load_class_folders(tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DataError, match="class folder .*empty_class has no files"):
        data.load_class_folders(tmp_path)


# --- cleaning and summary ---------------------------------------------------------


def test_clean_counts():
    df = pd.DataFrame(
        {
            "text": ["good", "  ", "", "good ", "bad", "bad", "fine"],
            "label": [1, 0, 1, 0, 0, 0, 1],
        }
    )
    df.attrs["class_names"] = ["neg", "pos"]
    cleaned, report = data.clean(df)
    assert cleaned["text"].tolist() == ["good", "bad", "fine"]
    assert report.to_dict() == {
        "rows_in": 7, "empty": 2, "duplicates": 2, "conflicting": 1, "rows_out": 3,
    }
    assert cleaned.attrs["class_names"] == ["neg", "pos"]
    assert "removed 2 empty, 2 duplicate" in str(report)
    kept, report = data.clean(df, drop_empty=False, drop_duplicates=False)
    assert len(kept) == 7 and report.rows_out == 7


def test_clean_nsmc_fixture():
    cleaned, report = data.clean(data.load_nsmc(FIXTURES / "nsmc_small.txt"))
    assert (report.empty, report.duplicates, report.rows_out) == (1, 1, 5)


def test_summarize_chars_tokens_and_json(tmp_path, capsys):
    df = pd.DataFrame({"text": ["ab", "abcd", "abcdef", "a" * 8], "label": [0, 1, 1, 1]})
    df.attrs["class_names"] = ["neg", "pos"]

    def tokenize(texts):
        return [[1] * (len(t) * 50) for t in texts]

    summary = data.summarize(df, tokenizer=tokenize, verbose=True)
    assert summary.rows == 4
    assert summary.classes == [
        {"label": 0, "name": "neg", "count": 1, "fraction": 0.25},
        {"label": 1, "name": "pos", "count": 3, "fraction": 0.75},
    ]
    assert summary.chars["mean"] == 5.0 and summary.chars["median"] == 5.0
    assert summary.chars["max"] == 8
    assert summary.tokens["max"] == 400
    assert summary.over_window == {"64": 1.0, "128": 0.75, "256": 0.5, "512": 0.0}
    assert "neg" in capsys.readouterr().out
    summary.to_json(tmp_path / "s.json")
    assert json.loads((tmp_path / "s.json").read_text())["chars"]["p95"] == summary.chars["p95"]
    no_tokens = data.summarize(df)
    assert no_tokens.tokens is None and "tokens" not in str(no_tokens)


# --- splits -------------------------------------------------------------------------


def test_stratified_split_proportions():
    df = pd.DataFrame({"text": [f"t{i}" for i in range(200)], "label": ["a"] * 150 + ["b"] * 50})
    train, valid = data.train_valid_split(df, valid_fraction=0.2, seed=1)
    assert len(train) == 160 and len(valid) == 40
    assert valid["label"].value_counts().to_dict() == {"a": 30, "b": 10}
    assert set(train["text"]).isdisjoint(valid["text"])
    again, _ = data.train_valid_split(df, valid_fraction=0.2, seed=1)
    pd.testing.assert_frame_equal(train, again)


def test_split_errors():
    two = pd.DataFrame({"text": list("abcd"), "label": [0, 0, 1, 1]})
    with pytest.raises(ConfigError, match="valid_fraction must be between 0 and 1"):
        data.train_valid_split(two, valid_fraction=1.5)
    with pytest.raises(DataError, match="single class"):
        data.train_valid_split(two.assign(label=0))
    with pytest.raises(DataError, match="class 2 has only 1 example"):
        data.train_valid_split(pd.concat([two, pd.DataFrame({"text": ["e"], "label": [2]})]))
    with pytest.raises(DataError, match="each part needs at least one row per class"):
        data.train_valid_split(two, valid_fraction=0.1)


# --- labels -------------------------------------------------------------------------


def test_encode_int_and_string_labels():
    ids, names = data.encode_labels(pd.Series([1, 0, 2, 1]))
    assert ids.dtype == np.int32 and ids.tolist() == [1, 0, 2, 1] and names == ["0", "1", "2"]
    ids, names = data.encode_labels(["pos", "neg", "pos"])
    assert ids.tolist() == [1, 0, 1] and names == ["neg", "pos"]
    ids, names = data.encode_labels(["pos", "pos"], class_names=["neg", "pos"])
    assert ids.tolist() == [1, 1]
    ids, names = data.encode_labels(np.array([0.0, 1.0]), class_names=("neg", "pos"))
    assert ids.tolist() == [0, 1] and names == ["neg", "pos"]
    # Integers that are not ids map in sorted order and are matched by name later.
    ids, names = data.encode_labels([-1, 1, 1])
    assert ids.tolist() == [0, 1, 1] and names == ["-1", "1"]
    assert data.encode_labels([1, -1], class_names=names)[0].tolist() == [1, 0]
    assert data.decode_labels(np.array([1, 0]), ["neg", "pos"]) == ["pos", "neg"]


@pytest.mark.parametrize(
    ("values", "class_names", "pattern"),
    [
        (["pos", "pos"], None, r"single class \('pos'\).*at least 2 classes"),
        (["pos", "meh"], ["neg", "pos"], r"label 'meh' at position 1 .* not one of the 2 classes neg, pos"),
        (pd.Series([0, None, 1]), None, r"missing label at row 1 \(1 missing"),
        ([1.0, float("nan")], None, "missing label at position 1"),
        ([0, -1], ["a", "b"], r"label id -1 at position 1 \(0-based\) is outside 0\.\.1"),
        ([0, 3], ["a", "b", "c"], r"label id 3 .* outside 0\.\.2"),
        ([0, "pos"], None, "mix numbers and names"),
        ([0.5, 1], None, "not a class"),
        ([0, 1], ["only"], "at least 2 classes"),
        ([0, 1], ["a", "a"], "repeats a"),
        ([], None, "no labels"),
    ],
)
def test_encode_label_errors(values, class_names, pattern):
    with pytest.raises(DataError, match=pattern):
        data.encode_labels(values, class_names=class_names)


def test_check_labels_in_range():
    data.check_labels_in_range(np.array([0, 1, 1], dtype=np.int32), 2)
    with pytest.raises(DataError, match=r"label id 2 at position 1 is outside 0\.\.1 for a 2-class model"):
        data.check_labels_in_range([0, 2, -1], 2)
    with pytest.raises(DataError, match="expected integers"):
        data.check_labels_in_range(np.array([0.0, 1.0]), 2)


def test_every_error_is_one_line(tmp_path):
    cases = [
        lambda: data.load_dataset(str(tmp_path / "missing.tsv")),
        lambda: data.load_table(FIXTURES / "reviews.csv"),
        lambda: data.encode_labels([1, 1]),
        lambda: data.load_table(_write(tmp_path / "e.csv", "")),
    ]
    for case in cases:
        with pytest.raises(DataError) as error:
            case()
        assert "\n" not in str(error.value)
