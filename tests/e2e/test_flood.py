"""Load balancer and API limits under attack (issue 14): a connection flood from one address
against the API and a listener at once, per-access-key throttling, the load balancer's idle
timeout attribute, and listener ports that cannot be bound.

The flood runs in a process of its own (flood_client.py) and is stopped, even on failure, by
closing its stdin and then killing it."""
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import Berth, expect_error, free_port, uniq, wait_for

BERTH_AGENT = False
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory() as d:
        b = Berth(d, agent=False, nofile=4096).start()
        yield b
        b.stop()


def fixed_listener(elb, port=None):
    """A load balancer with a fixed-response listener on `port` (free by default)."""
    lb = elb.create_load_balancer(Name=uniq("flood").replace("_", "-")[:32].strip("-"))
    lb = lb["LoadBalancers"][0]
    port = port or free_port()
    l = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "200", "ContentType": "text/plain", "MessageBody": "listener ok"}}],
    )["Listeners"][0]
    return lb, l, port


def served(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
            return r.status == 200 and r.read() == b"listener ok"
    except OSError:
        return False


def closed_by_server(s, within):
    s.settimeout(within)
    try:
        while s.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def api_latencies(ecs, n):
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        assert ecs.list_clusters()["clusterArns"] is not None
        out.append(time.monotonic() - t0)
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def test_a_flood_on_the_api_and_a_listener_locks_no_one_out(server):
    """5,000 idle and 500 slow-loris connections from 127.0.0.2 against the API and against a
    listener (reopened as the server closes them), under a 4,096-descriptor limit, while
    signed API calls and listener requests from 127.0.0.1 keep being answered."""
    elb = server.client("elbv2")
    _, _, lb_port = fixed_listener(elb)
    wait_for(lambda: served(lb_port), 20, what="the listener to serve")
    ecs = server.client()
    api_latencies(ecs, 5)  # warm up
    baseline = api_latencies(ecs, 50)

    flood = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "flood_client.py"), "127.0.0.2", "45", "5000", "500",
         str(server.port), str(lb_port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    stats = {}
    try:
        def flood_is_on():
            nonlocal stats
            stats = json.loads(flood.stdout.readline() or "{}")
            # Every holder has connected at least once (most were closed and reopen).
            return stats.get("opened", 0) >= 2 * (5000 + 500)
        wait_for(flood_is_on, 40, what="the flood to open its connections")
        during = api_latencies(ecs, 50)
        lb_ok = sum(served(lb_port) for _ in range(10))
        stats = json.loads(flood.stdout.readline() or "{}")
    finally:
        try:
            flood.stdin.close()
            flood.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            flood.kill()
            flood.wait()
    metrics = server.metrics_text()
    print(f"\nflood: {stats}")
    print(f"API latency without flood: p50 {pct(baseline, 50) * 1000:.1f} ms, "
          f"p99 {pct(baseline, 99) * 1000:.1f} ms; during the flood: p50 "
          f"{pct(during, 50) * 1000:.1f} ms, p99 {pct(during, 99) * 1000:.1f} ms "
          f"(ratio p50 {statistics.median(during) / statistics.median(baseline):.2f})")
    assert max(during) < 1.0, f"an API call took {max(during):.2f} s during the flood"
    assert lb_ok == 10, f"the listener served {lb_ok} of 10 requests during the flood"
    rejected = [l for l in metrics.splitlines() if l.startswith("berth_lb_rejected_connections_total")]
    assert rejected and int(rejected[0].rsplit(" ", 1)[1]) > 0, "the listener's caps were never hit"
    # Both servers are healthy after the flood.
    assert served(lb_port)
    assert ecs.list_clusters()["clusterArns"] is not None


def test_the_load_balancers_idle_timeout_attribute_is_honoured(server):
    elb = server.client("elbv2")
    lb, _, port = fixed_listener(elb)
    arn = lb["LoadBalancerArn"]
    attrs = elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    assert {"Key": "idle_timeout.timeout_seconds", "Value": "60"} in attrs
    got = elb.modify_load_balancer_attributes(
        LoadBalancerArn=arn, Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "1"}])
    assert {"Key": "idle_timeout.timeout_seconds", "Value": "1"} in got["Attributes"]
    assert {"Key": "idle_timeout.timeout_seconds", "Value": "1"} in \
        elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    # Out of range, or an attribute berth does not honour: refused, naming it.
    e = expect_error("ValidationError", elb.modify_load_balancer_attributes, LoadBalancerArn=arn,
                     Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "0"}])
    assert "idle_timeout.timeout_seconds" in str(e)
    e = expect_error("ValidationError", elb.modify_load_balancer_attributes, LoadBalancerArn=arn,
                     Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}])
    assert "deletion_protection.enabled" in str(e)

    def closes_after_one_request():
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: lb\r\n\r\n")
            # The response, then the close a second of idleness later (well before 60 s).
            return closed_by_server(s, 8)
        finally:
            s.close()
    wait_for(closes_after_one_request, 30, interval=0.5,
             what="a kept-alive listener connection to close after the 1 s idle timeout")


