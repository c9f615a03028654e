"""execrl-synth: a generated family of small call-based Python problems in execrl-basic's style
and file format, sized for a model that trains from scratch on a laptop CPU.

Each problem is a template ("Return x times {a} plus {b}.") with its constants drawn: a typed
signature, a docstring stating the task with one doctest example (the public test), and five
hidden tests whose expected values come from the template's own Python function on the trusted
side (nothing is executed to make them). Problems sharing a template differ only in their
constants, so a held-out problem is a new combination of words and numbers the model has seen
separately: solving it takes reading the docstring, not recalling an answer.

``generate()`` returns rows in execrl-basic's format, so ``write()`` gives a file that
``execrl eval --benchmark execrl-basic --problems FILE`` and every recipe read unchanged;
``corpus()`` gives whole programs of the same family for pre-training, leaving out every
problem it is told to hold out.

>>> from execrl.tasks import synth
>>> rows = synth.generate(seed=0)
>>> rows[0]["task_id"].startswith("execrl-synth/")
True
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["TEMPLATES", "Template", "corpus", "count", "generate", "write"]

SOURCE = "execrl-synth"
CONSTANTS = range(2, 10)  # single-token numbers


@dataclass(frozen=True)
class Template:
    """One problem shape: ``doc`` and ``body`` with ``{a}``/``{b}`` placeholders, and ``fn``
    computing the expected value from the argument and the constants."""

    name: str
    kind: str  # "int" | "list" | "str": the argument's type
    doc: str
    body: str
    fn: Callable[..., Any]
    returns: str = "int"

    @property
    def constants(self) -> int:
        return ("{a}" in self.doc) + ("{b}" in self.doc)


TEMPLATES: tuple[Template, ...] = (
    Template("add", "int", "Return x plus {a}.", "x + {a}", lambda x, a, b: x + a),
    Template("subtract", "int", "Return x minus {a}.", "x - {a}", lambda x, a, b: x - a),
    Template("multiply", "int", "Return x times {a}.", "x * {a}", lambda x, a, b: x * a),
    Template("floor_divide", "int", "Return x divided by {a}, rounded down.", "x // {a}", lambda x, a, b: x // a),
    Template("remainder", "int", "Return the remainder of x divided by {a}.", "x % {a}", lambda x, a, b: x % a),
    Template("scale_add", "int", "Return x times {a} plus {b}.", "x * {a} + {b}", lambda x, a, b: x * a + b),
    Template("scale_sub", "int", "Return x times {a} minus {b}.", "x * {a} - {b}", lambda x, a, b: x * a - b),
    Template("add_scale", "int", "Return x plus {a}, all times {b}.", "(x + {a}) * {b}", lambda x, a, b: (x + a) * b),
    Template("at_least", "int", "Return the larger of x and {a}.", "max(x, {a})", lambda x, a, b: max(x, a)),
    Template("at_most", "int", "Return the smaller of x and {a}.", "min(x, {a})", lambda x, a, b: min(x, a)),
    Template("square_add", "int", "Return x squared plus {a}.", "x * x + {a}", lambda x, a, b: x * x + a),
    Template("sum_add", "list", "Return the sum of nums plus {a}.", "sum(nums) + {a}", lambda x, a, b: sum(x) + a),
    Template("max_scale", "list", "Return the largest item of nums times {a}.", "max(nums) * {a}",
             lambda x, a, b: max(x) * a),
    Template("count_above", "list", "Return how many items of nums are greater than {a}.",
             "len([v for v in nums if v > {a}])", lambda x, a, b: len([v for v in x if v > a])),
    Template("scale_all", "list", "Return nums with every item times {a}.", "[v * {a} for v in nums]",
             lambda x, a, b: [v * a for v in x], "list[int]"),
    Template("shift_all", "list", "Return nums with every item plus {a}.", "[v + {a} for v in nums]",
             lambda x, a, b: [v + a for v in x], "list[int]"),
    Template("keep_above", "list", "Return the items of nums greater than {a}.", "[v for v in nums if v > {a}]",
             lambda x, a, b: [v for v in x if v > a], "list[int]"),
    Template("repeat", "str", "Return s repeated {a} times.", "s * {a}", lambda x, a, b: x * a, "str"),
    Template("prefix", "str", "Return the first {a} characters of s.", "s[:{a}]", lambda x, a, b: x[:a], "str"),
    Template("drop_prefix", "str", "Return s without its first {a} characters.", "s[{a}:]",
             lambda x, a, b: x[a:], "str"),
    Template("tag", "str", "Return s followed by the digit {a}.", "s + \"{a}\"", lambda x, a, b: x + str(a), "str"),
)

_ARG = {"int": ("x", "int"), "list": ("nums", "list[int]"), "str": ("s", "str")}
_WORDS = ["ab", "cat", "hello", "xyz", "tree", "python", "q", "", "aaaa", "moon"]


def _arg(kind: str, rng: random.Random) -> Any:
    if kind == "int":
        return rng.randint(-20, 40)
    if kind == "list":
        return [rng.randint(-5, 12) for _ in range(rng.randint(1, 5))]
    return rng.choice(_WORDS)


def _program(t: Template, a: int, b: int, example: Any) -> tuple[str, str]:
    """(prompt, body) of template ``t`` with constants ``a``, ``b`` and one doctest example."""
    arg, typ = _ARG[t.kind]
    doc = t.doc.format(a=a, b=b)
    prompt = (f"def {t.name}({arg}: {typ}) -> {t.returns}:\n"
              f"    \"\"\"{doc}\n\n"
              f"    >>> {t.name}({example!r})\n"
              f"    {t.fn(example, a, b)!r}\n"
              f"    \"\"\"\n")
    return prompt, f"    return {t.body.format(a=a, b=b)}\n"


def _combos() -> list[tuple[Template, int, int]]:
    out = []
    for t in TEMPLATES:
        for a in CONSTANTS:
            for b in CONSTANTS if t.constants == 2 else [0]:
                out.append((t, a, b))
    return out


def _key(t: Template, a: int, b: int) -> str:
    return f"{t.name}/{a}" + (f"/{b}" if t.constants == 2 else "")


def count() -> int:
    """How many problems ``generate()`` returns (one per template and constants)."""
    return sum(len(CONSTANTS) ** t.constants for t in TEMPLATES)


def generate(seed: int = 0, tests: int = 5) -> list[dict[str, Any]]:
    """Every problem of the family (one per template and constants), in execrl-basic's row
    format; ``seed`` draws the example and test arguments."""
    rng = random.Random(seed)
    rows = []
    for i, (t, a, b) in enumerate(_combos()):
        args: list[Any] = []
        while len(args) < tests + 1:
            x = _arg(t.kind, rng)
            if x not in args and not (t.kind == "list" and not x):
                args.append(x)
        prompt, body = _program(t, a, b, args[0])
        cases = [{"args": [x], "expected": t.fn(x, a, b)} for x in args]
        rows.append({
            "task_id": f"{SOURCE}/{i}", "entry_point": t.name, "difficulty": "easy",
            "tags": [t.kind, t.name, _key(t, a, b)], "prompt": prompt, "reference": prompt + body,
            "public_tests": cases[:1], "hidden_tests": cases[1:],
        })
    return rows


def write(path: str, rows: list[dict[str, Any]]) -> str:
    """Write ``rows`` as an execrl-basic JSONL file (atomically); returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    os.replace(tmp, path)
    return path


