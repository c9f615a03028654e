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
from typing import Any

from execrl.errors import DataError
from execrl.training.config import RunDir, check_local_path, field_doc

__all__ = ["REWARDS", "Config", "build_rewards", "main"]


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
class Config:
    """GRPO recipe settings; the defaults train the tiny local model on CPU in about a minute."""

    model: str = field_doc("tiny", "'tiny' (a local tiny Llama), a hub id, or a local path such as an sft run's <run>/final")
    benchmark: str = field_doc("execrl-basic", "benchmark to train and evaluate on (execrl.tasks.BENCHMARKS)")
    problems: str | None = field_doc(None, "read the benchmark from this file instead of its default source")
    output_dir: str = field_doc("runs", "directory holding run directories")
    run_name: str | None = field_doc(None, "run directory name under output_dir (default: grpo-<timestamp>); same name + same config resumes")
    limit: int | None = field_doc(None, "use at most this many training tasks (held-out tasks come on top)")
    eval_tasks: int = field_doc(20, "tasks held out for the before/after evaluation (0: no evaluation)")
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
    seed: int = field_doc(0, "seed of the task split, the tiny model and training")
    lora: bool = field_doc(False, "train LoRA adapters instead of all weights (merged into final/)")
    lora_r: int = field_doc(8, "LoRA rank")
    lora_alpha: int = field_doc(16, "LoRA alpha")
    eval_samples: int = field_doc(1, "samples per held-out task for pass@k")
    eval_temperature: float = field_doc(0.0, "evaluation sampling temperature (0: greedy)")
    eval_max_new_tokens: int = field_doc(64, "max new tokens per evaluation sample")
    save_steps: int = field_doc(0, "save a resumable checkpoint-<step> every this many steps (0: none)")
    report_to: str = field_doc("none", "TRL/transformers loggers besides metrics.jsonl (none, wandb, tensorboard)")

    def validate(self) -> None:
        check_local_path("model", self.model)
        check_local_path("problems", self.problems)
        unknown = [r for r in self.rewards if r not in REWARDS]
        if unknown:
            raise DataError(f"rewards: unknown reward {unknown[0]!r}; choose from: {', '.join(REWARDS)}")
        if not self.rewards:
            raise DataError("rewards: give at least one reward")
        if self.reward_weights is not None and len(self.reward_weights) != len(self.rewards):
            raise DataError(f"reward_weights: {len(self.reward_weights)} weights for {len(self.rewards)} rewards")
        if self.num_generations < 2:
            raise DataError("num_generations must be at least 2 (GRPO compares answers within a group)")
        if self.per_device_train_batch_size % self.num_generations:
            raise DataError(f"per_device_train_batch_size={self.per_device_train_batch_size} must be a multiple "
                            f"of num_generations={self.num_generations}")
        for key in ("max_steps", "max_completion_length", "eval_samples", "eval_max_new_tokens", "lora_r"):
            if getattr(self, key) < 1:
                raise DataError(f"{key} must be at least 1")
        if self.eval_tasks < 0 or self.save_steps < 0 or (self.limit is not None and self.limit < 1):
            raise DataError("eval_tasks and save_steps must be >= 0, limit >= 1")


def build_rewards(names: list[str], pool: Any) -> list[Any]:
    """The reward functions named ``names``; execution rewards judge through ``pool``."""
    return [REWARDS[name](pool) for name in names]


def _grpo_args(cfg: Config, run: RunDir) -> Any:
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=run.path,  # HF writes checkpoint-<step>/ here, where RunDir looks for them
        num_generations=cfg.num_generations,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        beta=cfg.beta,
        reward_weights=cfg.reward_weights,
        seed=cfg.seed,
        use_cpu=not _cuda(),
        bf16=False,  # GRPOConfig defaults to bf16; fp32 is what CPUs and the tiny model want
        report_to=cfg.report_to,
        logging_steps=1,
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        disable_tqdm=True,
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _metrics_callback(run: RunDir) -> Any:
    from transformers import TrainerCallback

    class ToRunDir(TrainerCallback):
        """Each TRL log entry (loss, rewards/*, execrl/*) becomes a metrics.jsonl line."""

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if logs:
                run.log(dict(logs), state.global_step)

    return ToRunDir()


def _evaluate(cfg: Config, model: str, tasks: dict[str, Any], out_dir: str, pool: Any) -> dict[str, Any]:
    from execrl.training._common import evaluate_model

    if not tasks:
        return {}
    return evaluate_model(model, tasks, out_dir, n=cfg.eval_samples, temperature=cfg.eval_temperature,
                          max_new_tokens=cfg.eval_max_new_tokens, pool=pool, seed=cfg.seed, chat=cfg.chat)


def main(cfg: Config, force_new: bool = False) -> dict[str, Any]:
    """Run GRPO as ``cfg`` says; the summary: run directory, pass@k before and after, the
    mean reward of the first and last logged step, and the sandbox errors of the rewards."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from execrl.rewards import task_rows
    from execrl.sandbox import SandboxPool
    from execrl.training._common import resolve_model, split_tasks

    # -- setup
    run = RunDir.create(cfg.output_dir, cfg.run_name, cfg, recipe="grpo", force_new=force_new)
    model = resolve_model(cfg.model, run, cfg.seed)
    train, held = split_tasks(cfg.benchmark, cfg.problems, cfg.eval_tasks, cfg.seed, cfg.limit)
    if not train:
        raise DataError(f"{cfg.benchmark}: no training tasks left after holding out eval_tasks={cfg.eval_tasks}")
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    final = os.path.join(run.path, "final")

    with SandboxPool() as pool, run:
        before = _evaluate(cfg, model, held, os.path.join(run.path, "eval-before"), pool)
        rewards = build_rewards(cfg.rewards, pool)
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=rewards,
            train_dataset=Dataset.from_list(task_rows(train, chat=cfg.chat)),
            args=_grpo_args(cfg, run),
            peft_config=peft_config,
            callbacks=[_metrics_callback(run)],
        )

        # -- loop
        trainer.train(resume_from_checkpoint=run.latest_checkpoint())

        # -- save
        trained = trainer.model
        if cfg.lora:
            trained = trained.merge_and_unload()  # final/ loads without peft
        trained.save_pretrained(final)
        trainer.processing_class.save_pretrained(final)
        after = _evaluate(cfg, final, held, os.path.join(run.path, "eval-after"), pool)

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
