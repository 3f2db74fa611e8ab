"""Unlabelled corpora (tfbert.data.corpus): streamed lines, data sets' train split, test splits refused."""

import gzip
import os
import shutil

import pytest

from tfbert.data.corpus import check_not_test_split, iter_texts
from tfbert.errors import DataError


def test_lines_gzip_tables_and_max_texts(tmp_path):
    (tmp_path / "a.txt").write_bytes("\ufeff첫 줄\n\n  둘째  \n".encode())
    with gzip.open(tmp_path / "b.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write("third\nfourth\n")
    # NSMC's .txt layout is a table: its document column is read, not whole lines
    (tmp_path / "ratings_train.txt").write_text("id\tdocument\tlabel\n1\t재밌다\t1\n2\t별로\t0\n", encoding="utf-8")
    sources = [tmp_path / "a.txt", tmp_path / "b.txt.gz", tmp_path / "ratings_train.txt"]
    assert list(iter_texts(sources)) == ["첫 줄", "둘째", "third", "fourth", "재밌다", "별로"]
    assert list(iter_texts(sources, max_texts=3)) == ["첫 줄", "둘째", "third"]


@pytest.mark.parametrize("source", ["data/ratings_test.txt", "nsmc:data/ratings_test.txt", "test.csv",
                                    "aclImdb/test/pos", "aclImdb/test/pos/1_10.txt", "imdb_test.jsonl.gz",
                                    "ratings_test2.txt", "testset.csv", "my-test-3.txt.gz"])
def test_test_splits_are_refused_in_one_line(source):
    with pytest.raises(DataError, match="looks like a test split") as err:
        check_not_test_split(source)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["test_runs/reviews.txt", "contest_reviews.txt", "latest.txt",
                                  "tests_data/train.txt"])
def test_other_names_are_read(tmp_path, name):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("좋은 영화\n", encoding="utf-8")
    assert list(iter_texts(path)) == ["좋은 영화"]


def test_a_test_file_under_another_name_is_refused(tmp_path):
    data = tmp_path / "nsmc"
    data.mkdir()
    (data / "ratings_test.txt").write_text("id\tdocument\tlabel\n1\t재밌다\t1\n", encoding="utf-8")
    (data / "linked.txt").symlink_to(data / "ratings_test.txt")
    os.link(data / "ratings_test.txt", data / "hard.txt")
    shutil.copy(data / "ratings_test.txt", data / "copied.txt")
    with pytest.raises(DataError, match="looks like a test split \\('ratings_test.txt'\\)"):
        check_not_test_split(data / "linked.txt")
    for name in ("hard.txt", "copied.txt"):
        with pytest.raises(DataError, match=f"corpus .*{name} holds the same bytes as the test split .*ratings_test"):
            list(iter_texts(data / name))
    (data / "other.txt").write_text("id\tdocument\tlabel\n1\t별로다\t0\n", encoding="utf-8")  # same size
    assert list(iter_texts(data / "other.txt")) == ["별로다"]


def test_bad_bytes_empty_and_missing_sources_are_one_line(tmp_path):
    (tmp_path / "cp949.txt").write_bytes("좋다\n".encode() + "나쁘다\n".encode("cp949"))
    with pytest.raises(DataError, match=r"line 2 of .*cp949.txt is not UTF-8 text \(byte 0x[0-9a-f]{2}\); re-save"):
        list(iter_texts(tmp_path / "cp949.txt"))
    whole = gzip.compress("".join(f"review {i} {i * 7919 % 104729}\n" for i in range(5000)).encode())
    (tmp_path / "cut.txt.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="cannot read .*cut.txt.gz after line"):
        list(iter_texts(tmp_path / "cut.txt.gz"))
    with pytest.raises(DataError, match="corpus not found"):
        list(iter_texts(tmp_path / "nope.txt"))
    with pytest.raises(DataError, match="no corpus given"):
        list(iter_texts([]))
