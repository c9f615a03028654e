"""Two processes with batches of different sizes through critic_pg's ``_update``: the one
with fewer chunks must still join every gradient average (no hang), and one optimizer step
must leave both with equal weights. Prints ``param-sum rank=R S`` per process. Run as
``accelerate launch ... tests/training/_uneven_update.py``."""

import os

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from execrl.training._dist import finish, processes
from execrl.training.critic_pg import _update

procs = processes()
torch.manual_seed(procs.rank)  # different initial weights: DDP must start both from rank 0's
model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, num_key_value_heads=2))
before = sum(float(p.detach().double().sum()) for p in model.parameters())
trainable = procs.data_parallel(model, model)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
n = 3 if procs.rank == 0 else 0  # rank 1 has nothing to learn from (every sample a sandbox error)
batch = [([1, 2], [3, 4, 5], torch.ones(3), 1.0 + i) for i in range(n)]
loss, tokens = _update(trainable, batch, 1, max(procs.gather([n])))
opt.step()
after = sum(float(p.detach().double().sum()) for p in model.parameters())
# one write per line: two processes share the pipe, and print() may split a line in two writes
os.write(1, f"param-sum rank={procs.rank} {after:.12e} moved={after != before} tokens={tokens}\n".encode())
finish(True)
