"""execrl-basic: our own set of small call-based Python problems, the default data for CPU demos.

Each problem is a typed function signature whose docstring states the task and shows two or three
doctest examples; a model continues the prompt with the body. The docstring examples are the
task's ``public_tests``; 6-12 further cases (empty inputs, zero, negatives, large values, unicode)
are the hidden ``tests`` that decide a verdict. Roughly half the problems are easy one-liners
(sum a list, reverse a string), a third medium (hashing, two pointers, string building, dates,
integer geometry) and the rest hard (dynamic programming, recursion, parsing), so a tiny model
trained with RL on a CPU gets a useful reward signal.

How it was made: every problem, reference solution and test was written by hand for execrl (no
text taken from HumanEval, MBPP or LeetCode); hidden expected values were produced by running the
reference, whose docstring examples were checked by hand. License: the same as the project,
Apache-2.0.

File format (``data/execrl_basic.jsonl``, one JSON object per line): ``task_id``,
``entry_point``, ``difficulty`` (easy | medium | hard), ``tags``, ``prompt``, ``reference`` (the
prompt plus a correct body), ``public_tests`` and ``hidden_tests`` (lists of
``{"args": [...], "expected": ...}``; ``"expected_tuple": true`` marks a tuple result), and an
optional ``float_tol``.

>>> from execrl.tasks import basic
>>> tasks = basic.load()                      # the shipped file; basic.load(path) reads another
>>> task = tasks["execrl-basic/0"]
>>> task.entry_point
'sum_list'
"""

from __future__ import annotations

import json
import os
from typing import Any

from execrl._jsonl import read_jsonl
from execrl.errors import DataError
from execrl.sandbox import CallCase, Compare
from execrl.tasks._model import Task

FIELDS = ("task_id", "entry_point", "difficulty", "tags", "prompt", "reference", "public_tests", "hidden_tests")
DIFFICULTIES = ("easy", "medium", "hard")
SOURCE = "execrl-basic"


def bundled_path() -> str:
    """Path of the problems file shipped inside the package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "execrl_basic.jsonl")


def load(path: str | None = None) -> dict[str, Task]:
    """Read an execrl-basic file (default: the shipped one) into ``{task_id: Task}``.

    Hidden tests become ``Task.tests`` and docstring examples ``Task.public_tests``, both as
    :class:`CallCase` of ``entry_point``. Raises :class:`DataError` naming the file, line and
    problem for a malformed row, a duplicate ``task_id`` or a hidden test that repeats a public one.
    """
    path = path or bundled_path()
    tasks: dict[str, Task] = {}
    for n, row in read_jsonl(path, FIELDS):
        where = f"{path} line {n}"
        for key in ("task_id", "entry_point", "prompt", "reference"):
            if not isinstance(row[key], str) or not row[key]:
                raise DataError(f"{where}: field {key!r} must be a non-empty string")
        task_id, entry_point = row["task_id"], row["entry_point"]
        where = f"{where} ({task_id})"
        if task_id in tasks:
            raise DataError(f"{where}: duplicate task_id {task_id!r}")
        if row["difficulty"] not in DIFFICULTIES:
            raise DataError(f"{where}: difficulty must be one of {', '.join(DIFFICULTIES)}, got {row['difficulty']!r}")
        tags = row["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise DataError(f"{where}: field 'tags' must be a list of strings")
        if not row["reference"].startswith(row["prompt"]):
            raise DataError(f"{where}: reference does not start with the prompt")
        float_tol = row.get("float_tol")
        if float_tol is not None and (isinstance(float_tol, bool) or not isinstance(float_tol, (int, float))
                                      or float_tol < 0):
            raise DataError(f"{where}: float_tol must be a non-negative number")
        public = _cases(row["public_tests"], "public_tests", entry_point, where)
        hidden = _cases(row["hidden_tests"], "hidden_tests", entry_point, where)
        if not hidden:
            raise DataError(f"{where}: hidden_tests is empty")
        public_args = {_key(case.args): i for i, case in enumerate(public)}
        for i, case in enumerate(hidden):
            if _key(case.args) in public_args:
                raise DataError(f"{where}: hidden test {i} repeats public test {public_args[_key(case.args)]}")
        tasks[task_id] = Task(
            task_id=task_id,
            prompt=row["prompt"],
            tests=hidden,
            entry_point=entry_point,
            reference=row["reference"],
            public_tests=public,
            compare=Compare(float_tol=float_tol),
            metadata={"difficulty": row["difficulty"], "tags": list(tags), "source": SOURCE},
        )
    if not tasks:
        raise DataError(f"{path}: no problems in file")
    return tasks


def _cases(value: Any, field: str, entry_point: str, where: str) -> tuple[CallCase, ...]:
    if not isinstance(value, list):
        raise DataError(f"{where}: field {field!r} must be a list of tests")
    cases = []
    for i, test in enumerate(value):
        if not isinstance(test, dict) or "args" not in test or "expected" not in test:
            raise DataError(f"{where}: {field}[{i}] must be an object with 'args' and 'expected'")
        if not isinstance(test["args"], list):
            raise DataError(f"{where}: {field}[{i}]: 'args' must be a list")
        expected = test["expected"]
        if test.get("expected_tuple"):
            if not isinstance(expected, list):
                raise DataError(f"{where}: {field}[{i}]: 'expected_tuple' needs a list 'expected'")
            expected = tuple(expected)
        cases.append(CallCase(entry_point, test["args"], expected))
    return tuple(cases)


def _key(args: list[Any]) -> str:
    """A canonical form of a test's arguments, to spot a hidden test that repeats a public one."""
    return json.dumps(args, sort_keys=True)
