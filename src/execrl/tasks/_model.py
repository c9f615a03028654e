"""The task model shared by every loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from execrl.sandbox import CallCase, CheckTest, Compare, Limits, Run, StdioCase

Tests = CheckTest | tuple[CallCase, ...] | tuple[StdioCase, ...]


@dataclass(frozen=True)
class Task:
    """One problem.

    ``prompt`` is what the model sees; ``tests`` are the hidden tests that decide a verdict;
    ``public_tests`` (optional) are examples a model or reward may use; ``reference`` is a
    whole program that passes ``tests``.
    """

    task_id: str
    prompt: str
    tests: Tests
    entry_point: str | None = None
    reference: str | None = None
    public_tests: Tests | tuple = ()
    language: str = "python"
    compare: Compare = field(default_factory=Compare)
    metadata: dict[str, Any] = field(default_factory=dict)

    def run(self, program: str, limits: Limits | None = None, run_id: str | None = None) -> Run:
        """A sandbox :class:`Run` of ``program`` (a whole program) against the hidden tests."""
        return Run(program, self.tests, limits or Limits(), self.compare, id=run_id)
