"""The code-first loading path (#12): ids become integer codes before any text is made, and the fast
paths of ordering and duplicate counting give what the plain ones give."""

from __future__ import annotations

import numpy as np
import pandas as pd

from whatnext.config import Config
from whatnext.data import build_dataset
from whatnext.data.columns import id_codes
from whatnext.data.dataset import _id_order, _user_time_order


def test_id_codes_text_of_distinct_values_only() -> None:
    codes, names = id_codes(pd.Series([" 7", "007", "7", "NA", "007 "], dtype=object))
    assert names.tolist() == ["7", "007", "NA"]  # trimmed values that read the same share a code
    assert codes.tolist() == [0, 1, 0, 2, 1]
    codes, names = id_codes(pd.Series([3.0, 1.0, 3.0]))  # whole floats from Parquet: their digits
    assert names.tolist() == ["3", "1"] and codes.tolist() == [0, 1, 0]


def test_user_time_order_matches_lexsort_on_every_path() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(1, 60))
        codes = rng.integers(0, 5, n)
        times = rng.integers(0, 4, n).astype(float)
        cases = [(codes, times), (np.sort(codes), times), (codes, np.sort(times))]
        grouped = np.lexsort((times, codes))
        cases.append((codes[grouped], times[grouped]))  # already in (user, time) order
        for c, t in cases:
            assert np.array_equal(_user_time_order(c, t), np.lexsort((t, c)))


def test_id_order_numeric_ties_broken_by_text() -> None:
    ids = np.array(["10", "7", "007", "2"], dtype=object)
    assert ids[_id_order(ids)].tolist() == ["2", "007", "7", "10"]
    ids = np.array(["10", "7", "2"], dtype=object)
    assert ids[_id_order(ids)].tolist() == ["2", "7", "10"]


def test_duplicate_events_counted_as_before() -> None:
    rng = np.random.default_rng(1)
    n = 400
    events = pd.DataFrame({"user_id": rng.integers(0, 20, n).astype(str), "item_id": rng.integers(0, 6, n).astype(str),
                           "timestamp": rng.integers(0, 5, n)})
    ds = build_dataset(events, None, Config())
    expected = int(events.astype(str).duplicated().sum())
    assert expected > 0 and ds.report["duplicate_events"] == expected
    events["timestamp"] = np.arange(n)  # no ties in time: nothing repeats
    assert build_dataset(events, None, Config()).report["duplicate_events"] == 0


def test_whole_float_ids_beyond_int64_keep_their_digits() -> None:
    """A float id column (Parquet) with whole numbers past int64 (found by hypothesis: 2**63 made the
    Int64 cast raise a TypeError): every whole number is written as its digits, nothing crashes."""
    import pandas as pd

    from whatnext.data.columns import id_text

    assert id_text(pd.Series([7.0, 2.0**63, 1e30])).tolist() == ["7", "9223372036854775808", str(int(1e30))]
    assert id_text(pd.Series([7.0, 8.0])).tolist() == ["7", "8"]
    assert id_text(pd.Series([7.0, float("inf")])).tolist() == ["7.0", "inf"]
