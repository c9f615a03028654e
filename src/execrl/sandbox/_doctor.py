"""`execrl sandbox doctor`: which isolation layers are on here, checked by live probes."""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass

from execrl.sandbox._pool import SandboxPool
from execrl.sandbox._types import CallCase, Limits, Run


@dataclass
class Probe:
    name: str
    contained: bool
    detail: str


_PROBE = r'''
import os, socket
def probe(port, host_file, host_dir):
    out = {}
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        out["network"] = "connected to a host loopback listener"
    except OSError as e:
        out["network"] = ""
    try:
        open(host_file).read()
        out["host_files"] = "read a file in the caller's temp dir"
    except OSError:
        out["host_files"] = ""
    try:
        open(os.path.join(host_dir, "execrl-probe"), "w").write("x")
        out["write_outside_scratch"] = "wrote into the caller's temp dir"
    except OSError:
        out["write_outside_scratch"] = ""
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    out["host_processes"] = f"sees {len(pids)} processes" if len(pids) > 5 else ""
    out["privileges"] = "runs as root with capabilities" if os.geteuid() == 0 and _has_caps() else ""
    return out
def _has_caps():
    for line in open("/proc/self/status"):
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16) != 0
    return False
'''


def run_probes(pool: SandboxPool) -> list[Probe]:
    """Attack this machine's sandbox from inside and report what was contained."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="execrl-doctor-") as d:
        os.chmod(d, 0o777)
        secret = os.path.join(d, "secret.txt")
        with open(secret, "w") as f:
            f.write("s3cret")
        os.chmod(secret, 0o644)
        [v] = pool.run([Run(_PROBE, [CallCase("probe", [port, secret, d], {})], Limits(timeout=5))])
        wrote = os.path.exists(os.path.join(d, "execrl-probe"))
    listener.close()
    got = v.tests[0].detail if v.tests else v.detail
    results: dict[str, str] = {}
    if v.stdout or v.status.value not in ("failed", "passed"):
        return [Probe("probe program", False, f"{v.status.value}: {v.detail}")]
    # The probe returns its findings as the (wrong) answer; the driver shows it as "got {...}".
    import ast

    try:
        results = ast.literal_eval(got.removeprefix("got "))
    except (ValueError, SyntaxError):
        return [Probe("probe program", False, f"unreadable probe result: {got}")]
    if wrote:
        results["write_outside_scratch"] = results.get("write_outside_scratch") or "file appeared on the host"
    return [Probe(k, not why, why or "contained") for k, why in results.items()]
