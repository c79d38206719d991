"""Service auto scaling under real load: a `berth up --no-agent` server with three process-driver
agents, Application Auto Scaling policies set through boto3, and load that really burns CPU
(a duty-cycled shell loop, switched on by a file) or really sends HTTP requests through the load
balancer (a generator on loopback). Bounded in time: every wait has a deadline.

The server decides every 2 s and scales out after 2 and in after 3 ten-second datapoints
(`--autoscale-*` flags), so a scale-out follows a load step in about 20-30 s and a scale-in its
end in about 30-40 s, plus the policies' cooldowns.
"""
import contextlib
import http.client
import os
import shutil
import tempfile
import threading
import time

import pytest

from conftest import Agent, Berth, delete_services_and_wait, free_port, join_token, uniq, wait_for

BUSYBOX = shutil.which("busybox")
CPU, MEM = 4096, 2048
NS, DIM = "ecs", "ecs:service:DesiredCount"


@pytest.fixture(scope="module")
def base():
    with tempfile.TemporaryDirectory() as d:
        yield d


def server(base):
    return Berth(os.path.join(base, "server"), agent=False,
                 args=["--agent-timeout", "3", "--autoscale-period", "2",
                       "--autoscale-out-points", "2", "--autoscale-in-points", "3"])


@pytest.fixture(scope="module")
def berth(base):
    b = server(base)
    os.makedirs(b.data_dir)
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def agents(berth, base):
    ecs = berth.client()
    token = join_token(berth, "default")
    started = [Agent(berth, os.path.join(base, f"host{i}"), token, cpu=CPU, memory=MEM, poll_wait=1).start()
               for i in range(3)]
    for a in started:
        a.wait_registered(ecs)
    yield started
    delete_services_and_wait(ecs)
    for a in started:
        a.stop()


class DesiredSampler:
    """Samples a service's desiredCount in a thread, to check Min/Max held throughout."""

    def __init__(self, berth, name):
        self.ecs, self.name = berth.client(), name
        self.values = []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_flag.is_set():
            with contextlib.suppress(Exception):
                s = self.ecs.describe_services(cluster="default", services=[self.name])["services"][0]
                self.values.append(s["desiredCount"])
            time.sleep(0.25)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(10)


def desired(ecs, name):
    return ecs.describe_services(cluster="default", services=[name])["services"][0]["desiredCount"]


def activities(aas, name):
    return aas.describe_scaling_activities(ServiceNamespace=NS, ResourceId=f"service/default/{name}")["ScalingActivities"]


def burner_taskdef(ecs, go_file):
    """Burns half a core while `go_file` exists (against a 128-unit reservation: about 400%
    CPUUtilization on an idle machine, far above the 50% target even when the machine is
    busy), idles otherwise (a few percent)."""
    script = (f"while :; do if [ -f {go_file} ]; then "
              "timeout 0.2 sh -c 'while :; do :; done'; sleep 0.2; "
              "else sleep 0.2; fi; done")
    return ecs.register_task_definition(family=uniq("burn"), containerDefinitions=[{
        "name": "app", "image": "busybox", "cpu": 128, "memory": 16,
        "entryPoint": ["sh", "-c"], "command": [script]}])["taskDefinition"]["taskDefinitionArn"]


