"""PPO on code with execution rewards: our own loop (TRL removed its ``PPOTrainer``), in the
style of Ziegler et al. 2019, OpenRLHF and "The N implementation details of RLHF with PPO".

Each step takes ``rollout_batch_size`` training tasks (cycling through the seeded split),
samples ``samples_per_prompt`` completions of each, and scores every completion by running it
against the task's hidden tests in the run's sandbox pool. The score goes on the completion's
last token, a per-token KL penalty to the frozen initial model on every token
(``rl_math.kl_shaped_rewards``); GAE gives advantages (whitened over the batch) and returns;
then ``ppo_epochs`` passes of minibatch updates minimize the clipped policy loss plus
``vf_coef`` times the clipped value loss. A completion some reward could not judge (``None``:
a sandbox error) is masked out of every loss and statistic, never scored 0.

The critic is a scalar linear head on the policy's last hidden state (a shared backbone, as in
TRL's former ``AutoModelForCausalLMWithValueHead``): the cheapest critic, ``hidden_size + 1``
extra weights and no second model in memory. It starts at zero, so its first predictions are 0
and its first gradients leave the backbone alone; after that the value loss also trains the
backbone, weighed by ``vf_coef``. Dropout stays off (the model is kept in eval mode), so the
first minibatch's new log-probs equal the rollout's. With ``lora=true`` the reference model is
the policy with its adapter disabled; otherwise a second copy of the initial weights.

Run directory: ``config.json``; ``metrics.jsonl``, one line per step (``reward``, ``pass_rate``,
``kl``, ``policy_loss``, ``value_loss``, ``clipfrac``, ``approx_kl``, ``entropy``, ``seconds``...
and execrl's ``execrl/<reward>/*``); ``checkpoint-<step>/`` every ``save_steps`` (policy,
tokenizer, ``value_head.pt``, ``optimizer.pt``); ``eval-before/``, ``eval-after/``; ``final/``
(policy with LoRA merged and tokenizer, ``from_pretrained``-loadable, and ``value_head.pt``).
Rerunning the same command resumes from the latest checkpoint: each step's sampling is seeded
by (seed, step), so a resumed run repeats the steps it redoes. Launched as N processes, each
samples its own ``rollout_batch_size`` prompts per step and DistributedDataParallel averages
the gradients; the main process logs (reward statistics over all) and saves.

On the tiny model the defaults move the policy (KL about 0.03 after 20 steps) but not its mean
CodeRL reward; a much higher learning rate finds CodeRL's weak spot instead (an empty answer,
-0.6, beats broken code, -1.0). See docs/training.md for the measurements.

    execrl train ppo                                   # tiny local model, CPU, well under a minute
    execrl train ppo model=Qwen/Qwen2.5-0.5B-Instruct max_steps=200 rollout_batch_size=16 learning_rate=1e-6 save_steps=20
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import statistics
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from execrl.errors import DataError
from execrl.training._common import (
    RunConfig,
    held_out_evaluator,
    mirror_metrics,
    open_run,
    peft_config,
    resolve_model,
    sandbox_pool,
    split_tasks,
)
from execrl.training._dist import processes
from execrl.training.config import check_at_least, check_positive, field_doc
from execrl.training.grpo import REWARDS, build_rewards, check_rewards

if TYPE_CHECKING:
    import torch

__all__ = ["KL_KINDS", "VALUE_HEAD", "Config", "completion_mask", "forward", "main", "ppo_loss", "ppo_targets", "score"]

KL_KINDS = ("k1", "k2", "k3")  # the keys of rl_math.KL_ESTIMATORS, named here so --help needs no torch
VALUE_HEAD = "value_head.pt"


@dataclasses.dataclass
class Config(RunConfig):
    """PPO recipe settings; the defaults train the tiny local model on CPU in well under a
    minute. The shared ones (model, data, run directory, evaluation, LoRA) come from RunConfig."""

    rewards: list[str] = field_doc(["coderl"], f"reward functions by name, summed: {', '.join(REWARDS)}")
    reward_weights: list[float] | None = field_doc(None, "one weight per reward (default: all 1.0)")
    chat: bool = field_doc(True, "prompts as chat messages (instruct models) instead of plain-text continuations")
    rollout_batch_size: int = field_doc(4, "training tasks (prompts) per PPO step")
    samples_per_prompt: int = field_doc(2, "completions sampled per prompt")
    max_steps: int = field_doc(20, "PPO steps (rollout, then ppo_epochs of minibatch updates)")
    ppo_epochs: int = field_doc(2, "passes over each step's rollouts")
    mini_batch_size: int = field_doc(4, "completions per optimizer step")
    learning_rate: float = field_doc(1e-4, "AdamW learning rate of the policy and value head; use ~1e-6 for real models")
    vf_coef: float = field_doc(0.1, "weight of the value loss in the loss (the critic shares the policy's backbone)")
    cliprange: float = field_doc(0.2, "PPO ratio clip epsilon of the policy loss")
    cliprange_value: float = field_doc(0.2, "clip of the value change per update in the value loss")
    gamma: float = field_doc(1.0, "discount per token")
    lam: float = field_doc(0.95, "GAE lambda")
    kl_coef: float = field_doc(0.05, "per-token KL penalty to the initial model, folded into the rewards (0: no reference model)")
    kl_estimator: str = field_doc("k1", f"per-token KL estimator of the penalty: {', '.join(KL_KINDS)}")
    whiten_advantages: bool = field_doc(True, "scale each step's advantages to mean 0, std 1 over its tokens")
    temperature: float = field_doc(1.0, "sampling temperature of the rollouts (log-probs are taken at it too)")
    max_completion_length: int = field_doc(32, "max new tokens per rollout")
    max_grad_norm: float = field_doc(1.0, "clip the gradient norm of each update to this")
    save_steps: int = field_doc(0, "save a resumable checkpoint-<step> every this many steps (0: none)")
    lora_r: int = field_doc(8, "LoRA rank (with lora=true)")
    lora_alpha: int = field_doc(16, "LoRA scaling alpha (with lora=true)")
    eval_max_new_tokens: int = field_doc(64, "max new tokens per evaluation sample")

    def validate(self) -> None:
        super().validate()
        check_rewards(self.rewards, self.reward_weights)
        check_at_least(self, 1, "rollout_batch_size", "samples_per_prompt", "max_steps", "ppo_epochs",
                       "mini_batch_size", "max_completion_length")
        check_positive(self, "learning_rate", "cliprange", "cliprange_value", "temperature", "max_grad_norm")
        for key in ("gamma", "lam"):
            if not 0 <= getattr(self, key) <= 1:
                raise DataError(f"{key}={getattr(self, key)}: must be between 0 and 1")
        check_at_least(self, 0, "vf_coef", "kl_coef", "save_steps")
        if self.kl_estimator not in KL_KINDS:
            raise DataError(f"kl_estimator={self.kl_estimator!r}: choose one of {', '.join(KL_KINDS)}")


# ------------------------------------------------------------------------- building blocks

def completion_mask(tokens: torch.Tensor, eos: set[int]) -> torch.Tensor:
    """``[N, T]`` bool: the generated tokens up to and including the first end-of-sequence
    token (what ``generate`` writes after it is padding)."""
    import torch

    is_eos = torch.isin(tokens, torch.tensor(sorted(eos), device=tokens.device))
    return (is_eos.long().cumsum(1) - is_eos.long()) == 0


def forward(policy: Any, head: Any, seqs: torch.Tensor, attention: torch.Tensor, prompt_len: int,
            temperature: float) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Per completion token of left-padded ``seqs`` ``[N, P + T]``: the log-prob of the sampled
    token at ``temperature``, the value of the state before it (None without ``head``) and
    the entropy of the next-token distribution (no gradient); each ``[N, T]``."""
    import torch

    positions = (attention.cumsum(1) - 1).clamp(min=0)  # as generate() numbers left-padded rows
    out = policy(input_ids=seqs, attention_mask=attention, position_ids=positions, output_hidden_states=head is not None)
    logits = out.logits[:, prompt_len - 1 : -1].float() / temperature
    logp = logits.log_softmax(-1)
    logprobs = logp.gather(-1, seqs[:, prompt_len:, None]).squeeze(-1)
    values = None if head is None else head(out.hidden_states[-1][:, prompt_len - 1 : -1]).squeeze(-1).float()
    with torch.no_grad():
        entropy = -(logp.exp() * logp).sum(-1)
    return logprobs, values, entropy


