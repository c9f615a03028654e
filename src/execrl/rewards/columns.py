"""Tests as a dataset column: what a TRL dataset row carries so a reward can judge a completion.

A row made by :func:`task_rows` has ``prompt``, ``task_id``, ``entry_point``, ``tests`` and
``public_tests``; the test columns are JSON strings (Arrow-friendly) in the sandbox codec's
tagged form, so tuples, sets and bytes survive the trip.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any, NamedTuple

from execrl.errors import DataError
from execrl.sandbox import CallCase, CheckTest, Compare, Limits, StdioCase
from execrl.sandbox._codec import loads as _codec_loads
from execrl.sandbox._codec import to_plain
from execrl.tasks import Task

Tests = CheckTest | tuple[CallCase, ...] | tuple[StdioCase, ...]


class TestSpec(NamedTuple):
    """What a test column carries: the tests, how answers compare, and the task's own limits."""

    tests: Tests | tuple
    compare: Compare
    limits: Limits | None


def encode_tests(tests: Tests | tuple, compare: Compare | None = None, limits: Limits | None = None) -> str:
    """Tests (with the task's comparison settings and limits) -> a JSON string for a dataset
    column ("" for no tests)."""
    if isinstance(tests, CheckTest):
        spec: dict[str, Any] = {"kind": "check", "test": tests.test, "entry_point": tests.entry_point,
                                "prelude": tests.prelude, "functions": list(tests.functions)}
    elif not tests:
        return ""
    elif all(isinstance(t, CallCase) for t in tests):
        spec = {"kind": "call", "cases": [[t.fn_name, to_plain(list(t.args)), to_plain(t.expected)] for t in tests]}
    elif all(isinstance(t, StdioCase) for t in tests):
        spec = {"kind": "stdio", "cases": [[t.stdin, t.expected_stdout] for t in tests]}
    else:
        raise ValueError("tests must be a CheckTest or a list of CallCase or of StdioCase")
    if compare is not None and compare != Compare():
        spec["compare"] = dataclasses.asdict(compare)
    if limits is not None:
        spec["limits"] = dataclasses.asdict(limits)
    return json.dumps(spec)


def decode_spec(text: str | dict[str, Any]) -> TestSpec:
    """A test column back into sandbox tests, comparison and limits; a clear one-line
    DataError when malformed."""
    if text in ("", None):
        return TestSpec((), Compare(), None)
    try:
        spec = _codec_loads(text.encode() if isinstance(text, str) else json.dumps(text).encode())
        kind = spec["kind"]
        compare = Compare(**spec.get("compare", {}))
        limits = Limits(**spec["limits"]) if spec.get("limits") else None
        if kind == "check":
            tests: Any = CheckTest(spec["test"], spec["entry_point"], spec.get("prelude", ""),
                                   tuple(spec.get("functions", ())))
        elif kind == "call":
            tests = tuple(CallCase(fn, list(args), exp) for fn, args, exp in spec["cases"])
        elif kind == "stdio":
            tests = tuple(StdioCase(i, o) for i, o in spec["cases"])
        else:
            raise DataError(f"malformed tests column (unknown kind {kind!r})")
    except (ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"malformed tests column ({type(exc).__name__}: {exc})") from None
    return TestSpec(tests, compare, limits)


def decode_tests(text: str | dict[str, Any]) -> Tests | tuple:
    """The tests of a test column (see :func:`decode_spec` for comparison and limits)."""
    return decode_spec(text).tests


def task_rows(tasks: dict[str, Task] | Iterable[Task], chat: bool = False) -> list[dict[str, Any]]:
    """Dataset rows for TRL trainers: ``prompt`` (text, or a user message when ``chat``),
    ``task_id``, ``entry_point``, ``tests`` (hidden) and ``public_tests``. Wrap them with
    ``datasets.Dataset.from_list``."""
    items = tasks.values() if isinstance(tasks, dict) else tasks
    rows = []
    for t in items:
        prompt: Any = [{"role": "user", "content": t.prompt}] if chat else t.prompt
        rows.append({"prompt": prompt, "task_id": t.task_id, "entry_point": t.entry_point or "",
                     "tests": encode_tests(t.tests, t.compare, t.limits),
                     "public_tests": encode_tests(t.public_tests, t.compare, t.limits)})
    return rows
