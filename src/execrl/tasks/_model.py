"""The task model shared by every loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from execrl.sandbox import CallCase, CheckTest, Compare, Limits, Run, StdioCase

Tests = CheckTest | tuple[CallCase, ...] | tuple[StdioCase, ...]


def is_script(tests: Any) -> bool:
    """Whether ``tests`` judge a program on stdin/stdout: every one a :class:`StdioCase`."""
    return isinstance(tests, tuple) and bool(tests) and all(isinstance(t, StdioCase) for t in tests)


@dataclass(frozen=True)
class Task:
    """One problem.

    ``prompt`` is what the model sees; ``tests`` are the hidden tests that decide a verdict;
    ``public_tests`` (optional) are examples a model or reward may use (often shown in the
    prompt); ``reference`` is a whole program that passes ``tests``; ``limits`` are the task's
    own limits (a contest's time limit), used unless the caller overrides them.
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
    limits: Limits | None = None

    @property
    def is_script(self) -> bool:
        """Whether the task judges a whole program on stdin/stdout (APPS, CodeContests)
        rather than a function; code extraction keeps such a program's top-level calls."""
        return is_script(self.tests)

    def run(self, program: str, limits: Limits | None = None, run_id: str | None = None) -> Run:
        """A sandbox :class:`Run` of ``program`` (a whole program) against the hidden tests."""
        return Run(program, self.tests, limits or self.limits or Limits(), self.compare, id=run_id)

    def public_run(self, program: str, limits: Limits | None = None, run_id: str | None = None) -> Run | None:
        """The same against the public tests, or None when the task has none."""
        if not self.public_tests:
            return None
        return Run(program, self.public_tests, limits or self.limits or Limits(), self.compare, id=run_id)
