# Run by the pod harness fixture test as the container's command: reports, as one JSON line,
# what the process sees (identity, environment, mounted files, which mounts are writable).
import json
import os
import socket
import sys


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        return f"error: {type(e).__name__}"


def writable(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return True
    except OSError:
        return False


def status(field):
    for line in read("/proc/self/status").splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].split()
    return None


print(json.dumps({
    "argv": sys.argv[1:],
    "executable": sys.executable,
    "uid": os.getuid(),
    "gid": os.getgid(),
    "groups": sorted(os.getgroups()),
    "cwd": os.getcwd(),
    "hostname": socket.gethostname(),
    "env": {k: os.environ.get(k) for k in ["MESSAGE", "POD_IP", "CFG_app.yaml", "HOME", "MAYBE"]},
    "app": read("/config/conf/app.yaml"),
    "signing_key": read("/etc/app/signing.key"),
    "password": read("/secrets/password"),
    "token": read("/var/run/secrets/kubernetes.io/serviceaccount/token"),
    "namespace": read("/var/run/secrets/kubernetes.io/serviceaccount/namespace"),
    "hosts": read("/etc/hosts"),
    "writable": {
        "config": writable("/config/new"),
        "secrets": writable("/secrets/new"),
        "data": writable("/data/new"),
        "scratch": writable("/data/tmp/new"),
    },
    "cap_bounding": status("CapBnd"),
    "no_new_privs": status("NoNewPrivs"),
}), flush=True)
