"""Process-driver tasks with the defaults (issue 14): their commands run as an unprivileged user
when berth runs as root, and they still receive their secrets (an SSM SecureString and a
Secrets Manager value) in plain text in their environment, while the store file (read after
the server has stopped) holds neither value. With `--master-key-file` the operator's key seals
them, and the server refuses a key file that holds no key."""
import os
import subprocess
import tempfile

import pytest

from conftest import BERTH_BIN, Berth, execution_role, register, run_one, uniq, wait_for, wait_task

SSM_VALUE = "ssm-plain-c0ffee-4a1d"
ASM_VALUE = "asm-plain-f00d-77e2"


def start(d, *args):
    b = Berth(d, args=["--driver", "process", "--agent-timeout", "3", *args])
    b.env.pop("BERTH_TASK_USER", None)  # the default, not the suite's root
    return b.start()


def secret_task(b):
    ecs, ssm, sm = b.client(), b.client("ssm"), b.client("secretsmanager")
    param = f"/{uniq('iso')}/password"
    ssm.put_parameter(Name=param, Value=SSM_VALUE, Type="SecureString")
    arn = sm.create_secret(Name=uniq("iso-api"), SecretString=ASM_VALUE)["ARN"]
    td = register(ecs, uniq("iso"), [{
        "name": "app", "image": "busybox", "memory": 64, "essential": True,
        "entryPoint": ["sh", "-c"],
        "command": ['echo "uid=$(id -u) ssm=$SSM asm=$ASM"'],
        "secrets": [{"name": "SSM", "valueFrom": param}, {"name": "ASM", "valueFrom": arn}],
    }], executionRoleArn=execution_role(b.client("iam")))["taskDefinition"]["taskDefinitionArn"]
    task = run_one(ecs, td)["taskArn"]
    wait_task(ecs, task, "STOPPED", timeout=30)
    return wait_for(lambda: b.cli("logs", task, "--cluster", "default").stdout.strip() or None, 20,
                    interval=0.2, what="the task's output")


def store_bytes(d):
    with open(os.path.join(d, "berth.redb"), "rb") as f:
        return f.read()


def test_a_task_runs_unprivileged_and_gets_its_secrets_which_the_store_never_holds(fresh_dir):
    b = start(fresh_dir)
    try:
        out = secret_task(b)
    finally:
        b.stop()
        b.log.close()
    want_uid = "65534" if os.geteuid() == 0 else str(os.geteuid())
    assert f"uid={want_uid} ssm={SSM_VALUE} asm={ASM_VALUE}" in out, out
    blob = store_bytes(fresh_dir)
    assert SSM_VALUE.encode() not in blob and ASM_VALUE.encode() not in blob


def test_the_master_key_file_seals_and_a_bad_one_is_refused(fresh_dir):
    key_dir = tempfile.mkdtemp(dir=fresh_dir)
    key = os.path.join(key_dir, "master.key")
    with open(key, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(key, 0o600)
    data = os.path.join(fresh_dir, "data")
    os.mkdir(data)
    b = start(data, "--master-key-file", key)
    try:
        out = secret_task(b)
    finally:
        b.stop()
        b.log.close()
    assert f"ssm={SSM_VALUE} asm={ASM_VALUE}" in out, out
    assert not os.path.exists(os.path.join(data, "secrets.key")), "the given key is used, none made"
    blob = store_bytes(data)
    assert SSM_VALUE.encode() not in blob and ASM_VALUE.encode() not in blob

    with open(key, "w") as f:
        f.write("not a key")
    p = subprocess.run([BERTH_BIN, "up", "--data-dir", data, "--no-agent",
                        "--listen", "127.0.0.1:0", "--master-key-file", key],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "not a 256-bit key" in p.stderr, p.stderr
