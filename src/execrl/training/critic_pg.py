"""Critic-guided policy gradient: CodeRL's actor update (Le et al. 2022, arXiv:2207.01780,
sec. 3.2), with a critic trained by ``execrl train critic``.

The benchmark's tasks are split (seeded) into train and held-out tasks, and the policy is
evaluated on the held-out tasks before and after (pass@k through the sandbox). Each step:

1. takes the next ``prompts_per_step`` train tasks (a seeded order, cycled) and samples
   ``samples_per_prompt`` completions of each plain prompt at ``temperature``;
2. runs them against the hidden tests; the reward is CodeRL's value of the verdict
   (``execrl.rewards.execution.CODERL_VALUES``: -1 compile error, -0.6 runtime error, -0.3
   failed test, +1 passed); ``sandbox_error`` samples are left out of the update;
3. the baseline ``r_b`` is the reward of the prompt's greedy completion (``baseline=greedy``,
   CodeRL's choice, one more sample per prompt) or the mean reward of its samples
   (``baseline=mean``); the advantage is ``r - r_b`` (:func:`coderl_advantages`);
4. the token weights ``q(w_t)`` are the critic's probability, at each token, of the outcome
   class the sample actually got (``weighting=critic``), or 1 (``weighting=plain``: REINFORCE
   with a baseline, for comparison);
5. one AdamW step on :func:`~execrl.training.rl_math.critic_weighted_pg_loss`:
   ``-(r - r_b) * sum_t q(w_t) * log p(w_t)``, divided by the batch's completion tokens.

Launched as N processes, each takes its own ``prompts_per_step`` prompts per step and
DistributedDataParallel averages the gradients; the main process logs (over all) and saves.

Completions are re-tokenized from their text (as CodeRL trains on stored samples), so the
critic and the policy must share a tokenizer (checked before the first step). Run directory:
``config.json``, ``metrics.jsonl`` (eval_before, a line per step, eval_after),
``rollouts.jsonl`` (every sample: step, status, reward, advantage), ``checkpoint-<step>/``
(rerunning the same command resumes from the latest one), ``eval-before/``, ``eval-after/``,
``final/`` (a plain model that ``from_pretrained`` loads).

    execrl train critic run_name=critic                # first: the critic
    execrl train critic_pg critic=runs/critic/critic   # tiny local model on CPU, a few minutes
    execrl train critic_pg critic=runs/critic/critic weighting=plain run_name=plain-pg
"""

from __future__ import annotations

import contextlib
import math
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
    sandbox_pool,
    split_tasks,
)
from execrl.training._dist import processes
from execrl.training.config import check_at_least, check_positive, field_doc

__all__ = ["BASELINES", "WEIGHTINGS", "Config", "coderl_advantages", "main"]

BASELINES = ("greedy", "mean")
WEIGHTINGS = ("critic", "plain")


@dataclass
class Config(RunConfig):
    """Settings of the critic-guided policy-gradient recipe (defaults: the tiny local model on
    CPU); the shared ones (model, data, run directory, evaluation) come from RunConfig."""

    critic: str | None = field_doc(None, "the critic directory `execrl train critic` saved, <run>/critic (required with weighting=critic)")
    weighting: str = field_doc("critic", "token weights q(w_t): critic (its probability of the sample's outcome) or plain (1)")
    baseline: str = field_doc("greedy", "r_b: greedy (reward of the prompt's greedy completion, CodeRL) or mean (of its samples)")
    limit: int | None = field_doc(40, "number of train tasks (None: every task not held out)")
    max_steps: int = field_doc(20, "policy updates (one batch of prompts each)")
    prompts_per_step: int = field_doc(4, "train prompts per update")
    samples_per_prompt: int = field_doc(4, "completions sampled per prompt per update")
    temperature: float = field_doc(1.0, "sampling temperature of the train completions (> 0)")
    max_new_tokens: int = field_doc(64, "max new tokens per train completion")
    learning_rate: float = field_doc(1e-3, "learning rate (AdamW, constant); use ~1e-6 for real models")
    micro_batch_size: int = field_doc(8, "sequences per forward pass of the update (gradients accumulate)")
    save_steps: int = field_doc(10, "save a checkpoint every this many steps (and at the end)")
    eval_max_new_tokens: int = field_doc(64, "max new tokens per evaluation sample")

    def validate(self) -> None:
        super().validate()
        if self.weighting not in WEIGHTINGS:
            raise DataError(f"weighting={self.weighting!r}: choose one of {', '.join(WEIGHTINGS)}")
        if self.critic is None and self.weighting == "critic":
            raise DataError("critic: required with weighting=critic; give the directory `execrl train critic` "
                            "saved (critic=<run>/critic)")
        if self.critic is not None:
            path = os.path.expanduser(self.critic)
            if not os.path.isdir(path):
                raise DataError(f"critic={self.critic}: no such directory")
            if not os.path.exists(os.path.join(path, "critic.json")):
                raise DataError(f"critic={self.critic}: not a critic directory (no critic.json)")
        if self.baseline not in BASELINES:
            raise DataError(f"baseline={self.baseline!r}: choose one of {', '.join(BASELINES)}")
        check_at_least(self, 1, "max_steps", "prompts_per_step", "samples_per_prompt", "max_new_tokens",
                       "micro_batch_size", "save_steps")
        if self.lora:
            raise DataError("lora=true: the critic recipes train every weight (LoRA is not supported yet)")
        if not self.temperature > 0:
            raise DataError(f"temperature={self.temperature}: must be positive (the samples must differ)")
        check_positive(self, "learning_rate")


