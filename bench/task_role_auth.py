#!/usr/bin/env python3
"""Task role keys at the edge (issue 14 item 5): what a request signed with a task's role
session costs against one signed with the root key, in the same run.

Starts `berth up --no-agent` and one process agent (temporary dirs, free port, through
tests/e2e/conftest.py), runs a task whose role allows ecs:ListClusters and which writes its
temporary credentials to a file, then times 600 interleaved ListClusters calls with each key
(boto3, one connection each) and prints the medians and their ratio.

Usage: BERTH_BIN=target/debug/berth .venv/bin/python bench/task_role_auth.py
Every process it starts is stopped (the task too).
"""
import json, os, statistics, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from conftest import Agent, Berth, join_token, wait_for
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
POL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}]}
HOLD = r"""
import json, sys, time, boto3
f = boto3.session.Session().get_credentials().get_frozen_credentials()
open(sys.argv[1], "w").write(json.dumps([f.access_key, f.secret_key, f.token]))
time.sleep(600)
"""
with tempfile.TemporaryDirectory() as d:
    os.makedirs(d + "/s")
    b = Berth(d + "/s", agent=False).start()
    ecs = b.client(strict=False)
    a = Agent(b, d + "/h", join_token(b)).start()
    try:
        a.wait_registered(ecs)
        iam = b.client("iam")
        arn = iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        iam.put_role_policy(RoleName="r", PolicyName="p", PolicyDocument=json.dumps(POL))
        out = d + "/creds.json"
        td = ecs.register_task_definition(family="b", taskRoleArn=arn, containerDefinitions=[{"name": "app", "image": "p", "memory": 64, "command": [sys.executable, "-c", HOLD, out], "environment": [{"name": "AWS_DEFAULT_REGION", "value": "us-east-1"}]}])["taskDefinition"]["taskDefinitionArn"]
        t = ecs.run_task(taskDefinition=td)["tasks"][0]["taskArn"]
        wait_for(lambda: os.path.exists(out) and os.path.getsize(out) > 0, timeout=60)
        ak, sk, tok = json.load(open(out))
        sess = b.client(access_key=ak, secret_key=sk, aws_session_token=tok, strict=False)
        root = ecs
        for c in (root, sess):
            for _ in range(20): c.list_clusters()
        times = {"root": [], "session": []}
        for i in range(600):
            for name, c in (("root", root), ("session", sess)):
                t0 = time.perf_counter(); c.list_clusters(); times[name].append(time.perf_counter() - t0)
        mr, ms = statistics.median(times["root"]), statistics.median(times["session"])
        print(f"ListClusters median: root {mr*1000:.2f} ms, task-role session {ms*1000:.2f} ms, ratio {ms/mr:.2f}x (600 interleaved calls each)")
        ecs.stop_task(task=t)
    finally:
        a.stop(); b.stop()
