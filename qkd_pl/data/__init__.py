"""Datasets as tensors: loading (``sources``), class subsets, caps and splits (``splits``),
and the assembled train/validation/test bundle with normalization statistics (``bundle``)."""

from .bundle import DataBundle, load_data
from .sources import DATASETS, data_root

__all__ = ["DATASETS", "DataBundle", "data_root", "load_data"]
