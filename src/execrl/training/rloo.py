"""RLOO on code with execution rewards: TRL's ``RLOOTrainer`` sampling k answers per task, each
scored by running it against the task's hidden tests in execrl's sandbox, with the REINFORCE
leave-one-out baseline of Ahmadian et al. 2024: an answer's advantage is its reward minus the
mean reward of the other k-1 answers to the same task.

The run: build or load the model, split the benchmark into training and held-out tasks, start
one sandbox pool, measure pass@1 on the held-out tasks, train (resuming from the run's latest
checkpoint), save ``<run>/final``, measure pass@1 again. ``metrics.jsonl`` holds every TRL log
entry, with TRL's ``rewards/*`` and execrl's ``execrl/<reward>/*`` statistics per step.

    execrl train rloo                                  # tiny local model, CPU, well under a minute
    execrl train rloo model=runs/sft-x/final chat=false max_steps=200 rewards=pass_fraction,syntax beta=0.05

The defaults (chat prompts, CodeRL's shaped reward) are the ones that give the tiny model a
gradient: its answers are all wrong, so a plain pass/fail reward is all zeros, every
leave-one-out advantage is zero and nothing is learned; only a shaped reward tells a syntax
error from a runtime error among the k answers. The reward functions are grpo's ``REWARDS``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from execrl.errors import DataError
from execrl.training._common import (
    RunConfig,
    held_out_evaluator,
    metrics_callback,
    peft_config,
    resolve_model,
    save_final,
    split_tasks,
    trainer_settings,
)
from execrl.training.config import RunDir, field_doc
from execrl.training.grpo import REWARDS, build_rewards

__all__ = ["Config", "main"]


@dataclasses.dataclass
class Config(RunConfig):
    """RLOO recipe settings; the defaults train the tiny local model on CPU in well under a
    minute. The shared ones (model, data, run directory, evaluation, LoRA) come from RunConfig."""

    rewards: list[str] = field_doc(["coderl"], f"reward functions by name: {', '.join(REWARDS)}")
    reward_weights: list[float] | None = field_doc(None, "one weight per reward (default: all 1.0)")
    chat: bool = field_doc(True, "prompts as chat messages (instruct models) instead of plain-text continuations")
    num_generations: int = field_doc(4, "answers sampled per task (k): each one's baseline is the mean of the other k-1")
    per_device_train_batch_size: int = field_doc(8, "completions per step; a multiple of num_generations")
    max_steps: int = field_doc(20, "optimizer steps")
    learning_rate: float = field_doc(1e-5, "AdamW learning rate")
    beta: float = field_doc(0.0, "KL penalty against the initial model, subtracted from the reward "
                                 "(TRL's beta, default there 0.05; 0 loads no reference model)")
    normalize_advantages: bool = field_doc(False, "scale the advantages of each batch to mean 0, std 1")
    temperature: float = field_doc(1.0, "sampling temperature of the training rollouts")
    max_completion_length: int = field_doc(32, "max new tokens per training rollout")
    lora_r: int = field_doc(8, "LoRA rank (with lora=true)")
    lora_alpha: int = field_doc(16, "LoRA scaling alpha (with lora=true)")
    eval_max_new_tokens: int = field_doc(64, "max new tokens per evaluation sample")
    save_steps: int = field_doc(0, "save a resumable checkpoint-<step> every this many steps (0: none)")

    def validate(self) -> None:
        super().validate()
        unknown = [r for r in self.rewards if r not in REWARDS]
        if unknown:
            raise DataError(f"rewards: unknown reward {unknown[0]!r}; choose from: {', '.join(REWARDS)}")
        if not self.rewards:
            raise DataError("rewards: give at least one reward")
        if self.reward_weights is not None and len(self.reward_weights) != len(self.rewards):
            raise DataError(f"reward_weights: {len(self.reward_weights)} weights for {len(self.rewards)} rewards")
        if self.num_generations < 2:
            raise DataError("num_generations must be at least 2 (RLOO's baseline is the other answers to the task)")
        if self.per_device_train_batch_size % self.num_generations:
            raise DataError(f"per_device_train_batch_size={self.per_device_train_batch_size} must be a multiple "
                            f"of num_generations={self.num_generations}")
        for key in ("max_steps", "max_completion_length"):
            if getattr(self, key) < 1:
                raise DataError(f"{key} must be at least 1")
        if self.beta < 0:
            raise DataError(f"beta={self.beta}: must be 0 or more")
        if self.save_steps < 0:
            raise DataError("save_steps must be >= 0")


def _rloo_args(cfg: Config, run: RunDir) -> Any:
    from trl import RLOOConfig

    return RLOOConfig(
        output_dir=run.path,  # HF writes checkpoint-<step>/ here, where RunDir looks for them
        num_generations=cfg.num_generations,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        beta=cfg.beta,
        normalize_advantages=cfg.normalize_advantages,
        reward_weights=cfg.reward_weights,
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        **trainer_settings(cfg),
    )


def main(cfg: Config, force_new: bool = False) -> dict[str, Any]:
    """Run RLOO as ``cfg`` says; the summary: run directory, pass@k before and after, the
    mean reward of the first and last logged step, and the sandbox errors of the rewards."""
    from datasets import Dataset
    from trl import RLOOTrainer

    from execrl.rewards import task_rows
    from execrl.sandbox import SandboxPool

    # -- setup
    run = RunDir.create(cfg.output_dir, cfg.run_name, cfg, recipe="rloo", force_new=force_new)
    model = resolve_model(cfg.model, run, cfg.seed)
    train, held = split_tasks(cfg.benchmark, cfg.problems, cfg.eval_tasks, cfg.seed, cfg.limit)
    if not train:
        raise DataError(f"{cfg.benchmark}: no training tasks left after holding out eval_tasks={cfg.eval_tasks}")
    final = os.path.join(run.path, "final")

    with SandboxPool() as pool, run:
        evaluate = held_out_evaluator(cfg, run, held, pool, chat=cfg.chat)
        before = evaluate(model, "eval-before")
        rewards = build_rewards(cfg.rewards, pool)
        trainer = RLOOTrainer(
            model=model,
            reward_funcs=rewards,
            train_dataset=Dataset.from_list(task_rows(train, chat=cfg.chat)),
            args=_rloo_args(cfg, run),
            peft_config=peft_config(cfg),
            callbacks=[metrics_callback(run)],
        )

        # -- loop
        trainer.train(resume_from_checkpoint=run.latest_checkpoint())

        # -- save
        save_final(trainer, final, cfg.lora)  # LoRA merged: final/ loads without peft
        after = evaluate(final, "eval-after")

    means = [row["reward"] for row in run.read_metrics() if "reward" in row]  # resumed steps included
    sandbox_errors = sum(int(r.totals.get("sandbox_errors", 0)) for r in rewards if hasattr(r, "totals"))
    return {
        "run": run.path,
        "before": before,
        "after": after,
        "reward_mean_first": means[0] if means else None,
        "reward_mean_last": means[-1] if means else None,
        "sandbox_errors": sandbox_errors,
    }
