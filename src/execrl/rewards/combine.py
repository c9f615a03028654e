"""Several rewards as one: a weighted sum, with each component logged on its own."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable, Iterable, Mapping
from typing import Any

RewardFn = Callable[..., Any]


class CombinedReward:
    """``sum(weight * component(...))`` per completion, with TRL's reward signature.

    A completion any component scores ``None`` (the sandbox failed on it) is ``None`` here
    too: a partial sum would silently reward it for the parts that happened to work. Each
    component's mean and std (and the ``None`` count) go to TRL's log through ``log_metric``
    and to :attr:`last_stats`. Async components are awaited.
    """

    def __init__(self, components: Iterable[tuple[RewardFn, float]], name: str = "combined") -> None:
        self.components = [(fn, float(w)) for fn, w in components]
        if not self.components:
            raise ValueError("combine() needs at least one (reward function, weight) pair")
        names = [_name(fn) for fn, _ in self.components]
        if len(set(names)) != len(names):
            raise ValueError(f"component names must differ (they label the logs): {names}")
        self.__name__ = name
        self.last_stats: dict[str, float] = {}

    def __call__(self, prompts: list[Any], completions: list[Any], completion_ids: Any = None,
                 **columns: Any) -> list[float | None]:
        totals: list[float | None] = [0.0] * len(completions)
        stats: dict[str, float] = {}
        for fn, weight in self.components:
            values = fn(prompts, completions, completion_ids, **columns)
            if asyncio.iscoroutine(values):
                values = asyncio.run(values)
            if len(values) != len(completions):
                raise ValueError(f"reward {_name(fn)!r} returned {len(values)} values for {len(completions)} completions")
            got = [v for v in values if v is not None]
            label = _name(fn)
            stats[f"{label}/mean"] = statistics.fmean(got) if got else 0.0
            stats[f"{label}/std"] = statistics.pstdev(got) if len(got) > 1 else 0.0
            stats[f"{label}/none"] = float(len(values) - len(got))
            for i, v in enumerate(values):
                totals[i] = None if v is None or totals[i] is None else totals[i] + weight * v
        self.last_stats = stats
        log_metric = columns.get("log_metric")
        if callable(log_metric):
            for k, v in stats.items():
                log_metric(f"execrl/{self.__name__}/{k}", v)
        return totals


def _name(fn: RewardFn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def combine(weights: Mapping[RewardFn, float] | Iterable[tuple[RewardFn, float]], name: str = "combined") -> CombinedReward:
    """One reward from several: ``combine({pass_all(): 1.0, RuffReward(): 0.1})``."""
    items = weights.items() if isinstance(weights, Mapping) else weights
    return CombinedReward(items, name)
