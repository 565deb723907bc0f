"""NAS-Bench-101 graph utilities and a TensorFlow-free ``nasbench.api``."""
