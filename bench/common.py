"""What the benchmarks share: the customer messages they send and how they summarise."""
from __future__ import annotations

from typing import List

# First turns of typical conversations, both languages, each starting a different flow.
MESSAGES = [
    "親子丼に別卵が付いていませんでした",
    "my order is missing the fries",
    "注文した料理がまだ届きません",
    "the mug arrived broken",
    "注文をキャンセルしたいです",
    "where is my order?",
]


def percentile(values: List[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction 0.5 = median) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]
