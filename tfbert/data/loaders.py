"""Loaders: every one returns a DataFrame with ``text`` and ``label`` columns
(and ``text_pair``, the second text of sentence pairs, when a table's
``text_pair_column`` is named).

``text`` is always a string (empty for an empty cell: :func:`tfbert.data.clean`
drops those). ``label`` holds the original values, stripped of surrounding
whitespace: ints when every label in the file is an integer (ASCII digits,
``"1.0"`` allowed) that fits int64, strings otherwise. Other columns of the source
are kept. Loaders whose integer labels have known names put them in
``df.attrs["class_names"]``.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import importlib.resources
import json
import os
import re
import zlib
from pathlib import Path
from typing import Any

import pandas as pd

from tfbert.data._common import (
    CLASS_NAMES_ATTR,
    check_dir,
    check_file,
    download,
    labels_from_strings,
    natural_key,
    printable,
)
from tfbert.data.imdb import IMDB_CLASS_NAMES, find_imdb_root, load_imdb
from tfbert.errors import DataError

TABLE_FORMATS = ("csv", "tsv", "jsonl")
NSMC_COLUMNS = ("id", "document", "label")
NSMC_URL = "https://raw.githubusercontent.com/e9t/nsmc/master/ratings_{split}.txt"
NSMC_CLASS_NAMES = ("neg", "pos")
DEMO_SPLITS = ("train", "test")

_EXTENSION_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_QUOTING = {"minimal": csv.QUOTE_MINIMAL, "none": csv.QUOTE_NONE}
_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_OPEN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")
# JSON strings hold no raw CR/LF, so these always end a line; \x85, \u2028 and
# the other breaks str.splitlines() knows may sit inside a string.
_JSON_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_KNOWN_SPECS = "a CSV/TSV/JSONL file, a folder, 'imdb', 'imdb:PATH', 'nsmc:PATH' or 'demo'"


def _table_format(path: Path, fmt: str | None) -> str:
    """Picks csv/tsv/jsonl from ``fmt`` or the extension (``.gz`` ignored)."""
    if fmt is not None:
        lowered = fmt.lower().lstrip(".")
        if lowered == "json":
            lowered = "jsonl"
        if lowered not in TABLE_FORMATS:
            raise DataError(
                f"unknown data format {fmt!r}; use one of {', '.join(TABLE_FORMATS)}"
            )
        return lowered
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    found = _EXTENSION_FORMATS.get(suffixes[-1] if suffixes else "")
    if found is None:
        raise DataError(
            f"cannot tell the format of {path} from its extension; name it "
            ".csv, .tsv or .jsonl (optionally .gz), or pass fmt='csv'/'tsv'/'jsonl'"
        )
    return found


def _open_text(path: Path):
    """Opens a plain or gzipped text file; BOMs from Excel are skipped."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


@contextlib.contextmanager
def _read_errors(path: Path):
    """Undecodable bytes and unreadable files while reading ``path``: one-line DataErrors."""
    try:
        yield
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 text ({error.reason}); re-save it as UTF-8") from error
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"cannot read {path} ({printable(error)}); check that it is a valid file") from error


