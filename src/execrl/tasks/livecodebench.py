"""LiveCodeBench code generation (Jain et al. 2024, "LiveCodeBench: Holistic and Contamination
Free Evaluation of Large Language Models for Code"), in its ``code_generation_lite`` format.

Rows have ``question_title``, ``question_content``, ``platform``, ``question_id``,
``contest_id``, ``contest_date`` (ISO), ``starter_code``, ``difficulty``,
``public_test_cases`` (a JSON string: a list of ``{input, output, testtype}``),
``private_test_cases`` (the same as JSON, or base64 of a zlib-compressed pickle of that JSON
string: it is unpickled with an unpickler that refuses every class, so only plain str, list
and dict payloads load) and ``metadata`` (a JSON string; ``func_name`` for LeetCode problems).

- ``testtype == "stdin"``: :class:`StdioCase`, compared ignoring runs of whitespace.
- ``testtype == "functional"``: :class:`CallCase` on ``func_name``; the input holds one JSON
  value per line, one per argument, and the output is JSON. LiveCodeBench calls the method of
  ``Solution()`` (``metadata["call_style"] == "method"``): the program must make ``func_name``
  callable by name.

Hidden tests are public + private, as LiveCodeBench grades; public tests are the public ones.
``since``/``until`` (ISO dates, inclusive) keep problems by ``contest_date``, to evaluate only
on problems released after a model's training cut-off. No solutions ship, so no reference.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import json
import pickle
import struct
import zlib
from typing import Any

from execrl.errors import DataError
from execrl.sandbox import CallCase, StdioCase
from execrl.tasks._model import Task
from execrl.tasks._rows import collect_tasks, require

HF_NAME = "livecodebench/code_generation_lite"
FIELDS = ("question_title", "question_content", "platform", "question_id", "contest_date",
          "public_test_cases", "private_test_cases")
MAX_PRIVATE_BYTES = 1 << 30  # decompressed size of one problem's private tests
PROMPT_STYLE = "lcb"


def load(path: str | None = None, *, split: str | None = None, since: str | None = None,
         until: str | None = None) -> dict[str, Task]:
    """Read LiveCodeBench (a file, or a Hugging Face split, default ``test``) into ``{task_id:
    Task}``, keeping problems whose contest date is within ``since``..``until`` (inclusive)."""
    path = path or HF_NAME
    lo, hi = _date(since, "since"), _date(until, "until")

    def in_window(row: dict[str, Any], where: str, source: str) -> Task | None:
        require(row, where, FIELDS, {"question_content": str, "platform": str, "question_id": (str, int),
                                     "contest_date": str, "public_test_cases": str, "private_test_cases": str})
        try:
            day = dt.datetime.fromisoformat(row["contest_date"]).date()
        except ValueError:
            raise DataError(f"{where}: contest_date {row['contest_date']!r} is not an ISO date") from None
        if (lo and day < lo) or (hi and day > hi):
            return None
        return _task(row, where, source, day)

    tasks, _ = collect_tasks(path, split, in_window, "question_id")
    if not tasks:
        window = f" between {since or 'the start'} and {until or 'now'}" if since or until else ""
        raise DataError(f"{path}: no problems{window}")
    return tasks


def make_prompt(question: str, starter_code: str) -> str:
    if starter_code.strip():
        fmt = ("Use the starter code below to write your solution, and put your code between the delimiters.\n"
               f"```python\n{starter_code}\n```")
    else:
        fmt = ("Read the input from standard input, solve the problem and write the answer to standard output "
               "(do not just test on the sample inputs). Put your code between the delimiters.\n"
               "```python\n# YOUR CODE HERE\n```")
    return f"### Question:\n{question}\n\n### Format: {fmt}\n\n### Answer: (use the provided format with backticks)\n\n"


def decode_private(text: str) -> list[Any]:
    """``private_test_cases`` as a list: JSON, or base64 of zlib of a pickle of that JSON."""
    try:
        payload: Any = json.loads(text)
    except json.JSONDecodeError:
        payload = _unpack(text)
    if not isinstance(payload, list):
        raise DataError(f"private_test_cases must be a list of tests, not {type(payload).__name__}")
    return payload


def _unpack(text: str) -> Any:
    d = zlib.decompressobj()
    try:
        data = d.decompress(base64.b64decode(text, validate=True), MAX_PRIVATE_BYTES)
        payload = None if d.unconsumed_tail else _PlainUnpickler(io.BytesIO(data)).load()
    except (binascii.Error, zlib.error, pickle.UnpicklingError, EOFError, ValueError, IndexError, KeyError,
            TypeError, AttributeError, OverflowError, struct.error) as exc:
        raise DataError(f"private_test_cases is neither JSON nor base64 zlib pickle ({exc})") from None
    if d.unconsumed_tail:
        raise DataError(f"private tests exceed {MAX_PRIVATE_BYTES >> 20} MB when decompressed")
    if not isinstance(payload, (str, list, dict)):
        raise DataError(f"private_test_cases holds a pickled {type(payload).__name__}, not JSON text")
    if isinstance(payload, str):
        try:
            return json.loads(payload)
        except json.JSONDecodeError as exc:
            raise DataError(f"private_test_cases: unpickled text is not JSON ({exc.msg})") from None
    return payload


class _PlainUnpickler(pickle.Unpickler):
    """Loads pickles of plain values only: every class or function reference is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain data is allowed")


