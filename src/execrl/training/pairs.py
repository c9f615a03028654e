"""DPO preference pairs mined from execution verdicts (pure Python, no torch).

For each task, a passing completion is *chosen* and the most similar failing completion
is *rejected*: near-miss pairs isolate the edit that makes the program correct, which is a
sharper signal than a random failing sample (as in execution-feedback DPO / CodeDPO-style
mining).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["mine_pairs", "similarity"]


def similarity(a: str, b: str) -> float:
    """``difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()``: 1.0 for identical text."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _score(sample: Mapping[str, Any]) -> float:
    score = sample.get("score")
    return 0.0 if score is None else float(score)


def mine_pairs(
    samples: Iterable[Mapping[str, Any]],
    max_pairs_per_task: int | None = None,
    min_similarity: float = 0.0,
    max_rejected_uses: int = 1,
) -> list[dict[str, Any]]:
    """Pair passing completions with their most similar failing completion, per task.

    Each sample needs ``task_id``, ``prompt``, ``completion`` and ``passed`` (bool);
    ``score`` (float) is optional and only breaks ties. Returns dicts with ``prompt``,
    ``chosen``, ``rejected``, ``task_id`` and ``similarity``
    (:func:`similarity` of chosen and rejected).

    Rules, per task:

    - Completions are de-duplicated by exact text (first occurrence kept); a text seen both
      passing and failing (a flaky verdict) is dropped from both sides, so chosen and
      rejected are never the same text.
    - Matching is greedy by similarity over all (passing, failing) candidates: the most
      similar candidate pair is taken first, each passing completion is chosen at most
      once, and each failing completion is rejected at most ``max_rejected_uses`` times
      (default 1: every rejected text is distinct). A passing completion thus gets the
      most similar failing one still available; it gets none when all are used up.
    - Ties in similarity go to the higher-scored chosen, then the lower-scored rejected
      (missing score = 0), then to input order: the result is deterministic.
    - Candidates below ``min_similarity`` are never paired; at most
      ``max_pairs_per_task`` pairs are kept (the most similar ones).
    - Tasks with only passing or only failing completions give no pair.

    Output order: tasks in order of first appearance; within a task, by selection order
    (similarity descending).
    """
    if max_rejected_uses < 1:
        raise ValueError(f"max_rejected_uses must be >= 1, got {max_rejected_uses}")
    tasks: dict[Any, list[Mapping[str, Any]]] = {}
    for i, sample in enumerate(samples):
        missing = {"task_id", "prompt", "completion", "passed"} - set(sample)
        if missing:
            raise ValueError(f"sample {i} lacks {sorted(missing)}")
        if not isinstance(sample["passed"], bool):
            raise ValueError(f"sample {i}: 'passed' must be a bool, got {sample['passed']!r}")
        tasks.setdefault(sample["task_id"], []).append(sample)

    pairs: list[dict[str, Any]] = []
    for task_id, group in tasks.items():
        pairs.extend(_mine_task(task_id, group, max_pairs_per_task, min_similarity, max_rejected_uses))
    return pairs


def _unique(group: list[Mapping[str, Any]], passed: bool) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for sample in group:
        if sample["passed"] is passed:
            out.setdefault(sample["completion"], sample)
    return out


def _mine_task(
    task_id: Any,
    group: list[Mapping[str, Any]],
    max_pairs: int | None,
    min_similarity: float,
    max_rejected_uses: int,
) -> list[dict[str, Any]]:
    passing = _unique(group, True)
    failing = _unique(group, False)
    flaky = passing.keys() & failing.keys()
    chosen = [(text, s) for text, s in passing.items() if text not in flaky]
    rejected = [(text, s) for text, s in failing.items() if text not in flaky]
    candidates = []
    for ci, (ctext, csample) in enumerate(chosen):
        for ri, (rtext, rsample) in enumerate(rejected):
            sim = similarity(ctext, rtext)
            if sim >= min_similarity:
                candidates.append((-sim, -_score(csample), _score(rsample), ci, ri, sim))
    candidates.sort()

    used_chosen: set[int] = set()
    rejected_uses = [0] * len(rejected)
    out: list[dict[str, Any]] = []
    for *_, ci, ri, sim in candidates:
        if max_pairs is not None and len(out) >= max_pairs:
            break
        if ci in used_chosen or rejected_uses[ri] >= max_rejected_uses:
            continue
        used_chosen.add(ci)
        rejected_uses[ri] += 1
        ctext, csample = chosen[ci]
        out.append(
            {
                "prompt": csample["prompt"],
                "chosen": ctext,
                "rejected": rejected[ri][0],
                "task_id": task_id,
                "similarity": sim,
            }
        )
    return out