def score(reward_fns: list[Any], weights: list[float], prompts: list[Any], completions: list[str],
          columns: dict[str, list[Any]], log_metric: Any = None) -> list[float | None]:
    """The weighted sum of every reward per completion; None when any reward gave None (the
    harness failed), so the caller can skip the completion instead of scoring it 0."""
    totals: list[float | None] = [0.0] * len(completions)
    for fn, w in zip(reward_fns, weights, strict=True):
        values = fn(prompts, completions, log_metric=log_metric, **columns)
        totals = [None if t is None or v is None else t + w * v for t, v in zip(totals, values, strict=True)]
    return totals


def ppo_targets(scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, values: torch.Tensor,
                mask: torch.Tensor, cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """``(advantages, returns)``, ``[N, T]``, from sequence ``scores`` ``[N]``: the score on
    the last valid token plus ``-kl_coef * KL_t`` on every token, then GAE (bootstrap 0: a
    completion ends the episode), advantages whitened over the batch's valid tokens."""
    from execrl.training.rl_math import gae, kl_shaped_rewards, whiten

    rewards = kl_shaped_rewards(scores, logprobs, ref_logprobs, mask, beta=cfg.kl_coef, kind=cfg.kl_estimator)
    advantages, returns = gae(rewards, values, mask, gamma=cfg.gamma, lam=cfg.lam)
    return (whiten(advantages, mask) if cfg.whiten_advantages else advantages), returns


def ppo_loss(logprobs: torch.Tensor, values: torch.Tensor, mb: dict[str, torch.Tensor],
             cfg: Config) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One minibatch's loss, ``ppo_policy_loss + vf_coef * ppo_value_loss``, from the new
    ``logprobs`` and ``values`` ``[n, T]`` and the rollout's ``mb`` tensors (``logprobs``,
    ``values``, ``advantages``, ``returns``, ``mask``); stats detached."""
    from execrl.training.rl_math import ppo_policy_loss, ppo_value_loss

    pg, stats = ppo_policy_loss(logprobs, mb["logprobs"], mb["advantages"], mb["mask"], clip_eps=cfg.cliprange)
    vf = ppo_value_loss(values, mb["values"], mb["returns"], mb["mask"], clip_eps=cfg.cliprange_value)
    return pg + cfg.vf_coef * vf, {"policy_loss": pg.detach(), "value_loss": vf.detach(), **stats}


# ------------------------------------------------------------------------------ the recipe

def _load_models(cfg: Config, model_path: str, checkpoint: str | None, device: str) -> tuple[Any, Any, Any, Any]:
    """(policy, reference or None, value head, optimizer), restored from ``checkpoint`` if given."""
    import torch
    import transformers

    new_name = tuple(int(x) for x in transformers.__version__.split(".")[:2]) >= (4, 56)  # torch_dtype -> dtype

    def load(path: str) -> Any:  # fp32 weights: bf16 runs under autocast on GPUs
        kw = {"dtype" if new_name else "torch_dtype": torch.float32}
        return transformers.AutoModelForCausalLM.from_pretrained(path, **kw).to(device).eval()

    policy = load(checkpoint if checkpoint and not cfg.lora else model_path)
    ref = None
    if cfg.lora:
        from peft import PeftModel, get_peft_model

        policy = (PeftModel.from_pretrained(policy, checkpoint, is_trainable=True) if checkpoint
                  else get_peft_model(policy, peft_config(cfg))).eval()
    elif cfg.kl_coef > 0:
        ref = load(model_path).requires_grad_(False)
    head = torch.nn.Linear(policy.config.hidden_size, 1, device=device)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    params = [p for p in policy.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, eps=1e-5)
    if checkpoint:
        head.load_state_dict(torch.load(os.path.join(checkpoint, VALUE_HEAD), map_location=device, weights_only=True))
        opt.load_state_dict(torch.load(os.path.join(checkpoint, "optimizer.pt"), map_location=device, weights_only=True))
    return policy, ref, head, opt


def _save(path: str, policy: Any, tok: Any, head: Any, opt: Any = None) -> None:
    import torch

    policy.save_pretrained(path)
    tok.save_pretrained(path)
    torch.save(head.state_dict(), os.path.join(path, VALUE_HEAD))
    if opt is not None:
        torch.save(opt.state_dict(), os.path.join(path, "optimizer.pt"))


def main(cfg: Config, force_new: bool = False) -> dict[str, Any]:
    """Run PPO as ``cfg`` says; the summary: run directory, pass@k before and after, the mean
    reward of the first and last step, the steps done and the sandbox errors met."""
    import torch
    from transformers import AutoTokenizer

    from execrl.rewards import task_rows
    from execrl.training.rl_math import kl_penalty, masked_mean

    # -- setup
    procs = processes()  # several (accelerate launch): each samples its own prompts, DDP averages gradients
    run = open_run(cfg, "ppo", force_new)
    mirror_metrics(cfg, run)  # report_to: TensorBoard or W&B beside metrics.jsonl
    model_path = resolve_model(cfg.model, run, cfg.seed)
    train, held = split_tasks(cfg.benchmark, cfg.problems, cfg.eval_tasks, cfg.seed, cfg.limit, cfg.skip)
    if not train:
        raise DataError(f"{cfg.benchmark}: no training tasks left after holding out eval_tasks={cfg.eval_tasks}")
    rows = task_rows(train, chat=cfg.chat)  # in the seeded split's order; step s takes the next batch
    device = procs.torch_device
    bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()

    def amp() -> Any:
        return torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    tok = AutoTokenizer.from_pretrained(model_path)
    tok.padding_side = "left"
    tok.pad_token = tok.pad_token or tok.eos_token
    if cfg.chat and not getattr(tok, "chat_template", None):
        raise DataError(f"model={cfg.model}: chat=true but its tokenizer has no chat template; pass chat=false")

    def encode(prompt: Any) -> list[int]:
        if cfg.chat:  # the template places BOS itself
            return tok.encode(tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True),
                              add_special_tokens=False)
        return tok.encode(prompt)

    checkpoint, start = run.latest_checkpoint(), run.resume_step
    policy, ref, head, opt = _load_models(cfg, model_path, checkpoint, device)
    # policy and value head as one module: DDP averages the gradients of both
    trainable = procs.data_parallel(lambda *args: forward(policy, head, *args), policy, head)
    params = [p for group in opt.param_groups for p in group["params"]]
    gen_eos = policy.generation_config.eos_token_id
    eos = {tok.eos_token_id, *(gen_eos if isinstance(gen_eos, list) else [gen_eos])} - {None}
    weights = cfg.reward_weights or [1.0] * len(cfg.rewards)
    n_prompts, final = cfg.rollout_batch_size, os.path.join(run.path, "final")

    with sandbox_pool() as pool, run:
        evaluate = held_out_evaluator(cfg, run, held, pool, chat=cfg.chat)
        before = evaluate(model_path, "eval-before")
        reward_fns = build_rewards(cfg.rewards, pool)

        # -- loop
        for step in range(start + 1, cfg.max_steps + 1):
            t0 = time.perf_counter()
            # a resumed step samples what it sampled before; process r takes the step's r-th share
            torch.manual_seed(cfg.seed * 1_000_003 + step * procs.size + procs.rank)
            first = ((step - 1) * procs.size + procs.rank) * n_prompts
            batch_rows = [rows[i % len(rows)] for i in range(first, first + n_prompts)]
            batch_rows = [r for r in batch_rows for _ in range(cfg.samples_per_prompt)]

            # rollout: sample, then log-probs, reference log-probs and values without gradient
            enc = tok.pad({"input_ids": [encode(r["prompt"]) for r in batch_rows]}, return_tensors="pt").to(device)
            P = enc["input_ids"].shape[1]
            with torch.no_grad(), amp():
                seqs = policy.generate(**enc, do_sample=True, temperature=cfg.temperature, top_k=0, top_p=1.0,
                                       max_new_tokens=cfg.max_completion_length, pad_token_id=tok.pad_token_id)
                tokens = seqs[:, P:]
                mask = completion_mask(tokens, eos)
                attention = torch.cat([enc["attention_mask"], mask.long()], 1)
                parts: dict[str, list[torch.Tensor]] = defaultdict(list)
                for i in range(0, len(seqs), cfg.mini_batch_size):
                    sq, at = seqs[i : i + cfg.mini_batch_size], attention[i : i + cfg.mini_batch_size]
                    lp, v, ent = forward(policy, head, sq, at, P, cfg.temperature)
                    parts["logprobs"].append(lp)
                    parts["values"].append(v)
                    parts["entropy"].append(ent)
                    if ref is not None or (cfg.lora and cfg.kl_coef > 0):
                        with policy.disable_adapter() if cfg.lora else contextlib.nullcontext():
                            model = ref if ref is not None else policy
                            parts["ref"].append(forward(model, None, sq, at, P, cfg.temperature)[0])
                data = {k: torch.cat(v) for k, v in parts.items()}
            ref_logprobs = data.pop("ref", data["logprobs"])  # no reference: KL is 0

            # score in the sandbox; a None (harness failure) masks the completion out entirely
            texts = [tok.decode(t[m], skip_special_tokens=True) for t, m in zip(tokens, mask, strict=True)]
            columns = {k: [r[k] for r in batch_rows] for k in batch_rows[0] if k != "prompt"}
            reward_stats: dict[str, float] = {}
            scores = score(reward_fns, weights, [r["prompt"] for r in batch_rows], texts, columns,
                           log_metric=reward_stats.__setitem__)
            judged = torch.tensor([s is not None for s in scores], device=device)
            mask = mask & judged[:, None]
            score_t = torch.tensor([s if s is not None else 0.0 for s in scores], device=device)
            advantages, returns = ppo_targets(score_t, data["logprobs"], ref_logprobs, data["values"], mask, cfg)
            batch = {"seqs": seqs, "attention": attention, "mask": mask, "logprobs": data["logprobs"],
                     "values": data["values"], "advantages": advantages, "returns": returns}

            # update: ppo_epochs passes of shuffled minibatches
            order_rng = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
            stats: dict[str, list[float]] = defaultdict(list)
            for _ in range(cfg.ppo_epochs):
                for idx in torch.randperm(len(seqs), generator=order_rng).split(cfg.mini_batch_size):
                    mb = {k: v[idx.to(device)] for k, v in batch.items()}
                    with amp():
                        logprobs, values, _ = trainable(mb["seqs"], mb["attention"], P, cfg.temperature)
                    loss, mb_stats = ppo_loss(logprobs, values, mb, cfg)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    mb_stats["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                    opt.step()
                    for k, v in mb_stats.items():
                        stats[k].append(float(v))

            # reward statistics over every process's rollouts; the others are the main process's share
            all_scores = procs.gather(scores)
            got = [x for x in all_scores if x is not None]
            pass_rates = procs.gather([fn.last_stats["pass_rate"] for fn in reward_fns
                                       if "pass_rate" in getattr(fn, "last_stats", {})][:1])
            errors = procs.gather([sum(getattr(fn, "last_stats", {}).get("sandbox_errors", 0.0) for fn in reward_fns)])
            metrics = {
                "reward": statistics.fmean(got) if got else float("nan"),
                "reward_std": statistics.pstdev(got) if got else float("nan"),
                **({"pass_rate": statistics.fmean(pass_rates)} if pass_rates else {}),
                "skipped": len(all_scores) - len(got),
                "sandbox_errors": sum(errors),
                **({"kl": masked_mean(kl_penalty(data["logprobs"], ref_logprobs, cfg.kl_estimator), mask)}
                   if cfg.kl_coef > 0 else {}),
                "entropy": masked_mean(data["entropy"], mask),
                "completion_length": mask.sum(1).float().mean(),
                **{k: statistics.fmean(v) for k, v in stats.items()},
                "seconds": time.perf_counter() - t0,
                **reward_stats,
            }
            run.log(metrics, step=step)
            if cfg.save_steps and step % cfg.save_steps == 0:
                if procs.is_main:  # DDP keeps every process's weights and optimizer state equal
                    with run.saving(step) as tmp:
                        _save(tmp, policy, tok, head, opt)
                        with open(os.path.join(tmp, "trainer_state.json"), "w", encoding="utf-8") as f:
                            json.dump({"step": step}, f)
                procs.wait()

        # -- save
        if procs.is_main:
            _save(final, policy.merge_and_unload() if cfg.lora else policy, tok, head)  # LoRA merged: loads without peft
        procs.wait()
        after = evaluate(final, "eval-after")

    rows_logged = [r for r in run.read_metrics() if "reward" in r]  # resumed steps included
    return {
        "run": run.path,
        "before": before,
        "after": after,
        "reward_mean_first": rows_logged[0]["reward"] if rows_logged else None,
        "reward_mean_last": rows_logged[-1]["reward"] if rows_logged else None,
        "steps": rows_logged[-1]["step"] if rows_logged else 0,
        "sandbox_errors": int(sum(r.get("sandbox_errors", 0) for r in rows_logged)),
    }
