"""DPO on preference pairs mined by execution, with an honest before/after pass@k.

The benchmark's tasks are split (seeded) into train and held-out tasks. The model is
evaluated on the held-out tasks through the sandbox; then it samples ``samples_per_task``
completions (``temperature`` > 0, plain prompt, no chat template) for every train task,
the sandbox judges them, and :func:`~execrl.training.pairs.mine_pairs` pairs each passing
completion with the most similar failing one of its task. TRL's ``DPOTrainer`` trains on
``{"prompt", "chosen", "rejected"}`` (the reference model is a frozen copy of the starting
model, or the adapter switched off with ``lora=true``, as TRL does), the result is saved
to ``<run>/final`` and evaluated again on the same held-out tasks.

Reference fallback: a weak model may pass no train task at all, and then execution gives
no pair. With ``reference_fallback=true`` (the default) each train task's reference
solution body is then taken as *chosen* and paired with the most similar failing sample
of that task as *rejected* (the same matching as ``mine_pairs``). The summary says how
many pairs came from references (``pairs_from_references``; 0 when every pair was mined).

Run directory (``output_dir/run_name``): ``config.json``, ``metrics.jsonl`` (every trainer
log line), ``mining/samples.jsonl`` and ``mining/results.jsonl`` (resumable),
``mining/pairs.jsonl``, ``checkpoint-<step>/`` (rerunning the same command resumes from
the latest one), ``eval-before/``, ``eval-after/`` and ``final/``.

    execrl train dpo                                   # tiny local model, a few minutes on CPU
    execrl train dpo model=Qwen/Qwen2.5-0.5B-Instruct lora=true max_steps=200 learning_rate=5e-6 run_name=qwen-dpo
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from execrl.errors import DataError
from execrl.training._common import (
    RunConfig,
    held_out_evaluator,
    metrics_callback,
    open_run,
    peft_config,
    resolve_model,
    sample_tasks,
    sandbox_pool,
    save_final,
    show_progress,
    split_tasks,
    trainer_settings,
)
from execrl.training._dist import processes
from execrl.training.config import RunDir, check_at_least, check_positive, field_doc

__all__ = ["Config", "main", "mine_preference_pairs", "reference_pairs"]



@dataclass
class PreferenceConfig(RunConfig):
    """What recipes trained on execution-mined preference pairs share (DPO, the reward model):
    mining and training settings on top of RunConfig's."""

    limit: int | None = field_doc(40, "number of train tasks to mine pairs on (None: every task not held out)")
    samples_per_task: int = field_doc(4, "completions sampled per train task for mining (at least 2)")
    temperature: float = field_doc(1.0, "sampling temperature of the mining samples (> 0, so they differ)")
    max_new_tokens: int = field_doc(64, "max new tokens per mining sample")
    max_pairs_per_task: int | None = field_doc(None, "most pairs kept per task (None: as many as the samples give)")
    reference_fallback: bool = field_doc(True, "when execution gives no pair, pair each reference (chosen) with its most similar failing sample")
    max_steps: int = field_doc(30, "optimizer steps to train")
    per_device_train_batch_size: int = field_doc(4, "pairs per device per forward pass")
    gradient_accumulation_steps: int = field_doc(1, "forward passes accumulated per optimizer step")
    learning_rate: float = field_doc(5e-4, "peak learning rate (linear decay); use ~5e-7..5e-6 for real models")
    max_length: int = field_doc(256, "tokens per sequence (prompt + chosen or rejected); longer ones are truncated")
    save_steps: int = field_doc(10, "save a checkpoint every this many steps (and at the end)")

    def validate(self) -> None:
        super().validate()
        check_at_least(self, 1, "max_new_tokens", "max_steps", "per_device_train_batch_size",
                       "gradient_accumulation_steps", "save_steps")
        if self.samples_per_task < 2:
            raise DataError(f"samples_per_task={self.samples_per_task}: must be at least 2 (a pair needs two samples)")
        if self.max_pairs_per_task is not None and self.max_pairs_per_task < 1:
            raise DataError(f"max_pairs_per_task={self.max_pairs_per_task}: must be at least 1 (or none)")
        if not self.temperature > 0:
            raise DataError(f"temperature={self.temperature}: must be positive (mining needs different samples)")
        check_positive(self, "learning_rate")
        check_at_least(self, 16, "max_length")


