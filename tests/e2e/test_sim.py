"""`berth sim`: a small simulation (50 hosts, 500 tasks) runs to completion and reports.

The sim starts its own server as a child process; it runs in its own process group so that,
whatever happens, the test can end it and everything it started.
"""
import json
import os
import signal
import subprocess

from conftest import BERTH_BIN

ACTIONS = {"DescribeServices", "ListTasks", "DescribeTasks", "DescribeContainerInstances"}


def run_sim(*args, timeout=120):
    p = subprocess.Popen(
        [BERTH_BIN, "sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        # The sim and the server it started share this process group.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    return p.returncode, out, err


def test_small_simulation_runs_every_task_and_reports():
    code, out, err = run_sim(
        "--hosts", "50", "--tasks", "500", "--max-service", "100",
        "--baseline-rounds", "10", "--timeout", "60", "--json",
    )
    assert code == 0, err[-3000:]
    r = json.loads(out)
    assert (r["hosts"], r["tasks"]) == (50, 500)
    assert r["complete"] is True and r["runningTasks"] == 500
    assert r["services"] >= 5  # services of 10..100 tasks
    assert 0 < r["placedSecs"] <= r["runningSecs"] < 60
    assert r["registerSecs"] > 0
    assert set(r["latency"]) == ACTIONS
    for action, a in r["latency"].items():
        assert a["baseline"]["samples"] == 10, action
        assert a["baseline"]["p50Ms"] > 0 and a["baseline"]["p99Ms"] >= a["baseline"]["p50Ms"]
        assert a["during"]["samples"] >= 1, action
    for who in ("serverMemory", "simMemory"):
        assert r[who]["rssMib"] > 0 and r[who]["peakMib"] >= r[who]["rssMib"] * 0.99


def test_the_table_and_refusals():
    code, out, err = run_sim("--hosts", "5", "--tasks", "20", "--max-service", "10",
                             "--baseline-rounds", "2", "--timeout", "60")
    assert code == 0, err[-3000:]
    for figure in ("all placed in", "all RUNNING in", "20/20", "server memory", "P99 RATIO"):
        assert figure in out, out
    code, _, err = run_sim("--hosts", "0", "--tasks", "20")
    assert code != 0 and "--hosts" in err
    code, _, err = run_sim("--min-service", "50", "--max-service", "10")
    assert code != 0 and "--min-service" in err
