"""GRPO on code with execution rewards: TRL's ``GRPOTrainer`` sampling groups of answers per
task, each answer scored by running it against the task's hidden tests in execrl's sandbox.

The run: build or load the model, split the benchmark into training and held-out tasks, start
one sandbox pool, measure pass@1 on the held-out tasks, train (resuming from the run's latest
checkpoint), save ``<run>/final``, measure pass@1 again. ``metrics.jsonl`` holds every TRL log
entry, with TRL's ``rewards/*`` and execrl's ``execrl/<reward>/*`` statistics per step.

    execrl train grpo                                  # tiny local model, CPU, well under a minute
    execrl train grpo model=runs/sft-x/final chat=false max_steps=200 rewards=pass_fraction,syntax

The defaults (chat prompts, CodeRL's shaped reward) are the ones that give the tiny model a
gradient: its answers are all wrong, and only a shaped reward tells a syntax error from a
runtime error within a group (mean reward -0.85 -> -0.75 in 20 steps, held-out pass@1 0.0
before and after). A plain pass/fail reward is all zeros for it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any, ClassVar

from execrl.errors import DataError
from execrl.training._common import (
    RunConfig,
    held_out_evaluator,
    metrics_callback,
    open_run,
    peft_config,
    require_vllm,
    resolve_model,
    sandbox_pool,
    save_final,
    show_progress,
    split_tasks,
    trainer_settings,
)
from execrl.training.config import RunDir, check_at_least, field_doc

__all__ = ["REWARDS", "Config", "build_rewards", "check_rewards", "main"]


def _static(cls_name: str) -> Callable[[Any], Any]:
    def make(pool: Any) -> Any:  # static rewards run nothing, so they take no pool
        from execrl.rewards import static

        return getattr(static, cls_name)()

    return make


def _execution(score: str) -> Callable[[Any], Any]:
    def make(pool: Any) -> Any:
        from execrl.rewards import ExecutionReward

        return ExecutionReward(score, pool=pool)

    return make


# Reward name -> factory(pool). Execution rewards share the run's pool; static ones ignore it.
REWARDS: dict[str, Callable[[Any], Any]] = {
    "pass_all": _execution("pass_all"),
    "pass_fraction": _execution("pass_fraction"),
    "coderl": _execution("coderl"),
    "syntax": _static("SyntaxReward"),
    "ruff": _static("RuffReward"),
    "complexity": _static("ComplexityReward"),
    "security": _static("SecurityReward"),
    "length": _static("LengthReward"),
    "format": _static("FormatReward"),
}


@dataclasses.dataclass
class Config(RunConfig):
    """GRPO recipe settings; the defaults train the tiny local model on CPU in well under a
    minute. The shared ones (model, data, run directory, evaluation, LoRA) come from RunConfig."""

    rewards: list[str] = field_doc(["coderl"], f"reward functions by name: {', '.join(REWARDS)}")
    reward_weights: list[float] | None = field_doc(None, "one weight per reward (default: all 1.0)")
    chat: bool = field_doc(True, "prompts as chat messages (instruct models) instead of plain-text continuations")
    num_generations: int = field_doc(4, "answers sampled per task: the group GRPO normalizes rewards over")
    per_device_train_batch_size: int = field_doc(8, "completions per step; a multiple of num_generations")
    max_steps: int = field_doc(20, "optimizer steps")
    learning_rate: float = field_doc(1e-5, "AdamW learning rate")
    beta: float = field_doc(0.0, "KL coefficient against the initial model (TRL's beta; 0 loads no reference model)")
    temperature: float = field_doc(1.0, "sampling temperature of the training rollouts")
    max_completion_length: int = field_doc(32, "max new tokens per training rollout")
    lora_r: int = field_doc(8, "LoRA rank (with lora=true)")
    lora_alpha: int = field_doc(16, "LoRA scaling alpha (with lora=true)")
    eval_max_new_tokens: int = field_doc(64, "max new tokens per evaluation sample")
    save_steps: int = field_doc(0, "save a resumable checkpoint-<step> every this many steps (0: none)")
    use_vllm: bool = field_doc(False, "generate the rollouts with vLLM colocated on the training GPUs (TRL's use_vllm)")

    GROUP_WHY: ClassVar[str] = "GRPO compares answers within a group"

    def validate(self) -> None:
        super().validate()
        check_rewards(self.rewards, self.reward_weights)
        if self.num_generations < 2:
            raise DataError(f"num_generations must be at least 2 ({self.GROUP_WHY})")
        if self.per_device_train_batch_size % self.num_generations:
            raise DataError(f"per_device_train_batch_size={self.per_device_train_batch_size} must be a multiple "
                            f"of num_generations={self.num_generations}")
        check_at_least(self, 1, "max_steps", "max_completion_length")
        check_at_least(self, 0, "save_steps")
        if self.use_vllm:
            require_vllm("use_vllm=true")


def check_rewards(names: list[str], weights: list[float] | None) -> None:
    """For ``validate()``: one-line errors for unknown, missing or mis-weighted reward names."""
    unknown = [r for r in names if r not in REWARDS]
    if unknown:
        raise DataError(f"rewards: unknown reward {unknown[0]!r}; choose from: {', '.join(REWARDS)}")
    if not names:
        raise DataError("rewards: give at least one reward")
    if weights is not None and len(weights) != len(names):
        raise DataError(f"reward_weights: {len(weights)} weights for {len(names)} rewards")


def build_rewards(names: list[str], pool: Any) -> list[Any]:
    """The reward functions named ``names``; execution rewards judge through ``pool``."""
    return [REWARDS[name](pool) for name in names]


def _trainer_args(cfg: Config, run: RunDir, config_cls: Any, extra: dict[str, Any]) -> Any:
    return config_cls(
        output_dir=run.path,  # HF writes checkpoint-<step>/ here, where RunDir looks for them
        num_generations=cfg.num_generations,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        beta=cfg.beta,
        reward_weights=cfg.reward_weights,
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        **({"use_vllm": True, "vllm_mode": "colocate"} if cfg.use_vllm else {}),
        **extra,
        **trainer_settings(cfg),
    )


def main(cfg: Config, force_new: bool = False) -> dict[str, Any]:
    """Run GRPO as ``cfg`` says; the summary: run directory, pass@k before and after, the
    mean reward of the first and last logged step, and the sandbox errors of the rewards."""
    return train_online(cfg, "grpo", "GRPOTrainer", "GRPOConfig", {}, force_new)


def train_online(cfg: Config, recipe: str, trainer_name: str, config_name: str, extra: dict[str, Any],
                 force_new: bool = False) -> dict[str, Any]:
    """The online-RL loop GRPO and RLOO share (they differ in TRL's trainer and its config):
    sample groups of answers per task, reward them in the sandbox, update."""
    import trl
    from datasets import Dataset

    from execrl.rewards import task_rows
    # -- setup
    run = open_run(cfg, recipe, force_new)
    model = resolve_model(cfg.model, run, cfg.seed)
    train, held = split_tasks(cfg.benchmark, cfg.problems, cfg.eval_tasks, cfg.seed, cfg.limit, cfg.skip)
    if not train:
        raise DataError(f"{cfg.benchmark}: no training tasks left after holding out eval_tasks={cfg.eval_tasks}")
    final = os.path.join(run.path, "final")

    with sandbox_pool() as pool, run:  # every process rewards its own share of the batch
        evaluate = held_out_evaluator(cfg, run, held, pool, chat=cfg.chat)
        before = evaluate(model, "eval-before")
        rewards = build_rewards(cfg.rewards, pool)
        trainer = getattr(trl, trainer_name)(
            model=model,
            reward_funcs=rewards,
            train_dataset=Dataset.from_list(task_rows(train, chat=cfg.chat)),
            args=_trainer_args(cfg, run, getattr(trl, config_name), extra),
            peft_config=peft_config(cfg),
            callbacks=[metrics_callback(run)],
        )
        show_progress(trainer, recipe.upper())

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
