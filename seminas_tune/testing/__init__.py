"""Contract test suites for search spaces and searchers, for this package and yours.

Subclass :class:`SpaceContract` or :class:`SearcherContract` in a pytest module (see their
docstrings and ``docs/custom_space.md``); pytest then runs every check on your space or searcher.
Needs pytest.
"""

from seminas_tune.testing.searcher_contract import SearcherContract, drive
from seminas_tune.testing.space_contract import SpaceContract

__all__ = ["SearcherContract", "SpaceContract", "drive"]