def coderl_advantages(rewards: Any, baseline: Any | None = None) -> Any:
    """``r - r_b`` per sample.

    Shapes: ``rewards`` ``[B, G]`` (G samples of each of B prompts); ``baseline`` ``[B]`` (the
    reward of each prompt's greedy completion) or None (the group mean, as
    :func:`~execrl.training.rl_math.grpo_advantages` with ``scale=False``); returns ``[B, G]``.
    A NaN reward or baseline (a ``sandbox_error``) gives advantage 0.
    """
    import torch

    from execrl.training.rl_math import grpo_advantages

    if baseline is None:
        return grpo_advantages(rewards, scale=False)
    adv = rewards - baseline.unsqueeze(1)
    return torch.where(torch.isnan(adv), torch.zeros_like(adv), adv)


def _judge(pool: Any, tasks: list[Any], completions: list[str]) -> list[str]:
    """Verdict statuses of each task's completion (extracted as the evaluation does)."""
    from execrl.evaluation.extract import extract_program

    runs = [t.run(extract_program(c, t.prompt, t.entry_point, script=t.is_script)) for t, c in zip(tasks, completions, strict=True)]
    return [v.status.value for v in pool.run(runs)]


def _update(policy: Any, batch: list[tuple[list[int], list[int], Any, float]], micro: int,
            chunks: int | None = None) -> tuple[float, int]:
    """Accumulate the gradient of the critic-weighted loss over ``batch`` of ``(prompt ids,
    completion ids, weights [T], advantage)``; returns ``(loss, completion tokens)``.

    Data-parallel (``policy`` a DistributedDataParallel module), every process must run the
    same number of backward passes: ``chunks`` (the largest over the processes) forward
    passes are made, those beyond this process's batch on one token with a zero loss, and
    only the last one's backward averages the gradients."""
    import contextlib

    import torch

    total_tokens = sum(len(c) for _, c, _, _ in batch)
    loss_sum = 0.0
    device = next(policy.parameters()).device
    starts = range(0, len(batch), micro)
    chunks = len(starts) if chunks is None else chunks
    for n in range(chunks):
        syncing = n == chunks - 1 or not hasattr(policy, "no_sync")
        with contextlib.nullcontext() if syncing else policy.no_sync():
            if n >= len(starts):  # nothing left here: take part in the gradient averaging with zeros
                (policy(input_ids=torch.zeros((1, 1), dtype=torch.long, device=device)).logits.sum() * 0).backward()
                continue
            loss_sum += _backward_chunk(policy, batch[starts[n] : starts[n] + micro], total_tokens, device)
    return loss_sum, total_tokens


def _backward_chunk(policy: Any, chunk: list[tuple[list[int], list[int], Any, float]], total_tokens: int,
                    device: Any) -> float:
    """One chunk's forward and backward; returns its share of the batch's loss."""
    import torch

    from execrl.training.rl_math import critic_weighted_pg_loss

    width = max(len(p) + len(c) for p, c, _, _ in chunk)
    ids = torch.zeros((len(chunk), width), dtype=torch.long)
    attention = torch.zeros_like(ids)
    mask = torch.zeros((len(chunk), width - 1), dtype=torch.bool)  # position j predicts token j + 1
    weights = torch.zeros((len(chunk), width - 1))
    for i, (p, c, q, _) in enumerate(chunk):
        ids[i, : len(p) + len(c)] = torch.tensor(p + c)
        attention[i, : len(p) + len(c)] = 1
        mask[i, len(p) - 1 : len(p) + len(c) - 1] = True
        weights[i, len(p) - 1 : len(p) + len(c) - 1] = q
    logits = policy(input_ids=ids.to(device), attention_mask=attention.to(device)).logits[:, :-1].float()
    logprobs = logits.log_softmax(-1).gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
    advantages = torch.tensor([a for *_, a in chunk], device=device)
    loss = critic_weighted_pg_loss(logprobs, weights.to(device), advantages, mask.to(device))
    loss = loss * (mask.sum().item() / total_tokens)  # token mean over the whole batch, not the chunk
    loss.backward()
    return loss.item()


