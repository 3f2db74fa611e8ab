"""Fuzz tests (Hypothesis) for the table loaders and ``tfbert predict``'s reader.

Properties:

* random bytes (mixed UTF-8, cp949, latin-1, NULs, BOMs, quotes, tabs, commas,
  JSON pieces; plain, gzipped, broken gzip) in a ``.csv``/``.tsv``/``.jsonl``/
  ``.txt`` file: ``load_table``, ``load_dataset`` and ``read_texts`` return
  rows or raise tfbert's own error, whose message is one line; nothing else;
* a valid table written by pandas loads to the rows pandas reads back, plus
  the transformations tfbert documents (see ``_expected_labels``);
* ``read_texts`` gives back the lines of a UTF-8 ``.txt`` exactly;
* a missing text or label column is a one-line error that names it;
* an NSMC-style ``.txt`` (no quoting) loads through ``load_dataset`` to the
  rows pandas reads with ``quoting=QUOTE_NONE``.

The last section checks each bug the fuzzer found with a fixed example.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tfbert.data import encode_labels, load_dataset, load_table
from tfbert.errors import DataError, TfbertError
from tfbert.predict import read_texts

# TFBERT_FUZZ_EXAMPLES=5000 for a longer hunt; the default keeps the file fast.
FUZZ = settings(
    max_examples=int(os.environ.get("TFBERT_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- helpers -----------------------------------------------------------------


def _one_line(error: TfbertError) -> str:
    message = str(error)
    assert message.strip(), f"empty message from {type(error).__name__}"
    # Not only "\n": no line break of any kind (\r, \x85, \u2028, ...).
    assert len(message.splitlines()) == 1, f"message is not one line: {message!r}"
    return message


def _call(function, *args, **kwargs):
    """The result, or the TfbertError raised (checked to be one line). Any
    other exception propagates and fails the test."""
    try:
        return function(*args, **kwargs)
    except TfbertError as error:
        _one_line(error)
        return error


def _shown(name: str) -> str:
    """A column name as a one-line message shows it: non-printable
    characters escaped the way ascii() writes them."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in name)


def _check_frame(df, labelled: bool) -> None:
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns[: 2 if labelled else 1]) == (["text", "label"] if labelled else ["text"])
    assert all(isinstance(t, str) for t in df["text"].tolist())
    if labelled:
        labels = df["label"].tolist()
        assert all(isinstance(v, int) for v in labels) or all(isinstance(v, str) for v in labels)


# --- a. random bytes -------------------------------------------------------------

_TOKENS = [
    b'"', b"'", b",", b"\t", b";", b"\n", b"\r", b"\r\n", b"\x00", b" ", b"\\",
    b"\xef\xbb\xbf",  # BOM
    b"\xc2\x85", b"\xe2\x80\xa8", b"\x0b", b"\x1c",  # line breaks str.splitlines knows
    "좋아요".encode("cp949"), "café".encode("latin-1"), "좋아요".encode("utf-8"),
    b"text", b"label", b"document", b"id\tdocument\tlabel",
    b"{", b"}", b"[", b"]", b":", b'"text"', b'"label"', b'{"text": "a", "label": ',
    b"1", b"0", b"-1.0", b"1.5", b"NaN", b"NA", b"null", b"true", b"1e400",
    b"9" * 25, b"[" * 40,
]
_HEADERS = [
    b"", b"text,label\n", b"text\tlabel\n", b"id\tdocument\tlabel\n",
    b"\xef\xbb\xbftext,label\n", b'{"text": "x", "label": 1}\n', b"[",
    "text,label\n".encode("utf-16"), "text\tlabel\n좋아요\t1\n".encode("cp949"),
]
_CHUNK = st.one_of(
    st.sampled_from(_TOKENS),
    st.binary(max_size=6),
    st.text(max_size=6).map(lambda s: s.encode("utf-8", "surrogatepass")),
)
_BYTES = st.one_of(
    st.binary(max_size=120),
    st.tuples(st.sampled_from(_HEADERS), st.lists(_CHUNK, max_size=40)).map(
        lambda hc: hc[0] + b"".join(hc[1])
    ),
)
_NAMES = [
    "data.csv", "data.tsv", "data.jsonl", "data.json", "data.txt",
    "data.csv.gz", "data.tsv.gz", "data.jsonl.gz", "data.txt.gz",
]


