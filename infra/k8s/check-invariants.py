"""What the schema and the scanners cannot see in the rendered overlays, checked by check.sh:
the Postgres connection budget, SwiftChat's own pods running as a high uid, and the probes.
Usage: check-invariants.py DEV_RENDER PROD_RENDER PROVISION_SCRIPT. Prints what is wrong."""
import re
import sys

import yaml

OWN = {"auth", "users", "messages", "socket-handler", "notifications", "web"}
RESERVED = 3 + 5  # superuser_reserved_connections, and room for an operator's psql


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def name_of(doc):
    return doc["metadata"]["name"]


def env_value(container, key):
    return next((e.get("value") for e in container.get("env", []) if e["name"] == key), None)


def check(docs, limits, problems, label):
    hpas = {d["spec"]["scaleTargetRef"]["name"]: d for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    total = 0
    for d in (d for d in docs if d["kind"] == "Deployment"):
        name, pod = name_of(d), d["spec"]["template"]["spec"]
        container = pod["containers"][0]
        if name in OWN and pod["securityContext"].get("runAsUser", 0) < 10000:
            problems.append(f"{label}: {name} does not run as a uid >= 10000")
        probes = {k: container.get(k, {}).get("httpGet", {}).get("path") for k in ("startupProbe", "livenessProbe", "readinessProbe")}
        ready = "/healthz" if name == "web" else "/readyz"
        if probes != {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": ready}:
            problems.append(f"{label}: {name} probes {probes}")
        stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        sleep = int(stop[-1]) if stop[:1] == ["/bin/sleep"] else 0
        if sleep == 0 or pod.get("terminationGracePeriodSeconds", 30) < sleep + 10:
            problems.append(f"{label}: {name} needs a preStop sleep and a grace period 10 s longer")
        pool = env_value(container, "DATABASE_POOL_SIZE")
        if pool is None:
            continue
        if name not in hpas:
            problems.append(f"{label}: {name} has a pool but no HPA to bound its replicas")
            continue
        surge = int(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"])
        share = int(pool) * (hpas[name]["spec"]["maxReplicas"] + surge)
        total += share
        schema = env_value(container, "DATABASE_SCHEMA")
        if limits.get(schema) != share:
            problems.append(f"{label}: {name} may open {share} connections, its role's limit is {limits.get(schema)}")
    return total


def main(dev_path, prod_path, provision_path):
    with open(provision_path) as f:
        limits = {m[0]: int(m[1]) for m in re.findall(r"provision (\w+) \"\$\w+\" (\d+)", f.read())}
    problems = []
    dev = load(dev_path)
    total = check(dev, limits, problems, "dev")
    check(load(prod_path), limits, problems, "prod")
    postgres = next(d for d in dev if d["kind"] == "StatefulSet" and name_of(d) == "postgres")
    args = postgres["spec"]["template"]["spec"]["containers"][0]["args"]
    maximum = int(next(a.split("=", 1)[1] for a in args if a.startswith("max_connections=")))
    if total + RESERVED > maximum:
        problems.append(f"dev: the services may open {total} + {RESERVED} reserved connections, max_connections is {maximum}")
    for p in problems:
        print(p)
    print(f"Postgres budget {total} + {RESERVED} of max_connections {maximum}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
