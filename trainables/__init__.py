"""Ray Tune trainables: NAS-Bench lookups and weight-sharing supernets."""

from trainables.nasbench import (
    evaluate_nasbench101,
    evaluate_nasbench201,
    make_nasbench101_trainable,
    make_nasbench201_trainable,
    nasbench101_trainable,
    nasbench201_trainable,
)

__all__ = [
    "evaluate_nasbench101",
    "evaluate_nasbench201",
    "make_nasbench101_trainable",
    "make_nasbench201_trainable",
    "nasbench101_trainable",
    "nasbench201_trainable",
]
