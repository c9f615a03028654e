"""RAFT (reward-ranked fine-tuning, Dong et al. 2023), i.e. rejection sampling / expert
iteration for code: sample programs, keep the ones the sandbox accepts, fine-tune on them,
repeat from the fine-tuned model.

The benchmark's tasks are split (seeded) into train and held-out tasks, and the model is
evaluated on the held-out tasks before and after (as in ``sft``). Each round ``r`` (1..rounds):

1. sample ``samples_per_task`` completions per train task from the current model (plain
   prompt, no chat template) into ``<run>/round-<r>/samples.jsonl``;
2. run them against the hidden tests (``round-<r>/results.jsonl``); the reward is the verdict;
3. keep per ``keep``: ``passed`` keeps every distinct program that passes all hidden tests;
   ``best`` also keeps, for each task where no sample passes, the one sample with the highest
   fraction of hidden tests passed (when above 0). ``include_references`` adds the train
   tasks' reference solutions to the kept set;
4. fine-tune with TRL's ``SFTTrainer`` for ``steps_per_round`` steps on
   ``{"prompt": task.prompt, "completion": ...}``: the kept program's text after the prompt
   when the program starts with the prompt, else the whole program (loss on the completion
   only), and save ``round-<r>/model``. The next round samples from that model. A round that
   keeps nothing is logged and skipped (no training; the next round samples the same model).

``final/`` is the last trained model (the base model when no round trained). Run directory:
``config.json``, ``metrics.jsonl`` (eval_before, every trainer log line, one ``round`` line per
round, eval_after; steps count optimizer steps over all rounds), ``eval-before/``,
``round-<r>/{samples.jsonl,results.jsonl,model/,round.json}``, ``final/``, ``eval-after/``.
Rerunning the same command resumes: a round with ``round.json`` is not redone, and
interrupted sampling and evaluation continue where they stopped.

    execrl train raft                                  # tiny local model on CPU, a few minutes
    execrl train raft include_references=true          # seed the kept set with the references
    execrl train raft model=Qwen/Qwen2.5-0.5B rounds=3 samples_per_task=8 learning_rate=1e-5 run_name=qwen-raft
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from functools import partial
from typing import Any

from execrl.errors import DataError
from execrl.training._common import (
    RunConfig,
    held_out_evaluator,
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
from execrl.training.config import check_at_least, check_positive, field_doc

__all__ = ["KEEP_RULES", "Config", "keep_programs", "main"]

KEEP_RULES = ("passed", "best")


@dataclass
class Config(RunConfig):
    """Settings of the RAFT recipe (defaults: the tiny local model on CPU); the shared ones
    (model, data, run directory, evaluation, LoRA) come from RunConfig."""

    limit: int | None = field_doc(40, "number of train tasks sampled each round (None: every task not held out)")
    rounds: int = field_doc(2, "sample -> keep -> fine-tune rounds")
    samples_per_task: int = field_doc(4, "samples per train task per round")
    temperature: float = field_doc(0.8, "sampling temperature of the train samples (0: greedy)")
    max_new_tokens: int = field_doc(96, "max new tokens per train sample")
    keep: str = field_doc("passed", "which samples to fine-tune on: passed (pass every hidden test) or best "
                                    "(also the top pass-fraction sample of tasks where none passes)")
    include_references: bool = field_doc(False, "also fine-tune on the train tasks' reference solutions each round")
    steps_per_round: int = field_doc(10, "optimizer steps of fine-tuning per round")
    per_device_train_batch_size: int = field_doc(4, "examples per device per forward pass")
    gradient_accumulation_steps: int = field_doc(1, "forward passes accumulated per optimizer step")
    learning_rate: float = field_doc(1e-3, "peak learning rate per round (linear decay); use ~1e-5 for full fine-tuning of real models")
    max_length: int = field_doc(256, "tokens per example (prompt + completion); longer ones are truncated")

    def validate(self) -> None:
        super().validate()
        check_at_least(self, 1, "rounds", "samples_per_task", "max_new_tokens", "steps_per_round",
                       "per_device_train_batch_size", "gradient_accumulation_steps")
        if self.keep not in KEEP_RULES:
            raise DataError(f"keep={self.keep!r}: choose one of {', '.join(KEEP_RULES)}")
        check_positive(self, "learning_rate")
        check_at_least(self, 16, "max_length")
        check_at_least(self, 0, "temperature")


def _completion(prompt: str, program: str) -> str:
    """What the model is trained to write after ``prompt``: the program's text after the
    prompt when it continues the prompt, else the whole program."""
    return program[len(prompt):] if program.startswith(prompt) else program


def keep_programs(rows: list[dict[str, Any]], programs: list[str], rule: str) -> list[tuple[str, str]]:
    """``(task_id, program)`` pairs to fine-tune on, from result rows and their programs (same
    order). ``passed``: every distinct passing program. ``best``: also, per task without a
    passing sample, the first sample with the highest ``tests_passed / tests_total`` (> 0)."""
    kept: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    best: dict[str, tuple[float, str]] = {}
    passed_tasks: set[str] = set()
    for row, program in zip(rows, programs, strict=True):
        tid = row["task_id"]
        if row["passed"]:
            passed_tasks.add(tid)
            if (tid, program) not in seen:
                seen.add((tid, program))
                kept.append((tid, program))
        elif rule == "best" and row.get("tests_total"):
            frac = (row.get("tests_passed") or 0) / row["tests_total"]
            if frac > 0 and frac > best.get(tid, (0.0, ""))[0]:
                best[tid] = (frac, program)
    if rule == "best":
        kept += [(tid, prog) for tid, (_, prog) in best.items() if tid not in passed_tasks]
    return kept


def _metrics_callback(log: Any, offset: int) -> Any:
    """A TrainerCallback that logs every trainer log dict, at the step counted over all rounds."""
    from transformers import TrainerCallback

    class ToMetrics(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if logs and state.is_world_process_zero:
                log(dict(logs), offset + state.global_step)

    return ToMetrics()


def _save_model(src: str, dest: str) -> None:
    """Copy a model directory (or load a hub id and save it) to ``dest``, atomically."""
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if os.path.isdir(src):
        shutil.copytree(src, tmp)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        AutoModelForCausalLM.from_pretrained(src).save_pretrained(tmp)
        AutoTokenizer.from_pretrained(src).save_pretrained(tmp)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)


def main(cfg: Config, force_new: bool = False) -> dict[str, Any]:
    """Run the recipe; returns ``{"run", "before", "after", "rounds", "kept_per_round", ...}``."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from execrl.evaluation import evaluate as run_tests
    from execrl.evaluation import read_samples
    from execrl.generation import SamplingParams

    # --- setup: run directory, model, task split -------------------------------------
    run = open_run(cfg, "raft", force_new)
    procs = processes()
    model_path = resolve_model(cfg.model, run, seed=cfg.seed)
    train_tasks, held_out = split_tasks(cfg.benchmark, cfg.problems, cfg.eval_tasks, cfg.seed, cfg.limit, cfg.skip)
    if not train_tasks:
        raise DataError(f"{cfg.benchmark}: no train tasks left after holding out {cfg.eval_tasks}")
    references = {(t.task_id, t.reference) for t in train_tasks.values() if t.reference} if cfg.include_references else set()
    # No checkpoint-<step>/ lives in the run directory, so a resumed RunDir has dropped every
    # metric line after step 0; finished rounds replay theirs from round.json below.
    logged_before = any("eval_before" in r for r in run.read_metrics())

    pool = sandbox_pool()
    try:
        evaluate = held_out_evaluator(cfg, run, held_out, pool, chat=False)  # plain prompts, as trained

        before = evaluate(model_path, "eval-before")
        if not logged_before:
            run.log({"eval_before": before}, step=0)

        current, step, rounds = model_path, 0, []
        for r in range(1, cfg.rounds + 1):
            rdir = os.path.join(run.path, f"round-{r}")
            done_path = os.path.join(rdir, "round.json")
            if os.path.exists(done_path):  # finished before: replay its metric lines, reuse its model
                with open(done_path, encoding="utf-8") as f:
                    info = json.load(f)
                for row in info.pop("rows"):
                    run.log({k: v for k, v in row.items() if k != "step"}, step=row["step"])
                info["resumed"] = True
                rounds.append(info)
                step += info["steps"]
                current = info["model"] or current
                continue
            os.makedirs(rdir, exist_ok=True)
            rows: list[dict[str, Any]] = []

            def log(metrics: dict[str, Any], at: int, rows: list[dict[str, Any]] = rows) -> None:
                run.log(metrics, step=at)
                rows.append({"step": at, **json.loads(json.dumps(metrics, default=str))})

            # --- sample from the current model, run the samples in the sandbox ------------
            samples_path = os.path.join(rdir, "samples.jsonl")
            params = SamplingParams(n=cfg.samples_per_task, temperature=cfg.temperature,
                                    max_new_tokens=cfg.max_new_tokens, seed=cfg.seed + r)
            sample_tasks(current, train_tasks, samples_path, params, chat=False, generator=cfg.generator)
            samples = read_samples(samples_path, train_tasks, extract=True)
            results_path = os.path.join(rdir, "results.jsonl")
            pass_at_k = procs.on_main(partial(run_tests, train_tasks, samples, results_path, pool=pool, ks=(1,),
                                              progress=False)).pass_at_k
            with open(results_path, encoding="utf-8") as f:
                results = [json.loads(x) for x in f if x.strip()]

            # --- keep the rewarded programs (plus the references, if asked) ---------------
            kept = keep_programs(results, [s.program for s in samples], cfg.keep)
            sampled_kept = len(kept)
            kept += sorted(references - set(kept))
            pairs = [{"prompt": train_tasks[tid].prompt, "completion": _completion(train_tasks[tid].prompt, prog)}
                     for tid, prog in kept]
            pairs = [p for p in pairs if p["completion"].strip()]
            pass_rate = sum(1 for x in results if x["passed"]) / len(results)
            info = {"round": r, "samples": len(results), "train_pass_rate": pass_rate,
                    "train_pass@1": pass_at_k.get("pass@1"), "kept": len(pairs),
                    "kept_samples": sampled_kept, "kept_tasks": len({tid for tid, _ in kept}),
                    "trained": False, "train_loss": None, "steps": 0, "model": None}

            # --- fine-tune on the kept set; skip the round when it is empty ---------------
            if pairs:
                args = SFTConfig(
                    output_dir=os.path.join(rdir, "trainer"),
                    max_steps=cfg.steps_per_round,
                    per_device_train_batch_size=cfg.per_device_train_batch_size,
                    gradient_accumulation_steps=cfg.gradient_accumulation_steps,
                    learning_rate=cfg.learning_rate,
                    max_length=cfg.max_length,
                    completion_only_loss=True,
                    save_strategy="no",  # a round is the unit of resumption: its model is saved below
                    **{**trainer_settings(cfg), "seed": cfg.seed + r},
                )
                trainer = SFTTrainer(model=current, args=args, train_dataset=Dataset.from_list(pairs),
                                     peft_config=peft_config(cfg), callbacks=[_metrics_callback(log, step)])
                show_progress(trainer, f"RAFT round {r}")
                result = trainer.train()
                out, tmp = os.path.join(rdir, "model"), os.path.join(rdir, "model.tmp")
                if procs.is_main:
                    shutil.rmtree(tmp, ignore_errors=True)
                save_final(trainer, tmp, cfg.lora)  # every process: it saves on the main one
                if procs.is_main:
                    shutil.rmtree(out, ignore_errors=True)
                    os.replace(tmp, out)
                    shutil.rmtree(args.output_dir, ignore_errors=True)
                info.update(trained=True, train_loss=result.training_loss, steps=trainer.state.global_step, model=out)
                step += trainer.state.global_step
                current = out
                del trainer  # free the round's weights before the next one loads
            log({"round": {k: v for k, v in info.items() if k != "model"}}, step)
            if procs.is_main:
                tmp = done_path + ".tmp"
                with open(tmp, "w", encoding="utf-8") as f:
                    json.dump({**info, "rows": rows}, f, indent=2, default=str)
                os.replace(tmp, done_path)  # the round counts as finished only now
            procs.wait()  # every process sees the round finished before the next one starts
            info["resumed"] = False
            rounds.append(info)

        # --- final/: the last trained model (the base model when none trained) -----------
        final = os.path.join(run.path, "final")
        procs.on_main(partial(_save_model, current, final))
        after = evaluate(final, "eval-after")
        run.log({"eval_after": after}, step=step)
    finally:
        pool.close()
        run.close()

    return {"run": run.path, "before": before, "after": after, "steps": step,
            "kept_per_round": [x["kept"] for x in rounds],
            "rounds": [{k: v for k, v in x.items() if k != "model"} for x in rounds]}
