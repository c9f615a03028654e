"""What a multi-process run needs, checked in one process: the shard merge and the
single-process behaviour of execrl.training._dist (the two-process runs themselves are in
test_multiprocess.py)."""

import json
import os

import pytest

from execrl.errors import DataError
from execrl.training._common import merge_shards
from execrl.training._dist import Processes, finish, world_size


def _write(path, rows, torn=False):
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
        if torn:
            f.write('{"task_id": "t/1", "compl')  # a process killed mid-line


def _row(tid, cid, text="x"):
    return {"task_id": tid, "completion_id": cid, "completion": text}


def test_merge_orders_by_task_then_completion_and_deletes_the_shards(tmp_path):
    path = str(tmp_path / "samples.jsonl")
    _write(path + ".rank0", [_row("t/2", 1), _row("t/0", 0), _row("t/2", 0)])
    _write(path + ".rank1", [_row("t/1", 1), _row("t/1", 0)], torn=True)
    assert merge_shards(path, ["t/0", "t/1", "t/2"]) == 5
    got = [(r["task_id"], r["completion_id"]) for r in map(json.loads, open(path, encoding="utf-8"))]
    assert got == [("t/0", 0), ("t/1", 0), ("t/1", 1), ("t/2", 0), ("t/2", 1)]
    assert sorted(os.listdir(tmp_path)) == ["samples.jsonl"]


def test_merge_keeps_a_repeated_sample_once_and_drops_foreign_tasks(tmp_path):
    # shards of an interrupted 3-process run beside those of the 2-process rerun
    path = str(tmp_path / "samples.jsonl")
    _write(path + ".rank0", [_row("t/0", 0)])
    _write(path + ".rank1", [_row("t/1", 0)])
    _write(path + ".rank2", [_row("t/0", 0), _row("other/9", 0), {"task_id": "t/1"}])
    assert merge_shards(path, ["t/0", "t/1"]) == 2
    assert [json.loads(x)["task_id"] for x in open(path, encoding="utf-8")] == ["t/0", "t/1"]


def test_one_process_calls_straight_through(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    procs = Processes()
    assert world_size() == 1 and procs.is_main and procs.device is None
    assert procs.on_main(lambda: 7) == 7 and procs.share("x") == "x" and procs.gather([1, 2]) == [1, 2]
    assert procs.shard([1, 2, 3]) == [1, 2, 3] and procs.cores() == len(os.sched_getaffinity(0))
    with pytest.raises(DataError, match="bad"):
        procs.on_main(lambda: (_ for _ in ()).throw(DataError("bad")))
    procs.wait()
    finish(True)  # no group: nothing to tear down


def test_the_shards_of_a_process_and_its_share_of_the_cores(monkeypatch):
    # rank and sizes come from the launcher's environment; no group is needed to read them
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    procs = Processes()
    procs.size, procs.rank, procs.local_size = 3, 1, 3
    assert procs.shard(list(range(8))) == [1, 4, 7] and not procs.is_main
    assert procs.cores() == max(1, len(os.sched_getaffinity(0)) // 3)
