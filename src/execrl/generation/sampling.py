"""Tasks -> a generator -> samples.jsonl, written incrementally and resumable."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from execrl._jsonl import AppendWriter, read_done
from execrl.errors import DataError
from execrl.generation._types import BackendError, Generator, Prompt, SamplingParams
from execrl.tasks import Task


@dataclass
class GenerationStats:
    """What a :func:`generate_samples` call did. ``seconds`` and ``completions_per_s`` cover
    this call only (resumed completions were made earlier)."""

    tasks: int
    completions: int
    generated_now: int = 0
    resumed: int = 0
    seconds: float = 0.0
    completions_per_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def prompt_sha(prompt: Prompt) -> str:
    """A short fingerprint of a prompt (text or messages), stored with each sample."""
    text = prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_prompt(task: Task) -> Prompt:
    """The task's prompt as is: a base model continues it (HumanEval style)."""
    return task.prompt


def generate_samples(
    generator: Generator,
    tasks: dict[str, Task],
    out_path: str,
    params: SamplingParams,
    *,
    limit: int | None = None,
    task_ids: Iterable[str] | None = None,
    progress: bool = True,
    prompt_fn: Callable[[Task], Prompt] | None = None,
    prompts_per_call: int = 32,
) -> GenerationStats:
    """Write ``params.n`` completions per task to ``out_path``, one JSON line each:
    ``{"task_id", "completion_id", "completion", "prompt_sha"}``.

    ``completion`` is the raw generated text (code is extracted at evaluation time). Tasks
    are those named by ``task_ids`` (default: all, in order), then the first ``limit``.
    Lines are flushed as each call to the generator returns, ``prompts_per_call`` prompts at
    a time (batched across tasks); rerunning skips the ``(task_id, completion_id)`` pairs
    already written, after cutting a torn last line. A finished line made from a different
    prompt than ``prompt_fn`` gives now is an error: write to a new file instead.
    """
    if prompts_per_call < 1:
        raise ValueError(f"prompts_per_call must be >= 1, got {prompts_per_call}")
    selected = _select(tasks, task_ids, limit)
    make_prompt = prompt_fn or default_prompt
    prompts = {tid: make_prompt(tasks[tid]) for tid in selected}
    shas = {tid: prompt_sha(p) for tid, p in prompts.items()}

    done: dict[str, set[int]] = {tid: set() for tid in selected}
    for n, row in enumerate(read_done(out_path), 1):
        tid = row.get("task_id")
        if tid in done and isinstance(row.get("completion_id"), int):
            if row.get("prompt_sha") != shas[tid]:
                raise DataError(f"{out_path} line {n}: {tid!r} was sampled from another prompt; write to a new file")
            done[tid].add(row["completion_id"])
    missing = {tid: [c for c in range(params.n) if c not in done[tid]] for tid in selected}
    todo = sum(len(m) for m in missing.values())
    position = {tid: i for i, tid in enumerate(selected)}

    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=todo, desc="generating", unit="completion")
    t0 = time.perf_counter()
    try:
        with AppendWriter(out_path, fresh=False) as writer:
            # One generate() call per (missing count, chunk): after a resume a task may lack only some ids.
            by_count: dict[int, list[str]] = {}
            for tid, ids in missing.items():
                if ids:
                    by_count.setdefault(len(ids), []).append(tid)
            for count, tids in by_count.items():
                for start in range(0, len(tids), prompts_per_call):
                    chunk = tids[start : start + prompts_per_call]
                    # Offset the seed by the chunk's place, so chunks do not replay one random stream.
                    seed = None if params.seed is None else params.seed + position[chunk[0]]
                    call_params = dataclasses.replace(params, n=count, seed=seed)
                    outputs = generator.generate([prompts[t] for t in chunk], call_params)
                    if len(outputs) != len(chunk) or any(len(o) != count for o in outputs):
                        raise BackendError(f"{type(generator).__name__} returned the wrong number of completions")
                    for tid, texts in zip(chunk, outputs, strict=True):
                        for cid, text in zip(missing[tid], texts, strict=True):
                            writer.write({"task_id": tid, "completion_id": cid, "completion": text, "prompt_sha": shas[tid]})
                    if bar is not None:
                        bar.update(len(chunk) * count)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    return GenerationStats(
        tasks=len(selected),
        completions=len(selected) * params.n,
        generated_now=todo,
        resumed=len(selected) * params.n - todo,
        seconds=seconds,
        completions_per_s=todo / seconds if todo and seconds > 0 else 0.0,
    )


def _select(tasks: dict[str, Task], task_ids: Iterable[str] | None, limit: int | None) -> list[str]:
    if task_ids is None:
        selected = list(tasks)
    else:
        selected = list(dict.fromkeys(task_ids))
        unknown = [t for t in selected if t not in tasks]
        if unknown:
            raise DataError(f"unknown task_id {unknown[0]!r} ({len(unknown)} unknown in all)")
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        selected = selected[:limit]
    return selected
