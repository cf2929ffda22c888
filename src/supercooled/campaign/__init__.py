"""Resumable simulation campaigns that fill the state-point library.

A campaign file (:mod:`~supercooled.campaign.config`: the TOML schema and its checks) lists
series of state points; :mod:`~supercooled.campaign.policy` decides, as pure functions, how
long each state runs, when a series ends, which seed an attempt gets and what it costs;
:mod:`~supercooled.campaign.progress` reads where a campaign stands from the library, its
event log and the checkpoints in scratch; :mod:`~supercooled.campaign.runner` runs the states
on dask workers and logs every event; :mod:`~supercooled.campaign.report` writes the library's
table and README and plans what is left for ``supercooled campaign --status``. The entry
points are re-exported here.
"""

from supercooled.campaign.config import Campaign, StateSpec, load_campaign, parse_campaign
from supercooled.campaign.report import refresh_library_readme, write_library_readme
from supercooled.campaign.runner import run_campaign

__all__ = ["Campaign", "StateSpec", "load_campaign", "parse_campaign", "refresh_library_readme",
           "run_campaign", "write_library_readme"]
