"""``execrl`` with a spy on PPO's trainable module: at exit every process prints the sum of
its weights, so a test can check that data-parallel training kept the processes in step.
Run as ``accelerate launch ... tests/training/_param_sums.py train ppo ...``."""

import atexit
import os
import sys

import execrl.training.ppo as ppo
from execrl.cli import main

_build = ppo._with_value


def _spy(policy, head):
    module = _build(policy, head)

    def report():
        total = sum(float(p.detach().double().sum()) for p in module.parameters())
        print(f"param-sum rank={os.environ.get('RANK', '0')} {total:.12e}", flush=True)

    atexit.register(report)
    return module


ppo._with_value = _spy
sys.argv = ["execrl", *sys.argv[1:]]
main()
