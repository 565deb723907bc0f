"""Weight-sharing supernets trained across Ray Tune trials."""

from seminas_tune.supernet.sharing import (
    SharingConfig,
    SupernetTask,
    WeightStore,
    run_shared_trial,
    shared_supernet_trainable,
)

__all__ = ["SharingConfig", "SupernetTask", "WeightStore", "run_shared_trial", "shared_supernet_trainable"]
