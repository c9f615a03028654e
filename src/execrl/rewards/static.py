"""Static rewards: score how a completion's program looks, without running it.

Each reward turns a completion into its program with
:func:`~execrl.evaluation.extract.extract_program`, the program the sandbox would run (the
fenced block or the prompt continuation, sanitized), so code the sandbox drops (demo prints,
``__main__`` guards, test functions) is not scored either. Nothing here executes model code:
ruff, radon and bandit only parse it. The external tools (ruff, bandit) run once per batch, on
a temporary directory holding the batch's distinct programs.

Value tables ("broken": the program does not parse, or has no statement at all):

================  ===================================================  ==============
reward            value                                                broken program
================  ===================================================  ==============
SyntaxReward      1.0                                                  0.0
RuffReward        1 / (1 + violations); 1.0 when clean                 -1.0
ComplexityReward  w * MI / 100 + (1 - w) * max(0, 1 - (cc - 1) / s)    0.0
SecurityReward    -min(1, sum(severity * confidence) / 10); 0.0 clean  0.0
LengthReward      -(1 - exp(-(over**2 + under**2))); 0.0 within range  (not parsed)
FormatReward      1.0 / 0.75 / 0.5 / 0.25 / 0.0 by the answer's shape  0.25 or 0.0
================  ===================================================  ==============

All are callable objects with TRL's reward signature,
``reward(prompts, completions, completion_ids=None, **columns) -> list[float]``: they read the
``entry_point`` column when the dataset has one and report ``execrl/<name>/mean`` through
``log_metric`` when TRL passes it. A missing tool raises ImportError when the reward is built,
not in the middle of training.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from execrl.errors import DataError
from execrl.evaluation.extract import code_blocks, extract_program, parse_program

__all__ = [
    "BANDIT_CONFIDENCE",
    "BANDIT_SEVERITY",
    "ComplexityReward",
    "FormatReward",
    "LengthReward",
    "RuffReward",
    "SecurityReward",
    "SyntaxReward",
]

BANDIT_SEVERITY: dict[str, float] = {"LOW": 1.0, "MEDIUM": 3.0, "HIGH": 10.0}
BANDIT_CONFIDENCE: dict[str, float] = {"LOW": 0.3, "MEDIUM": 0.6, "HIGH": 1.0}

# Parsing adversarial text can blow the parser's stack or memory instead of raising SyntaxError.
_PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)


# -- inputs ---------------------------------------------------------------------------------------
def _content(x: Any) -> str:
    """A completion or prompt as text: strings as they are, a conversation by its last assistant
    message (the last message when none is the assistant's)."""
    if isinstance(x, str):
        return x
    if isinstance(x, list) and x and all(isinstance(m, dict) for m in x):
        message = next((m for m in reversed(x) if m.get("role") == "assistant"), x[-1])
        content = message.get("content", "")
        if isinstance(content, list):  # multimodal parts: keep the text ones
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content or "")
    return ""


def _module(code: str) -> ast.Module | None:
    """The AST of code that parses and has at least one statement, else None."""
    tree = parse_program(code)
    return tree if tree is not None and tree.body else None


@dataclass
class _Item:
    """One completion: the prompt text it continues (None for conversations), its text, and the
    entry point it should define (None when unknown)."""

    prompt: str | None
    text: str
    entry_point: str | None
    script: bool = False  # judged on stdin/stdout: its top-level code is the program

    @cached_property
    def program(self) -> str:
        try:
            return extract_program(self.text, self.prompt, self.entry_point, script=self.script)
        except (RecursionError, MemoryError):  # pathological nesting: score it as broken
            return self.text

    @cached_property
    def tree(self) -> ast.Module | None:
        return _module(self.program)


def _stdio_column(text: Any) -> bool:
    """Whether a ``tests`` column holds stdin/stdout tests (a malformed one: no; the
    execution reward reports it)."""
    from execrl.rewards.columns import decode_tests
    from execrl.tasks._model import is_script

    try:
        return is_script(decode_tests(text))
    except DataError:
        return False