_SWAPS = {" + ": " - ", " - ": " + ", " * ": " + ", " // ": " % ", " % ": " // ", " > ": " >= ", "max(": "min(",
          "min(": "max(", "[:": "[1:", "[v": "[v + 1"}


def mutate(body: str, rng: random.Random) -> str:
    """A plausible bug in ``body``: a constant off by one, or an operator swapped for a near one."""
    ops = [op for op in _SWAPS if op in body]
    digits = [i for i, ch in enumerate(body) if ch.isdigit()]
    if digits and (not ops or rng.random() < 0.5):
        i = rng.choice(digits)
        return body[:i] + str(int(body[i]) + rng.choice((-1, 1))) + body[i + 1:]
    op = rng.choice(ops)
    return body.replace(op, _SWAPS[op], 1)


def corpus(size: int, exclude: set[str] = frozenset(), seed: int = 0, docstrings: bool = True,
           bug_rate: float = 0.0) -> list[str]:
    """``size`` whole programs of the family for pre-training, each with a freshly drawn
    example; no program uses a template and constants whose key (a task's third tag, e.g.
    ``scale_add/3/4``) is in ``exclude``. Without ``docstrings`` a program is its signature
    and body only: code to learn the language from, with no task statement to learn to read.
    ``bug_rate`` is the share of programs given a plausible bug (:func:`mutate`), as code
    found in the wild has: a model trained on them writes wrong programs at about that rate,
    which is what execution feedback is there to fix."""
    rng, bugs = random.Random(seed), random.Random(f"bugs-{seed}")  # same programs at any bug_rate
    combos = [c for c in _combos() if _key(*c) not in exclude]
    if not combos:
        return []
    out = []
    for _ in range(size):
        t, a, b = rng.choice(combos)
        x = _arg(t.kind, rng)
        while t.kind == "list" and not x:
            x = _arg(t.kind, rng)
        prompt, body = _program(t, a, b, x)
        if bugs.random() < bug_rate:
            body = mutate(body, bugs)
        out.append((prompt if docstrings else prompt.split("\n", 1)[0] + "\n") + body)
    return out