def test_cpu_target_tracking_scales_out_and_in_and_survives_a_restart(berth, agents, base):
    ecs, aas = berth.client(), berth.client("application-autoscaling")
    go = os.path.join(base, uniq("go"))
    name = uniq("cpu")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=burner_taskdef(ecs, go), desiredCount=1)
    rid = f"service/default/{name}"
    aas.register_scalable_target(ServiceNamespace=NS, ResourceId=rid, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=3)
    aas.put_scaling_policy(PolicyName="cpu50", ServiceNamespace=NS, ResourceId=rid, ScalableDimension=DIM,
                           PolicyType="TargetTrackingScaling",
                           TargetTrackingScalingPolicyConfiguration={
                               "TargetValue": 50.0,
                               "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
                               "ScaleOutCooldown": 0, "ScaleInCooldown": 15})
    wait_for(lambda: ecs.describe_services(cluster="default", services=[name])["services"][0]["runningCount"] == 1,
             30, interval=0.2, what="one task running")
    with DesiredSampler(berth, name) as sampler:
        # The load step.
        open(go, "w").close()
        t0 = time.monotonic()
        wait_for(lambda: desired(ecs, name) > 1, 60, interval=0.2, what="the first scale-out")
        reaction = time.monotonic() - t0
        print(f"\nCPU load step -> first scale-out decision: {reaction:.1f} s")
        # The server dies mid-scale and comes back: scaling carries on from the store.
        berth.kill9()
        berth.start()
        wait_for(lambda: desired(ecs, name) == 3, 90, interval=0.5, what="scaled out to the maximum")
        wait_for(lambda: ecs.describe_services(cluster="default", services=[name])["services"][0]["runningCount"] == 3,
                 60, interval=0.5, what="three tasks running")
        # The load ends: back in, to the minimum, not below.
        os.remove(go)
        t1 = time.monotonic()
        wait_for(lambda: desired(ecs, name) == 1, 150, interval=0.5, what="scaled back in to the minimum")
        print(f"CPU load end -> scaled in to 1: {time.monotonic() - t1:.1f} s")
    assert sampler.values and min(sampler.values) >= 1 and max(sampler.values) <= 3, sampler.values
    acts = activities(aas, name)
    outs = [a for a in acts if "TargetTracking" in a["Cause"] and "AlarmHigh" in a["Cause"]]
    ins = [a for a in acts if "AlarmLow" in a["Cause"]]
    assert outs and ins, acts
    for a in acts:
        assert a["StatusCode"] == "Successful"
        assert a["Description"].startswith("Setting desired count to ")
        assert "in state ALARM triggered policy cpu50" in a["Cause"]
    # Scale-in waited out its cooldown after the last scale-out.
    last_out = max(a["StartTime"] for a in outs)
    first_in = min(a["StartTime"] for a in ins)
    assert (first_in - last_out).total_seconds() >= 15
    events = [e["message"] for e in ecs.describe_services(cluster="default", services=[name])["services"][0]["events"]]
    assert any("Application Auto Scaling changed the desired count" in m for m in events), events
    # The series the decisions were made on, through berth's CLI (sparklines) and as JSON.
    p = berth.cli("service", "metrics", name, "--minutes", "15")
    assert "CPUUtilization %" in p.stdout and "now" in p.stdout, p.stdout
    import json
    series = json.loads(berth.cli("service", "metrics", name, "--output", "json").stdout)
    assert max(v for _, v in series["CPUUtilization"]) > 50, series
    ecs.update_service(cluster="default", service=name, desiredCount=0)
    aas.deregister_scalable_target(ServiceNamespace=NS, ResourceId=rid, ScalableDimension=DIM)
    ecs.delete_service(cluster="default", service=name, force=True)


