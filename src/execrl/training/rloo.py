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
from typing import Any, ClassVar

from execrl.training.config import check_at_least, field_doc
from execrl.training.grpo import Config as GRPOSettings
from execrl.training.grpo import train_online

__all__ = ["Config", "main"]


@dataclasses.dataclass
class Config(GRPOSettings):
    """RLOO recipe settings: GRPO's (rewards, sampling, steps), with the group read as RLOO's
    leave-one-out baseline; the defaults train the tiny local model on CPU in well under a
    minute."""

    num_generations: int = field_doc(4, "answers sampled per task (k): each one's baseline is the mean of the other k-1")
    beta: float = field_doc(0.0, "KL penalty against the initial model, subtracted from the reward "
                                 "(TRL's beta, default there 0.05; 0 loads no reference model)")
    normalize_advantages: bool = field_doc(False, "scale the advantages of each batch to mean 0, std 1")

    GROUP_WHY: ClassVar[str] = "RLOO's baseline is the other answers to the task"

    def validate(self) -> None:
        super().validate()
        check_at_least(self, 0, "beta")


def main(cfg: Config, force_new: bool = False) -> dict[str, Any]:
    """Run RLOO as ``cfg`` says; the summary: run directory, pass@k before and after, the
    mean reward of the first and last logged step, and the sandbox errors of the rewards."""
    return train_online(cfg, "rloo", "RLOOTrainer", "RLOOConfig",
                        {"normalize_advantages": cfg.normalize_advantages}, force_new)