def _defines(tree: ast.Module, entry_point: str | None) -> bool:
    """A top-level def/class named ``entry_point``; without one, any statement that is not a bare
    expression (prose that happens to parse, like ``hello``, is not code)."""
    if entry_point:
        return any(
            isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == entry_point
            for n in tree.body
        )
    return any(not isinstance(n, ast.Expr) for n in tree.body)


# -- external tools -------------------------------------------------------------------------------
def _find_tool(executable: str, module: str, install: str) -> list[str]:
    """The command that runs a tool: the executable next to this interpreter, else on PATH,
    else ``python -m module`` when the package is importable."""
    beside = Path(sys.executable).with_name(executable)
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which(executable)
    if found:
        return [found]
    if importlib.util.find_spec(module) is not None:
        return [sys.executable, "-m", module]
    raise ImportError(f"{executable} is not installed; install it with `pip install {install}`")


def _run_batch(tool: str, cmd: list[str], programs: list[str], timeout: float) -> tuple[str, list[str]]:
    """Run ``cmd`` once over all distinct programs, written as files in a temporary directory.

    Returns the tool's stdout and, for each program, its file name (duplicates share one).
    Files are passed by name, so no ignore rule of the tool can skip one.
    """
    unique = {p: f"p{i:05d}.py" for i, p in enumerate(dict.fromkeys(programs))}
    with tempfile.TemporaryDirectory(prefix="execrl-static-") as tmp:
        for program, name in unique.items():
            Path(tmp, name).write_text(program, encoding="utf-8", errors="replace")
        try:
            proc = subprocess.run(
                [*cmd, *unique.values()],
                cwd=tmp, capture_output=True, encoding="utf-8", errors="replace", timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{tool} took over {timeout} s on {len(unique)} programs") from None
    if proc.returncode not in (0, 1):  # both tools exit 1 when they report findings
        raise RuntimeError(f"{tool} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return proc.stdout, [unique[p] for p in programs]


# -- shared plumbing ------------------------------------------------------------------------------
class _StaticReward:
    """TRL plumbing shared by the rewards below (not an extension point: a reward is any
    callable with TRL's signature). Subclasses implement ``_score``."""

    def __init__(self, name: str, entry_point: str | None) -> None:
        self.__name__ = name
        self.entry_point = entry_point
        self.last_stats: dict[str, float] = {}

    def __call__(
        self, prompts: list[Any] | None, completions: list[Any], completion_ids: Any = None, **kwargs: Any
    ) -> list[float]:
        """Score a batch; ``kwargs`` are dataset columns plus TRL's ``trainer_state``,
        ``log_metric`` and ``log_extra`` (all optional)."""
        n = len(completions)
        column, tests = kwargs.get("entry_point"), kwargs.get("tests")
        items = [
            _Item(
                prompt=prompts[i] if prompts is not None and i < len(prompts) and isinstance(prompts[i], str) else None,
                text=_content(completions[i]),
                entry_point=(column[i] if column is not None else self.entry_point) or None,
                script=tests is not None and i < len(tests) and _stdio_column(tests[i]),
            )
            for i in range(n)
        ]
        self.last_stats = {}
        values = self._score(items) if items else []
        if values:
            self.last_stats["mean"] = statistics.fmean(values)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            for key, value in self.last_stats.items():
                log_metric(f"execrl/{self.__name__}/{key}", float(value))
        return values

    def _score(self, items: list[_Item]) -> list[float]:
        raise NotImplementedError


# -- rewards --------------------------------------------------------------------------------------
class SyntaxReward(_StaticReward):
    """Does the program parse?

    =====  ==============================================================
    value  when
    =====  ==============================================================
    1.0    the extracted program parses (``ast.parse``) and is not empty
    0.0    it does not parse, or has no statement (an empty answer)
    =====  ==============================================================

    The program is the extractor's, as the sandbox would run it: a torn last top-level
    statement it drops (a model cut off after the entry point) does not count.

    Args:
        entry_point: the function the program should define, for every sample; the
            ``entry_point`` column overrides it per sample.
        name: the reward's name in TRL's logs.
    """

    def __init__(self, entry_point: str | None = None, name: str = "syntax") -> None:
        super().__init__(name, entry_point)

    def _score(self, items: list[_Item]) -> list[float]:
        return [1.0 if item.tree is not None else 0.0 for item in items]


class RuffReward(_StaticReward):
    """Lint violations found by ruff, one ruff run per batch.

    =====================  ===========================================
    value                  when
    =====================  ===========================================
    1.0                    no violation
    1 / (1 + n)            n violations (0.5 for one, 0.25 for three)
    -1.0                   the program does not parse or is empty
    =====================  ===========================================

    Runs ``ruff check --output-format json --no-cache --isolated --ignore-noqa --select ...``
    (``--isolated``: no project config applies; ``--ignore-noqa``: a ``# noqa`` comment
    cannot buy a clean score). Ruff targets the running Python version.

    Args:
        select: rule codes or prefixes to check.
        ignore: rule codes to leave out.
        line_length: the E501 limit; None keeps ruff's default (88).
        timeout: seconds ruff may take per batch before the call raises RuntimeError.
        entry_point: the function the program should define (the column overrides it).
        name: the reward's name in TRL's logs.

    Raises:
        ImportError: ruff is not installed.
    """

    def __init__(
        self,
        select: Sequence[str] = ("E", "F", "W", "B"),
        ignore: Sequence[str] = (),
        line_length: int | None = None,
        timeout: float = 60.0,
        entry_point: str | None = None,
        name: str = "ruff",
    ) -> None:
        super().__init__(name, entry_point)
        self.command = _find_tool("ruff", "ruff", "ruff")
        self.select, self.ignore, self.line_length, self.timeout = tuple(select), tuple(ignore), line_length, timeout

    def _score(self, items: list[_Item]) -> list[float]:
        ok = [i for i, item in enumerate(items) if item.tree is not None]
        values = [-1.0] * len(items)
        if not ok:
            return values
        cmd = [*self.command, "check", "--output-format", "json", "--no-cache", "--isolated", "--ignore-noqa",
               "--target-version", f"py{sys.version_info.major}{sys.version_info.minor}",
               "--select", ",".join(self.select)]
        if self.ignore:
            cmd += ["--ignore", ",".join(self.ignore)]
        if self.line_length is not None:
            cmd += ["--line-length", str(self.line_length)]
        stdout, names = _run_batch("ruff", cmd, [items[i].program for i in ok], self.timeout)
        counts: dict[str, int] = {}
        for diagnostic in json.loads(stdout or "[]"):
            name = Path(diagnostic["filename"]).name
            counts[name] = counts.get(name, 0) + 1
        violations = [counts.get(name, 0) for name in names]
        for i, n in zip(ok, violations, strict=True):
            values[i] = 1.0 / (1 + n)
        self.last_stats["violations"] = statistics.fmean(violations)
        return values


class ComplexityReward(_StaticReward):
    """Simple, maintainable code, measured with radon.

    ``value = mi_weight * MI / 100 + (1 - mi_weight) * max(0, 1 - (cc - 1) / cc_scale)``

    =====  ================================================================================
    value  when
    =====  ================================================================================
    1.0    MI 100 and cc 1 (e.g. a one-line function)
    [0,1]  the blend above: with the defaults, each point of cc above 1 costs 0.05, and
           cc >= 11 leaves only the MI half
    0.0    the program does not parse or is empty, or radon cannot analyse it
    =====  ================================================================================

    - ``cc``: cyclomatic complexity of the entry point, counting the decision points of the
      functions nested in it (``cc(f) + sum(cc(g) - 1)`` over its closures, recursively, so
      moving branches into a closure hides nothing). An entry point that is a class: the mean
      over its methods. No entry point, or not found: the mean over all functions and
      methods; no function at all: the module-level complexity (a script).
    - ``MI``: radon's maintainability index of the whole program, in [0, 100]:
      ``max(0, (171 - 5.2 ln V - 0.23 CC - 16.2 ln LLOC + 50 sin(sqrt(2.46 rad(C)))) * 100 / 171)``
      (100 when V or LLOC is 0). The comment term ``C`` (percent of comment lines) is 0
      unless ``comment_bonus``: comments are free to write, so they would be easy reward.

    Args:
        mi_weight: weight ``w`` of the MI term; ``1 - w`` goes to the complexity term.
        cc_scale: ``s``, the cc above 1 at which the complexity term reaches 0.
        comment_bonus: let comments and docstrings raise MI, as radon does by default.
        entry_point: the function the program should define (the column overrides it).
        name: the reward's name in TRL's logs.

    Raises:
        ImportError: radon is not installed.
    """

    def __init__(
        self,
        mi_weight: float = 0.5,
        cc_scale: float = 10.0,
        comment_bonus: bool = False,
        entry_point: str | None = None,
        name: str = "complexity",
    ) -> None:
        super().__init__(name, entry_point)
        if importlib.util.find_spec("radon") is None:
            raise ImportError("radon is not installed; install it with `pip install radon`")
        if not 0.0 <= mi_weight <= 1.0 or cc_scale <= 0:
            raise ValueError("mi_weight must be in [0, 1] and cc_scale positive")
        self.mi_weight, self.cc_scale, self.comment_bonus = mi_weight, cc_scale, comment_bonus

    def _score(self, items: list[_Item]) -> list[float]:
        values, ccs, mis = [], [], []
        for item in items:
            measured = self.measure(item.program, item.entry_point) if item.tree is not None else None
            if measured is None:
                values.append(0.0)
                continue
            cc, mi = measured
            ccs.append(cc)
            mis.append(mi)
            penalty = max(0.0, 1.0 - (cc - 1.0) / self.cc_scale)
            values.append(self.mi_weight * mi / 100.0 + (1.0 - self.mi_weight) * penalty)
        if ccs:
            self.last_stats.update(cc=statistics.fmean(ccs), mi=statistics.fmean(mis))
        return values

    def measure(self, program: str, entry_point: str | None = None) -> tuple[float, float] | None:
        """``(cc, MI)`` of a program as defined above; None when it cannot be analysed."""
        from radon.metrics import mi_compute, mi_parameters
        from radon.visitors import ComplexityVisitor

        try:
            visitor = ComplexityVisitor.from_code(program)
            volume, total_cc, lloc, comments = mi_parameters(program, count_multi=True)
        except _PARSE_ERRORS:
            return None
        mi = mi_compute(volume, total_cc, lloc, comments if self.comment_bonus else 0.0)
        return _entry_complexity(visitor, entry_point), mi


def _folded(fn: Any) -> float:
    """A radon Function's complexity plus the decision points of its closures, recursively."""
    return fn.complexity + sum(_folded(c) - 1 for c in fn.closures)


def _entry_complexity(visitor: Any, entry_point: str | None) -> float:
    functions = {f.name: f for f in visitor.functions}
    classes = {c.name: c for c in visitor.classes}
    if entry_point in functions:
        return float(_folded(functions[entry_point]))
    if entry_point in classes:
        cls = classes[entry_point]
        return statistics.fmean(map(_folded, cls.methods)) if cls.methods else float(cls.real_complexity)
    every = [*visitor.functions, *(m for c in visitor.classes for m in c.methods)]
    return statistics.fmean(map(_folded, every)) if every else float(visitor.complexity)


class SecurityReward(_StaticReward):
    """Security findings from bandit, weighted, one bandit run per batch.

    ``weighted = sum over findings of severity * confidence`` with severity LOW 1, MEDIUM 3,
    HIGH 10 and confidence LOW 0.3, MEDIUM 0.6, HIGH 1.0.

    ======================  =========================================================
    value                   when
    ======================  =========================================================
    0.0                     no finding, or the program does not parse or is empty
                            (nothing to scan; pair with SyntaxReward to punish that)
    -min(1, weighted / 10)  findings: ``eval(input())`` (MEDIUM/HIGH) -0.3; an
                            ``import pickle`` (LOW/HIGH) -0.1; one HIGH/HIGH -1.0
    -1.0                    bandit could not scan a program that parses (it could
                            otherwise hide findings)
    ======================  =========================================================

    Runs ``bandit -f json -q --ignore-nosec`` (a ``# nosec`` comment cannot buy a clean
    score) on the batch's files.

    Args:
        scale: the weighted sum at which the value reaches -1.
        skip: bandit test ids to leave out. By default B101 (``assert``) and B311 (the
            ``random`` module), which are not security issues in a program that solves a task.
        tests: bandit test ids to run exclusively (None: all but ``skip``).
        timeout: seconds bandit may take per batch before the call raises RuntimeError.
        entry_point: the function the program should define (the column overrides it).
        name: the reward's name in TRL's logs.

    Raises:
        ImportError: bandit is not installed.
    """

    def __init__(
        self,
        scale: float = 10.0,
        skip: Sequence[str] = ("B101", "B311"),
        tests: Sequence[str] | None = None,
        timeout: float = 60.0,
        entry_point: str | None = None,
        name: str = "security",
    ) -> None:
        super().__init__(name, entry_point)
        self.command = _find_tool("bandit", "bandit", "bandit")
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale, self.skip, self.tests, self.timeout = scale, tuple(skip), tests, timeout

    def _score(self, items: list[_Item]) -> list[float]:
        ok = [i for i, item in enumerate(items) if item.tree is not None]
        values = [0.0] * len(items)
        if not ok:
            return values
        cmd = [*self.command, "-f", "json", "-q", "--ignore-nosec"]
        if self.skip:
            cmd += ["-s", ",".join(self.skip)]
        if self.tests:
            cmd += ["-t", ",".join(self.tests)]
        stdout, names = _run_batch("bandit", cmd, [items[i].program for i in ok], self.timeout)
        report = json.loads(stdout)
        weighted: dict[str, float] = {}
        findings: dict[str, int] = {}
        for r in report.get("results", []):
            name = Path(r["filename"]).name
            weight = BANDIT_SEVERITY.get(r["issue_severity"], 0.0) * BANDIT_CONFIDENCE.get(r["issue_confidence"], 0.0)
            weighted[name] = weighted.get(name, 0.0) + weight
            findings[name] = findings.get(name, 0) + 1
        unscanned = {Path(e["filename"]).name for e in report.get("errors", [])}
        for i, name in zip(ok, names, strict=True):
            values[i] = -1.0 if name in unscanned else 0.0 - min(1.0, weighted.get(name, 0.0) / self.scale)
        self.last_stats["findings"] = statistics.fmean(findings.get(name, 0) for name in names)
        return values


class LengthReward(_StaticReward):
    """A smooth penalty for answers far from a length range, in characters of the whole
    completion (prose included: every character costs generation time).

    ``over = max(0, chars - target_chars) / scale``, ``under = max(0, min_chars - chars) /
    min_chars`` (0 without ``min_chars``), ``value = -(1 - exp(-(over**2 + under**2)))``.

    =======================================  ======================
    chars                                    value
    =======================================  ======================
    min_chars <= chars <= target_chars       0.0
    target_chars + scale / 2                 -(1 - e**-0.25) = -0.221
    target_chars + scale                     -(1 - e**-1) = -0.632
    target_chars + 2 * scale                 -(1 - e**-4) = -0.982
    0 (with min_chars)                       -0.632
    =======================================  ======================

    The penalty is flat at the edge of the range (zero slope), so answers just over the
    target are barely touched, and it saturates at -1.

    Args:
        target_chars: the longest answer that costs nothing.
        scale: characters over the target at which the value is -0.632 (default:
            ``target_chars``).
        min_chars: the shortest answer that costs nothing (None: no penalty for short ones).
        name: the reward's name in TRL's logs.
    """

    def __init__(
        self, target_chars: int = 1000, scale: float | None = None, min_chars: int | None = None, name: str = "length"
    ) -> None:
        super().__init__(name, None)
        if target_chars <= 0 or (scale is not None and scale <= 0) or (min_chars is not None and min_chars <= 0):
            raise ValueError("target_chars, scale and min_chars must be positive")
        if min_chars is not None and min_chars > target_chars:
            raise ValueError("min_chars must not exceed target_chars")
        self.target_chars, self.min_chars = target_chars, min_chars
        self.scale = float(scale if scale is not None else target_chars)

    def value(self, chars: int) -> float:
        """The reward for an answer of ``chars`` characters."""
        over = max(0, chars - self.target_chars) / self.scale
        under = max(0, self.min_chars - chars) / self.min_chars if self.min_chars else 0.0
        return math.exp(-(over**2 + under**2)) - 1.0

    def _score(self, items: list[_Item]) -> list[float]:
        lengths = [len(item.text) for item in items]
        self.last_stats["chars"] = statistics.fmean(lengths)
        return [self.value(n) for n in lengths]


class FormatReward(_StaticReward):
    """Does the answer have the expected shape: one fenced Python block that defines the entry
    point?

    =====  =====================================================================================
    value  when
    =====  =====================================================================================
    1.0    exactly one Python fence (tagged python, py, python3 or untagged), closed, whose
           code parses and defines the entry point. Without ``require_fence``, bare code
           that does so (alone, or continuing the prompt) counts as well.
    0.75   right code, wrong shape: the code parses and defines the entry point, but there are
           several Python fences, an unclosed one (cut off), or none while one is required
    0.5    a Python fence whose code parses but does not define the entry point
    0.25   a Python fence whose code does not parse (or is empty)
    0.0    no Python fence and no bare code that defines the entry point: prose, an empty
           answer, broken bare code
    =====  =====================================================================================

    "Defines the entry point": a top-level ``def``/``class`` of that name; when no entry point
    is known, any top-level statement but a bare expression (so a word of prose is not code).
    With several fences, one of them doing so is enough. The raw answer is judged, not the
    sanitized program.

    Args:
        require_fence: the expected shape is a fenced block (chat models); False also
            accepts a bare program or prompt continuation (base models).
        entry_point: the function the answer should define (the column overrides it).
        name: the reward's name in TRL's logs.
    """

    def __init__(self, require_fence: bool = True, entry_point: str | None = None, name: str = "format") -> None:
        super().__init__(name, entry_point)
        self.require_fence = require_fence

    def _score(self, items: list[_Item]) -> list[float]:
        return [self.value(item.text, item.prompt, item.entry_point) for item in items]

    def value(self, text: str, prompt: str | None = None, entry_point: str | None = None) -> float:
        """The reward for one answer (``prompt``: the text it continues, if any)."""
        if not text.strip():
            return 0.0
        blocks = code_blocks(text)
        if not blocks:
            candidates = [text] + ([prompt + text] if prompt else [])
            trees = [t for t in map(_module, candidates) if t is not None]
            if not any(_defines(t, entry_point) for t in trees):
                return 0.0
            return 0.75 if self.require_fence else 1.0
        trees = [t for t in map(_module, blocks) if t is not None]
        if not trees:
            return 0.25
        if not any(_defines(t, entry_point) for t in trees):
            return 0.5
        closed = text.count("```") % 2 == 0
        return 1.0 if len(blocks) == 1 and closed else 0.75

