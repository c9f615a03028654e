"""What every recipe needs around its trainer: the model, the task split, and an honest
before/after evaluation through the sandbox."""

from __future__ import annotations

import os
import random
from typing import Any

from execrl.evaluation import evaluate, read_samples
from execrl.sandbox import SandboxPool
from execrl.tasks import Task, load_benchmark
from execrl.training.config import RunDir

TINY = "tiny"  # the model spec that builds the local tiny Llama (execrl.training.tiny)


def resolve_model(spec: str, run: RunDir, seed: int = 0) -> str:
    """A model path or hub id; ``tiny`` builds the tiny local model once per run directory."""
    if spec != TINY:
        return spec
    path = os.path.join(run.path, "tiny-base")
    if not os.path.exists(os.path.join(path, "config.json")):
        from execrl.training.tiny import make_tiny_model

        make_tiny_model(path, seed=seed)
    return path


def split_tasks(benchmark: str, problems: str | None, eval_tasks: int, seed: int,
                limit: int | None = None) -> tuple[dict[str, Task], dict[str, Task]]:
    """(train, held-out) tasks: a seeded shuffle, the last ``eval_tasks`` held out."""
    tasks = load_benchmark(benchmark, problems)
    ids = sorted(tasks)
    random.Random(seed).shuffle(ids)
    if limit is not None:
        ids = ids[: limit + eval_tasks]
    held = ids[len(ids) - eval_tasks :] if eval_tasks else []
    train = ids[: len(ids) - eval_tasks] if eval_tasks else ids
    return {t: tasks[t] for t in train}, {t: tasks[t] for t in held}


def evaluate_model(model: str, tasks: dict[str, Task], out_dir: str, *, n: int = 1, temperature: float = 0.0,
                   max_new_tokens: int = 128, ks: tuple[int, ...] = (1,), pool: SandboxPool | None = None,
                   seed: int = 0, chat: bool | None = None) -> dict[str, Any]:
    """pass@k of ``model`` on ``tasks``: sample, extract, run in the sandbox. Samples and
    verdicts are written under ``out_dir`` (resumable)."""
    from execrl.generation import SamplingParams, generate_samples
    from execrl.generation.hf import HFGenerator

    os.makedirs(out_dir, exist_ok=True)
    samples = os.path.join(out_dir, "samples.jsonl")
    params = SamplingParams(n=n, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    generate_samples(HFGenerator(model, chat=chat), tasks, samples, params, progress=False)
    rows = read_samples(samples, tasks, extract=True)
    s = evaluate(tasks, rows, os.path.join(out_dir, "results.jsonl"), pool=pool, ks=ks, progress=False)
    return {**s.pass_at_k, "status_counts": s.status_counts}
