"""Recipes by name. Each recipe module defines ``Config`` (one dataclass, every field
documented) and ``main(cfg, force_new=False) -> dict`` (the run's summary: run directory,
pass@k before and after, final metrics). Modules load lazily: torch is imported only by the
recipe that runs."""

from __future__ import annotations

import importlib
from types import ModuleType

from execrl.errors import DataError

RECIPES: dict[str, str] = {
    "sft": "execrl.training.sft",
    "dpo": "execrl.training.dpo",
    "grpo": "execrl.training.grpo",
    "raft": "execrl.training.raft",
    "rloo": "execrl.training.rloo",
    "ppo": "execrl.training.ppo",
    "reward_model": "execrl.training.reward_model",
    "critic": "execrl.training.critic",
    "critic_pg": "execrl.training.critic_pg",
}
# Not a recipe of ``execrl train``, but loaded the same way: ``execrl demo`` runs it.
PIPELINES: dict[str, str] = {"demo": "execrl.training.demo"}


def recipe_module(name: str, table: dict[str, str] = RECIPES) -> ModuleType:
    """The module of recipe ``name`` in ``table`` (RECIPES or PIPELINES); a one-line error for
    unknown names."""
    if name not in table:
        raise DataError(f"unknown recipe {name!r}; choose one of: {', '.join(table)}")
    try:
        return importlib.import_module(table[name])
    except ImportError as exc:  # a missing optional dependency (torch, trl...) or module
        raise DataError(f"recipe {name!r} cannot load: {exc} (pip install 'execrl[train]')") from None
