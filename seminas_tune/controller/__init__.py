"""The encoder-predictor-decoder controller and its semi-supervised training."""

from seminas_tune.controller.epd import EPD, EPDConfig
from seminas_tune.controller.trainer import ControllerConfig, RoundRequest, RoundResult, run_round

__all__ = ["EPD", "ControllerConfig", "EPDConfig", "RoundRequest", "RoundResult", "run_round"]