@dataclass
class Config(PreferenceConfig):
    """Settings of the DPO recipe (defaults: the tiny local model on CPU); the shared ones
    (model, data, run directory, evaluation, LoRA, mining, training) come from PreferenceConfig."""

    beta: float = field_doc(0.1, "DPO beta: how far the policy may move from the reference model (higher: less)")

    def validate(self) -> None:
        super().validate()
        check_positive(self, "beta")


def reference_pairs(tasks: dict[str, Any], samples: list[dict[str, Any]],
                    max_pairs_per_task: int | None = 1) -> list[dict[str, Any]]:
    """The fallback: per task, its reference body (chosen) against the most similar failing
    sample (rejected). ``samples`` are mining rows (``task_id``, ``prompt``, ``completion``,
    ``passed``); tasks without a reference that continues their prompt, or without a
    failing sample, give no pair. Each pair is marked ``"source": "reference"``."""
    from execrl.training.pairs import mine_pairs

    rows: list[dict[str, Any]] = []
    for tid, task in tasks.items():
        failing = [s for s in samples if s["task_id"] == tid and not s["passed"]]
        ref = task.reference or ""
        body = ref[len(task.prompt):] if ref.startswith(task.prompt) else ""
        if not failing or not body.strip():
            continue
        rows.append({"task_id": tid, "prompt": task.prompt, "completion": body, "passed": True})
        rows.extend(failing)
    return [{**p, "source": "reference"} for p in mine_pairs(rows, max_pairs_per_task=max_pairs_per_task)]


def _mining_rows(samples_path: str, results_path: str, tasks: dict[str, Any]) -> list[dict[str, Any]]:
    """Raw completions joined with their verdicts (results rows are in samples order)."""
    from execrl._jsonl import read_jsonl

    samples = [row for _, row in read_jsonl(samples_path, ("task_id",))]
    results = [row for _, row in read_jsonl(results_path, ("task_id",))]
    if len(samples) != len(results):
        raise DataError(f"{results_path}: {len(results)} verdicts for {len(samples)} samples")
    return [{"task_id": s["task_id"], "prompt": tasks[s["task_id"]].prompt, "completion": s["completion"],
             "passed": bool(r["passed"])}
            for s, r in zip(samples, results, strict=True) if s["completion"].strip()]


