"""Data loading, cleaning, splitting and label encoding for tfbert.

Every loader returns a pandas DataFrame with a ``text`` column (str) and a
``label`` column (the original label values, int or str), sometimes with more
columns. When labels are integer ids with known names (IMDB, NSMC, the demo),
the names are in ``df.attrs["class_names"]``.

Typical use::

    from tfbert import data

    df = data.load_dataset("nsmc:/path/ratings_train.txt")
    df, report = data.clean(df)
    train, valid = data.train_valid_split(df, valid_fraction=0.1)
    ids, class_names = data.encode_labels(
        train["label"], class_names=df.attrs.get("class_names"))
    valid_ids, _ = data.encode_labels(valid["label"], class_names=class_names)
"""

from tfbert.data._common import CLASS_NAMES_ATTR, cache_root
from tfbert.data.cleaning import CleanReport, Summary, clean, summarize
from tfbert.data.imdb import IMDB_CLASS_NAMES, IMDB_URL, load_imdb
from tfbert.data.labels import check_labels_in_range, decode_labels, encode_labels
from tfbert.data.loaders import (
    NSMC_CLASS_NAMES,
    load_class_folders,
    load_dataset,
    load_demo,
    load_nsmc,
    load_table,
)
from tfbert.data.splits import train_valid_split

__all__ = [
    "CLASS_NAMES_ATTR",
    "IMDB_CLASS_NAMES",
    "IMDB_URL",
    "NSMC_CLASS_NAMES",
    "CleanReport",
    "Summary",
    "cache_root",
    "check_labels_in_range",
    "clean",
    "decode_labels",
    "encode_labels",
    "load_class_folders",
    "load_dataset",
    "load_demo",
    "load_imdb",
    "load_nsmc",
    "load_table",
    "summarize",
    "train_valid_split",
]
