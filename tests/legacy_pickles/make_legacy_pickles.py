"""Writes the legacy DataFrame pickles beside this file: what pandas 1.x and 2.x wrote into ``clean.pk``.

Run it once under each old pandas (the files are committed; the tests only read them):

    python -m venv /tmp/pd15 && /tmp/pd15/bin/pip install "pandas==1.5.3" "numpy<2"
    /tmp/pd15/bin/python tests/legacy_pickles/make_legacy_pickles.py
    (the same with pandas==2.2.3, and with pandas==1.1.5 "numpy==1.19.5" under Python 3.8)

Each file is ``pandas<version>-<recipe>-p<protocol>.pk``; ``tests/test_safepickle.py`` rebuilds the recipe with
the pandas of today and checks that whatnext's loader reads the old file as the same table. The recipes use
only what every pandas since 1.0 understands.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
PROTOCOLS = (2, 3, 4, 5)


def events() -> pd.DataFrame:
    """The original clean.pk style: text ids, int timestamps, float features, a flag, a date; RangeIndex."""
    return pd.DataFrame({
        "user_id": ["u1", "u1", "u2", "u2", "u3"],
        "item_id": ["s1", "s2", "s1", "s3", "s2"],
        "timestamp": np.array([10, 20, 5, 7, 1], dtype=np.int64),
        "energy": [0.1, 0.5, 0.1, 0.9, 0.5],
        "tempo": np.array([80, 100, 80, 120, 100], dtype=np.int32),
        "liked": [True, False, True, True, False],
        "when": pd.to_datetime([10, 20, 5, 7, 1], unit="s"),
    })


def int_index() -> pd.DataFrame:
    """Every other row: an integer index (Int64Index before pandas 2)."""
    return events().iloc[::2]


def text_index() -> pd.DataFrame:
    """The user ids as the index."""
    return events().set_index("user_id")


def extras() -> pd.DataFrame:
    """The other column kinds a clean.pk may hold: categories, UTC dates, nullable ints, text with gaps."""
    df = events()
    df["genre"] = pd.Categorical(["rock", "pop", "rock", "jazz", "pop"])
    df["when_utc"] = df["when"].dt.tz_localize("UTC")
    df["plays"] = pd.array([1, None, 3, 4, None], dtype="Int64")
    df["note"] = pd.Series(["a", None, "c", "d", "e"], dtype=object)
    return df


def dated() -> pd.DataFrame:
    """A DatetimeIndex with a frequency."""
    return events().set_index(pd.date_range("2024-01-01", periods=5, freq="D"))


RECIPES = {"events": events, "int_index": int_index, "text_index": text_index, "extras": extras, "dated": dated}


def main() -> None:
    version = ".".join(pd.__version__.split(".")[:2])
    for name, recipe in RECIPES.items():
        for protocol in PROTOCOLS:
            (HERE / f"pandas{version}-{name}-p{protocol}.pk").write_bytes(pickle.dumps(recipe(), protocol=protocol))
    print(f"pandas {pd.__version__}, python {sys.version.split()[0]}: {len(RECIPES) * len(PROTOCOLS)} files")


if __name__ == "__main__":
    main()
