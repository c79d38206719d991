"""`berth logs` reads a task's output from its agent; `/metrics` exposes tasks, instances and samples."""
import json
import tempfile
import urllib.request

import pytest

from conftest import Berth, wait_for


@pytest.fixture(scope="module")
def local():
    with tempfile.TemporaryDirectory() as d:
        b = Berth(d, args=["--driver", "process"]).start()
        yield b
        b.stop()


def run_one(b, family, command, **td):
    ecs = b.client()
    ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "app", "image": "berth-test/busybox:latest", "memory": 64, "command": command}],
        **td,
    )
    return ecs.run_task(cluster="default", taskDefinition=family)["tasks"][0]["taskArn"]


def test_logs_follow_until_exit(local):
    arn = run_one(local, "talker", ["sh", "-c", "echo first; sleep 0.5; echo second; echo oops >&2"])
    p = local.cli("logs", arn, "--follow", "--cluster", "default")
    lines = p.stdout.splitlines()
    assert "first" in lines and "second" in lines
    assert "E oops" in lines


def test_logs_of_unknown_task_fail(local):
    p = local.cli("logs", "0123456789abcdef0123456789abcdef", check=False)
    assert p.returncode != 0
    assert "not found" in p.stderr


def scrape(b):
    return b.metrics_text()


def test_metrics_need_the_bearer_token(local):
    """Cluster names, ARNs and target addresses are not for anyone who reaches the port."""
    import urllib.error
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}):
        req = urllib.request.Request(local.endpoint + "/metrics", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=5)
        assert e.value.code == 401
        assert "berth_tasks" not in e.value.read().decode()
    assert "berth_tasks" in scrape(local)


def test_metrics_show_tasks_instances_and_samples(local):
    arn = run_one(local, "burner", ["sh", "-c", "while :; do :; done"], cpu="1024", memory="128")
    task_id = arn.rsplit("/", 1)[1]
    text = wait_for(lambda: (t := scrape(local)) and f'task="{task_id}"' in t and t, timeout=40, what="a cpu sample")
    assert 'berth_container_instances{cluster="default",status="ACTIVE",connected="true"} 1' in text
    assert 'berth_tasks{cluster="default",status="RUNNING"}' in text
    cpu = [l for l in text.splitlines() if l.startswith("berth_task_cpu_units") and task_id in l]
    assert cpu and float(cpu[0].rsplit(" ", 1)[1]) > 100, cpu  # a busy loop uses a good share of a core
    local.client().stop_task(cluster="default", task=arn)
