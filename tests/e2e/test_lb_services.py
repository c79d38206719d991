"""The load balancer end to end, with services behind it: a real `berth up --no-agent`, three
process-driver agents, and busybox `httpd` tasks serving on dynamic host ports ($PORT).

Covered: traffic spread evenly over three healthy tasks; path rules routing to two services;
a task whose health check fails stops getting traffic (within interval x threshold) and is
replaced by the service; and, while a load generator on loopback sends a steady stream
(bounded in time and count), a rolling deployment, a scale-in and the draining of an instance
all finish with zero failed requests.

ELB's own minimums hold (health check interval 5 s, thresholds 2), so a task needs one
interval to turn healthy. Every wait polls a condition with a deadline.
"""
import http.client
import os
import shutil
import tempfile
import threading
import time

import pytest

from conftest import (
    Agent, Berth, delete_services_and_wait, free_port, join_token, processes_with_argv, uniq, wait_for,
)

BUSYBOX = shutil.which("busybox")
pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="needs busybox (busybox-static)")

CPU, MEM = 4096, 2048


@pytest.fixture(scope="module")
def base():
    with tempfile.TemporaryDirectory() as d:
        yield d


@pytest.fixture(scope="module")
def berth(base):
    b = Berth(os.path.join(base, "server"), agent=False, args=["--agent-timeout", "3"])
    os.makedirs(b.data_dir)
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def ecs(berth):
    return berth.client()


@pytest.fixture(scope="module")
def elb(berth):
    return berth.client("elbv2")


@pytest.fixture(scope="module")
def agents(berth, ecs, base):
    token = join_token(berth, "default")
    started = [Agent(berth, os.path.join(base, f"host{i}"), token, cpu=CPU, memory=MEM, poll_wait=1).start()
               for i in range(3)]
    for a in started:
        a.wait_registered(ecs)
    yield started
    delete_services_and_wait(ecs)
    for a in started:
        a.stop()


# ---------------------------------------------------------------------------------------------
# Helpers

def web_taskdef(ecs, family, version, health_path="/health"):
    """busybox httpd on $PORT serving `version` at / and a health file at /health; each task
    also serves its own port at /who, so the test can tell tasks apart."""
    script = ("mkdir -p www && echo {v} > www/index.html && echo ok > www/health && "
              "echo $PORT > www/who && exec {bb} httpd -f -p $PORT -h www").format(v=version, bb=BUSYBOX)
    c = {"name": "web", "image": "busybox", "memory": 16, "essential": True,
         "entryPoint": ["sh", "-c"], "command": [script],
         "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}]}
    return ecs.register_task_definition(family=family, containerDefinitions=[c])["taskDefinition"]["taskDefinitionArn"]


def target_group(elb, health_path="/health", delay=5):
    tg = elb.create_target_group(Name=uniq("tg"), Protocol="HTTP", Port=80, VpcId="vpc-berth",
                                 HealthCheckPath=health_path, HealthCheckIntervalSeconds=5,
                                 HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
                                 UnhealthyThresholdCount=2)["TargetGroups"][0]
    elb.modify_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"], Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}])
    return tg["TargetGroupArn"]


def load_balancer(elb, tg_arn):
    lb = elb.create_load_balancer(Name=uniq("lb"), Subnets=["subnet-a", "subnet-b"])["LoadBalancers"][0]
    port = free_port()
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])["Listeners"][0]
    return lb["DNSName"], port, listener["ListenerArn"]


def get(host, port, path="/", timeout=5):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode().strip()
    finally:
        c.close()


def healthy_targets(elb, tg_arn):
    d = elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
    return [t for t in d if t["TargetHealth"]["State"] == "healthy"]


def create_web_service(ecs, elb, tg_arn, name, td, count=3):
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td, desiredCount=count,
                       loadBalancers=[{"targetGroupArn": tg_arn, "containerName": "web", "containerPort": 80}],
                       deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 100})


def wait_serving(ecs, elb, name, tg_arn, count, td=None, timeout=60):
    """The service is steady with `count` tasks (of `td`), each with a healthy target."""
    def ok():
        s = ecs.describe_services(cluster="default", services=[name])["services"][0]
        if len(s["deployments"]) != 1 or s["runningCount"] != count:
            return False
        if td and s["deployments"][0]["taskDefinition"] != td:
            return False
        all_targets = elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
        return len(all_targets) == count and len(healthy_targets(elb, tg_arn)) == count
    wait_for(ok, timeout, interval=0.2, what=f"service {name} serving {count} healthy tasks")


