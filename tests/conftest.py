"""Shared fixtures: one Ray instance for the whole test session."""

import os

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU; run on the GPU machine with -m gpu")
    config.addinivalue_line("markers", "slow: takes more than ~30 s")


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray instance shared by every test that needs one (2 CPUs, like CI)."""
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if not ray.is_initialized():
        ray.init(
            num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False, namespace="seminas_tests"
        )
    yield ray
    ray.shutdown()