def _pack(name: str, content: bytes, how: str) -> bytes:
    """The bytes of a file called ``name``: gzipped as ``how`` says when the
    name ends in .gz (raw: not gzipped at all)."""
    if not name.endswith(".gz") or how == "raw":
        return content
    packed = gzip.compress(content)
    if how == "truncated":
        return packed[: len(packed) // 2]
    if how == "corrupt":  # deflate block type 3 does not exist: zlib.error
        return packed[:10] + b"\xff" + packed[11:]
    if how == "bad-crc":
        return packed[:-8] + bytes(8)
    return packed


_GZIP = st.sampled_from(["gzip", "gzip", "raw", "truncated", "corrupt", "bad-crc"])


@FUZZ
@given(
    content=_BYTES,
    name=st.sampled_from(_NAMES),
    how=_GZIP,
    quoting=st.sampled_from(["minimal", "none"]),
)
def test_random_bytes_load_or_raise_one_line_tfbert_error(content, name, how, quoting):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(_pack(name, content, how))
        for labelled in (True, False):
            label_column = "label" if labelled else None
            df = _call(load_table, path, label_column=label_column, quoting=quoting)
            if not isinstance(df, TfbertError):
                _check_frame(df, labelled)
            df = _call(load_dataset, str(path), label_column=label_column)
            if not isinstance(df, TfbertError):
                assert isinstance(df, pd.DataFrame) and "text" in df.columns
        if how == "corrupt" and name.endswith(".gz"):
            return  # read_texts: see test_read_texts_random_bytes_corrupt_gzip
        # .txt goes to read_texts' own line reader, the others to load_table.
        texts = _call(read_texts, path)
        if not isinstance(texts, TfbertError):
            assert isinstance(texts, list) and all(isinstance(t, str) for t in texts)


# --- b. valid tables: same rows as pandas ----------------------------------------

_CHARS = st.characters(blacklist_categories=("Cs",))  # UTF-8 cannot hold surrogates
_SPECIAL = st.sampled_from([",", "\t", '"', "'", "\n", "\r\n", "\r", " ", "\\", "\x00",
                            "\x85", "\u2028", "\ufeff", "NA", "nan", "null"])
_TEXT = st.lists(st.one_of(st.text(_CHARS, max_size=5), _SPECIAL), max_size=6).map("".join)
_LABEL = st.one_of(
    st.integers(-1000, 1000),
    st.integers(-(2**70), 2**70),
    st.sampled_from(["pos", "neg", " pos ", "1", " 2 ", "1.0", "+3", "007", "-0", "１", "١",
                     "NA", "n/a", "None", "null", "True", "1.5", "1e3"]),
    st.text(_CHARS, max_size=4),
)
_COLUMN = st.one_of(st.sampled_from(["text", "label", "review", "sentiment", "id"]),
                    st.text(_CHARS, min_size=1, max_size=6))

# tfbert.data.labels.MISSING_LABEL_STRINGS, spelled out so a change shows here.
_MISSING = {"", "nan", "na", "n/a", "<na>", "#n/a"}
_INT_LABEL = re.compile(r"[+-]?[0-9]+(\.0*)?")
_INT64 = range(-(2**63), 2**63)


def _expected_labels(cells: list) -> list | None:
    """Labels as tfbert documents them, from the cells pandas reads: stripped;
    ints when every label is an integer (ASCII digits, "1.0" allowed) that fits
    int64, else the stripped strings; None if a label is missing (an error)."""
    stripped = [c.strip() for c in cells]
    if any(s.lower() in _MISSING for s in stripped):
        return None
    if all(_INT_LABEL.fullmatch(s) for s in stripped):
        ints = [int(re.sub(r"\.0*$", "", s)) for s in stripped]
        if all(i in _INT64 for i in ints):
            return ints
    return stripped


def _json_cell(value) -> str:
    """A JSON value as tfbert stores it (``_json_cell_to_str``): null -> "",
    numbers and strings as str(); the property only writes ints and strings."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _read_reference(path: Path, kind: str) -> pd.DataFrame:
    """The file read with pandas, the way a user would."""
    if kind == "jsonl":
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle.read().split("\n") if line.strip()]
        if any(isinstance(v, int) and v not in _INT64 for r in records for v in r.values()):
            # pandas' JSON parser rejects ints beyond 64 bits ("Value is too
            # big!") or wraps them (-2**64 reads as 0): the json module's rows.
            return pd.DataFrame.from_records(records)
        # convert_axes=False: else pandas reads a column called "" as NaT.
        return pd.read_json(path, lines=True, dtype=False, convert_axes=False)
    # tfbert reads with utf-8-sig (it skips an Excel BOM); pandas writes none,
    # but a first column name may itself start with U+FEFF.
    return pd.read_csv(path, sep="," if kind == "csv" else "\t", dtype=str,
                       keep_default_na=False, encoding="utf-8-sig")


@FUZZ
@given(
    rows=st.lists(st.tuples(_TEXT, _LABEL, _TEXT), max_size=8),
    names=st.lists(_COLUMN, min_size=3, max_size=3, unique=True),
    order=st.permutations([0, 1, 2]),
    kind=st.sampled_from(["csv", "tsv", "jsonl"]),
    gz=st.booleans(),
)
def test_valid_table_loads_to_the_rows_pandas_reads(rows, names, order, kind, gz):
    text_col, label_col, extra_col = names
    columns = [names[i] for i in order]
    frame = pd.DataFrame(
        {text_col: [r[0] for r in rows], label_col: [r[1] for r in rows],
         extra_col: [r[2] for r in rows]},
        columns=columns,
    )
    if kind == "tsv":
        # load_dataset reads this header as NSMC, a different loader.
        assume(set(columns) != {"id", "document", "label"})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data.{kind}{'.gz' if gz else ''}"
        if kind == "jsonl":
            frame.to_json(path, orient="records", lines=True, force_ascii=False)
        else:
            frame.to_csv(path, sep="," if kind == "csv" else "\t", index=False)

        got = _call(load_table, path, text_column=text_col, label_column=label_col)
        try:
            ref = _read_reference(path, kind)
        except (ValueError, pd.errors.ParserError):
            # pandas cannot read its own file back: tfbert must say so.
            assert isinstance(got, DataError), got
            return
        if ref.empty:
            # No rows (a JSONL file without rows has no columns either).
            assert isinstance(got, DataError), got
            assert re.search("empty|no data rows|not found", str(got)), got
            return
        if text_col not in ref.columns or label_col not in ref.columns:
            assert isinstance(got, DataError) and "not found" in str(got), got
            return

        ref_texts = ref[text_col].tolist()
        ref_labels = ref[label_col].tolist()
        if kind == "jsonl":
            ref_texts = [_json_cell(v) for v in ref_texts]
            ref_labels = [_json_cell(v) for v in ref_labels]
        expected = _expected_labels(ref_labels)
        if expected is None:
            assert isinstance(got, DataError) and "missing label" in str(got), got
        else:
            assert not isinstance(got, TfbertError), got
            assert got["text"].tolist() == ref_texts
            assert got["label"].tolist() == expected
            assert all(type(v) is type(expected[0]) for v in got["label"].tolist())
            # The other columns follow, as read; one called text/label is dropped.
            others = [c for c in ref.columns if c not in (text_col, label_col, "text", "label")]
            assert list(got.columns) == ["text", "label", *others]
            for column in others:
                assert got[column].tolist() == ref[column].tolist()
            pd.testing.assert_frame_equal(_call(load_dataset, str(path), text_column=text_col,
                                                label_column=label_col), got)

        # Unlabelled reads (prediction input) need only the text column.
        unlabelled = _call(load_table, path, text_column=text_col, label_column=None)
        assert not isinstance(unlabelled, TfbertError), unlabelled
        assert unlabelled["text"].tolist() == ref_texts
        assert _call(read_texts, path, text_column=text_col) == ref_texts


# --- c. read_texts on .txt -------------------------------------------------------

_LINE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=12)


@FUZZ
@given(
    lines=st.lists(_LINE, max_size=10),
    ending=st.sampled_from(["\n", "\r\n"]),
    final=st.booleans(),
    bom=st.booleans(),
    gz=st.booleans(),
)
def test_read_texts_gives_back_txt_lines(lines, ending, final, bom, gz):
    # "\r" before the newline is the Windows line end, not part of the text.
    assume(not any(line.endswith("\r") for line in lines))
    # A U+FEFF first in the file is a BOM and is skipped.
    assume(not (lines and lines[0].startswith("\ufeff")))
    # A file that is only a BOM: see test_read_texts_bom_only_file_has_no_texts.
    assume(lines or not bom)
    body = ending.join(lines)
    if lines and (final or lines[-1] == ""):
        body += ending  # without it a final empty line is not there
    data = (("\ufeff" if bom else "") + body).encode("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("in.txt.gz" if gz else "in.txt")
        path.write_bytes(gzip.compress(data) if gz else data)
        assert read_texts(path) == lines


# --- d. missing columns ----------------------------------------------------------


@FUZZ
@given(
    header=st.lists(_COLUMN, min_size=1, max_size=4, unique=True),
    wanted=_COLUMN,
    role=st.sampled_from(["text", "label"]),
    kind=st.sampled_from(["csv", "tsv", "jsonl"]),
)
def test_missing_column_is_one_line_error_naming_it(header, wanted, role, kind):
    frame = pd.DataFrame({name: ["x"] for name in header}, columns=header)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data.{kind}"
        if kind == "jsonl":
            frame.to_json(path, orient="records", lines=True, force_ascii=False)
        else:
            frame.to_csv(path, sep="," if kind == "csv" else "\t", index=False)
        try:
            found = [str(c) for c in _read_reference(path, kind).columns]
        except (ValueError, pd.errors.ParserError):
            # Python 3.11's csv module leaves a lone "\r" unquoted: pandas
            # cannot read such a header back; tfbert must say so in one line.
            assert isinstance(_call(load_table, path, text_column=wanted), DataError)
            return
        assume(wanted not in found)
        if kind == "tsv":
            assume(set(found) != {"id", "document", "label"})
        if role == "text":
            calls = [
                lambda: load_table(path, text_column=wanted, label_column=None),
                lambda: load_dataset(str(path), text_column=wanted, label_column=None),
                lambda: read_texts(path, text_column=wanted),
            ]
        else:
            calls = [
                lambda: load_table(path, text_column=found[0], label_column=wanted),
                lambda: load_dataset(str(path), text_column=found[0], label_column=wanted),
            ]
        for call in calls:
            with pytest.raises(DataError) as caught:
                call()
            message = _one_line(caught.value)
            assert f"column '{_shown(wanted)}' not found" in message
            for name in found:
                assert _shown(name) in message


# --- NSMC-style TSV through load_dataset -----------------------------------------

_NSMC_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\r\n"),
                     max_size=12)


@FUZZ
@given(rows=st.lists(st.tuples(st.integers(0, 10**9), _NSMC_TEXT, st.sampled_from(["0", "1", ""])),
                     min_size=1, max_size=8),
       gz=st.booleans())
def test_nsmc_txt_loads_to_the_rows_pandas_reads(rows, gz):
    body = "id\tdocument\tlabel\n" + "".join(f"{i}\t{d}\t{lab}\n" for i, d, lab in rows)
    data = body.encode("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("ratings.txt.gz" if gz else "ratings.txt")
        path.write_bytes(gzip.compress(data) if gz else data)
        got = _call(load_dataset, str(path))
        # NSMC quotes nothing: a quote is a plain character.
        ref = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False,
                          compression="gzip" if gz else None)
        expected = _expected_labels(ref["label"].tolist())
        if expected is None:
            assert isinstance(got, DataError) and "missing label" in str(got), got
            return
        assert not isinstance(got, TfbertError), got
        assert list(got.columns) == ["text", "label", "id"]
        assert got["text"].tolist() == ref["document"].tolist()
        assert got["label"].tolist() == expected
        assert got["id"].tolist() == ref["id"].tolist()
        assert got.attrs["class_names"] == ["neg", "pos"]


# --- regressions: the bugs the fuzzer found, as fixed examples -------------------


def _error(function, *args, **kwargs) -> str:
    with pytest.raises(DataError) as caught:
        function(*args, **kwargs)
    return _one_line(caught.value)


def test_column_names_with_line_breaks_are_escaped_in_messages(tmp_path):
    # Was: a header cell "\x0b" or a quoted "a\nb" put a line break into the
    # missing-column message; so did a requested name like "\x1e".
    path = tmp_path / "d.csv"
    path.write_text('"a\nb",\x0b\nx,1\n', encoding="utf-8")
    message = _error(load_table, path)
    assert "column 'text' not found" in message and "columns found: a\\nb, \\x0b." in message
    assert "column '\\x1e' not found" in _error(load_table, path, text_column="\x1e")


def test_missing_label_message_escapes_the_column_name(tmp_path):
    # Was: "missing label ... (column '\x1e', ...)" broke the line.
    path = tmp_path / "d.csv"
    path.write_text("text,\x1e\nhi,\n", encoding="utf-8")
    assert "(column '\\x1e'" in _error(load_table, path, label_column="\x1e")


def test_empty_column_name_is_shown_in_missing_column_message(tmp_path):
    # Was: "columns found: (none)" for a file whose one column is named "".
    path = tmp_path / "d.jsonl"
    path.write_text('{"": "x"}\n', encoding="utf-8")
    assert "columns found: ''." in _error(load_table, path)


@pytest.mark.parametrize("breaker", ["\x85", "\u2028", "\u2029", "\x1c"])
def test_jsonl_text_with_unicode_line_separator_loads(tmp_path, breaker):
    # Was: str.splitlines() cut the JSON line at U+0085/U+2028 (pandas writes
    # them unescaped): "invalid JSON on line 1 ... Unterminated string".
    path = tmp_path / "d.jsonl"
    frame = pd.DataFrame({"text": [f"a{breaker}b", "c"], "label": [1, 0]})
    frame.to_json(path, orient="records", lines=True, force_ascii=False)
    df = load_table(path)
    assert df["text"].tolist() == [f"a{breaker}b", "c"]
    assert df["label"].tolist() == [1, 0]
    # Old-Mac "\r" line ends still separate JSON lines.
    path.write_text('{"text": "x", "label": 1}\r{"text": "y", "label": 0}\r', encoding="utf-8")
    assert load_table(path)["text"].tolist() == ["x", "y"]


def test_jsonl_number_with_too_many_digits_is_a_data_error(tmp_path):
    # Was: ValueError "Exceeds the limit (4300 digits) for integer string conversion".
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": ' + "1" * 5000 + "}\n", encoding="utf-8")
    message = _error(load_table, path)
    assert "line 1" in message and "too many digits" in message


@pytest.mark.parametrize("content", ["[" * 100_000, '{"text": ' + "[" * 100_000])
def test_deeply_nested_json_is_a_data_error(tmp_path, content):
    # Was: RecursionError from json.loads.
    path = tmp_path / "d.jsonl"
    path.write_text(content, encoding="utf-8")
    assert "nested too deeply" in _error(load_table, path)


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_integer_labels_beyond_int64_stay_strings(tmp_path, kind):
    # Was: OverflowError "Python int too large to convert to C long".
    big = "99999999999999999999"
    path = tmp_path / f"d.{kind}"
    if kind == "csv":
        path.write_text(f"text,label\na,{big}\nb,1\n", encoding="utf-8")
    else:
        path.write_text(f'{{"text": "a", "label": {big}}}\n{{"text": "b", "label": 1}}\n',
                        encoding="utf-8")
    assert load_table(path)["label"].tolist() == [big, "1"]
    # Up to int64 they are still ids.
    path.write_text(f"text,label\na,{2**63 - 1}\nb,{-2**63}\n", encoding="utf-8")
    assert load_table(path, fmt="csv")["label"].tolist() == [2**63 - 1, -2**63]


def test_non_ascii_digit_labels_are_names_not_ids(tmp_path):
    # Was: "١" (Arabic-Indic) and "１" (full-width) both became the id 1,
    # merging two different labels with "1".
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,١\nb,１\nc,1\n", encoding="utf-8")
    assert load_table(path)["label"].tolist() == ["١", "１", "1"]


def test_class_names_with_line_breaks_are_escaped_in_label_messages():
    with pytest.raises(DataError) as caught:
        encode_labels(["other"], class_names=["a\nb", "c"])
    assert "classes a\\nb, c;" in _one_line(caught.value)
    with pytest.raises(DataError) as caught:
        encode_labels([5], class_names=["a\nb", "c"])
    _one_line(caught.value)
    with pytest.raises(DataError) as caught:
        encode_labels(["c"], class_names=["a\r", "a\r"])
    _one_line(caught.value)


@pytest.mark.parametrize("name", ["in.txt.gz", "in.csv.gz"])
def test_read_texts_corrupt_gzip_is_a_data_error(tmp_path, name):
    # gzip raises zlib.error (not OSError) for a broken deflate stream.
    path = tmp_path / name
    path.write_bytes(_pack(name, b"text\nhello\n" * 20, "corrupt"))
    assert "cannot read" in _error(read_texts, path)


@pytest.mark.parametrize("name", ["in.txt", "in.txt.gz"])
def test_read_texts_bom_only_file_has_no_texts(tmp_path, name):
    # An empty file saved with a BOM (Notepad, Excel) has no lines, like an empty file.
    path = tmp_path / name
    data = "\ufeff".encode("utf-8")
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    assert read_texts(path) == []