class Load:
    """A steady stream of GETs on loopback from two client threads, keep-alive and not,
    bounded in time and count. Records every failure and every answer body."""

    def __init__(self, host, port, path="/", max_seconds=150, max_requests=60_000):
        self.host, self.port, self.path = host, port, path
        self.deadline = time.monotonic() + max_seconds
        self.max_requests = max_requests
        self.stop_flag = threading.Event()
        self.ok = 0
        self.failures = []
        self.bodies = {}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(keep,), daemon=True) for keep in (True, False)]

    def _record(self, status, body, err=None):
        with self.lock:
            if err is None and status == 200:
                self.ok += 1
                self.bodies[body] = self.bodies.get(body, 0) + 1
            else:
                self.failures.append(err or f"HTTP {status}: {body[:200]}")

    def _run(self, keep_alive):
        conn = None
        while not self.stop_flag.is_set() and time.monotonic() < self.deadline:
            with self.lock:
                if self.ok + len(self.failures) >= self.max_requests:
                    return
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                conn.request("GET", self.path)
                r = conn.getresponse()
                body = r.read().decode().strip()
                self._record(r.status, body)
                if not keep_alive or r.will_close:
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - every failure is counted
                self._record(None, "", repr(e))
                if conn:
                    conn.close()
                conn = None
            time.sleep(0.005)

    def __enter__(self):
        for t in self.threads:
            t.start()
        # The stream is flowing before the test goes on.
        wait_for(lambda: self.ok > 10 or self.failures, 10, what="load to flow")
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(15)


# ---------------------------------------------------------------------------------------------
# Tests

def test_traffic_spreads_and_rolling_deploy_drops_nothing(ecs, elb, agents):
    family, name = uniq("web"), uniq("websvc")
    tg = target_group(elb)
    host, port, _ = load_balancer(elb, tg)
    v1 = web_taskdef(ecs, family, "v1")
    create_web_service(ecs, elb, tg, name, v1)
    wait_serving(ecs, elb, name, tg, 3)
    # Targets are the tasks' instances and dynamic host ports.
    targets = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    tasks = ecs.describe_tasks(cluster="default", tasks=ecs.list_tasks(cluster="default", serviceName=name)["taskArns"])["tasks"]
    ports = sorted(t["containers"][0]["networkBindings"][0]["hostPort"] for t in tasks)
    assert sorted(t["Target"]["Port"] for t in targets) == ports
    # Round robin: 90 requests, 30 to each task.
    seen = {}
    for _ in range(90):
        status, who = get(host, port, "/who")
        assert status == 200
        seen[who] = seen.get(who, 0) + 1
    assert sorted(int(w) for w in seen) == ports
    assert all(25 <= n <= 35 for n in seen.values()), seen

    # A rolling deployment under a steady stream: zero failed requests.
    v2 = web_taskdef(ecs, family, "v2")
    with Load(host, port) as load:
        ecs.update_service(cluster="default", service=name, taskDefinition=v2)
        wait_serving(ecs, elb, name, tg, 3, td=v2, timeout=90)
        wait_for(lambda: load.bodies.get("v2", 0) > 20, 20, what="v2 answering")
        # Old tasks were deactivated (drained) before they stopped.
        stopped = ecs.describe_tasks(cluster="default", tasks=ecs.list_tasks(
            cluster="default", serviceName=name, desiredStatus="STOPPED")["taskArns"])["tasks"]
        assert stopped and all(t["stopCode"] == "ServiceSchedulerInitiated" for t in stopped)
    assert load.failures == [], load.failures[:10]
    assert load.bodies.get("v1") and load.bodies.get("v2"), load.bodies
    assert get(host, port)[1] == "v2"

    # Scale-in under load: zero failed requests.
    with Load(host, port) as load:
        ecs.update_service(cluster="default", service=name, desiredCount=1)
        wait_serving(ecs, elb, name, tg, 1, timeout=60)
        ok_before = load.ok
        wait_for(lambda: load.ok > ok_before + 20, 20, what="more requests after scale-in")
    assert load.failures == [], load.failures[:10]