def _read_delimited(path: Path, sep: str, quoting: int, what: str) -> pd.DataFrame:
    """Reads CSV/TSV cells as strings; turns parser failures into DataErrors."""
    with _read_errors(path):
        try:
            # dtype=str and no NA parsing: a review that reads "NA" or "123" must
            # stay text. Labels are converted afterwards, knowing the column.
            return pd.read_csv(
                path,
                sep=sep,
                quoting=quoting,
                dtype=str,
                keep_default_na=False,
                encoding="utf-8-sig",
                compression="infer",
            )
        except pd.errors.EmptyDataError as error:
            raise DataError(f"{path} is empty; it needs a header line and data rows") from error
        except pd.errors.ParserError as error:
            message = str(error)
            counts = _FIELD_COUNT.search(message)
            if counts:
                expected, line, saw = counts.groups()
                separator = "tab" if sep == "\t" else "comma"
                raise DataError(
                    f"line {line} of {path} has {saw} fields, the header has "
                    f"{expected}; fix that row (a {separator} inside a text must "
                    f"be quoted{'' if quoting == csv.QUOTE_MINIMAL else ' or removed'})"
                ) from error
            quote = _OPEN_QUOTE.search(message)
            if quote:
                raise DataError(
                    f"unclosed quote in {path} starting on line "
                    f"{int(quote.group(1)) + 1}; close the quote"
                    f"{', or read the TSV with quoting=none' if sep == chr(9) else ''}"
                ) from error
            first = printable(message.strip().splitlines()[0]) if message.strip() else "parse error"
            raise DataError(f"cannot parse {path} as {what}: {first}; fix the file") from error


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """Reads JSON Lines (or a JSON array of objects); returns rows and their
    1-based line numbers."""
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    with _read_errors(path), _open_text(path) as handle:
        content = handle.read()

    if content.lstrip().startswith("["):
        # A plain JSON array is accepted too, though JSONL is the format.
        try:
            array = json.loads(content)
        except json.JSONDecodeError as error:
            raise DataError(
                f"invalid JSON in {path} on line {error.lineno}: {error.msg}; fix the file"
            ) from error
        except (ValueError, RecursionError) as error:
            raise DataError(f"invalid JSON in {path}: {_json_failure(error)}; fix the file") from error
        for position, record in enumerate(array):
            records.append(record)
            lines.append(position + 1)
        where = "item"
    else:
        for number, line in enumerate(_JSON_LINE_BREAK.split(content), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
                raise DataError(
                    f"invalid JSON on line {number} of {path}: {_json_failure(error)}; "
                    "each line must be one JSON object"
                ) from error
            lines.append(number)
        where = "line"
    for record, number in zip(records, lines):
        if not isinstance(record, dict):
            raise DataError(
                f"{where} {number} of {path} is a JSON {type(record).__name__}, "
                "expected an object like {\"text\": ..., \"label\": ...}"
            )
    if not records:
        raise DataError(f"{path} is empty; it needs one JSON object per line")
    return pd.DataFrame.from_records(records), lines


def _json_failure(error: Exception) -> str:
    """What json.loads found wrong, in a few words."""
    if isinstance(error, json.JSONDecodeError):
        return error.msg
    if isinstance(error, RecursionError):
        return "arrays or objects nested too deeply"
    if "digits" in str(error):  # int()'s limit: "Exceeds the limit (4300 digits) ..."
        return "a number with too many digits"
    return printable(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)


def _json_cell_to_str(value: Any, column: str, where: str, path: Path, is_label: bool,
                      label_kind: str = "classes") -> str:
    """Writes a JSON value as the string a CSV cell would hold (a tag list as a JSON list)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list) and is_label and label_kind == "tags":
        return json.dumps([str(v) for v in value], ensure_ascii=False)
    if isinstance(value, float) and is_label and label_kind == "classes":
        if not value.is_integer():
            raise DataError(
                f"label {value!r} on {where} of {path} is not a class; labels "
                "must be class names or integer class ids"
            )
        return str(int(value))
    if isinstance(value, (str, int, float)):
        return str(value)
    raise DataError(
        f"column '{printable(column)}' on {where} of {path} is a JSON "
        f"{type(value).__name__}, expected a string or a number"
    )


def _missing_column(column: str, path: Path, found: list[str], option: str) -> DataError:
    return DataError(
        f"column '{printable(column)}' not found in {path}; columns found: "
        f"{', '.join(printable(c) or repr(c) for c in found) or '(none)'}. Pass {option}=NAME "
        f"(--{option.replace('_', '-')} NAME on the command line)"
    )


def _to_frame(
    raw: pd.DataFrame,
    text_column: str,
    label_column: str | None,
    path: Path,
    where,
    text_pair_column: str | None = None,
    label_kind: str = "classes",
) -> pd.DataFrame:
    """Renames the chosen columns to text/label (/text_pair), keeps the others after them."""
    found = [str(c) for c in raw.columns]
    if text_column not in raw.columns:
        raise _missing_column(text_column, path, found, "text_column")
    if text_pair_column is not None and text_pair_column not in raw.columns:
        raise _missing_column(text_pair_column, path, found, "text_pair_column")
    if label_column is not None and label_column not in raw.columns:
        raise _missing_column(label_column, path, found, "label_column")
    if raw.empty:
        raise DataError(f"{path} has a header but no data rows; add examples")

    out = pd.DataFrame({"text": raw[text_column].fillna("").astype(str)})
    if text_pair_column is not None:
        out["text_pair"] = raw[text_pair_column].fillna("").astype(str)
        _check_pairs_present(out, text_pair_column, path, where)
    if label_column is not None:
        out["label"] = labels_from_strings(raw[label_column], where, str(path), label_column,
                                           check_missing=label_kind != "tags")  # no tag is a valid tag set
    for column in raw.columns:
        # A leftover column called text/label/text_pair would be ambiguous: drop it.
        if column not in (text_column, label_column, text_pair_column, "text", "label", "text_pair"):
            out[column] = raw[column]
    return out.reset_index(drop=True)


def _check_pairs_present(out: pd.DataFrame, column: str, path: Path, where) -> None:
    """DataError naming the rows whose second text is missing though the first is there.

    A row empty in both columns is an empty document, which cleaning drops; a
    missing second text alone is a broken example, and training on it would
    teach the model pairs it never sees.
    """
    missing = (out["text_pair"].str.strip().eq("") & out["text"].str.strip().ne("")).to_numpy()
    if missing.any():
        rows = [int(i) for i in missing.nonzero()[0]]
        shown = ", ".join(where(i) for i in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise DataError(
            f"the second text (column '{printable(column)}') is missing on {len(rows)} row(s) of "
            f"{path}: {shown}; fill it in or remove those rows"
        )


def load_table(
    path: str | os.PathLike,
    text_column: str = "text",
    label_column: str | None = "label",
    fmt: str | None = None,
    quoting: str = "minimal",
    text_pair_column: str | None = None,
    label_kind: str = "classes",
) -> pd.DataFrame:
    """Loads a CSV, TSV or JSON Lines file, plain or gzipped.

    Args:
        path: the file; the format comes from the extension (``.csv``,
            ``.tsv``, ``.jsonl``, each optionally ``.gz``) unless ``fmt`` says.
        text_column: column holding the text.
        label_column: column holding the label, or None for unlabelled data
            (prediction input): the result then has no ``label`` column.
        fmt: ``"csv"``, ``"tsv"`` or ``"jsonl"`` to override the extension.
        quoting: ``"minimal"`` (standard CSV quotes, as pandas writes) or
            ``"none"`` (quotes are plain characters, as in NSMC-style TSV).
        text_pair_column: column holding the second text of sentence pairs
            (NLI, paraphrase), or None: the result then has a ``text_pair``
            column; a row whose second text is missing is an error.
        label_kind: ``"classes"``; ``"values"`` (regression: JSON numbers
            kept as they are) or ``"tags"`` (multi-label: JSON lists kept as
            JSON, empty cells allowed). ``tfbert.tasks`` reads the labels.

    Returns:
        DataFrame with ``text``, ``text_pair`` (with ``text_pair_column``),
        ``label`` (unless ``label_column`` is None) and the file's other columns.

    Raises:
        DataError: a missing or empty file, an unknown format, a missing
            column (the message lists the columns found), a malformed row or
            JSON line (the message gives the line), a row without a label.
    """
    file = check_file(path)
    kind = _table_format(file, fmt)
    if kind == "jsonl":
        raw, lines = _read_jsonl(file)
        for column in (text_column, text_pair_column, label_column):
            if column is not None and column in raw.columns:
                raw[column] = [
                    _json_cell_to_str(v, column, f"line {n}", file, column == label_column, label_kind)
                    for v, n in zip(raw[column].tolist(), lines)
                ]
        return _to_frame(raw, text_column, label_column, file, lambda i: f"line {lines[i]}",
                         text_pair_column, label_kind)

    if quoting not in _QUOTING:
        raise DataError(f"unknown quoting {quoting!r}; use 'minimal' or 'none'")
    raw = _read_delimited(
        file, "," if kind == "csv" else "\t", _QUOTING[quoting], kind.upper()
    )
    return _to_frame(raw, text_column, label_column, file,
                     _row_locator(raw, text_column, text_pair_column), text_pair_column, label_kind)


def _row_locator(raw: pd.DataFrame, text_column: str, text_pair_column: str | None = None):
    """Maps a 0-based data row to "line N", exact unless a cell spans lines."""
    for column in (text_column, text_pair_column):
        if column in raw.columns and raw[column].fillna("").str.contains("\n").any():
            return lambda i: f"data row {i + 1}"
    return lambda i: f"line {i + 2}"


def load_nsmc(path: str | os.PathLike | None = None, split: str = "train") -> pd.DataFrame:
    """Loads the Naver Sentiment Movie Corpus (Korean; 0 negative, 1 positive).

    The official files are TSV with the header ``id document label`` and no
    quoting: a document may contain quote characters that are plain text.

    Args:
        path: ``ratings_train.txt`` or ``ratings_test.txt`` (plain or
            ``.gz``); a folder holding them (``split`` picks one); or None to
            download the official file for ``split``.
        split: ``"train"`` or ``"test"``; used for folders and downloads.

    Returns:
        DataFrame with ``text`` (the document; empty documents are ``""``),
        ``label`` (int 0/1) and ``id``; ``df.attrs["class_names"] ==
        ["neg", "pos"]``.

    Raises:
        DataError: a missing or empty file, a header other than
            ``id document label``, a row with extra tabs, a missing label.
    """
    if path is None or Path(path).expanduser().is_dir():
        if split not in ("train", "test"):
            raise DataError(f"unknown NSMC split {split!r}; use 'train' or 'test'")
        if path is None:
            file = download(NSMC_URL.format(split=split), f"ratings_{split}.txt")
        else:
            folder = Path(path).expanduser()
            candidates = [folder / f"ratings_{split}.txt", folder / f"ratings_{split}.txt.gz"]
            file = next((c for c in candidates if c.is_file()), None)
            if file is None:
                raise DataError(
                    f"{path} has no ratings_{split}.txt; pass the NSMC file itself"
                )
    else:
        file = check_file(path)

    raw = _read_delimited(file, "\t", csv.QUOTE_NONE, "NSMC TSV")
    missing = [c for c in NSMC_COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(
            f"{file} does not have the NSMC header 'id<TAB>document<TAB>label' "
            f"(columns found: {', '.join(map(printable, raw.columns))}); for other "
            "tables use load_table with text_column/label_column"
        )
    df = _to_frame(raw, "document", "label", file, _row_locator(raw, "document"))
    df.attrs[CLASS_NAMES_ATTR] = list(NSMC_CLASS_NAMES)
    return df


def load_class_folders(path: str | os.PathLike) -> pd.DataFrame:
    """Loads one sub-folder per class, one UTF-8 text file per example.

    Hidden files and folders (``.DS_Store``), ``__MACOSX``-style folders and
    files directly in ``path`` (a README) are skipped.

    Args:
        path: the folder holding the class folders.

    Returns:
        DataFrame with ``text``, ``label`` (the folder name; ints if every
        folder name is an integer) and ``file`` (``class/name``), classes and
        files in sorted order.

    Raises:
        DataError: a missing folder, no class folders, an empty class folder,
            a file that is not UTF-8.
    """
    root = check_dir(path)
    class_dirs = sorted(
        # Hidden folders and __MACOSX / __pycache__ are never classes.
        (d for d in root.iterdir() if d.is_dir() and not d.name.startswith((".", "__"))),
        key=lambda d: natural_key(d.name),
    )
    if not class_dirs:
        raise DataError(
            f"{path} has no class folders; put one folder per class in it, "
            "with one text file per example"
        )
    texts, labels, files = [], [], []
    for class_dir in class_dirs:
        entries = sorted(
            (e for e in os.scandir(class_dir) if e.is_file() and not e.name.startswith(".")),
            key=lambda e: natural_key(e.name),
        )
        if not entries:
            raise DataError(
                f"class folder {printable(class_dir)} has no files; add examples or remove the folder"
            )
        for entry in entries:
            try:
                with open(entry.path, encoding="utf-8-sig") as handle:
                    texts.append(handle.read())
            except UnicodeDecodeError as error:
                raise DataError(
                    f"{printable(entry.path)} is not UTF-8 text ({error.reason}); re-save it as UTF-8"
                ) from error
            labels.append(class_dir.name)
            files.append(f"{class_dir.name}/{entry.name}")
    label_series = labels_from_strings(
        pd.Series(labels, dtype=str), lambda i: f"file {files[i]}", str(path), "folder name",
        check_missing=False,
    )
    return pd.DataFrame(
        {"text": pd.Series(texts, dtype=str), "label": label_series, "file": pd.Series(files, dtype=str)}
    )


def load_demo(split: str = "train") -> pd.DataFrame:
    """Loads the small IMDB sample shipped with tfbert (no download needed).

    2,000 train / 1,000 test short English movie reviews, balanced, drawn
    from IMDB train/test by ``scripts/make_demo_sample.py``.

    Args:
        split: ``"train"`` or ``"test"``.

    Returns:
        DataFrame with ``text`` and ``label`` (int 0/1);
        ``df.attrs["class_names"] == ["neg", "pos"]``.
    """
    if split not in DEMO_SPLITS:
        raise DataError(f"unknown demo split {split!r}; use 'train' or 'test'")
    resource = importlib.resources.files("tfbert").joinpath(
        "demo_data", "imdb_sample", f"{split}.tsv.gz"
    )
    with importlib.resources.as_file(resource) as file:
        if not file.is_file():
            raise DataError(
                f"the demo sample {file} is missing; reinstall tfbert or run "
                "scripts/make_demo_sample.py"
            )
        df = load_table(file, fmt="tsv")
    df.attrs[CLASS_NAMES_ATTR] = list(IMDB_CLASS_NAMES)
    return df


def _first_line(path: Path) -> str:
    try:
        with _open_text(path) as handle:
            return handle.readline().rstrip("\r\n")
    except (UnicodeDecodeError, OSError, EOFError, zlib.error):
        return ""  # the real loader will report the problem properly


def _load_file(
    path: Path, text_column: str, label_column: str | None, text_pair_column: str | None = None,
    label_kind: str = "classes",
) -> pd.DataFrame:
    """Loads a file, recognising NSMC by its header."""
    header = _first_line(path)
    if tuple(header.split("\t")) == NSMC_COLUMNS:
        return _single_text(load_nsmc(path), text_pair_column, str(path))
    base = path.name.lower().removesuffix(".gz")
    if base.endswith(".txt"):
        if "\t" in header:
            return load_table(path, text_column, label_column, fmt="tsv", text_pair_column=text_pair_column,
                              label_kind=label_kind)
        raise DataError(
            f"cannot tell the format of {path}; name it .csv, .tsv or .jsonl, "
            "or use a TSV header such as 'text<TAB>label'"
        )
    return load_table(path, text_column, label_column, text_pair_column=text_pair_column, label_kind=label_kind)


def _single_text(df: pd.DataFrame, text_pair_column: str | None, source: str) -> pd.DataFrame:
    """``df`` when no second text was asked for; a DataError where the source has none."""
    if text_pair_column is not None:
        raise DataError(
            f"{source} holds single texts, so it has no second-text column '{printable(text_pair_column)}'; "
            "sentence pairs come from a CSV/TSV/JSONL table with two text columns"
        )
    return df


def _load_folder(
    folder: Path, split: str, text_column: str, label_column: str | None,
    text_pair_column: str | None = None, label_kind: str = "classes",
) -> pd.DataFrame:
    """Loads a folder: IMDB layout, a ``{split}.csv``-style file, a
    ``{split}/`` folder of class folders, or class folders."""
    if find_imdb_root(folder) is not None:
        return _single_text(load_imdb(folder, split), text_pair_column, str(folder))
    for name in sorted(os.listdir(folder)):
        stem = name.lower().removesuffix(".gz")
        for extension in (*_EXTENSION_FORMATS, ".txt"):
            if stem in (f"{split}{extension}", f"ratings_{split}{extension}"):
                return _load_file(folder / name, text_column, label_column, text_pair_column, label_kind)
    _single_text(pd.DataFrame(), text_pair_column, f"{folder} (class folders)")
    if (folder / split).is_dir():
        return load_class_folders(folder / split)
    return load_class_folders(folder)


def load_dataset(
    spec: str | os.PathLike,
    split: str = "train",
    text_column: str = "text",
    label_column: str | None = "label",
    text_pair_column: str | None = None,
    label_kind: str = "classes",
) -> pd.DataFrame:
    """Loads data from a short description, as given on the command line.

    Accepted ``spec`` values:

    * ``imdb`` (download) or ``imdb:PATH`` (archive or folder), ``split``
      picks train/test;
    * ``nsmc`` (download) or ``nsmc:PATH`` (file or folder);
    * ``demo``: the IMDB sample shipped with tfbert;
    * a file: ``.csv``, ``.tsv``, ``.jsonl`` (optionally ``.gz``), or a
      ``.txt`` with the NSMC header ``id document label``;
    * a folder: IMDB layout (``aclImdb/`` or ``train|test/pos|neg``), a
      ``{split}.csv``/``.tsv``/``.jsonl`` file in it, a ``{split}/`` folder
      of class folders, or class folders.

    Args:
        spec: one of the above.
        split: ``"train"`` or ``"test"`` where the source has splits.
        text_column: text column for tables.
        label_column: label column for tables, None for unlabelled tables.
        text_pair_column: second-text column of sentence-pair tables (a
            ``text_pair`` column in the result), or None.
        label_kind: ``classes``, ``values`` or ``tags`` (see ``load_table``).

    Returns:
        DataFrame with ``text`` and ``label`` (see the module docstring).

    Raises:
        DataError: a path that does not exist, and every loader's errors.
    """
    if not isinstance(spec, (str, os.PathLike)) or not str(spec).strip():
        raise DataError(f"no data given ({spec!r}); pass {_KNOWN_SPECS}")
    text = str(spec).strip()
    name, colon, rest = text.partition(":")
    # A real path wins, so a folder called "imdb" still loads as a folder.
    if name.lower() in ("imdb", "nsmc", "demo") and not Path(text).exists():
        _single_text(pd.DataFrame(), text_pair_column, f"'{name.lower()}'")
        if name.lower() == "imdb":
            return load_imdb(rest or None, split)
        if name.lower() == "nsmc":
            return load_nsmc(rest or None, split)
        return load_demo(split)

    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(f"data not found: {text}; pass {_KNOWN_SPECS}")
    if path.is_dir():
        return _load_folder(path, split, text_column, label_column, text_pair_column, label_kind)
    return _load_file(path, text_column, label_column, text_pair_column, label_kind)
