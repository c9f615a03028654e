"""A scalar reward model trained on code preference pairs mined by execution, with its
held-out pairwise accuracy before and after training.

The benchmark's tasks are split (seeded) into train and held-out tasks. Preference pairs
are mined exactly as the DPO recipe does (:func:`~execrl.training.dpo.mine_preference_pairs`):
the starting model samples ``samples_per_task`` completions per task, the sandbox judges
them, and each passing completion is paired with the most similar failing one; with
``reference_fallback=true`` (the default) and no mined pair, each task's reference body is
paired with its most similar failing sample instead. Train tasks give the training pairs,
held-out tasks the evaluation pairs (mined the same way, never trained on).

TRL's ``RewardTrainer`` turns the causal LM into a sequence classifier with one output
(``num_labels=1``, a fresh linear head) and trains it with the pairwise loss
``-log sigmoid(r(chosen) - r(rejected))`` on ``{"prompt", "chosen", "rejected"}``. The
held-out pairwise accuracy is the share of evaluation pairs where ``r(chosen) > r(rejected)``
(ties count as wrong): before training (the freshly initialised head, the same seed as the
trainer's) and after (``<run>/final``, which ``AutoModelForSequenceClassification`` loads).

Run directory (``output_dir/run_name``): ``config.json``, ``metrics.jsonl`` (every trainer
log line), ``mining/`` (train pairs), ``eval-pairs/`` (held-out pairs), ``checkpoint-<step>/``
(rerunning the same command resumes from the latest one) and ``final/``.

    execrl train reward_model                          # tiny local model, about a minute on CPU
    execrl train reward_model model=Qwen/Qwen2.5-0.5B-Instruct lora=true max_steps=200 learning_rate=1e-5 run_name=qwen-rm
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from execrl.errors import DataError
from execrl.training._common import (
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
from execrl.training._dist import processes
from execrl.training.config import field_doc
from execrl.training.dpo import PreferenceConfig, mine_preference_pairs

__all__ = ["Config", "main", "pairwise_accuracy"]


@dataclass
class Config(PreferenceConfig):
    """Settings of the reward-model recipe (defaults: the tiny local model on CPU, about a
    minute); the shared ones (model, data, run directory, LoRA, mining, training) come from
    dpo.PreferenceConfig. Only the defaults and docs that differ are restated here."""

    limit: int | None = field_doc(None, "number of train tasks to mine pairs on (None: every task not held out)")
    eval_tasks: int = field_doc(40, "held-out tasks whose pairs measure pairwise accuracy (0: none)")
    samples_per_task: int = field_doc(4, "completions sampled per task for mining (at least 2)")
    max_new_tokens: int = field_doc(48, "max new tokens per mining sample")
    max_steps: int = field_doc(100, "optimizer steps to train")
    learning_rate: float = field_doc(5e-4, "peak learning rate (linear decay); use ~1e-6..1e-5 for real models")
    max_length: int = field_doc(256, "tokens per sequence (prompt + chosen or rejected); longer training pairs are dropped")
    save_steps: int = field_doc(50, "save a checkpoint every this many steps (and at the end)")


def pairwise_accuracy(model: Any, tokenizer: Any, pairs: list[dict[str, Any]], max_length: int) -> float | None:
    """Share of ``pairs`` where the reward model scores ``prompt + chosen`` above
    ``prompt + rejected`` (ties count as wrong); None without pairs. Texts end with EOS,
    as RewardTrainer trains on them."""
    import torch

    if not pairs:
        return None
    if model.config.pad_token_id is None:  # the classifier reads the last non-pad token
        model.config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None \
            else tokenizer.eos_token_id
    eos = tokenizer.eos_token or ""
    model.eval()

    def score(text: str) -> float:
        ids = tokenizer(text if text.endswith(eos) else text + eos, truncation=True, max_length=max_length,
                        return_tensors="pt")
        with torch.no_grad():
            return float(model(**ids).logits[0, 0])

    wins = sum(score(p["prompt"] + p["chosen"]) > score(p["prompt"] + p["rejected"]) for p in pairs)
    return wins / len(pairs)


def _accuracy_of(path: str, pairs: list[dict[str, Any]], cfg: Config) -> float | None:
    """Load ``path`` as a one-label sequence classifier (seeded: the same fresh head as the
    trainer's when ``path`` is a causal LM) and measure its pairwise accuracy."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

    if not pairs:
        return None
    set_seed(cfg.seed)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    return pairwise_accuracy(model, AutoTokenizer.from_pretrained(path), pairs, cfg.max_length)


def main(cfg: Config, force_new: bool = False) -> dict[str, Any]:
    """Run the recipe; returns ``{"run", "pairs", "pairs_from_references", "accuracy_before",
    "accuracy_after", "train_loss", ...}``."""
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    # --- setup: run directory, model, task split -------------------------------------
    run = open_run(cfg, "reward_model", force_new)
    model_path = resolve_model(cfg.model, run, seed=cfg.seed)
    train_tasks, held_out = split_tasks(cfg.benchmark, cfg.problems, cfg.eval_tasks, cfg.seed, cfg.limit, cfg.skip)
    if not train_tasks:
        raise DataError(f"{cfg.benchmark}: no train tasks left after holding out eval_tasks={cfg.eval_tasks}")
    resume_from, start_step = run.latest_checkpoint(), run.resume_step

    try:
        pool = sandbox_pool()
        try:
            # --- mine: train pairs, and held-out pairs the same way (never trained on) ------
            pairs, mining = mine_preference_pairs(cfg, run, model_path, train_tasks, pool)
            run.log({"mining": mining}, step=0)
            eval_pairs: list[dict[str, Any]] = []
            eval_mining: dict[str, Any] = {}
            if held_out:
                eval_pairs, eval_mining = mine_preference_pairs(cfg, run, model_path, held_out, pool,
                                                                name="eval-pairs", required=False)
                run.log({"eval_pairs": eval_mining}, step=0)
        finally:
            pool.close()

        accuracy_before = processes().on_main(lambda: _accuracy_of(model_path, eval_pairs, cfg))
        run.log({"accuracy_before": accuracy_before}, step=0)

        # --- train: TRL's RewardTrainer (num_labels=1 head on the causal LM) -------------
        args = RewardConfig(
            output_dir=run.path,  # checkpoint-<step>/ lands where RunDir.latest_checkpoint() looks
            max_steps=cfg.max_steps,
            per_device_train_batch_size=cfg.per_device_train_batch_size,
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            learning_rate=cfg.learning_rate,
            max_length=cfg.max_length,
            save_strategy="steps",
            save_steps=cfg.save_steps,
            **trainer_settings(cfg),
        )
        lora = peft_config(cfg)
        if lora is not None:  # a classifier: train (and save) the fresh score head too
            lora.task_type = "SEQ_CLS"
            lora.modules_to_save = ["score"]
        dataset = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
        trainer = RewardTrainer(model=model_path, args=args, train_dataset=dataset, peft_config=lora,
                                callbacks=[metrics_callback(run)])
        show_progress(trainer, "reward model")
        result = trainer.train(resume_from_checkpoint=resume_from)

        # --- save: a plain sequence classifier (LoRA merged) that from_pretrained loads ---
        final = save_final(trainer, os.path.join(run.path, "final"), cfg.lora)

        accuracy_after = processes().on_main(lambda: _accuracy_of(final, eval_pairs, cfg))
        run.log({"accuracy_after": accuracy_after}, step=trainer.state.global_step)
    finally:
        run.close()

    trained = trainer.state.global_step - start_step  # 0 when a finished run is reopened
    return {"run": run.path, "pairs": len(pairs), "pairs_mined": mining["pairs_mined"],
            "pairs_from_references": mining["pairs_from_references"],
            "mining_samples": mining["samples"], "mining_pass@1": mining["mining_pass@1"],
            "eval_pairs": len(eval_pairs), "eval_pairs_from_references": eval_mining.get("pairs_from_references", 0),
            "accuracy_before": accuracy_before, "accuracy_after": accuracy_after,
            "train_loss": result.training_loss if trained else None, "steps": trainer.state.global_step,
            "resumed_from": os.path.basename(resume_from) if resume_from else None}
