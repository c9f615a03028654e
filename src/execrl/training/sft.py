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
from execrl.training.config import check_local_path, field_doc

__all__ = ["Config", "main"]

REPORT_TO = ("none", "tensorboard", "wandb")


@dataclass
class Config:
    """Settings of the SFT recipe (defaults: the tiny local model on CPU, about a minute)."""

    model: str = field_doc("tiny", "model to fine-tune: 'tiny' (built locally), a hub id or a local path")
    benchmark: str = field_doc("execrl-basic", "benchmark whose tasks are split into train and held-out sets")
    problems: str | None = field_doc(None, "problems file for the benchmark (None: its bundled copy)")
    output_dir: str = field_doc("runs", "directory that holds run directories")
    run_name: str | None = field_doc(None, "run directory name under output_dir (None: sft-<timestamp>); reuse it to resume")
    limit: int | None = field_doc(None, "number of train tasks (None: every task not held out)")
    eval_tasks: int = field_doc(20, "number of held-out tasks evaluated before and after training")
    max_steps: int = field_doc(30, "optimizer steps to train")
    per_device_train_batch_size: int = field_doc(4, "examples per device per forward pass")
    gradient_accumulation_steps: int = field_doc(1, "forward passes accumulated per optimizer step")
    learning_rate: float = field_doc(1e-3, "peak learning rate (linear decay); use ~1e-5 for full fine-tuning of real models")
    max_length: int = field_doc(256, "tokens per example (prompt + completion); longer ones are truncated")
    seed: int = field_doc(0, "seed of the task split, the tiny model, training and sampling")
    lora: bool = field_doc(False, "train a LoRA adapter (peft) instead of every weight; merged into final/")
    lora_r: int = field_doc(16, "LoRA rank (with lora=true)")
    lora_alpha: int = field_doc(32, "LoRA scaling alpha (with lora=true)")
    eval_samples: int = field_doc(1, "samples per held-out task (n of pass@k)")
    eval_temperature: float = field_doc(0.0, "sampling temperature of the evaluations (0: greedy)")
    eval_max_new_tokens: int = field_doc(96, "max new tokens per evaluation sample")
    save_steps: int = field_doc(10, "save a checkpoint every this many steps (and at the end)")
    report_to: str = field_doc("none", "extra trainer logging: none, tensorboard or wandb (metrics.jsonl is always written)")

    def validate(self) -> None:
        check_local_path("model", self.model)
        if self.problems is not None:
            check_local_path("problems", self.problems)
        positive = ("eval_samples", "eval_max_new_tokens", "max_steps", "per_device_train_batch_size",
                    "gradient_accumulation_steps", "save_steps", "lora_r", "lora_alpha")
        for key in positive:
            if getattr(self, key) < 1:
                raise DataError(f"{key}={getattr(self, key)}: must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise DataError(f"limit={self.limit}: must be at least 1 (or none for every task)")
        if self.eval_tasks < 0:
            raise DataError(f"eval_tasks={self.eval_tasks}: must be 0 or more")
        if not self.learning_rate > 0:
            raise DataError(f"learning_rate={self.learning_rate}: must be positive")
        if self.max_length < 16:
            raise DataError(f"max_length={self.max_length}: must be at least 16")
        if self.eval_temperature < 0:
            raise DataError(f"eval_temperature={self.eval_temperature}: must be 0 or more")
        if self.report_to not in REPORT_TO:
            raise DataError(f"report_to={self.report_to!r}: choose one of {', '.join(REPORT_TO)}")


def _pairs(tasks: dict[str, Any]) -> list[dict[str, str]]:
    """Prompt/completion pairs from the tasks whose reference continues their prompt."""
    return [{"prompt": t.prompt, "completion": t.reference[len(t.prompt):]}
            for t in tasks.values() if t.reference and t.reference.startswith(t.prompt)
            and t.reference[len(t.prompt):].strip()]


def _metrics_callback(run: Any) -> Any:
    """A TrainerCallback that appends every trainer log dict to ``metrics.jsonl``."""
    from transformers import TrainerCallback

    class ToMetrics(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if logs and state.is_world_process_zero:
                run.log(dict(logs), step=state.global_step)

    return ToMetrics()


def main(cfg: Config, force_new: bool = False) -> dict[str, Any]:
    """Run the recipe; returns ``{"run", "before", "after", "train_loss", ...}``."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from execrl.sandbox import SandboxPool
    from execrl.training._common import evaluate_model, resolve_model, split_tasks
    from execrl.training.config import RunDir

    # --- setup: run directory, model, task split -------------------------------------
    run = RunDir.create(cfg.output_dir, cfg.run_name, cfg, recipe="sft", force_new=force_new)
    model_path = resolve_model(cfg.model, run, seed=cfg.seed)
    train_tasks, held_out = split_tasks(cfg.benchmark, cfg.problems, cfg.eval_tasks, cfg.seed, cfg.limit)
    pairs = _pairs(train_tasks)
    if not pairs:
        raise DataError(f"{cfg.benchmark}: no train task has a reference solution to fine-tune on")
    ks = tuple(k for k in (1, 5, 10) if k <= cfg.eval_samples)
    on_cpu = not torch.cuda.is_available()
    resume_from, start_step = run.latest_checkpoint(), run.resume_step

    pool = SandboxPool()
    try:
        def evaluate(model: str, name: str) -> dict[str, Any]:
            if not held_out:
                return {}
            return evaluate_model(model, held_out, os.path.join(run.path, name), n=cfg.eval_samples,
                                  temperature=cfg.eval_temperature, max_new_tokens=cfg.eval_max_new_tokens,
                                  ks=ks, pool=pool, seed=cfg.seed, chat=False)

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
            seed=cfg.seed,
            use_cpu=on_cpu,
            bf16=False if on_cpu else None,
            fp16=False,
            gradient_checkpointing=not on_cpu,  # saves GPU memory; on CPU it only costs time
            logging_steps=1,
            save_strategy="steps",
            save_steps=cfg.save_steps,
            report_to=cfg.report_to,
            disable_tqdm=True,
        )
        peft_config = None
        if cfg.lora:
            try:
                from peft import LoraConfig
            except ImportError:
                raise ImportError("lora=true needs peft: pip install peft") from None
            peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules="all-linear",
                                     task_type="CAUSAL_LM")
        trainer = SFTTrainer(model=model_path, args=args, train_dataset=Dataset.from_list(pairs),
                             peft_config=peft_config, callbacks=[_metrics_callback(run)])
        result = trainer.train(resume_from_checkpoint=resume_from)

        # --- save: a plain model (LoRA merged) that from_pretrained loads ----------------
        final = os.path.join(run.path, "final")
        model = trainer.model
        if cfg.lora:
            model = model.merge_and_unload()
        model.save_pretrained(final)
        trainer.processing_class.save_pretrained(final)

        after = evaluate(final, "eval-after")
        run.log({"eval_after": after}, step=trainer.state.global_step)
    finally:
        pool.close()
        run.close()

    trained = trainer.state.global_step - start_step  # 0 when a finished run is reopened
    return {"run": run.path, "before": before, "after": after, "train_loss": result.training_loss if trained else None,
            "steps": trainer.state.global_step, "train_examples": len(pairs),
            "resumed_from": os.path.basename(resume_from) if resume_from else None}