@pytest.mark.skipif(BUSYBOX is None, reason="needs busybox (busybox-static)")
def test_request_count_per_target_scales_with_load(berth, agents):
    ecs, elb, aas = berth.client(), berth.client("elbv2"), berth.client("application-autoscaling")
    tg = elb.create_target_group(Name=uniq("tg"), Protocol="HTTP", Port=80, VpcId="vpc-berth",
                                 HealthCheckPath="/", HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                 HealthyThresholdCount=2, UnhealthyThresholdCount=2)["TargetGroups"][0]
    tg_arn = tg["TargetGroupArn"]
    elb.modify_target_group_attributes(TargetGroupArn=tg_arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "5"}])
    lb = elb.create_load_balancer(Name=uniq("lb"), Subnets=["subnet-a"])["LoadBalancers"][0]
    port = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
    script = f"mkdir -p www && echo hi > www/index.html && exec {BUSYBOX} httpd -f -p $PORT -h www"
    td = ecs.register_task_definition(family=uniq("reqs"), containerDefinitions=[{
        "name": "web", "image": "busybox", "memory": 16, "entryPoint": ["sh", "-c"], "command": [script],
        "portMappings": [{"containerPort": 80, "hostPort": 0}]}])["taskDefinition"]["taskDefinitionArn"]
    name = uniq("reqsvc")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td, desiredCount=1,
                       loadBalancers=[{"targetGroupArn": tg_arn, "containerName": "web", "containerPort": 80}])
    wait_for(lambda: any(t["TargetHealth"]["State"] == "healthy" for t in
                         elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]),
             40, interval=0.2, what="a healthy target")
    rid = f"service/default/{name}"
    label = lb["LoadBalancerArn"].split(":loadbalancer/")[1] + "/" + tg_arn.split(":")[-1]
    aas.register_scalable_target(ServiceNamespace=NS, ResourceId=rid, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=3)
    # 300 requests per target per minute: 5 per second.
    aas.put_scaling_policy(PolicyName="reqs", ServiceNamespace=NS, ResourceId=rid, ScalableDimension=DIM,
                           PolicyType="TargetTrackingScaling",
                           TargetTrackingScalingPolicyConfiguration={
                               "TargetValue": 300.0,
                               "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget",
                                                                 "ResourceLabel": label},
                               "ScaleOutCooldown": 0, "ScaleInCooldown": 5})
    stop = threading.Event()
    sent = {"ok": 0, "failed": 0}

    def load():
        # About 40 requests a second on one keep-alive connection, for at most 120 s.
        end = time.monotonic() + 120
        conn = None
        while not stop.is_set() and time.monotonic() < end:
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/")
                r = conn.getresponse()
                r.read()
                sent["ok" if r.status == 200 else "failed"] += 1
                if r.will_close:
                    conn.close()
                    conn = None
            except Exception:  # noqa: BLE001 - counted
                sent["failed"] += 1
                conn = None
            time.sleep(0.025)

    t = threading.Thread(target=load, daemon=True)
    with DesiredSampler(berth, name) as sampler:
        t0 = time.monotonic()
        t.start()
        try:
            wait_for(lambda: desired(ecs, name) > 1, 60, interval=0.2, what="a scale-out on requests")
            print(f"\nrequest load step -> first scale-out decision: {time.monotonic() - t0:.1f} s")
            wait_for(lambda: len([x for x in elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
                                  if x["TargetHealth"]["State"] == "healthy"]) >= 2, 60, interval=0.2,
                     what="new tasks serving traffic")
            print(f"request load step -> new tasks serving: {time.monotonic() - t0:.1f} s")
        finally:
            stop.set()
            t.join(10)
        wait_for(lambda: desired(ecs, name) == 1, 150, interval=0.5, what="back to one task without load")
    assert max(sampler.values) <= 3 and min(sampler.values) >= 1, sampler.values
    assert sent["ok"] > 100 and sent["failed"] == 0, sent
    acts = activities(aas, name)
    assert any("triggered policy reqs" in a["Cause"] for a in acts), acts
    aas.deregister_scalable_target(ServiceNamespace=NS, ResourceId=rid, ScalableDimension=DIM)
    ecs.delete_service(cluster="default", service=name, force=True)


def test_scheduled_action_sets_capacity_bounds(berth, agents):
    ecs, aas = berth.client(), berth.client("application-autoscaling")
    name = uniq("sched")
    td = ecs.register_task_definition(family=uniq("idle"), containerDefinitions=[{
        "name": "app", "image": "busybox", "memory": 16, "command": ["sleep", "3600"]}])["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td, desiredCount=1)
    rid = f"service/default/{name}"
    aas.register_scalable_target(ServiceNamespace=NS, ResourceId=rid, ScalableDimension=DIM, MinCapacity=1, MaxCapacity=4)
    # A one-off action due now: the minimum rises to 2, so the desired count follows.
    now = time.gmtime(time.time() - 5)
    aas.put_scheduled_action(ServiceNamespace=NS, ScheduledActionName="morning", ResourceId=rid, ScalableDimension=DIM,
                             Schedule=time.strftime("at(%Y-%m-%dT%H:%M:%S)", now),
                             ScalableTargetAction={"MinCapacity": 2, "MaxCapacity": 4})
    wait_for(lambda: desired(ecs, name) == 2, 30, interval=0.2, what="the scheduled minimum applied")
    t = aas.describe_scalable_targets(ServiceNamespace=NS, ResourceIds=[rid])["ScalableTargets"][0]
    assert (t["MinCapacity"], t["MaxCapacity"]) == (2, 4)
    acts = activities(aas, name)
    assert any(a["Description"] == "Setting min capacity to 2 and max capacity to 4"
               and a["Cause"] == "scheduled action name morning was triggered" for a in acts), acts
    aas.deregister_scalable_target(ServiceNamespace=NS, ResourceId=rid, ScalableDimension=DIM)
    ecs.delete_service(cluster="default", service=name, force=True)