def mine_preference_pairs(cfg: Any, run: RunDir, model_path: str, tasks: dict[str, Any], pool: Any,
                          name: str = "mining", required: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Sample ``model_path`` on ``tasks`` (``cfg.samples_per_task`` completions at
    ``cfg.temperature``, plain prompts), judge them in the sandbox and pair each passing
    completion with the most similar failing one; with ``cfg.reference_fallback`` and no
    mined pair, references are paired with failures instead (:func:`reference_pairs`).
    Files go under ``<run>/<name>/`` (samples and verdicts resumable, ``pairs.jsonl``).
    Returns ``(pairs, summary)``, summary = ``{"samples", "mining_pass@1", "pairs",
    "pairs_mined", "pairs_from_references"}``; no pair raises DataError when ``required``."""
    from execrl.evaluation import evaluate as run_tests
    from execrl.evaluation import read_samples
    from execrl.generation import SamplingParams
    from execrl.training.pairs import mine_pairs

    mining = os.path.join(run.path, name)
    samples_path, results_path = os.path.join(mining, "samples.jsonl"), os.path.join(mining, "results.jsonl")
    params = SamplingParams(n=cfg.samples_per_task, temperature=cfg.temperature,
                            max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    sample_tasks(model_path, tasks, samples_path, params, chat=False, generator=cfg.generator)

    def judge_and_pair() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        verdicts = run_tests(tasks, read_samples(samples_path, tasks, extract=True), results_path,
                             pool=pool, ks=(1,), progress=False)
        rows = _mining_rows(samples_path, results_path, tasks)
        pairs = [{**p, "source": "execution"} for p in mine_pairs(rows, max_pairs_per_task=cfg.max_pairs_per_task)]
        mined = len(pairs)
        if not pairs and cfg.reference_fallback:
            pairs = reference_pairs(tasks, rows, max_pairs_per_task=1)
        if not pairs and required:
            why = "" if cfg.reference_fallback else " (reference_fallback=false)"
            raise DataError(f"no preference pair: {len(rows)} mining samples gave no passing/failing pair{why}")
        with open(os.path.join(mining, "pairs.jsonl"), "w", encoding="utf-8") as f:
            for p in pairs:
                f.write(json.dumps(p) + "\n")
        summary = {"samples": verdicts.samples, "mining_pass@1": verdicts.pass_at_k.get("pass@1"),
                   "pairs": len(pairs), "pairs_mined": mined, "pairs_from_references": len(pairs) - mined}
        return pairs, summary

    return processes().on_main(judge_and_pair)  # every process trains on the same pairs


def main(cfg: Config, force_new: bool = False) -> dict[str, Any]:
    """Run the recipe; returns ``{"run", "before", "after", "pairs", "pairs_from_references", "train_loss", ...}``."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    # --- setup: run directory, model, task split -------------------------------------
    run = open_run(cfg, "dpo", force_new)
    model_path = resolve_model(cfg.model, run, seed=cfg.seed)
    train_tasks, held_out = split_tasks(cfg.benchmark, cfg.problems, cfg.eval_tasks, cfg.seed, cfg.limit, cfg.skip)
    if not train_tasks:
        raise DataError(f"{cfg.benchmark}: no train tasks left after holding out eval_tasks={cfg.eval_tasks}")
    resume_from, start_step = run.latest_checkpoint(), run.resume_step

    pool = sandbox_pool()
    try:
        evaluate = held_out_evaluator(cfg, run, held_out, pool, chat=False)  # plain prompts, as mined
        before = evaluate(model_path, "eval-before")
        run.log({"eval_before": before}, step=0)

        # --- mine: sample the starting model on train tasks, judge, pair -------------------
        pairs, mining_summary = mine_preference_pairs(cfg, run, model_path, train_tasks, pool)
        mined = mining_summary["pairs_mined"]
        run.log({"mining": mining_summary}, step=0)

        # --- train: TRL's DPOTrainer, checkpoints straight into the run directory -------
        args = DPOConfig(
            output_dir=run.path,  # checkpoint-<step>/ lands where RunDir.latest_checkpoint() looks
            max_steps=cfg.max_steps,
            per_device_train_batch_size=cfg.per_device_train_batch_size,
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            learning_rate=cfg.learning_rate,
            beta=cfg.beta,
            max_length=cfg.max_length,
            save_strategy="steps",
            save_steps=cfg.save_steps,
            **trainer_settings(cfg),
        )
        dataset = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
        # ref_model=None: TRL loads a frozen copy of the starting model (or disables the adapter with LoRA)
        trainer = DPOTrainer(model=model_path, args=args, train_dataset=dataset,
                             peft_config=peft_config(cfg), callbacks=[metrics_callback(run)])
        show_progress(trainer, "DPO")
        result = trainer.train(resume_from_checkpoint=resume_from)

        # --- save: a plain model (LoRA merged) that from_pretrained loads ----------------
        final = save_final(trainer, os.path.join(run.path, "final"), cfg.lora)

        after = evaluate(final, "eval-after")
        run.log({"eval_after": after}, step=trainer.state.global_step)
    finally:
        pool.close()
        run.close()

    trained = trainer.state.global_step - start_step  # 0 when a finished run is reopened
    return {"run": run.path, "before": before, "after": after,
            "train_loss": result.training_loss if trained else None, "steps": trainer.state.global_step,
            "mining_samples": mining_summary["samples"], "mining_pass@1": mining_summary["mining_pass@1"],
            "pairs": len(pairs), "pairs_mined": mined, "pairs_from_references": len(pairs) - mined,
            "resumed_from": os.path.basename(resume_from) if resume_from else None}