def main(cfg: Config, force_new: bool = False) -> dict[str, Any]:
    """Run the recipe; returns ``{"run", "before", "after", "steps", "reward_mean_first",
    "reward_mean_last", ...}``."""
    import torch
    from transformers import AutoTokenizer

    from execrl._jsonl import AppendWriter, read_done
    from execrl.generation import SamplingParams
    from execrl.generation.hf import HFGenerator
    from execrl.rewards.execution import CODERL_VALUES
    from execrl.sandbox import Status
    from execrl.training.critic_model import Critic, outcome_class

    # --- setup: run directory, model, task split, critic ------------------------------
    procs = processes()  # several (accelerate launch): each samples its own prompts, DDP averages gradients
    run = open_run(cfg, "critic_pg", force_new)
    mirror_metrics(cfg, run)  # report_to: TensorBoard or W&B beside metrics.jsonl
    model_path = resolve_model(cfg.model, run, seed=cfg.seed)
    train_tasks, held_out = split_tasks(cfg.benchmark, cfg.problems, cfg.eval_tasks, cfg.seed, cfg.limit, cfg.skip)
    if not train_tasks:
        raise DataError(f"{cfg.benchmark}: no train tasks left after holding out eval_tasks={cfg.eval_tasks}")
    critic = Critic.load(os.path.expanduser(cfg.critic)) if cfg.weighting == "critic" else None

    def check_vocab() -> None:
        if critic is not None and critic.tokenizer.get_vocab() != AutoTokenizer.from_pretrained(model_path).get_vocab():
            raise DataError(f"critic={cfg.critic}: its tokenizer differs from the policy's; "
                            "train the critic from the same model")

    procs.on_main(check_vocab)
    resume, start = run.latest_checkpoint(), run.resume_step
    order = sorted(train_tasks)
    random.Random(cfg.seed).shuffle(order)
    rollouts_path = os.path.join(run.path, "rollouts.jsonl")
    kept = [r for r in read_done(rollouts_path) if r["step"] <= start] if procs.is_main else []  # later steps: redone

    pool = sandbox_pool()
    try:
        evaluate = held_out_evaluator(cfg, run, held_out, pool, chat=False)  # plain prompts, as trained
        before = evaluate(model_path, "eval-before")
        if not any("eval_before" in r for r in run.read_metrics()):
            run.log({"eval_before": before}, step=0)

        gen = HFGenerator(resume or model_path, chat=False, device=procs.device)
        policy, tok = gen.model, gen.tokenizer
        trainable = procs.data_parallel(policy, policy)  # several processes: DDP
        opt = torch.optim.AdamW(policy.parameters(), lr=cfg.learning_rate)
        if resume:
            opt.load_state_dict(torch.load(os.path.join(resume, "optimizer.pt"), map_location="cpu", weights_only=True))

        # --- loop: sample, judge, weigh, update ---------------------------------------------
        with AppendWriter(rollouts_path, fresh=True) if procs.is_main else contextlib.nullcontext() as rollouts:
            for r in kept:
                rollouts.write(r)
            for step in range(start + 1, cfg.max_steps + 1):
                turn = (step - 1) * procs.size + procs.rank  # process r takes the step's r-th share of prompts
                tasks = [train_tasks[order[i % len(order)]]
                         for i in range(turn * cfg.prompts_per_step, (turn + 1) * cfg.prompts_per_step)]
                prompts, G = [t.prompt for t in tasks], cfg.samples_per_prompt
                policy.eval()
                sampled = gen.generate(prompts, SamplingParams(n=G, temperature=cfg.temperature,
                                                               max_new_tokens=cfg.max_new_tokens, seed=cfg.seed + turn + 1))
                flat = [(t, c) for t, cs in zip(tasks, sampled, strict=True) for c in cs]
                if cfg.baseline == "greedy":
                    greedy = [c for [c] in gen.generate(prompts, SamplingParams(max_new_tokens=cfg.max_new_tokens))]
                    flat += list(zip(tasks, greedy, strict=True))
                statuses = _judge(pool, [t for t, _ in flat], [c for _, c in flat])
                values = [CODERL_VALUES.get(Status(s), math.nan) for s in statuses]  # sandbox_error: NaN, skipped
                rewards = torch.tensor(values[: len(tasks) * G], dtype=torch.float64).view(len(tasks), G)
                base = torch.tensor(values[len(tasks) * G :], dtype=torch.float64) if cfg.baseline == "greedy" else None
                advantages = coderl_advantages(rewards, base).flatten().tolist()

                batch, weight_sum = [], 0.0
                for i, (task, completion) in enumerate(flat[: len(tasks) * G]):
                    label = outcome_class(statuses[i])
                    if label is None:
                        continue
                    prompt_ids, ids = tok.encode(task.prompt), tok.encode(completion, add_special_tokens=False)
                    q = critic.token_scores(task.prompt, completion, label) if critic is not None else torch.ones(len(ids))
                    if len(q) != len(ids):
                        raise DataError("the critic and the policy tokenize a completion differently")
                    weight_sum += float(q.sum())
                    batch.append((prompt_ids, ids, q, advantages[i]))
                policy.train()
                opt.zero_grad()
                chunks = max(procs.gather([math.ceil(len(batch) / cfg.micro_batch_size)]))  # the same count everywhere
                loss, tokens = _update(trainable, batch, cfg.micro_batch_size, chunks) if chunks else (0.0, 0)
                if any(procs.gather([bool(tokens and any(a != 0 for *_, a in batch))])):
                    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
                    opt.step()

                # --- log: the step's figures over every process's share -----------------------
                n = len(tasks) * G
                mine = [{"step": step, "task_id": task.task_id, "greedy": i >= n, "completion": completion,
                         "status": status, "reward": None if math.isnan(values[i]) else values[i],
                         "advantage": advantages[i] if i < n else None}
                        for i, ((task, completion), status) in enumerate(zip(flat, statuses, strict=True))]
                every = procs.gather(mine)
                for row in every if procs.is_main else []:
                    rollouts.write(row)
                sampled_rows = [r for r in every if not r["greedy"]]
                got = [r["reward"] for r in sampled_rows if r["reward"] is not None]
                greedy_got = [r["reward"] for r in every if r["greedy"] and r["reward"] is not None]
                shares = Counter(r["status"] for r in sampled_rows)
                advs = procs.gather([abs(a) for *_, a in batch])
                totals = procs.gather([(loss, tokens, weight_sum)])
                loss_sum, tokens_all, weights_all = (sum(t[k] for t in totals) for k in range(3))
                run.log({"loss": loss_sum / procs.size, "reward": sum(got) / len(got) if got else None,
                         "baseline": (sum(greedy_got) / len(greedy_got) if greedy_got else None) if base is not None
                         else (sum(got) / len(got) if got else None),
                         "pass_rate": shares.get("passed", 0) / len(sampled_rows),
                         "advantage_abs_mean": sum(advs) / len(advs) if advs else 0.0,
                         "critic_weight_mean": weights_all / tokens_all if tokens_all else None, "tokens": tokens_all,
                         "sandbox_errors": shares.get("sandbox_error", 0),
                         **{f"status/{s}": k / len(sampled_rows) for s, k in shares.items()}}, step=step)
                if step % cfg.save_steps == 0 or step == cfg.max_steps:
                    if procs.is_main:  # DDP keeps every process's weights and optimizer state equal
                        with run.saving(step) as tmp:
                            policy.save_pretrained(tmp)
                            AutoTokenizer.from_pretrained(model_path).save_pretrained(tmp)
                            torch.save(opt.state_dict(), os.path.join(tmp, "optimizer.pt"))
                    procs.wait()

        # --- save final/ (atomically), measure again ---------------------------------------
        final, tmp = os.path.join(run.path, "final"), os.path.join(run.path, "final.tmp")
        if procs.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            policy.save_pretrained(tmp)
            AutoTokenizer.from_pretrained(model_path).save_pretrained(tmp)  # not gen's: it pads on the left
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        procs.wait()
        del gen, policy, trainable
        after = evaluate(final, "eval-after")
        if not any("eval_after" in r for r in run.read_metrics()):
            run.log({"eval_after": after}, step=cfg.max_steps)
    finally:
        pool.close()
        run.close()

    rows = run.read_metrics()
    means = [r["reward"] for r in rows if "loss" in r and r.get("reward") is not None]
    return {"run": run.path, "before": before, "after": after, "steps": cfg.max_steps,
            "weighting": cfg.weighting, "baseline": cfg.baseline,
            "reward_mean_first": means[0] if means else None, "reward_mean_last": means[-1] if means else None,
            "sandbox_errors": sum(r.get("sandbox_errors", 0) for r in rows if "loss" in r),
            "resumed_from": os.path.basename(resume) if resume else None}