def _task(row: dict[str, Any], where: str, source: str, day: dt.date) -> Task:
    meta = _json(row.get("metadata") or "{}", where, "metadata")
    if not isinstance(meta, dict):
        raise DataError(f"{where}: metadata must be a JSON object")
    try:
        public = _json(row["public_test_cases"], where, "public_test_cases")
        private = decode_private(row["private_test_cases"])
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    if not isinstance(public, list):
        raise DataError(f"{where}: public_test_cases must be a JSON list")
    kinds = {t.get("testtype") if isinstance(t, dict) else None for t in public + private}
    if len(kinds) != 1 or kinds & {None}:
        raise DataError(f"{where}: tests must all be 'stdin' or all 'functional', found {sorted(map(str, kinds))}")
    kind = kinds.pop()
    func = meta.get("func_name")
    if kind == "functional" and not (isinstance(func, str) and func.isidentifier()):
        raise DataError(f"{where}: functional tests need metadata func_name, got {func!r}")
    if kind not in ("stdin", "functional"):
        raise DataError(f"{where}: unknown testtype {kind!r}")
    cases = [_case(kind, t, func, where, i) for i, t in enumerate(public + private)]
    public_cases, hidden = tuple(cases[: len(public)]), tuple(cases)
    if not hidden:
        raise DataError(f"{where}: no tests")
    qid = str(row["question_id"])
    return Task(
        task_id=f"lcb/{qid}" if qid.isdigit() else qid,
        prompt=make_prompt(row["question_content"], row.get("starter_code") or ""),
        tests=hidden,
        entry_point=func if kind == "functional" else None,
        public_tests=public_cases,
        metadata={"source": source, "platform": row["platform"], "title": row.get("question_title"),
                  "contest_id": row.get("contest_id"), "contest_date": day.isoformat(),
                  "difficulty": row.get("difficulty"), "prompt_style": PROMPT_STYLE,
                  "test_form": "call" if kind == "functional" else "stdio", "func_name": func,
                  "call_style": "method" if kind == "functional" else None},
    )


def _case(kind: str, test: dict[str, Any], func: str | None, where: str, i: int) -> StdioCase | CallCase:
    """Test ``i`` (public tests first, then private)."""
    if not isinstance(test.get("input"), str) or not isinstance(test.get("output"), str):
        raise DataError(f"{where}: test {i} needs string 'input' and 'output'")
    if kind == "stdin":
        return StdioCase(test["input"], test["output"])
    lines = test["input"].strip("\n").split("\n")
    args = [_json(line, where, f"test {i} input") for line in lines]
    return CallCase(func, args, _json(test["output"], where, f"test {i} output"))


def _json(text: str, where: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DataError(f"{where}: {what} is not valid JSON ({getattr(exc, 'msg', exc)})") from None


def _date(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except (ValueError, TypeError):
        raise DataError(f"{name}={value!r} is not an ISO date (YYYY-MM-DD)") from None
