"""On-demand prices from the table shipped in ``awsac_tui/data/prices.toml`` (its only reader),
and the cost estimate made from them."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PRICES_TOML = Path(__file__).resolve().parent.parent / "data" / "prices.toml"


@functools.cache
def _regions() -> dict[str, dict[str, float]]:
    table = tomllib.loads(PRICES_TOML.read_text(encoding="utf-8"))
    return table.get("regions", {})


def price_table(region: str | None) -> dict[str, float]:
    """USD per hour by instance type in ``region`` (us-east-1's when the region has none)."""
    regions = _regions()
    return dict(regions.get(region or "us-east-1") or regions.get("us-east-1") or {})


@dataclass(frozen=True)
class CostEstimate:
    instance_type: str
    n_instances: int
    hours: float
    price_per_hour: float | None
    total: float | None
    region: str
    note: str = field(default="")


def estimate_cost(
    instance_type: str, n_instances: int, hours: float, region: str = "us-east-1"
) -> CostEstimate:
    """On-demand cost from the price table shipped in ``awsac_tui/data/prices.toml``."""
    price = price_table(region).get(instance_type)
    note = "" if price is not None else f"no price for {instance_type} in the shipped table"
    total = round(price * n_instances * hours, 4) if price is not None else None
    return CostEstimate(instance_type, n_instances, hours, price, total, region, note)
