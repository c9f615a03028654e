"""MBPP (Austin et al. 2021, "Program Synthesis with Large Language Models"), both releases.

Rows of the original release have ``task_id``, ``text``, ``code``, ``test_list``,
``test_setup_code`` and ``challenge_test_list``; rows of the sanitized release have
``task_id``, ``prompt``, ``code``, ``test_imports`` and ``test_list``. The form is detected per
row. ``code`` becomes the reference; ``challenge_test_list`` is kept in metadata only.

Prompt (``metadata["prompt_style"] == "docstring-first-test"``): the problem text and the first
test inside a docstring, ``'\"\"\"\\n{text}\\n{first test}\\n\"\"\"\\n'``, as in evalplus's MBPP+
and bigcode-evaluation-harness. The first test is also the task's public test.

Hidden tests (``metadata["test_form"]``): ``"call"`` when every assert is one call of the same
function with literal arguments, compared with ``==`` (or ``is``) to a literal, or within one
shared float tolerance (``math.isclose(f(x), y, rel_tol=t)``, ``abs(f(x) - y) < t``): then each
assert is a :class:`CallCase`. Otherwise ``"check"``: the asserts run as one :class:`CheckTest`
on the trusted side, every function they call that the reference defines bound to a proxy.

The sandbox compares call cases with type-aware equality, which is not Python's ``==``: it
accepts a list for a tuple and refuses ``1`` for ``True``. With ``call_cases="faithful"`` (the
default) an assert converts only where both agree, i.e. its expected value holds no bool, list,
tuple or set outside dict keys, and a tolerance check converts only where the sandbox's
tolerance (relative and absolute alike) gives the same answer; the rest fall back to ``check``.
``"ast"`` converts everything the AST allows; ``"never"`` keeps every task in ``check`` form.
"""

from __future__ import annotations

import ast
import builtins
import os
import warnings
from typing import Any

from execrl.errors import DataError
from execrl.sandbox import CallCase, CheckTest, Compare
from execrl.tasks._model import Task, Tests
from execrl.tasks._rows import json_plain, read_rows, require

HF_NAME = "google-research-datasets/mbpp"  # config "full" (default) or "sanitized": "...:sanitized"
PROMPT_STYLE = "docstring-first-test"
SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}  # by task_id
CALL_CASES = ("faithful", "ast", "never")
_NO = object()


def load(path: str | None = None, *, split: str | None = None, call_cases: str = "faithful") -> dict[str, Task]:
    """Read MBPP (original or sanitized; a file or a Hugging Face dataset) into ``{task_id: Task}``.

    ``split`` (prompt, test, validation, train) selects the paper's task-id ranges from a
    file, or the split of a Hugging Face dataset (default ``test``).
    """
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown MBPP split {split!r}; choose one of: {', '.join(SPLITS)}")
    if call_cases not in CALL_CASES:
        raise DataError(f"call_cases must be one of {', '.join(CALL_CASES)}, not {call_cases!r}")
    path = path or HF_NAME
    is_file = os.path.isfile(path)
    lo, hi = SPLITS[split] if split and is_file else (0, float("inf"))
    tasks: dict[str, Task] = {}
    for where, row in read_rows(path, hf_split=split or "test"):
        task = _task(row, where, call_cases, os.path.basename(path) if is_file else path)
        if not lo <= task.metadata["mbpp_id"] <= hi:
            continue
        if task.task_id in tasks:
            raise DataError(f"{where}: duplicate task_id {task.task_id!r}")
        tasks[task.task_id] = task
    if not tasks:
        raise DataError(f"{path}: no problems" + (f" in split {split!r}" if split else ""))
    return tasks


def make_prompt(text: str, first_test: str) -> str:
    return f'"""\n{text.strip()}\n{first_test.strip()}\n"""\n'


