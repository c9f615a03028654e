"""A CodeRL-style critic (Le et al. 2022, "CodeRL", arXiv:2207.01780, sec. 3.2): a model that
reads a problem and a sampled program and predicts the program's unit-test outcome, one of
CodeRL's four classes (:data:`OUTCOMES`). ``execrl train critic_pg`` weighs its policy gradient
by it token by token; on its own it ranks samples (pick the one most likely to pass).

The benchmark's tasks are split (seeded) into train and held-out tasks. The recipe:

1. samples ``samples_per_task`` completions per train task (plain prompts, ``temperature``) and
   runs them against the hidden tests (``samples/``, resumable);
2. labels each by its verdict (:func:`outcome_class`): 0 compile error (``syntax_error``), 1
   runtime error (``error``, ``timeout``, ``memory_limit``, ``output_limit``, ``crashed``), 2
   failed test (``failed``), 3 passed. ``sandbox_error`` samples are skipped: the harness's fault
   never labels a program. ``include_references`` (default) also runs and labels the train
   tasks' reference solutions, so a weak model's data still has passing programs;
3. trains a :class:`Critic` (the model's backbone, a fresh head giving 4 logits per token, the
   program's logits their max over its tokens) with cross-entropy weighted by balanced class
   weights ``N / (K * n_c)`` (``K`` classes present, ``n_c`` labels of class ``c``), so rare
   classes (passing programs) weigh as much as common ones; a plain torch loop, AdamW with
   linear decay (launched as N processes: each takes its share of every batch, and
   DistributedDataParallel averages the gradients);
4. saves ``<run>/critic/`` (:meth:`Critic.load`) and measures it on ``eval_samples`` samples per
   held-out task: accuracy, confusion matrix, and ranking: pass@1 of the critic's top-ranked
   sample per task against the unbiased pass@1 of a random sample and the oracle pass@n.

Run directory: ``config.json``, ``metrics.jsonl`` (labels, a line per step, the evaluation),
``samples/``, ``labels.jsonl``, ``checkpoint-<step>/`` (rerunning the same command resumes from
the latest one), ``eval/`` (held-out samples, verdicts, ``predictions.jsonl``,
``critic_eval.json``), ``critic/``.

    execrl train critic                                # tiny local model on CPU, a few minutes
    execrl train critic_pg critic=runs/<critic-run>/critic
    execrl train critic model=Qwen/Qwen2.5-0.5B samples_per_task=16 learning_rate=1e-5 run_name=qwen-critic
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections import Counter
from dataclasses import dataclass
from typing import Any

from execrl.errors import DataError
from execrl.training._common import (
    RunConfig,
    held_out_evaluator,
    mirror_metrics,
    open_run,
    resolve_model,
    sample_tasks,
    sandbox_pool,
    split_tasks,
)
from execrl.training._dist import processes
from execrl.training.config import RunDir, check_at_least, check_positive, field_doc
from execrl.training.critic_model import (
    OUTCOMES,
    PASSED,
    Critic,
    balanced_class_weights,
    masked_max_pool,
    outcome_class,
    ranking_metrics,
)

__all__ = ["OUTCOMES", "Config", "Critic", "balanced_class_weights", "classification_metrics", "labelled_rows", "main",
           "masked_max_pool", "outcome_class", "ranking_metrics"]

@dataclass
class Config(RunConfig):
    """Settings of the critic recipe (defaults: the tiny local model on CPU, a few minutes);
    the shared ones (model, data, run directory, held-out sampling) come from RunConfig."""

    limit: int | None = field_doc(40, "number of train tasks to sample and label (None: every task not held out)")
    samples_per_task: int = field_doc(8, "completions sampled per train task, each labelled by its verdict")
    temperature: float = field_doc(1.0, "sampling temperature of the train samples (0: greedy)")
    max_new_tokens: int = field_doc(64, "max new tokens per train sample")
    include_references: bool = field_doc(True, "also label the train tasks' reference solutions (run in the sandbox too)")
    class_weights: bool = field_doc(True, "weigh the cross-entropy by balanced class weights N / (K * n_c)")
    head_hidden: int = field_doc(128, "hidden units of the head (CodeRL: hidden -> 128 -> ReLU -> 4)")
    max_steps: int = field_doc(100, "optimizer steps to train")
    batch_size: int = field_doc(16, "labelled programs per step")
    learning_rate: float = field_doc(1e-3, "peak learning rate (AdamW, linear decay); use ~1e-5 for real models")
    max_length: int = field_doc(256, "tokens per input (the prompt is cut from the left to fit; the program never is)")
    save_steps: int = field_doc(50, "save a checkpoint every this many steps (and at the end)")
    eval_samples: int = field_doc(4, "samples per held-out task that the critic classifies and ranks (n of pass@n)")
    eval_temperature: float = field_doc(1.0, "sampling temperature of the held-out samples (> 0, so they differ)")
    eval_max_new_tokens: int = field_doc(64, "max new tokens per held-out sample")

    def validate(self) -> None:
        super().validate()
        check_at_least(self, 1, "samples_per_task", "max_new_tokens", "head_hidden", "max_steps", "batch_size",
                       "save_steps")
        if self.lora:
            raise DataError("lora=true: the critic recipes train every weight (LoRA is not supported yet)")
        check_positive(self, "learning_rate")
        check_at_least(self, 0, "temperature")
        check_at_least(self, 16, "max_length")


def labelled_rows(samples_path: str, results_path: str, source: str = "sample") -> tuple[list[dict[str, Any]], int]:
    """Raw completions (``samples.jsonl``) joined with their verdicts (``results.jsonl``, the
    same order) and labelled; returns ``(rows, number of sandbox_error samples skipped)``."""
    from execrl._jsonl import read_jsonl

    samples = [row for _, row in read_jsonl(samples_path, ("task_id",))]
    results = [row for _, row in read_jsonl(results_path, ("task_id", "status"))]
    if len(samples) != len(results) or any(s["task_id"] != r["task_id"] for s, r in zip(samples, results, strict=False)):
        raise DataError(f"{results_path}: verdicts do not match the {len(samples)} samples of {samples_path}")
    rows, skipped = [], 0
    for s, r in zip(samples, results, strict=True):
        label = outcome_class(r["status"])
        if label is None:
            skipped += 1
            continue
        rows.append({"task_id": s["task_id"], "completion_id": s.get("completion_id"), "source": source,
                     "completion": s["completion"], "status": r["status"], "label": label, "outcome": OUTCOMES[label]})
    return rows, skipped


def _reference_rows(tasks: dict[str, Any], out_dir: str, pool: Any) -> tuple[list[dict[str, Any]], int]:
    """The references that continue their prompt, run in the sandbox and labelled by their verdict."""
    from execrl.evaluation import evaluate, read_samples

    bodies = {t.task_id: t.reference[len(t.prompt):] for t in tasks.values()
              if t.reference and t.reference.startswith(t.prompt) and t.reference[len(t.prompt):].strip()}
    if not bodies:
        return [], 0
    path = os.path.join(out_dir, "references.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"task_id": tid, "completion_id": 0, "completion": body}) + "\n"
                     for tid, body in bodies.items())
    results = os.path.join(out_dir, "references-results.jsonl")
    evaluate(tasks, read_samples(path, tasks), results, pool=pool, ks=(1,), progress=False)
    return labelled_rows(path, results, source="reference")


def _log_once(run: RunDir, key: str, value: Any, step: int) -> None:
    """Log ``{key: value}`` unless a resumed run already holds that line."""
    if not any(key in row for row in run.read_metrics()):
        run.log({key: value}, step=step)


def _batch(n: int, size: int, step: int, seed: int) -> list[int]:
    """Example indices of step ``step``: epochs of seeded shuffles, a function of the step alone
    (so a resumed run sees the same batches)."""
    out = []
    for pos in range(step * size, (step + 1) * size):
        epoch, i = divmod(pos, n)
        out.append(random.Random(seed * 100_003 + epoch).sample(range(n), n)[i])
    return out


def _train(cfg: Config, run: RunDir, model_path: str, tasks: dict[str, Any], rows: list[dict[str, Any]]) -> Critic:
    """Train from the latest checkpoint (or a fresh head) to ``cfg.max_steps``."""
    import torch
    import torch.nn.functional as F

    procs = processes()
    resume = run.latest_checkpoint()
    critic = Critic.load(resume) if resume else Critic.from_lm(model_path, cfg.head_hidden, cfg.max_length, cfg.seed)
    trainable = procs.data_parallel(critic.logits, critic.backbone, critic.head)  # several processes: DDP
    examples = [critic.encode(tasks[r["task_id"]].prompt, r["completion"]) for r in rows]
    labels = torch.tensor([r["label"] for r in rows], device=critic.device)
    weight = torch.tensor(balanced_class_weights(labels.tolist()), device=critic.device) if cfg.class_weights else None
    opt = torch.optim.AdamW(critic.parameters(), lr=cfg.learning_rate)
    if resume:
        opt.load_state_dict(torch.load(os.path.join(resume, "optimizer.pt"), map_location="cpu", weights_only=True))
    step = run.resume_step
    critic.train()
    while step < cfg.max_steps:
        lr = cfg.learning_rate * (1 - step / cfg.max_steps)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = _batch(len(examples), cfg.batch_size, step, cfg.seed)[procs.rank :: procs.size]  # this process's share
        logits = trainable([examples[i] for i in idx])
        loss = F.cross_entropy(logits, labels[idx], weight=weight)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(critic.parameters(), 1.0)
        opt.step()
        step += 1
        accuracy = (logits.argmax(-1) == labels[idx]).float().mean()
        shares = procs.gather([(loss.item(), accuracy.item())])  # the whole step's, over every process
        run.log({"loss": sum(x for x, _ in shares) / len(shares), "accuracy": sum(a for _, a in shares) / len(shares),
                 "learning_rate": lr}, step=step)
        if step % cfg.save_steps == 0 or step == cfg.max_steps:
            if procs.is_main:  # DDP keeps every process's weights equal
                with run.saving(step) as tmp:
                    critic.save(tmp)
                    torch.save(opt.state_dict(), os.path.join(tmp, "optimizer.pt"))
            procs.wait()
    return critic


def classification_metrics(labels: list[int], predicted: list[int], majority: int) -> dict[str, Any]:
    """``accuracy``; ``balanced_accuracy`` (the mean recall over the classes present);
    ``majority_accuracy`` (of always predicting class ``majority``); ``confusion`` (rows: true
    class, columns: predicted, in :data:`OUTCOMES` order)."""
    confusion = [[0] * len(OUTCOMES) for _ in OUTCOMES]
    for y, p in zip(labels, predicted, strict=True):
        confusion[y][p] += 1
    recalls = [row[c] / sum(row) for c, row in enumerate(confusion) if sum(row)]
    n = max(len(labels), 1)
    return {"accuracy": sum(confusion[c][c] for c in range(len(OUTCOMES))) / n,
            "balanced_accuracy": sum(recalls) / max(len(recalls), 1),
            "majority_accuracy": sum(y == majority for y in labels) / n, "confusion": confusion}


def _evaluate(critic: Critic, tasks: dict[str, Any], eval_dir: str, majority: int) -> dict[str, Any]:
    """Classification and ranking metrics on the held-out samples in ``eval_dir``, and how often
    a task's reference is ranked above all its samples (``reference_ranked_first``). Writes
    ``predictions.jsonl`` and ``critic_eval.json`` there."""
    rows, skipped = labelled_rows(os.path.join(eval_dir, "samples.jsonl"), os.path.join(eval_dir, "results.jsonl"))
    probs = critic.predict([tasks[r["task_id"]].prompt for r in rows], [r["completion"] for r in rows])
    p_pass = probs[:, PASSED].tolist()
    report: dict[str, Any] = {
        "samples": len(rows), "skipped_sandbox_errors": skipped, "classes": list(OUTCOMES),
        **classification_metrics([r["label"] for r in rows], probs.argmax(-1).tolist(), majority),
        **ranking_metrics([r["task_id"] for r in rows], [r["label"] == PASSED for r in rows], p_pass),
    }
    best: dict[str, float] = {}
    for r, p in zip(rows, p_pass, strict=True):
        best[r["task_id"]] = max(best.get(r["task_id"], 0.0), p)
    refs = {t: tasks[t].reference[len(tasks[t].prompt):] for t in best if (tasks[t].reference or "").startswith(tasks[t].prompt)}
    if refs:
        p_ref = critic.pass_probability([tasks[t].prompt for t in refs], list(refs.values())).tolist()
        report["reference_ranked_first"] = sum(p > best[t] for t, p in zip(refs, p_ref, strict=True)) / len(refs)
    with open(os.path.join(eval_dir, "predictions.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"task_id": r["task_id"], "completion_id": r["completion_id"], "status": r["status"],
                                 "label": r["label"], "probs": dict(zip(OUTCOMES, p, strict=True))}) + "\n"
                     for r, p in zip(rows, probs.tolist(), strict=True))
    with open(os.path.join(eval_dir, "critic_eval.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    return report


def main(cfg: Config, force_new: bool = False) -> dict[str, Any]:
    """Run the recipe; returns ``{"run", "critic", "labels", "accuracy", "confusion",
    "ranked_pass@1", "random_pass@1", "oracle_pass@n", ...}``."""
    from execrl.evaluation import evaluate, read_samples
    from execrl.generation import SamplingParams

    # --- setup: run directory, model, task split -------------------------------------
    procs = processes()  # several (accelerate launch): sampling split, each trains on its share of a batch
    if cfg.batch_size < procs.size:
        raise DataError(f"batch_size={cfg.batch_size} is split between {procs.size} processes: give each one at least one")
    run = open_run(cfg, "critic", force_new)
    mirror_metrics(cfg, run)  # report_to: TensorBoard or W&B beside metrics.jsonl
    model_path = resolve_model(cfg.model, run, seed=cfg.seed)
    train_tasks, held_out = split_tasks(cfg.benchmark, cfg.problems, cfg.eval_tasks, cfg.seed, cfg.limit, cfg.skip)
    if not train_tasks:
        raise DataError(f"{cfg.benchmark}: no train tasks left after holding out eval_tasks={cfg.eval_tasks}")
    resumed_from = run.latest_checkpoint()

    try:
        with sandbox_pool() as pool:
            # --- sample the train tasks, judge, label (resumable files) ---------------------
            sdir = os.path.join(run.path, "samples")
            samples_path, results_path = os.path.join(sdir, "samples.jsonl"), os.path.join(sdir, "results.jsonl")
            params = SamplingParams(n=cfg.samples_per_task, temperature=cfg.temperature,
                                    max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
            sample_tasks(model_path, train_tasks, samples_path, params, chat=False, generator=cfg.generator)

            def judge_and_label() -> tuple[list[dict[str, Any]], dict[str, Any]]:
                evaluate(train_tasks, read_samples(samples_path, train_tasks, extract=True), results_path, pool=pool,
                         ks=(1,), progress=False)
                rows, skipped = labelled_rows(samples_path, results_path)
                references, ref_skipped = _reference_rows(train_tasks, sdir, pool) if cfg.include_references else ([], 0)
                rows += references
                if not rows:
                    raise DataError(f"no labelled program: all {skipped} samples were sandbox errors")
                with open(os.path.join(run.path, "labels.jsonl"), "w", encoding="utf-8") as f:
                    f.writelines(json.dumps(r) + "\n" for r in rows)
                counts = Counter(r["outcome"] for r in rows)
                labels = {"programs": len(rows), "references": len(references),
                          "skipped_sandbox_errors": skipped + ref_skipped, **{name: counts.get(name, 0) for name in OUTCOMES}}
                _log_once(run, "labels", labels, step=0)
                return rows, labels

            rows, labels = procs.on_main(judge_and_label)  # every process trains on the same labels

            # --- the held-out samples the critic is measured on -----------------------------
            sampled = held_out_evaluator(cfg, run, held_out, pool, chat=False)(model_path, "eval")

        # --- train, save critic/ atomically ------------------------------------------------
        critic = _train(cfg, run, model_path, train_tasks, rows)
        final = os.path.join(run.path, "critic")

        def save_and_measure() -> dict[str, Any]:
            tmp = final + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            critic.save(tmp)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            # --- measure: classification and ranking on the held-out samples ---------------
            if not held_out:
                return {}
            majority = Counter(r["label"] for r in rows).most_common(1)[0][0]
            report = _evaluate(critic, held_out, os.path.join(run.path, "eval"), majority)
            _log_once(run, "eval", {**report, "sampled": sampled}, step=cfg.max_steps)
            return report

        report = procs.on_main(save_and_measure)
    finally:
        run.close()

    losses = [row["loss"] for row in run.read_metrics() if "loss" in row]
    return {"run": run.path, "critic": final, "labels": labels, "steps": cfg.max_steps,
            "train_loss_first": losses[0] if losses else None, "train_loss_last": losses[-1] if losses else None,
            **{k: report.get(k) for k in ("accuracy", "balanced_accuracy", "majority_accuracy", "confusion", "ranked_pass@1",
                                          "random_pass@1", "oracle_pass@n", "reference_ranked_first")},
            "eval_samples": report.get("samples", 0), "held_out_pass@k": sampled,
            "resumed_from": os.path.basename(resumed_from) if resumed_from else None}
