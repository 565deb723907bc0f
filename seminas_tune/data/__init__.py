"""Bundled benchmark data and loaders (see docs/data.md for provenance)."""

from seminas_tune.data.tables import (
    DataChecksumError,
    NASBench101Data,
    NASBench201Data,
    load_nasbench201,
    verify_sha256,
)
from seminas_tune.data.tfrecord import load_nasbench101

__all__ = [
    "DataChecksumError",
    "NASBench101Data",
    "NASBench201Data",
    "load_nasbench101",
    "load_nasbench201",
    "verify_sha256",
]
