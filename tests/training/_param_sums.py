"""``execrl`` with a spy on :meth:`Processes.data_parallel`: at exit every process prints the
sum of the weights of each module it trained data-parallel, so a test can check that the
processes stayed in step. Run as ``accelerate launch ... tests/training/_param_sums.py train RECIPE ...``."""

import atexit
import os
import sys

from execrl.cli import main
from execrl.training._dist import Processes

_wrap = Processes.data_parallel


def _spy(self, forward, *modules):
    wrapped = _wrap(self, forward, *modules)

    def report():
        total = sum(float(p.detach().double().sum()) for m in modules for p in m.parameters())
        # one write per line: two processes share the pipe, and print() may split a line in two writes
        os.write(1, f"param-sum rank={os.environ.get('RANK', '0')} {total:.12e}\n".encode())

    atexit.register(report)
    return wrapped


Processes.data_parallel = _spy
sys.argv = ["execrl", *sys.argv[1:]]
main()
