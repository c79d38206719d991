"""Process-driver tasks get the task definition's cpu and memory as kernel limits (issue 14), on
this machine's real cgroups: v2 where the unified hierarchy offers memory and cpu, else the v1
memory and cpu hierarchies. A task reads its own cgroup files while the test reads the limit
files the agent wrote; then it allocates past its memory and the kernel kills it, which ECS
reports as exit 137 with "OutOfMemoryError: Container killed due to memory usage"."""
import os
import tempfile

import pytest

from conftest import Berth, register, run_one, uniq, wait_for, wait_task

ROOT = "/sys/fs/cgroup"


def usable():
    """Why this host cannot run the test, or None."""
    if os.geteuid() != 0:
        return "the agent must be root to make cgroups"
    with open("/proc/self/mounts") as f:
        mounts = [l.split() for l in f]
    v2 = [m[1] for m in mounts if m[2] == "cgroup2"]
    if v2 and {"memory", "cpu"} <= set(open(os.path.join(v2[0], "cgroup.controllers")).read().split()):
        return None
    v1 = {o for m in mounts if m[2] == "cgroup" for o in m[3].split(",")}
    return None if {"memory", "cpu"} <= v1 else "no cgroup v2 or v1 memory and cpu hierarchy"


@pytest.fixture(scope="module")
def b():
    why = usable()
    if why:
        pytest.skip(why)
    with tempfile.TemporaryDirectory() as d:
        b = Berth(d, args=["--driver", "process"]).start()
        yield b
        b.stop()


def cgroup_paths(out):
    """{controller: path} from a /proc/self/cgroup listing ("0" is the v2 hierarchy)."""
    got = {}
    for line in out.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) == 3 and "/berth/" in parts[2]:
            for c in (parts[1].split(",") if parts[1] else ["0"]):
                got[c] = parts[2]
    return got


def test_memory_and_cpu_are_kernel_limits_and_an_oom_kill_reads_as_ecs_says(b):
    ecs = b.client()
    go = os.path.join(tempfile.gettempdir(), uniq("cgroup-go"))
    td = register(ecs, uniq("cg"), [{
        "name": "app", "image": "busybox", "memory": 32, "cpu": 256, "essential": True,
        "entryPoint": ["sh", "-c"],
        # Shows its cgroups, waits for the test, then holds ~100 MB in a shell variable.
        "command": [f"cat /proc/self/cgroup; while [ ! -e {go} ]; do sleep 0.05; done; "
                    "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"],
    }])["taskDefinition"]["taskDefinitionArn"]
    task = run_one(ecs, td)["taskArn"]
    try:
        wait_task(ecs, task, "RUNNING", timeout=30)
        paths = wait_for(lambda: cgroup_paths(b.cli("logs", task, "--cluster", "default").stdout) or None,
                         20, interval=0.2, what="the task's cgroups in its output")
        if "0" in paths and "memory" not in paths:  # cgroup v2
            base = os.path.join(ROOT, paths["0"].lstrip("/"))
            if not os.path.exists(os.path.join(base, "memory.max")):
                base = os.path.join(ROOT, "unified", paths["0"].lstrip("/"))
            assert open(os.path.join(base, "memory.max")).read().strip() == str(32 << 20)
            assert open(os.path.join(base, "cpu.max")).read().split() == ["25000", "100000"]
        else:  # cgroup v1: a memory cgroup and its cpu twin
            mem = os.path.join(ROOT, "memory", paths["memory"].lstrip("/"))
            cpu = os.path.join(ROOT, "cpu", paths["cpu"].lstrip("/"))
            assert open(os.path.join(mem, "memory.limit_in_bytes")).read().strip() == str(32 << 20)
            assert open(os.path.join(cpu, "cpu.cfs_quota_us")).read().strip() == "25000"
            assert open(os.path.join(cpu, "cpu.cfs_period_us")).read().strip() == "100000"
        open(go, "w").close()
        t = wait_task(ecs, task, "STOPPED", timeout=60)
        c = t["containers"][0]
        assert c.get("exitCode") == 137, c
        assert c.get("reason") == "OutOfMemoryError: Container killed due to memory usage", c
        assert "survived" not in b.cli("logs", task, "--cluster", "default").stdout
    finally:
        if os.path.exists(go):
            os.remove(go)
        ecs.stop_task(cluster="default", task=task)
