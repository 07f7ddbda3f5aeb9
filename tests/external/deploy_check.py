"""Checks on the deployment files that no engine is needed for.

Usage: deploy_check.py RENDERED_DEV.yaml RENDERED_PROD.yaml COMPOSE.yaml SERVE_TARGETS

1. The NetworkPolicy edges between kefu's own pods equal the peers each
   Deployment is configured to call (its *_ADDR settings), in both
   directions (egress at the caller, ingress at the callee), and in dev each
   service that has a database or Redis URL may reach exactly those.
2. Every compose service that runs `kefu serve X` names a real serve target.
Prints one line per check and exits non-zero on the first failure.
"""
import sys
import urllib.parse

import yaml

failures = 0


def check(ok, what):
    global failures
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures += 1


def names(selector):
    """Pod names a selector picks (by app.kubernetes.io/name)."""
    if not selector:
        return {"*"}
    out = set()
    ml = selector.get("matchLabels", {})
    if "app.kubernetes.io/name" in ml:
        out.add(ml["app.kubernetes.io/name"])
    for e in selector.get("matchExpressions", []):
        if e.get("key") == "app.kubernetes.io/name" and e.get("operator") == "In":
            out.update(e["values"])
    if not out and not ml and not selector.get("matchExpressions"):
        return {"*"}
    return out or {"?"}


def policy_edges(docs):
    egress, ingress = set(), set()
    for d in docs:
        if d.get("kind") != "NetworkPolicy":
            continue
        spec = d["spec"]
        targets = names(spec.get("podSelector"))
        for rule in spec.get("egress", []):
            ports = {p.get("port") for p in rule.get("ports", [])}
            for peer in rule.get("to", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    for dst in names(peer["podSelector"]):
                        for src in targets:
                            for port in ports:
                                egress.add((src, dst, port))
        for rule in spec.get("ingress", []):
            ports = {p.get("port") for p in rule.get("ports", [])}
            for peer in rule.get("from", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    for src in names(peer["podSelector"]):
                        for dst in targets:
                            for port in ports:
                                ingress.add((src, dst, port))
    return egress, ingress


def configured_edges(docs, secret_urls):
    """(caller, callee, port) from each workload's env."""
    edges = set()
    for d in docs:
        if d.get("kind") not in ("Deployment", "Job", "StatefulSet"):
            continue
        tmpl = d["spec"]["template"]
        src = tmpl["metadata"]["labels"].get("app.kubernetes.io/name")
        for c in tmpl["spec"]["containers"]:
            for e in c.get("env", []):
                value = e.get("value")
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    value = secret_urls.get((ref["name"], ref["key"]))
                if not value or "://" not in value:
                    continue
                if not (e["name"].endswith("_ADDR") or e["name"].endswith("DATABASE_URL") or e["name"] == "KEFU_REDIS_URL"):
                    continue
                u = urllib.parse.urlparse(value)
                port = u.port or {"postgres": 5432, "redis": 6379}.get(u.scheme, 80)
                edges.add((src, u.hostname, port))
    return edges


def secrets_of(docs):
    import base64
    out = {}
    for d in docs:
        if d.get("kind") == "Secret":
            for k, v in (d.get("data") or {}).items():
                out[(d["metadata"]["name"], k)] = base64.b64decode(v).decode()
            for k, v in (d.get("stringData") or {}).items():
                out[(d["metadata"]["name"], k)] = v
    return out


def services(docs):
    return {d["metadata"]["name"]: d["spec"]["selector"].get("app.kubernetes.io/name") for d in docs if d.get("kind") == "Service"}


def check_overlay(path, name):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    egress, ingress = policy_edges(docs)
    svc = services(docs)
    wanted = set()
    for src, host, port in configured_edges(docs, secrets_of(docs)):
        if host in svc:
            # The Service's port maps to the pod's container port.
            wanted.add((src, svc[host], port))
    kefu_pods = {p for (_, p, _) in wanted} | {s for (s, _, _) in wanted}
    for e in sorted(wanted):
        check(e in egress, f"{name}: egress {e[0]} -> {e[1]}:{e[2]} allowed (configured peer)")
        check(e in ingress or e[1] in ("*",), f"{name}: ingress {e[0]} -> {e[1]}:{e[2]} allowed (configured peer)")
    extra_e = {e for e in egress if e[0] in kefu_pods and e[1] in kefu_pods and e not in wanted}
    extra_i = {e for e in ingress if e[0] in kefu_pods and e[1] in kefu_pods and e not in wanted}
    check(not extra_e, f"{name}: no egress edge beyond the configured peers {sorted(extra_e)}")
    check(not extra_i, f"{name}: no ingress edge beyond the configured peers {sorted(extra_i)}")
    check(any(d.get("kind") == "NetworkPolicy" and d["metadata"]["name"] == "default-deny" for d in docs), f"{name}: default deny present")


def main():
    dev, prod, compose, targets = sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4].split(","))
    check_overlay(dev, "dev")
    # prod has external datastores (ipBlock); the kefu-to-kefu edges still must match.
    check_overlay(prod, "prod")
    c = yaml.safe_load(open(compose))
    for name, s in c["services"].items():
        cmd = s.get("command") or []
        if cmd[:1] == ["serve"]:
            check(len(cmd) > 1 and cmd[1] in targets, f"compose service {name} runs a real serve target ({cmd})")
    if failures:
        sys.exit(1)
    print("deployment checks: all passed")


if __name__ == "__main__":
    main()
