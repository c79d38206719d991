#!/usr/bin/env python3
"""What resource-level IAM costs a request (issue 14). Prints medians and ratios, same run.

Starts `berth up --no-agent` (BERTH_BIN, temporary dir, free port; stopped at the end), makes
one user whose policy names one secret by its name pattern and one parameter by a tag
condition, and times, interleaved round by round so that load on the machine hits all alike:
- root GetSecretValue / GetParameter (the baseline: no policy is read);
- the user's GetSecretValue by name (the store resolves the name to the secret's ARN);
- the user's GetParameter under an `aws:ResourceTag/team` condition (one more read for tags);
- the user's ListClusters (on `*`, no resource to resolve).

Usage: /work/main/.venv/bin/python bench/iam_resources_bench.py [--rounds 300] [--star]
(`--star`: every policy on `*`, to compare with a build that predates resource-level IAM.)
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
os.environ.setdefault("BERTH_BIN", os.path.join(ROOT, "target", "debug", "berth"))

from conftest import Berth  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--star", action="store_true",
                    help="policies on Resource * with no condition (what a build without "
                         "resource-level IAM can evaluate: the baseline across builds)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        b = Berth(d, agent=False).start()
        try:
            run(b, args.rounds, args.star)
        finally:
            b.stop()


def run(b, rounds, star):
    iam, sm, ssm = b.client("iam"), b.client("secretsmanager"), b.client("ssm")
    sm.create_secret(Name="bench-secret", SecretString="x")
    ssm.put_parameter(Name="bench-param", Value="v", Type="String",
                      Tags=[{"Key": "team", "Value": "web"}])
    iam.create_user(UserName="bench")
    iam.put_user_policy(UserName="bench", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": "arn:aws:secretsmanager:*:*:secret:bench-secret-??????"},
            {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*",
             "Condition": {"StringEquals": {"aws:ResourceTag/team": "web"}}},
            {"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}]}
        if not star else {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "ssm:GetParameter",
                                           "ecs:ListClusters"], "Resource": "*"}]}))
    key = iam.create_access_key(UserName="bench")["AccessKey"]
    user = {s: b.client(s, access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"],
                        strict=False) for s in ("secretsmanager", "ssm", "ecs")}
    root_ecs = b.client("ecs", strict=False)
    calls = {
        "root GetSecretValue": lambda: sm.get_secret_value(SecretId="bench-secret"),
        "user GetSecretValue": lambda: user["secretsmanager"].get_secret_value(
            SecretId="bench-secret"),
        "root GetParameter": lambda: ssm.get_parameter(Name="bench-param"),
        "user GetParameter (tag condition)": lambda: user["ssm"].get_parameter(
            Name="bench-param"),
        "root ListClusters": lambda: root_ecs.list_clusters(),
        "user ListClusters": lambda: user["ecs"].list_clusters(),
    }
    times = {k: [] for k in calls}
    for f in calls.values():  # warm connections
        f()
    for _ in range(rounds):
        for k, f in calls.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    with open("/proc/loadavg") as f:
        print(f"rounds {rounds}, load {' '.join(f.read().split()[:3])}")
    for k, v in med.items():
        print(f"{k:36s} median {v:6.2f} ms")
    for what, base in [("user GetSecretValue", "root GetSecretValue"),
                       ("user GetParameter (tag condition)", "root GetParameter"),
                       ("user ListClusters", "root ListClusters")]:
        print(f"{what} / {base}: {med[what] / med[base]:.2f}x")


if __name__ == "__main__":
    main()
