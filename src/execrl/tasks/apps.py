"""APPS (Hendrycks et al. 2021, "Measuring Coding Challenge Competence With APPS").

Rows have ``problem_id``, ``question``, ``solutions`` (a JSON string: a list of programs),
``input_output`` (a JSON string: ``inputs``, ``outputs`` and, for call-based problems,
``fn_name``), ``difficulty``, ``starter_code`` and ``url``.

- With ``fn_name``: one :class:`CallCase` per input (each input is the argument list). APPS
  stores many call-based outputs wrapped in a one-element list, and its own harness accepts
  either ``out == expected`` or ``out == expected[0]``. A case has one expected value, so when
  *every* output of a problem is a one-element list the wrapper is removed
  (``metadata["unwrapped"]``); a problem mixing wrapped and unwrapped outputs is kept as is.
  LeetCode-style problems whose starter code is ``class Solution`` are marked
  ``metadata["call_style"] = "method"``: the program must make ``fn_name`` callable by name.
- Without: one :class:`StdioCase` per input (inputs and outputs given as lists of lines are
  joined with newlines), compared ignoring runs of whitespace. APPS's harness is more lenient
  still (it also tries float and set-of-lines comparisons); this is not.

The reference is the first solution. Rows whose ``input_output`` is empty, not JSON, or has no
usable cases are skipped with one logged warning giving the count (APPS has such rows); a file
in which no row is usable is an error. The prompt is APPS's own layout
(``metadata["prompt_style"] == "apps"``): question, starter code, "Use Call-Based format" or
"Use Standard Input format", then "ANSWER:".
"""

from __future__ import annotations

import json
import logging
from typing import Any

from execrl.errors import DataError
from execrl.sandbox import CallCase, StdioCase
from execrl.tasks._model import Task
from execrl.tasks._rows import collect_tasks, require

HF_NAME = "codeparrot/apps"
FIELDS = ("problem_id", "question", "input_output")
log = logging.getLogger(__name__)


def load(path: str | None = None, *, split: str | None = None) -> dict[str, Task]:
    """Read APPS (a file, or a Hugging Face split, default ``test``) into ``{task_id: Task}``."""
    path = path or HF_NAME
    tasks, skipped = collect_tasks(path, split, _task, "problem_id")
    if not tasks:
        raise DataError(f"{path}: no usable problems" + (f" ({skipped} rows without usable tests)" if skipped else ""))
    if skipped:
        log.warning("%s: skipped %d APPS rows without usable input_output", path, skipped)
    return tasks


def make_prompt(question: str, starter_code: str, call_based: bool) -> str:
    fmt = "Use Call-Based format" if call_based else "Use Standard Input format"
    return f"\nQUESTION:\n{question}\n{starter_code}\n{fmt}\nANSWER:\n"


def _task(row: dict[str, Any], where: str, source: str) -> Task | None:
    require(row, where, FIELDS, {"problem_id": (int, str), "question": str, "input_output": str})
    io = _input_output(row["input_output"])
    if io is None:
        return None
    fn_name = io.get("fn_name")
    if fn_name is not None and (not isinstance(fn_name, str) or not fn_name.isidentifier()):
        raise DataError(f"{where}: input_output fn_name must be a function name, not {fn_name!r}")
    inputs, outputs = io["inputs"], io["outputs"]
    unwrapped = False
    if fn_name:
        if not all(isinstance(a, list) for a in inputs):
            return None
        unwrapped = all(isinstance(o, list) and len(o) == 1 for o in outputs)
        tests: tuple = tuple(CallCase(fn_name, a, o[0] if unwrapped else o) for a, o in zip(inputs, outputs, strict=True))
    else:
        tests = tuple(StdioCase(_text(i), _text(o)) for i, o in zip(inputs, outputs, strict=True))
        if any(t.stdin is None or t.expected_stdout is None for t in tests):
            return None
    starter = row.get("starter_code") or ""
    pid = row["problem_id"]
    return Task(
        task_id=f"apps/{pid}",
        prompt=make_prompt(row["question"], starter, bool(fn_name)),
        tests=tests,
        entry_point=fn_name,
        reference=_first_solution(row.get("solutions")),
        metadata={"source": source, "difficulty": row.get("difficulty"), "url": row.get("url"), "prompt_style": "apps",
                  "test_form": "call" if fn_name else "stdio", "fn_name": fn_name, "unwrapped": unwrapped,
                  "call_style": "method" if "class Solution" in starter else "function"},
    )


def _input_output(text: str) -> dict[str, Any] | None:
    """The parsed ``input_output``, or None when the row has no usable cases."""
    try:
        io = json.loads(text) if text.strip() else None
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(io, dict):
        return None
    inputs, outputs = io.get("inputs"), io.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or not inputs or len(inputs) != len(outputs):
        return None
    return io


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return None


def _first_solution(solutions: Any) -> str | None:
    if not isinstance(solutions, str) or not solutions.strip():
        return None
    try:
        parsed = json.loads(solutions)
    except (json.JSONDecodeError, RecursionError):
        return None
    return parsed[0] if isinstance(parsed, list) and parsed and isinstance(parsed[0], str) else None