def test_draining_an_instance_drops_nothing(ecs, elb, agents):
    family, name = uniq("web"), uniq("drainsvc")
    tg = target_group(elb)
    host, port, _ = load_balancer(elb, tg)
    td = web_taskdef(ecs, family, "d1")
    create_web_service(ecs, elb, tg, name, td, count=2)
    wait_serving(ecs, elb, name, tg, 2)
    task = ecs.describe_tasks(cluster="default", tasks=ecs.list_tasks(cluster="default", serviceName=name)["taskArns"])["tasks"][0]
    inst = task["containerInstanceArn"]
    try:
        with Load(host, port) as load:
            ecs.update_container_instances_state(cluster="default", containerInstances=[inst], status="DRAINING")

            def moved():
                ts = ecs.describe_tasks(cluster="default", tasks=ecs.list_tasks(
                    cluster="default", serviceName=name)["taskArns"])["tasks"]
                return len(ts) == 2 and all(t["containerInstanceArn"] != inst for t in ts)
            wait_for(moved, 90, interval=0.2, what="tasks off the draining instance")
            wait_serving(ecs, elb, name, tg, 2)
        assert load.failures == [], load.failures[:10]
        assert load.ok > 0
    finally:
        ecs.update_container_instances_state(cluster="default", containerInstances=[inst], status="ACTIVE")


def test_unhealthy_task_gets_no_traffic_and_is_replaced(ecs, elb, agents):
    family, name = uniq("web"), uniq("sicksvc")
    tg = target_group(elb)
    host, port, _ = load_balancer(elb, tg)
    td = web_taskdef(ecs, family, "h1")
    create_web_service(ecs, elb, tg, name, td, count=2)
    wait_serving(ecs, elb, name, tg, 2)
    tasks = ecs.describe_tasks(cluster="default", tasks=ecs.list_tasks(cluster="default", serviceName=name)["taskArns"])["tasks"]
    sick = tasks[0]
    sick_port = str(sick["containers"][0]["networkBindings"][0]["hostPort"])
    # Break its health check: remove the health file from its working directory.
    [pid] = processes_with_argv([BUSYBOX, "httpd", "-f", "-p", sick_port, "-h", "www"])
    os.remove(os.path.join(os.readlink(f"/proc/{pid}/cwd"), "health"))  # httpd runs in www/
    t0 = time.monotonic()
    # Unhealthy, then at once deregistered by the service (draining), then gone.
    seen = set()

    def out_of_rotation():
        states = {t["TargetHealth"]["State"] for t in elb.describe_target_health(TargetGroupArn=tg)[
            "TargetHealthDescriptions"] if t["Target"]["Port"] == int(sick_port)}
        seen.update(states)
        return not states or states <= {"unhealthy", "draining"}
    wait_for(out_of_rotation, 30, interval=0.1, what="the target to leave the rotation")
    # interval (5 s) x unhealthy threshold (2), with slack for a busy machine.
    assert time.monotonic() - t0 < 25
    # It gets no traffic now, and the service replaces it.
    for _ in range(20):
        status, who = get(host, port, "/who")
        assert status == 200 and who != sick_port
    gone = wait_for(lambda: ecs.describe_tasks(cluster="default", tasks=[sick["taskArn"]])["tasks"][0]
                    if ecs.describe_tasks(cluster="default", tasks=[sick["taskArn"]])["tasks"][0]["lastStatus"] == "STOPPED"
                    else None, 40, interval=0.2, what="the unhealthy task to be stopped")
    assert gone["stoppedReason"].startswith("Task failed ELB health checks in (target-group " + tg)
    wait_serving(ecs, elb, name, tg, 2)
    events = [e["message"] for e in ecs.describe_services(cluster="default", services=[name])["services"][0]["events"]]
    assert any("is unhealthy in (target-group" in m for m in events), events


