"""The text of what binds a serving step (:class:`planner.calc.serving.result.Bottleneck`)."""

from __future__ import annotations

from typing import Any

#: How each roofline side reads.
RESOURCE_LABELS = {"compute": "compute (FLOP/s)", "memory": "HBM bandwidth"}


def bottleneck_text(b: Any) -> str:
    """"network (<link>): communication X ms >= compute Y ms per step", or "<resource> in
    <part>"; the link names the EP traffic's and, after it, the TP all-reduces' ("; TP over")."""
    if b.resource != "network":
        return f"{RESOURCE_LABELS[b.resource]} in {b.part}"
    link = (f"{b.ep_link}; TP over {b.tp_link}" if b.ep_link and b.tp_link
            else b.ep_link or b.tp_link)
    return (f"network ({link}): communication {b.communication_s * 1e3:,.1f} ms >= compute "
            f"{b.compute_s * 1e3:,.1f} ms per step")