def test_a_listener_on_a_port_that_cannot_be_bound_is_refused(server):
    elb = server.client("elbv2")
    lb = elb.create_load_balancer(Name=uniq("busy").replace("_", "-")[:32].strip("-"))
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    action = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}]
    # The API's own port.
    e = expect_error("InvalidConfigurationRequest", elb.create_listener, LoadBalancerArn=lb_arn,
                     Protocol="HTTP", Port=server.port, DefaultActions=action)
    assert str(server.port) in str(e)
    # A port another process holds.
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        e = expect_error("InvalidConfigurationRequest", elb.create_listener,
                         LoadBalancerArn=lb_arn, Protocol="HTTP", Port=taken,
                         DefaultActions=action)
        assert str(taken) in str(e)
        # Moving a listener onto it is refused too.
        _, l, _ = fixed_listener(elb)
        expect_error("InvalidConfigurationRequest", elb.modify_listener,
                     ListenerArn=l["ListenerArn"], Port=taken)
    assert not [l for l in elb.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]]
    # Deleting a listener and creating another on its port at once still works.
    _, l, port = fixed_listener(elb)
    wait_for(lambda: served(port), 20, what="the listener to serve")
    elb.delete_listener(ListenerArn=l["ListenerArn"])
    _, _, again = fixed_listener(elb, port)
    assert again == port


@pytest.fixture(scope="module")
def throttled():
    with tempfile.TemporaryDirectory() as d:
        b = Berth(d, agent=False, args=["--api-rate", "2", "--api-burst", "5"]).start()
        yield b
        b.stop()


def test_requests_over_the_access_keys_rate_are_throttled(throttled):
    ecs = throttled.client()  # max_attempts 1: boto3 would otherwise retry the throttle
    outcomes = []
    for _ in range(20):
        try:
            ecs.list_clusters()
            outcomes.append("ok")
        except ClientError as e:
            r = e.response
            assert r["Error"]["Code"] == "ThrottlingException", r
            assert r["Error"]["Message"] == "Rate exceeded", r
            assert r["ResponseMetadata"]["HTTPStatusCode"] == 400, r
            outcomes.append("throttled")
    assert outcomes[:5] == ["ok"] * 5, outcomes  # the burst
    assert "throttled" in outcomes, outcomes
    # The Query protocol says Throttling, as ELB does.
    elb = throttled.client("elbv2")
    with pytest.raises(ClientError) as ei:
        for _ in range(20):
            elb.describe_load_balancers()
    assert ei.value.response["Error"]["Code"] == "Throttling"
    # The bucket refills at the rate.
    wait_for(lambda: ecs.list_clusters() is not None, 10, interval=0.6,
             what="the bucket to refill")
    # Unsigned endpoints (liveness; the agents' own, on join tokens) take no token.
    for _ in range(10):
        with urllib.request.urlopen(throttled.endpoint + "/ping", timeout=2) as r:
            assert r.status == 200
