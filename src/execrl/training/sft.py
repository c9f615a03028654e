"""Supervised fine-tuning on reference solutions, with an honest before/after pass@k.

The benchmark's tasks are split (seeded) into train and held-out tasks. The model is
evaluated on the held-out tasks through the sandbox, fine-tuned with TRL's ``SFTTrainer``
on ``{"prompt": task.prompt, "completion": <the reference's body>}`` pairs of the train
tasks (loss on the completion only, as TRL does for prompt/completion data), saved to
``<run>/final`` and evaluated again on the same held-out tasks. Generation uses the plain
prompt (no chat template), the format the model was trained on.

Run directory (``output_dir/run_name``): ``config.json``, ``metrics.jsonl`` (every trainer
log line), ``checkpoint-<step>/`` (the trainer's own checkpoints, so rerunning the same
command resumes from the latest one), ``eval-before/``, ``eval-after/`` and ``final/``.

    execrl train sft                                   # tiny local model, about a minute on CPU
    execrl train sft model=Qwen/Qwen2.5-0.5B lora=true max_steps=200 run_name=qwen-sft
"""

from __future__ import annotations

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
    sandbox_pool,
    save_final,
    show_progress,
    split_tasks,
    trainer_settings,
)
from execrl.training.config import check_at_least, check_positive, field_doc

__all__ = ["Config", "main"]



@dataclass
class Config(RunConfig):
    """Settings of the SFT recipe (defaults: the tiny local model on CPU, about a minute);
    the shared ones (model, data, run directory, evaluation, LoRA) come from RunConfig."""

    max_steps: int = field_doc(30, "optimizer steps to train")
    per_device_train_batch_size: int = field_doc(4, "examples per device per forward pass")
    gradient_accumulation_steps: int = field_doc(1, "forward passes accumulated per optimizer step")
    learning_rate: float = field_doc(1e-3, "peak learning rate (linear decay); use ~1e-5 for full fine-tuning of real models")
    max_length: int = field_doc(256, "tokens per example (prompt + completion); longer ones are truncated")
    save_steps: int = field_doc(10, "save a checkpoint every this many steps (and at the end)")

    def validate(self) -> None:
        super().validate()
        check_at_least(self, 1, "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "save_steps")
        check_positive(self, "learning_rate")
        check_at_least(self, 16, "max_length")


def _pairs(tasks: dict[str, Any]) -> list[dict[str, str]]:
    """Prompt/completion pairs from the tasks whose reference continues their prompt."""
    return [{"prompt": t.prompt, "completion": t.reference[len(t.prompt):]}
            for t in tasks.values() if t.reference and t.reference.startswith(t.prompt)
            and t.reference[len(t.prompt):].strip()]


def main(cfg: Config, force_new: bool = False) -> dict[str, Any]:
    """Run the recipe; returns ``{"run", "before", "after", "train_loss", ...}``."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    # --- setup: run directory, model, task split -------------------------------------
    run = open_run(cfg, "sft", force_new)
    model_path = resolve_model(cfg.model, run, seed=cfg.seed)
    train_tasks, held_out = split_tasks(cfg.benchmark, cfg.problems, cfg.eval_tasks, cfg.seed, cfg.limit, cfg.skip)
    pairs = _pairs(train_tasks)
    if not pairs:
        raise DataError(f"{cfg.benchmark}: no train task has a reference solution to fine-tune on")
    resume_from, start_step = run.latest_checkpoint(), run.resume_step

    pool = sandbox_pool()
    try:
        evaluate = held_out_evaluator(cfg, run, held_out, pool, chat=False)  # plain prompts, as trained
        before = evaluate(model_path, "eval-before")
        run.log({"eval_before": before}, step=0)

        # --- train: TRL's SFTTrainer, checkpoints straight into the run directory -------
        args = SFTConfig(
            output_dir=run.path,  # checkpoint-<step>/ lands where RunDir.latest_checkpoint() looks
            max_steps=cfg.max_steps,
            per_device_train_batch_size=cfg.per_device_train_batch_size,
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            learning_rate=cfg.learning_rate,
            max_length=cfg.max_length,
            completion_only_loss=True,
            save_strategy="steps",
            save_steps=cfg.save_steps,
            **trainer_settings(cfg),
        )
        trainer = SFTTrainer(model=model_path, args=args, train_dataset=Dataset.from_list(pairs),
                             peft_config=peft_config(cfg), callbacks=[metrics_callback(run)])
        show_progress(trainer, "SFT")
        result = trainer.train(resume_from_checkpoint=resume_from)

        # --- save: a plain model (LoRA merged) that from_pretrained loads ----------------
        final = save_final(trainer, os.path.join(run.path, "final"), cfg.lora)

        after = evaluate(final, "eval-after")
        run.log({"eval_after": after}, step=trainer.state.global_step)
    finally:
        pool.close()
        run.close()

    trained = trainer.state.global_step - start_step  # 0 when a finished run is reopened
    return {"run": run.path, "before": before, "after": after, "train_loss": result.training_loss if trained else None,
            "steps": trainer.state.global_step, "train_examples": len(pairs),
            "resumed_from": os.path.basename(resume_from) if resume_from else None}