def _task(row: dict[str, Any], where: str, call_cases: str, source: str) -> Task:
    if "text" in row:
        form, text_key = "full", "text"
        prelude = row.get("test_setup_code") or ""
    elif "prompt" in row:
        form, text_key = "sanitized", "prompt"
        prelude = "\n".join(row.get("test_imports") or [])
    else:
        raise DataError(f"{where}: neither MBPP's 'text' nor sanitized MBPP's 'prompt' field")
    require(row, where, ("task_id", text_key, "code", "test_list"), {text_key: str, "code": str, "test_list": list})
    asserts = row["test_list"]
    if not asserts or not all(isinstance(a, str) for a in asserts):
        raise DataError(f"{where}: 'test_list' must be a non-empty list of strings")
    num = row["task_id"]
    if isinstance(num, str) and num.isdigit():
        num = int(num)
    if not isinstance(num, int) or isinstance(num, bool):
        raise DataError(f"{where}: 'task_id' must be an integer, not {row['task_id']!r}")
    # The reference's own imports are benchmark text too; tests may use them (mbpp/596: `sys`).
    prelude = "\n".join(p for p in (prelude, _imports(row["code"])) if p)
    try:
        tests, compare, test_form, entry = build_tests(asserts, prelude=prelude, reference=row["code"],
                                                       call_cases=call_cases)
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    public = tests[:1] if isinstance(tests, tuple) else CheckTest(asserts[0], entry, prelude, tests.functions)
    return Task(
        task_id=f"mbpp/{num}",
        prompt=make_prompt(row[text_key], asserts[0]),
        tests=tests,
        entry_point=entry,
        reference=row["code"],
        public_tests=public,
        compare=compare,
        metadata={"source": source, "mbpp_id": num, "mbpp_form": form, "prompt_style": PROMPT_STYLE,
                  "test_form": test_form, "challenge_tests": list(row.get("challenge_test_list") or [])},
    )


def build_tests(asserts: list[str], *, prelude: str = "", reference: str | None = None,
                call_cases: str = "faithful") -> tuple[Tests, Compare, str, str]:
    """``(tests, compare, test_form, entry_point)`` for a list of assert statements."""
    if call_cases != "never":
        calls = [assert_to_call(a, faithful=call_cases == "faithful") for a in asserts]
        if all(calls) and len({c.fn_name for c, _ in calls}) == 1 and len({tol for _, tol in calls}) == 1:
            return tuple(c for c, _ in calls), Compare(float_tol=calls[0][1]), "call", calls[0][0].fn_name
    entry, *others = called_functions(asserts, prelude, reference)
    return CheckTest("\n".join(asserts), entry, prelude, tuple(others)), Compare(), "check", entry


def assert_to_call(statement: str, *, faithful: bool = True) -> tuple[CallCase, float | None] | None:
    """``(case, float_tol)`` for an assert the sandbox can judge as a call case, else None."""
    try:
        body = _parse(statement.strip()).body
    except SyntaxError:
        return None
    if len(body) != 1 or not isinstance(body[0], ast.Assert) or body[0].msg is not None:
        return None
    test = body[0].test
    if isinstance(test, ast.Call) and _is_isclose(test.func):
        return _isclose_case(test, faithful)
    if not isinstance(test, ast.Compare) or len(test.ops) != 1:
        return None
    op, left, right = test.ops[0], test.left, test.comparators[0]
    if isinstance(op, ast.Eq):
        call, lit = (left, right) if _call(left) else (right, left)
        parsed, value = _call(call), _literal(lit)
        if parsed and value is not _NO and (not faithful or _faithful(value)):
            return CallCase(parsed[0], parsed[1], value), None
    elif isinstance(op, ast.Is) and isinstance(right, ast.Constant) and (right.value is None or right.value in (True, False)):
        parsed = _call(left)  # `is` compares exactly as type-aware equality does
        if parsed and not _number(right.value):
            return CallCase(parsed[0], parsed[1], right.value), None
    elif isinstance(op, (ast.Lt, ast.LtE)):
        return _abs_case(left, _literal(right), faithful)
    return None