def test_path_rules_route_to_two_services(ecs, elb, agents):
    tg_web, tg_api = target_group(elb), target_group(elb)
    host, port, listener = load_balancer(elb, tg_web)
    elb.create_rule(ListenerArn=listener, Priority=10,
                    Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
                    Actions=[{"Type": "forward", "TargetGroupArn": tg_api}])
    elb.create_rule(ListenerArn=listener, Priority=15,
                    Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": ["api.*.example"]}}],
                    Actions=[{"Type": "forward", "TargetGroupArn": tg_api}])
    elb.create_rule(ListenerArn=listener, Priority=20,
                    Conditions=[{"Field": "host-header", "Values": ["teapot.example"]}],
                    Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                        "StatusCode": "418", "ContentType": "text/plain", "MessageBody": "short and stout"}}])
    web, api = uniq("websvc"), uniq("apisvc")
    create_web_service(ecs, elb, tg_web, web, web_taskdef(ecs, uniq("web"), "web"), count=1)
    # The api service serves its marker under /api/ too.
    fam = uniq("api")
    script = ("mkdir -p www/api && echo api > www/api/index.html && echo ok > www/health && "
              "exec {bb} httpd -f -p $PORT -h www").format(bb=BUSYBOX)
    td = ecs.register_task_definition(family=fam, containerDefinitions=[{
        "name": "web", "image": "busybox", "memory": 16, "entryPoint": ["sh", "-c"], "command": [script],
        "portMappings": [{"containerPort": 80, "hostPort": 0}]}])["taskDefinition"]["taskDefinitionArn"]
    create_web_service(ecs, elb, tg_api, api, td, count=1)
    wait_serving(ecs, elb, web, tg_web, 1)
    wait_serving(ecs, elb, api, tg_api, 1)
    assert get(host, port, "/") == (200, "web")
    assert get(host, port, "/api/") == (200, "api")
    # A host rule sends the same path to the other service (which has nothing at /: 404).
    c = http.client.HTTPConnection(host, port, timeout=5)
    c.request("GET", "/", headers={"Host": "api.eu.example"})
    r = c.getresponse()
    assert r.status == 404 and b"web" not in r.read()
    c.request("GET", "/", headers={"Host": "www.example"})
    r = c.getresponse()
    assert (r.status, r.read().strip()) == (200, b"web")
    c.close()
    c = http.client.HTTPConnection(host, port, timeout=5)
    c.request("GET", "/", headers={"Host": "teapot.example"})
    r = c.getresponse()
    assert (r.status, r.read()) == (418, b"short and stout")
    c.close()


def test_service_load_balancer_validation(ecs, elb, agents):
    from conftest import expect_error
    tg = target_group(elb)
    td = web_taskdef(ecs, uniq("web"), "x")
    bad = [
        [{"targetGroupArn": tg.replace(tg.rsplit("/", 1)[1], "0000000000000000"), "containerName": "web", "containerPort": 80}],
        [{"targetGroupArn": tg, "containerName": "nope", "containerPort": 80}],
        [{"targetGroupArn": tg, "containerName": "web", "containerPort": 81}],
        [{"targetGroupArn": tg, "containerName": "web"}],
        [{"loadBalancerName": "classic", "containerName": "web", "containerPort": 80}],
    ]
    for lbs in bad:
        expect_error("InvalidParameterException", ecs.create_service, cluster="default", serviceName=uniq("bad"),
                     taskDefinition=td, desiredCount=0, loadBalancers=lbs)
    name = uniq("okl")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td, desiredCount=0)
    expect_error("InvalidParameterException", ecs.update_service, cluster="default", service=name,
                 loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 81}])
    got = ecs.update_service(cluster="default", service=name,
                             loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])
    assert got["service"]["loadBalancers"] == [{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}]


def test_metrics_and_dns_name(berth, elb, ecs, agents):
    tg = target_group(elb)
    host, port, _ = load_balancer(elb, tg)
    assert host == "127.0.0.1"
    # No targets yet: a clear 503 from the load balancer itself (once the listener is bound:
    # the data plane follows the API asynchronously).
    status, _ = wait_for(lambda: get(host, port), 10, what="the listener")
    assert status == 503
    text = berth.metrics_text()
    assert "berth_lb_" in text


def test_load_balancer_comes_back_after_a_server_kill(berth, ecs, elb, agents):
    """The data plane lives in the server: after a kill -9 and a restart, the listener is bound
    again from the store, the tasks (still running on their agents) are re-checked, and
    traffic flows to them, with nothing re-registered twice."""
    family, name = uniq("web"), uniq("restartsvc")
    tg = target_group(elb)
    host, port, _ = load_balancer(elb, tg)
    create_web_service(ecs, elb, tg, name, web_taskdef(ecs, family, "r1"), count=2)
    wait_serving(ecs, elb, name, tg, 2)
    before = sorted((t["Target"]["Id"], t["Target"]["Port"]) for t in
                    elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"])
    berth.kill9()
    berth.start()
    wait_for(lambda: get(host, port)[0] == 200, 30, interval=0.2, what="the listener back")
    wait_serving(ecs, elb, name, tg, 2)
    after = sorted((t["Target"]["Id"], t["Target"]["Port"]) for t in
                   elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"])
    assert after == before
    assert get(host, port) == (200, "r1")
