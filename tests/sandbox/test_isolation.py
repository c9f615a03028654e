"""Isolation set-up in situations users meet: interpreters in odd places, layer reports."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from execrl.sandbox import CallCase, Run, SandboxPool

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + "/src"


def test_interpreter_installed_under_tmp_still_works(tmp_path):
    """A venv inside a temp checkout lives under /tmp, where the scratch tmpfs is mounted:
    the fresh-clone check found it hidden from the sandbox, breaking every run."""
    venv = tmp_path / "venv"
    top = str(tmp_path).split("/")[2]  # the /tmp/<top> skeleton that holds the venv
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {SRC!r})
        from execrl.sandbox import CallCase, Run, SandboxPool, StdioCase
        prog = '''
        import json, xml.dom.minidom, os
        def f():
            skeleton = {top!r}
            assert os.path.ismount(os.path.join("/tmp", skeleton))
            left = sorted(n for n in os.listdir("/tmp") if not os.path.ismount(os.path.join("/tmp", n)))
            open("/tmp/mine", "w").write("x")
            try:
                open(os.path.join("/tmp", skeleton, "evil"), "w")
                wrote = True
            except OSError:
                wrote = False
            return [os.getcwd(), left, wrote]
        '''
        with SandboxPool(workers=1) as p:
            vs = p.run([Run(prog, [CallCase("f", [], ["/tmp", [], False])])] * 3)
            print([v.status.value for v in vs], vs[0].detail)
            assert all(v.passed for v in vs), vs[0]
    """)
    p = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert sys.prefix != str(venv)


def test_layers_are_all_on_here_and_reported():
    with SandboxPool(workers=1) as p:
        layers = p.layers
        [v] = p.run([Run("import os\ndef f():\n    return os.environ.get('PATH')\n", [CallCase("f", [], "/usr/local/bin:/usr/bin:/bin")])])
    assert v.passed
    expected = {"network_namespace", "mount_namespace", "scratch_tmpfs", "pid_namespace", "unprivileged",
                "no_new_privs", "seccomp", "rlimits", "scrubbed_env", "tree_kill"}
    assert expected <= set(layers)
    if os.geteuid() == 0:  # CI and this machine: everything must be on
        assert [k for k, (on, _) in layers.items() if not on] == []


def _python_for(uid: int) -> str | None:
    """An interpreter the unprivileged user can run (pyenv under /root is not readable)."""
    for exe in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            ok = subprocess.run([exe, "-c", "import sys; assert sys.version_info >= (3, 10)"], user=uid,
                                capture_output=True, timeout=30, cwd="/").returncode == 0
        except (OSError, subprocess.SubprocessError):
            continue
        if ok:
            return exe
    return None


NON_ROOT = textwrap.dedent("""
    import json, os
    from execrl.sandbox import CallCase, CheckTest, Run, SandboxPool
    from execrl.sandbox._doctor import run_probes
    prog = "import os\\ndef f():\\n    return [os.getcwd(), len([p for p in os.listdir('/proc') if p.isdigit()])]\\n"
    with SandboxPool(workers=1) as p:
        layers = p.layers
        [v, w] = p.run([Run(prog, [CallCase("f", [], ["/tmp", 2])]),
                        Run("def add(a, b):\\n    return a - b\\n", CheckTest("def check(c):\\n    assert c(1, 2) == 3\\n", "add"))])
        probes = run_probes(p)
    print(json.dumps({"uid": os.geteuid(), "off": [k for k, (on, _) in layers.items() if not on],
                      "statuses": [v.status.value, w.status.value], "detail": v.detail,
                      "escaped": [pr.name for pr in probes if not pr.contained]}))
""")


def test_unprivileged_user_gets_every_layer_through_user_namespaces():
    """The path a laptop user takes: not root, unprivileged user namespaces on."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    uid = 65534  # nobody
    exe = _python_for(uid)
    if exe is None:
        pytest.skip("no interpreter the unprivileged user can run")
    probe = subprocess.run([exe, "-c", "import execrl.sandbox"], user=uid, group=uid, capture_output=True, cwd="/",
                           env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"the checkout at {SRC} is not readable by the unprivileged user")
    p = subprocess.run([exe, "-c", NON_ROOT], user=uid, group=uid, capture_output=True, text=True, timeout=120,
                       cwd="/", env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr[-2000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["uid"] == uid
    assert set(got["off"]) <= {"cgroup"}, got  # cgroups need root or a delegated subtree
    assert got["statuses"] == ["passed", "failed"], got  # sees only itself and the zygote
    assert got["escaped"] == [], got
