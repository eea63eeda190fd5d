"""Network price spec (``hardware/network/*.yaml``): what a switch and each kind of link cost.

Link kinds: ``endpoint`` (NIC to its first switch), ``electrical`` (switch to switch inside a
rack: copper), ``optical`` (between neighbouring racks), ``optical_long`` (across rows, the
longest length class). Prices in USD per unit; every price carries the spec's ``source:``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from planner.specs._types import SPEC_CONFIG, NonNegFloat, PosFloat, PosInt, Str


@dataclass(frozen=True, kw_only=True)
class NetworkPrices:
    __pydantic_config__ = SPEC_CONFIG
    source: Str
    switch_radix: PosInt
    link_gbit_per_s: PosFloat
    switch_usd: NonNegFloat
    endpoint_link_usd: NonNegFloat
    electrical_link_usd: NonNegFloat
    optical_link_usd: NonNegFloat
    optical_long_link_usd: NonNegFloat
    name: Optional[Str] = None
    display_name: Optional[Str] = None
    notes: Optional[Str] = None

    def link_usd(self) -> dict[str, float]:
        """Price per link of each kind (USD)."""
        return {"endpoint": self.endpoint_link_usd, "electrical": self.electrical_link_usd,
                "optical": self.optical_link_usd, "optical_long": self.optical_long_link_usd}