def called_functions(asserts: list[str], prelude: str = "", reference: str | None = None) -> list[str]:
    """Names the asserts call that belong to the program, in order of first use: those the
    reference defines, or without a parseable reference, those neither builtin nor set up by
    the prelude. The first is the entry point."""
    defined, known = _top_level_names(reference), _top_level_names(prelude) | set(dir(builtins))
    names: dict[str, None] = {}
    for a in asserts:
        try:
            nodes = [n for n in ast.walk(_parse(a.strip())) if isinstance(n, ast.Call)]
        except SyntaxError:
            raise DataError(f"test is not valid Python: {a.strip()[:80]!r}") from None
        for n in sorted(nodes, key=lambda n: (n.lineno, n.col_offset)):
            if isinstance(n.func, ast.Name) and (n.func.id in defined if defined else n.func.id not in known):
                names.setdefault(n.func.id)
    if not names:
        raise DataError("the tests call no function of the program")
    return list(names)


def _parse(source: str) -> ast.Module:
    with warnings.catch_warnings():  # benchmark code has invalid escapes ('\w'): not our warning to give
        warnings.simplefilter("ignore")
        return ast.parse(source)


def _top_level_names(source: str | None) -> set[str]:
    try:
        body = _parse(source or "").body
    except SyntaxError:
        return set()
    names = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _imports(source: str) -> str:
    try:
        body = _parse(source).body
    except SyntaxError:
        return ""
    return "\n".join(ast.unparse(n) for n in body if isinstance(n, (ast.Import, ast.ImportFrom)))


def _call(node: ast.AST) -> tuple[str, list[Any]] | None:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)) or node.keywords:
        return None
    if node.func.id in dir(builtins):
        return None
    args = [_literal(a) for a in node.args]
    return None if any(a is _NO for a in args) or not json_plain(args) else (node.func.id, args)


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NO


def _faithful(value: Any) -> bool:
    """Whether type-aware equality judges any answer against ``value`` as Python's ``==``
    does (up to answering ``True`` for ``1``, which it refuses)."""
    if isinstance(value, (bool, list, tuple, set, frozenset)):
        return False
    if isinstance(value, dict):
        return all(_faithful(v) for v in value.values())
    return True


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_isclose(func: ast.AST) -> bool:
    return (isinstance(func, ast.Name) and func.id == "isclose") or (
        isinstance(func, ast.Attribute) and func.attr == "isclose"
        and isinstance(func.value, ast.Name) and func.value.id == "math")


def _isclose_case(test: ast.Call, faithful: bool) -> tuple[CallCase, float] | None:
    if len(test.args) != 2:
        return None
    first, second = test.args
    call, lit = (first, second) if _call(first) else (second, first)
    parsed, expected = _call(call), _literal(lit)
    kw = {k.arg: _literal(k.value) for k in test.keywords}
    rel, tol_abs = kw.pop("rel_tol", 1e-9), kw.pop("abs_tol", 0.0)
    if not parsed or kw or not all(_number(v) for v in (expected, rel, tol_abs)):
        return None
    # the sandbox's tolerance t is relative and absolute: isclose(rel_tol=t) agrees when |y| >= 1
    if faithful and not (isinstance(expected, float) and (rel == tol_abs or (tol_abs == 0 and abs(expected) >= 1))):
        return None
    return CallCase(parsed[0], parsed[1], expected), float(max(rel, tol_abs))


def _abs_case(left: ast.AST, tol: Any, faithful: bool) -> tuple[CallCase, float] | None:
    """``abs(f(x) - y) < t`` (or ``abs(y - f(x))``, ``<=``)."""
    if not (isinstance(left, ast.Call) and isinstance(left.func, ast.Name) and left.func.id == "abs"
            and len(left.args) == 1 and isinstance(left.args[0], ast.BinOp) and isinstance(left.args[0].op, ast.Sub)):
        return None
    a, b = left.args[0].left, left.args[0].right
    call, lit = (a, b) if _call(a) else (b, a)
    parsed, expected = _call(call), _literal(lit)
    if not parsed or not _number(expected) or not _number(tol) or tol <= 0:
        return None
    # an absolute tolerance t agrees with the sandbox's relative-and-absolute one while |y| + t <= 1
    if faithful and abs(expected) + tol > 1:
        return None
    return CallCase(parsed[0], parsed[1], expected), float(tol)
