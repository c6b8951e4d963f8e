"""Data: file readers (CSV/TSV, Parquet, MovieLens, compressed text, the legacy pickle through
``safepickle``), event times (``times``), what columns mean (``columns``: id keys, multi-valued
columns, features), the validated :class:`Dataset` with its catalogue and time-ordered histories
(``dataset``), the demo generator (``demo``) and dataset statistics (``stats``).

May import: numpy, pandas, pyarrow, :mod:`whatnext.config` and :mod:`whatnext.errors`. Never torch,
the models, the learning code or evaluation: data is loaded before anything learns from it.
"""

from whatnext.data.dataset import PAD, Catalogue, Dataset, Histories, build_dataset, load_dataset, pad_histories

__all__ = ["PAD", "Catalogue", "Dataset", "Histories", "build_dataset", "load_dataset", "pad_histories"]
