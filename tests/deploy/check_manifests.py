#!/usr/bin/env python3
"""Checks deploy/ against the binaries it runs, without a cluster.

  check_manifests.py --repo DIR --room-bin PATH --gateway-bin PATH --node-bin PATH
                     [--kubectl PATH] [--require-kustomize]

Every YAML file under deploy/k8s must load. Each kustomization's
resources, components and patches must exist; its secret sources must lie
in a git-ignored secrets/ directory (the dev overlay's make-secrets.sh must
write each of them; the others must be documented in deploy/README.md).

No file committed under deploy/ (git ls-files) lies in a secrets/
directory or holds a PEM private key or a signed JWT; a committed Secret
holds only placeholders, a committed ConfigMap no password URL.

Then, on the base's raw resources, and on each overlay as `kubectl
kustomize` renders it (secrets made by the dev script, placeholders for
production's; kubectl is the first of PATH's and the one
scripts/install-deps.sh installs whose kustomize is v4 or later; with
--require-kustomize, finding none is a problem):
  - every --flag in a roomsync container's args, and every ROOMSYNC_* env
    variable (the binaries silently ignore unknown ones), is a flag in
    that binary's --help; $(VAR) references name variables defined before;
  - probes, Prometheus annotations and Service targetPorts name declared
    containerPorts, the ports the binary is told to listen on, and paths
    the binary serves (gateway: /healthz /readyz /metrics, or /metrics
    /healthz on its --metrics port and no /metrics on --http; room metrics
    listener: /metrics /healthz /readyz; gRPC probes only on the room's
    plaintext gRPC port);
  - selectors of workloads, Services, PodDisruptionBudgets and
    ServiceMonitors match; HPAs and PDBs target existing workloads; an
    HPA's target has CPU requests and no replicas field;
  - the gateways' ROOMSYNC_ROOM_SERVICE lists only addresses that pods of
    the room StatefulSet advertise (byte for byte: a gateway matches lease
    owners to its nodes by string), at least two of them, no duplicates;
  - files the binaries are told to read lie in mounted Secrets (rendered:
    and the Secret has that key); secretKeyRefs name existing keys;
  - every container (init containers too) has CPU and memory requests
    and a memory limit; every serving container a readiness and a
    liveness probe;
  - no secret in plaintext: an env variable with a secret-looking name
    holds a file path or comes from a Secret, no env value, command or
    argument carries a URL with a password or a token; rendered: every
    Secret comes from the overlay's secretGenerator (NAME-HASH, from its
    git-ignored secrets/ files) unless its values are placeholders.

And deploy/Dockerfile: the build stage installs scripts/install-deps.sh's
build packages, the runtime stage installs the Debian package of every
shared library the binaries need (readelf + dpkg -S), runs as the uid the
manifests use, and EXPOSEs the ports they use.

Exits 1 with a list of problems, 0 when there are none.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import yaml
except ImportError:
    sys.exit("check_manifests: the python3 yaml module is missing "
             "(Debian: python3-yaml; scripts/install-deps.sh installs it)")

ROOMSYNC_BINARIES = ("roomsync", "roomsync-room", "roomsync-gateway")
# What each binary serves over HTTP (gateway/routes.cc; the room's metrics
# listener is prometheus-cpp's Exposer with its one /metrics path).
GATEWAY_HTTP_PATHS = {"/healthz", "/readyz", "/metrics"}
# With --metrics, the gateway's public port no longer serves /metrics.
GATEWAY_HTTP_PATHS_WITH_METRICS_PORT = {"/healthz", "/readyz"}
GATEWAY_METRICS_PATHS = {"/metrics", "/healthz"}
ROOM_METRICS_PATHS = {"/metrics", "/healthz", "/readyz"}
# scripts/install-deps.sh packages the image's build stage does not need.
NOT_FOR_IMAGE_BUILD = {
    "ccache", "clang", "libclang-rt-14-dev", "postgresql-15", "postgresql-client-15",
    "curl", "nodejs", "npm", "python3", "python3-yaml",
    "chromium",  # the browser tests of clients/js only
    "sqlite3",  # the roomsyncctl e2e test only
    "nginx-light",  # the history_cache e2e test only
}
# Always present in debian:12-slim (Essential or required by apt).
ESSENTIAL_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


class Checker:
    def __init__(self):
        self.problems = []
        self.checks = 0

    def check(self, ok, where, message):
        self.checks += 1
        if not ok:
            self.problems.append(f"{where}: {message}")
        return ok


# ------------------------------------------------------------ binaries

def flags_of(binary):
    """The flag names in `binary --help` (absl prints `  --name (...)`)."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    text = out.stdout + out.stderr
    flags = set(re.findall(r"^\s+--([a-z0-9_]+) \(", text, re.M))
    if len(flags) < 5:
        sys.exit(f"check_manifests: could not read the flags of {binary} --help:\n{text}")
    return flags


def needed_libraries(binary):
    """(soname, resolved path) of each DT_NEEDED library of `binary`."""
    readelf = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf.stdout)
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True)
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd.stdout, re.M))
    return [(soname, paths.get(soname)) for soname in needed]


def packages_of(paths):
    """{path: Debian package} for the paths dpkg knows (trying the real
    path and both sides of the /lib -> /usr/lib merge), in one dpkg run."""
    variants = {}
    for path in paths:
        for candidate in (path, os.path.realpath(path)):
            for v in (candidate, re.sub(r"^/usr/lib/", "/lib/", candidate),
                      re.sub(r"^/lib/", "/usr/lib/", candidate)):
                variants.setdefault(v, set()).add(path)
    out = subprocess.run(["dpkg", "-S", *sorted(variants)], capture_output=True, text=True)
    found = {}
    for line in out.stdout.splitlines():
        package, _, owned = line.partition(": ")
        for path in variants.get(owned.strip(), ()):
            found[path] = package.split(":")[0].strip()
    return found


# ------------------------------------------------------------ YAML

def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def kustomize_sources(kustomization):
    """(kind, path) of the files a kustomization refers to."""
    for r in kustomization.get("resources", []) or []:
        yield "resource", r
    for c in kustomization.get("components", []) or []:
        yield "component", c
    for p in kustomization.get("patches", []) or []:
        if isinstance(p, dict) and "path" in p:
            yield "patch", p["path"]
    for p in kustomization.get("patchesStrategicMerge", []) or []:
        yield "patch", p
    for gen in (kustomization.get("secretGenerator", []) or []) + \
            (kustomization.get("configMapGenerator", []) or []):
        for f in gen.get("files", []) or []:
            yield "generator", f.split("=", 1)[-1]
        for f in gen.get("envs", []) or []:
            yield "generator", f


def check_kustomizations(c, k8s_dir, readme_text, dev_generated):
    for root, _dirs, files in os.walk(k8s_dir):
        for name in files:
            if not name.endswith((".yaml", ".yml")):
                continue
            path = os.path.join(root, name)
            try:
                load_all(path)
                c.check(True, path, "")
            except yaml.YAMLError as e:
                c.check(False, path, f"does not load: {e}")
        if "kustomization.yaml" not in files:
            continue
        kpath = os.path.join(root, "kustomization.yaml")
        kustomization = load_all(kpath)[0]
        rel = os.path.relpath(root, k8s_dir)
        for kind, source in kustomize_sources(kustomization):
            target = os.path.normpath(os.path.join(root, source))
            if kind != "generator":
                c.check(os.path.exists(target), kpath, f"{kind} {source} does not exist")
                if kind == "component" and os.path.isdir(target):
                    comp = load_all(os.path.join(target, "kustomization.yaml"))[0]
                    c.check(comp.get("kind") == "Component", kpath,
                            f"{source} is not a kustomize Component")
                continue
            # Secret material: under secrets/, git-ignored, never committed.
            c.check(source.startswith("secrets/"), kpath,
                    f"generator source {source} is not under secrets/")
            ignore = os.path.join(root, ".gitignore")
            ignored = os.path.exists(ignore) and "/secrets/" in open(ignore).read().split()
            c.check(ignored, kpath, "secrets/ is not in the overlay's .gitignore")
            if rel == os.path.join("overlays", "dev"):
                c.check(source in dev_generated, kpath,
                        f"{source} is not written by overlays/dev/make-secrets.sh")
            else:
                c.check(os.path.basename(source) in readme_text, kpath,
                        f"{source} is not documented in deploy/README.md")


# ------------------------------------------------------------ workloads

def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def pod_labels(workload):
    return workload["spec"]["template"].get("metadata", {}).get("labels", {}) or {}


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def binary_of(container):
    command = container.get("command") or []
    if command and os.path.basename(command[0]) in ROOMSYNC_BINARIES:
        return os.path.basename(command[0])
    return None


def flag_port(address):
    m = re.search(r":(\d+)$", address or "")
    return int(m.group(1)) if m else None


def expand(value, env):
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: str(env.get(m.group(1), m.group(0))), value)


def container_flags(container):
    """{flag: value} from args (--a=b, --a b, --bool) then ROOMSYNC_* env
    (the command line wins, as in base/env_flags.cc)."""
    values = {}
    for e in container.get("env", []) or []:
        if e["name"].startswith("ROOMSYNC_") and "value" in e:
            values[e["name"][len("ROOMSYNC_"):].lower()] = str(e["value"])
    args = container.get("args", []) or []
    i = 0
    while i < len(args):
        a = str(args[i])
        if a.startswith("--"):
            name, eq, value = a[2:].partition("=")
            if not eq and i + 1 < len(args) and not str(args[i + 1]).startswith("--"):
                value = str(args[i + 1])
                i += 1
            elif not eq:
                value = "true"
            values[name] = value
        i += 1
    return values


def check_container_flags(c, where, container, flags):
    args = [str(a) for a in container.get("args", []) or []]
    previous_takes_value = False
    for a in args:
        if a.startswith("--"):
            name, eq, _ = a[2:].partition("=")
            known = name in flags or (name.startswith("no") and name[2:] in flags)
            c.check(known, where, f"argument {a}: no flag --{name} in --help")
            previous_takes_value = not eq
        else:
            c.check(previous_takes_value, where, f"argument {a!r} is not a --flag or a flag's value")
            previous_takes_value = False
    for e in container.get("env", []) or []:
        name = e["name"]
        if name.startswith("ROOMSYNC_"):
            flag = name[len("ROOMSYNC_"):].lower()
            c.check(flag in flags, where, f"env {name}: no flag --{flag} in --help (ignored by the binary)")


def check_references(c, where, container):
    """$(VAR) in command/args may use any env variable; in env values only
    variables defined before (Kubernetes leaves the rest as they are)."""
    defined = []
    for e in container.get("env", []) or []:
        for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", str(e.get("value", ""))):
            c.check(ref in defined, where,
                    f"env {e['name']} uses $({ref}), which is not defined before it")
        defined.append(e["name"])
    for a in (container.get("command") or []) + (container.get("args") or []):
        for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", str(a)):
            c.check(ref in defined, where, f"{a} uses $({ref}), which is not an env variable")


def container_port(container, port):
    """The containerPort number a probe/annotation port names, or None."""
    for p in container.get("ports", []) or []:
        if port == p.get("name") or (isinstance(port, int) and port == p.get("containerPort")) or \
                (isinstance(port, str) and port.isdigit() and int(port) == p.get("containerPort")):
            return p.get("containerPort")
    return None


def http_paths_on(binary, values, port):
    """Paths `binary` serves over HTTP on `port`, or None if none."""
    if binary == "roomsync-gateway" and values.get("metrics"):
        if flag_port(values["metrics"]) == port:
            return GATEWAY_METRICS_PATHS
        if flag_port(values.get("http", "127.0.0.1:8080")) == port:
            return GATEWAY_HTTP_PATHS_WITH_METRICS_PORT
    if binary in ("roomsync-gateway", "roomsync"):
        if flag_port(values.get("http", "127.0.0.1:8080")) == port:
            return GATEWAY_HTTP_PATHS
    if binary in ("roomsync-room", "roomsync"):
        if flag_port(values.get("metrics", "")) == port:
            return ROOM_METRICS_PATHS
    return None


def listens_on(binary, values, port):
    if http_paths_on(binary, values, port):
        return True
    if binary == "roomsync-room":
        return flag_port(values.get("grpc", "127.0.0.1:7070")) == port
    if binary == "roomsync":
        return flag_port(values.get("grpc", "")) == port
    return False


def grpc_tls(values):
    return bool(values.get("grpc_tls_cert"))


def check_probes(c, where, container, binary, values):
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container.get(kind)
        if not probe:
            if kind != "startupProbe":
                c.check(False, where, f"no {kind}")
            continue
        handler = next((h for h in ("httpGet", "tcpSocket", "grpc", "exec") if h in probe), None)
        c.check(handler is not None, where, f"{kind} has no handler")
        if handler in (None, "exec"):
            continue
        port = container_port(container, probe[handler].get("port"))
        c.check(port is not None, where,
                f"{kind} port {probe[handler].get('port')!r} is not a declared containerPort")
        if not binary or port is None:
            continue
        c.check(listens_on(binary, values, port), where,
                f"{kind}: {binary} does not listen on port {port} (check --http/--grpc/--metrics)")
        if handler == "httpGet":
            paths = http_paths_on(binary, values, port)
            path = probe["httpGet"].get("path", "/")
            c.check(paths is not None and path in paths, where,
                    f"{kind}: {binary} serves no {path} over HTTP on port {port}")
            if binary in ("roomsync", "roomsync-gateway") and values.get("tls_cert_file"):
                c.check(probe["httpGet"].get("scheme") == "HTTPS", where,
                        f"{kind}: the HTTP port has TLS (--tls_cert_file): scheme must be HTTPS")
        if handler == "grpc":
            c.check(binary == "roomsync-room" and flag_port(values.get("grpc", "127.0.0.1:7070")) == port,
                    where, f"{kind}: gRPC health is served on roomsync-room's --grpc port only")
            c.check(not grpc_tls(values), where,
                    f"{kind}: Kubernetes gRPC probes cannot speak TLS, and --grpc_tls_cert is set")


def check_prometheus(c, where, workload):
    annotations = workload["spec"]["template"].get("metadata", {}).get("annotations", {}) or {}
    if annotations.get("prometheus.io/scrape") != "true":
        return
    port = annotations.get("prometheus.io/port")
    path = annotations.get("prometheus.io/path", "/metrics")
    served = False
    for container in pod_spec(workload)["containers"]:
        number = container_port(container, int(port) if port and port.isdigit() else port)
        if number is None:
            continue
        binary = binary_of(container)
        paths = http_paths_on(binary, container_flags(container), number) if binary else None
        served = served or (paths is not None and path in paths)
    c.check(served, where, f"prometheus.io/port {port} path {path}: no container serves it")


def mounted_file(c, where, spec, container, path, secrets):
    """A file path must lie in a volumeMount of a Secret volume; with the
    rendered Secrets known, the Secret must have that key."""
    volumes = {v["name"]: v for v in spec.get("volumes", []) or []}
    for m in container.get("volumeMounts", []) or []:
        prefix = m["mountPath"].rstrip("/") + "/"
        if not path.startswith(prefix):
            continue
        volume = volumes.get(m["name"])
        if not c.check(volume is not None, where, f"volumeMount {m['name']} has no volume"):
            return
        if "secret" in volume and secrets is not None and not m.get("subPath"):
            secret = secrets.get(volume["secret"]["secretName"])
            key = path[len(prefix):]
            if c.check(secret is not None, where, f"Secret {volume['secret']['secretName']} does not exist"):
                c.check(key in secret, where, f"{path}: Secret {volume['secret']['secretName']} has no key {key}")
        return
    c.check(False, where, f"{path} is in no volumeMount")


# ------------------------------------------------------------ secrets

SENSITIVE_NAME = re.compile(r"(?i)(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE|API_?KEY|CREDENTIAL)")
URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")
PLACEHOLDER = re.compile(r"(?i)^\s*(|placeholder|changeme|change-me|replace[-_ ]?me|example|dummy|todo|x+|"
                         r"<[^>]*>|\$\{[^}]*\}|\$\([^)]*\))\s*$")
PRIVATE_KEY_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----")
JWT_LIKE = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")


def is_placeholder(value):
    text = str(value)
    return PLACEHOLDER.match(text) is not None or re.search(r"(?i)placeholder|replace[-_ ]?me", text) is not None


def check_plaintext_values(c, where, container):
    """No secret in a literal: env values with a secret-looking name must be
    file paths or references, and no URL in env, command or args carries a
    password (use valueFrom.secretKeyRef)."""
    for e in container.get("env", []) or []:
        if "value" not in e:
            continue
        value = str(e["value"])
        if SENSITIVE_NAME.search(e["name"]) and not e["name"].endswith("_FILE"):
            c.check(value.startswith("/") or is_placeholder(value), where,
                    f"env {e['name']} holds a literal value: take it from a Secret (valueFrom.secretKeyRef)")
        c.check(URL_WITH_PASSWORD.search(value) is None, where,
                f"env {e['name']}: a URL with a password in plaintext (use a secretKeyRef)")
    for a in (container.get("command") or []) + (container.get("args") or []):
        c.check(URL_WITH_PASSWORD.search(str(a)) is None and JWT_LIKE.search(str(a)) is None, where,
                "a password URL or a token in command/args")


def secret_values(secret):
    """(key, decoded text) of a Secret's data and stringData."""
    for key, value in (secret.get("data") or {}).items():
        try:
            text = base64.b64decode(str(value), validate=True).decode("utf-8", "replace")
        except (ValueError, TypeError):
            text = str(value)
        yield key, text
    for key, value in (secret.get("stringData") or {}).items():
        yield key, str(value)


def check_committed_secrets(c, repo):
    """Files committed under deploy/ (git's list; without git, every file
    outside the git-ignored secrets/ directories): none under a secrets/
    directory, no private key or token, no Secret with values that are not
    placeholders, no ConfigMap or other object with a password URL."""
    deploy = os.path.join(repo, "deploy")
    files = None
    if shutil.which("git"):
        out = subprocess.run(["git", "-C", repo, "ls-files", "-z", "--", "deploy"], capture_output=True, text=True)
        if out.returncode == 0:
            files = [f for f in out.stdout.split("\0") if f]
    tracked = files is not None
    if files is None:
        files = []
        for root, dirs, names in os.walk(deploy):
            dirs[:] = [d for d in dirs if d != "secrets"]
            files += [os.path.relpath(os.path.join(root, n), repo) for n in names]
    for rel in files:
        if tracked:
            c.check("/secrets/" not in f"/{rel}", rel, "committed inside a secrets/ directory (git rm --cached it)")
        path = os.path.join(repo, rel)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        c.check(PRIVATE_KEY_PEM.search(text) is None, rel, "holds a PEM private key")
        c.check(JWT_LIKE.search(text) is None, rel, "holds what looks like a signed JWT")
        if not rel.endswith((".yaml", ".yml")):
            continue
        try:
            docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
        except yaml.YAMLError:
            continue  # check_kustomizations reports it
        for d in docs:
            name = f"{rel}: {d.get('kind')}/{(d.get('metadata') or {}).get('name')}"
            if d.get("kind") == "Secret":
                for key, value in secret_values(d):
                    c.check(is_placeholder(value), name,
                            f"key {key} is committed in plaintext (base64 is not encryption): generate it "
                            f"from a git-ignored secrets/ file with secretGenerator")
            if d.get("kind") == "ConfigMap":
                for key, value in (d.get("data") or {}).items():
                    c.check(URL_WITH_PASSWORD.search(str(value)) is None and PRIVATE_KEY_PEM.search(str(value)) is None,
                            name, f"key {key} holds a password URL or a private key")
    return len(files)


def check_rendered_secrets(c, label, docs, generated):
    """Every rendered Secret comes from a secretGenerator of git-ignored
    files (kustomize names it NAME-HASH), unless all its values are
    placeholders."""
    for d in docs:
        if d.get("kind") != "Secret":
            continue
        name = d["metadata"]["name"]
        from_generator = any(re.fullmatch(rf"{re.escape(g)}-[a-z0-9]{{10}}", name) for g in generated)
        if from_generator:
            c.check(True, label, "")
            continue
        for key, value in secret_values(d):
            c.check(is_placeholder(value), f"{label}: Secret/{name}",
                    f"key {key} is not from a secretGenerator: a committed value in plaintext")


FILE_FLAGS = ("jwt_hs256_secret_file", "jwks_file", "upstream_token_file", "grpc_tls_cert", "grpc_tls_key",
              "grpc_tls_ca", "room_service_tls_ca", "room_service_tls_cert", "room_service_tls_key",
              "tls_cert_file", "tls_key_file")


def check_workloads(c, docs, flags_by_binary, label, secrets=None):
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    workloads = [d for k in WORKLOAD_KINDS for d in by_kind.get(k, [])]
    services = by_kind.get("Service", [])
    secret_keys = None
    if secrets is not None:
        secret_keys = {s["metadata"]["name"]: set((s.get("data") or {}) | (s.get("stringData") or {}))
                       for s in by_kind.get("Secret", [])}
    c.check(any(binary_of(ct) == "roomsync-gateway" for w in workloads for ct in pod_spec(w)["containers"]),
            label, "no roomsync-gateway workload")
    c.check(any(binary_of(ct) == "roomsync-room" for w in workloads for ct in pod_spec(w)["containers"]),
            label, "no roomsync-room workload")

    for w in workloads:
        name = f"{label}: {w['kind']}/{w['metadata']['name']}"
        spec = pod_spec(w)
        c.check(matches(w["spec"]["selector"].get("matchLabels"), pod_labels(w)), name,
                "selector.matchLabels do not match the pod template's labels")
        check_prometheus(c, name, w)
        for container in (spec.get("initContainers") or []) + spec["containers"]:
            where = f"{name} container {container['name']}"
            check_references(c, where, container)
            check_plaintext_values(c, where, container)
            resources = container.get("resources") or {}
            c.check((resources.get("requests") or {}).get("cpu") and (resources.get("requests") or {}).get("memory")
                    and (resources.get("limits") or {}).get("memory"), where,
                    "needs CPU and memory requests and a memory limit")
            if secret_keys is not None:
                for e in container.get("env", []) or []:
                    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                    if ref:
                        keys = secret_keys.get(ref["name"])
                        if c.check(keys is not None, where, f"env {e['name']}: Secret {ref['name']} does not exist"):
                            c.check(ref["key"] in keys, where, f"env {e['name']}: Secret {ref['name']} has no key {ref['key']}")
            binary = binary_of(container)
            if container in (spec.get("initContainers") or []):
                continue
            if binary is None:
                check_probes(c, where, container, None, {})
                continue
            check_container_flags(c, where, container, flags_by_binary[binary])
            values = container_flags(container)
            check_probes(c, where, container, binary, values)
            for p in container.get("ports", []) or []:
                c.check(listens_on(binary, values, p["containerPort"]), where,
                        f"containerPort {p['containerPort']}: {binary} is not told to listen on it")
            for flag in FILE_FLAGS:
                if values.get(flag):
                    mounted_file(c, where, spec, container, values[flag], secret_keys)
            c.check(values.get("auth", "jwt") == "jwt", where, "runs without authentication (--auth off)")
            if binary == "roomsync-room":
                c.check(w["kind"] == "StatefulSet", where, "room nodes run as a StatefulSet")

    # The gateways list exactly what the room nodes advertise.
    for room in [w for w in by_kind.get("StatefulSet", [])
                 if any(binary_of(ct) == "roomsync-room" for ct in pod_spec(w)["containers"])]:
        container = next(ct for ct in pod_spec(room)["containers"] if binary_of(ct) == "roomsync-room")
        values = container_flags(container)
        c.check(values.get("shard_leases") == "true", label, "room nodes run without --shard_leases")
        advertise = values.get("advertise") or values.get("grpc")
        replicas = room["spec"].get("replicas", 1)
        expected = [expand(advertise, {"POD_NAME": f"{room['metadata']['name']}-{i}"}) for i in range(replicas)]
        node_id = values.get("node_id", "")
        c.check("$(POD_NAME)" in node_id and "$(POD_NAME)" in advertise, label,
                "each room pod needs its own --node_id and --advertise (from $(POD_NAME))")
        for w in by_kind.get("Deployment", []):
            for ct in pod_spec(w)["containers"]:
                if binary_of(ct) != "roomsync-gateway":
                    continue
                where = f"{label}: Deployment/{w['metadata']['name']}"
                listed = container_flags(ct).get("room_service", "127.0.0.1:7070").split(",")
                for address in listed:
                    c.check(address in expected, where,
                            f"--room_service {address} is not an address one of the {replicas} room pods "
                            f"advertises: {expected}")
                c.check(len(set(listed)) == len(listed), where, f"--room_service {listed} has duplicates")
                c.check(len(listed) >= min(2, replicas), where,
                        f"--room_service {listed}: list at least two room nodes (a gateway reads the "
                        f"lease table from them)")
        headless = [s for s in services if s["metadata"]["name"] == room["spec"].get("serviceName")]
        if c.check(len(headless) == 1, label, f"StatefulSet serviceName {room['spec'].get('serviceName')} has no Service"):
            c.check(headless[0]["spec"].get("clusterIP") == "None", label, "the room Service is not headless")
            c.check(headless[0]["spec"].get("publishNotReadyAddresses") is True, label,
                    "the room Service must publish not-ready addresses (nodes take shards before they are ready)")

    for s in services:
        name = f"{label}: Service/{s['metadata']['name']}"
        selected = [w for w in workloads if matches(s["spec"].get("selector"), pod_labels(w))]
        if not c.check(selected, name, f"selector {s['spec'].get('selector')} matches no pod template"):
            continue
        for p in s["spec"].get("ports", []):
            target = p.get("targetPort", p["port"])
            c.check(all(any(container_port(ct, target) for ct in pod_spec(w)["containers"]) for w in selected),
                    name, f"targetPort {target!r} is not a containerPort of the selected pods")

    for kind in ("PodDisruptionBudget",):
        for p in by_kind.get(kind, []):
            name = f"{label}: {kind}/{p['metadata']['name']}"
            selector = p["spec"].get("selector", {}).get("matchLabels")
            c.check(any(matches(selector, pod_labels(w)) for w in workloads), name,
                    f"selector {selector} matches no workload's pods")
            c.check(("minAvailable" in p["spec"]) != ("maxUnavailable" in p["spec"]), name,
                    "needs exactly one of minAvailable and maxUnavailable")

    for h in by_kind.get("HorizontalPodAutoscaler", []):
        name = f"{label}: HorizontalPodAutoscaler/{h['metadata']['name']}"
        c.check(h.get("apiVersion") == "autoscaling/v2", name, "use autoscaling/v2")
        ref = h["spec"]["scaleTargetRef"]
        target = [w for w in workloads if w["kind"] == ref["kind"] and w["metadata"]["name"] == ref["name"]]
        if not c.check(target, name, f"scaleTargetRef {ref['kind']}/{ref['name']} does not exist"):
            continue
        c.check("replicas" not in target[0]["spec"], name,
                f"{ref['name']} sets replicas: every apply would undo the autoscaler's count")
        c.check(h["spec"].get("minReplicas", 1) >= 2, name, "minReplicas below 2")
        for ct in pod_spec(target[0])["containers"]:
            c.check(ct.get("resources", {}).get("requests", {}).get("cpu"), name,
                    f"container {ct['name']} has no CPU request (CPU utilization needs one)")

    for m in by_kind.get("ServiceMonitor", []):
        name = f"{label}: ServiceMonitor/{m['metadata']['name']}"
        selector = m["spec"]["selector"].get("matchLabels")
        selected = [s for s in services if matches(selector, s["metadata"].get("labels", {}))]
        if c.check(selected, name, f"selector {selector} matches no Service"):
            for e in m["spec"]["endpoints"]:
                c.check(all(any(p.get("name") == e.get("port") for p in s["spec"]["ports"]) for s in selected),
                        name, f"endpoint port {e.get('port')} is not a port of the selected Services")

    for d in docs:
        expected = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Service": "v1", "Namespace": "v1",
                    "Secret": "v1", "PodDisruptionBudget": "policy/v1",
                    "HorizontalPodAutoscaler": "autoscaling/v2",
                    "ServiceMonitor": "monitoring.coreos.com/v1"}.get(d.get("kind"))
        c.check(expected is not None and d.get("apiVersion") == expected, f"{label}: {d.get('kind')}",
                f"unexpected kind or apiVersion {d.get('apiVersion')}")


# ------------------------------------------------------------ dev secrets

def run_dev_secrets(c, overlay_dir):
    """Runs make-secrets.sh (in a copy) and checks what it wrote."""
    script = os.path.join(overlay_dir, "make-secrets.sh")
    out = subprocess.run(["bash", script], capture_output=True, text=True, timeout=60)
    if not c.check(out.returncode == 0, script, f"failed: {out.stderr}"):
        return set()
    secrets = os.path.join(overlay_dir, "secrets")
    written = {f"secrets/{f}" for f in os.listdir(secrets)}
    key = open(os.path.join(secrets, "hs256.secret"), "rb").read().rstrip(b"\r\n")
    c.check(len(key) >= 32, script, "the HS256 secret is shorter than 32 bytes")
    for token_file, scope in (("upstream.jwt", "read"), ("client.jwt", "read write")):
        token = open(os.path.join(secrets, token_file)).read().strip()
        head, claims, signature = token.split(".")
        expected = base64.urlsafe_b64encode(
            hmac.new(key, f"{head}.{claims}".encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
        c.check(hmac.compare_digest(signature, expected), script, f"{token_file} is not signed by hs256.secret")
        payload = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
        c.check(payload.get("rooms") == ["*"] and payload.get("scope") == scope and payload.get("sub")
                and payload.get("exp", 0) > time.time() + 3600, script,
                f"{token_file} claims {payload}: want sub, rooms [\"*\"], scope {scope!r}, exp ahead")
    env = {}
    for f in ("store.env", "postgres.env"):
        for line in open(os.path.join(secrets, f)).read().splitlines():
            k, _, v = line.partition("=")
            env[f"{f}:{k}"] = v
    url = env.get("store.env:url", "")
    password = env.get("postgres.env:password", "")
    c.check(bool(password) and url == f"postgresql://roomsync:{password}@roomsync-postgres:5432/roomsync",
            script, "store.env's url does not use postgres.env's password, the roomsync-postgres "
            "Service, port 5432 and database/user roomsync (postgres.yaml)")
    return written


# ------------------------------------------------------------ Dockerfile

def apt_packages(stage_text):
    packages = []
    for m in re.finditer(r"apt-get install([^&]*)", stage_text):
        block = m.group(1).replace("\\\n", " ")
        packages += [w for w in block.split() if not w.startswith("-")]
    return packages


def check_dockerfile(c, repo, binaries, workload_docs, check_libraries=True):
    path = os.path.join(repo, "deploy", "Dockerfile")
    text = open(path).read()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    c.check(len(stages) == 2, path, "want two stages (build, runtime)")
    if len(stages) != 2:
        return
    build, runtime = stages
    c.check(re.match(r"debian:12\S* AS build", build) is not None, path, "build stage: FROM debian:12... AS build")
    c.check(re.match(r"debian:12\S* AS runtime", runtime) is not None, path, "runtime stage: FROM debian:12...")

    deps_text = open(os.path.join(repo, "scripts", "install-deps.sh")).read()
    deps = set()
    block = re.search(r"^packages=\((.*?)^\)", deps_text, re.S | re.M)
    if c.check(block is not None, "scripts/install-deps.sh", "no packages=( ... ) list"):
        deps = set(re.sub(r"#.*", "", block.group(1)).split())
    deps |= set(re.findall(r"packages\+=\(([^)]*)\)", deps_text))
    build_packages = set(apt_packages(build))
    c.check(build_packages == deps - NOT_FOR_IMAGE_BUILD, path,
            f"build stage packages differ from scripts/install-deps.sh's: missing "
            f"{sorted(deps - NOT_FOR_IMAGE_BUILD - build_packages)}, extra {sorted(build_packages - deps)}")
    c.check("--target roomsync roomsync-room roomsync-gateway" in build, path,
            "the build stage builds the three binaries (and only them)")

    runtime_packages = set(apt_packages(runtime))
    # Only binaries built as the image builds them (GCC, which links
    # --as-needed on Debian, no sanitizers) need exactly what it installs.
    needed = [(binary, soname, resolved) for binary in (binaries if check_libraries else [])
              for soname, resolved in needed_libraries(binary)]
    owners = packages_of({resolved for _b, _s, resolved in needed if resolved})
    for binary, soname, resolved in needed:
        if not c.check(resolved is not None, binary, f"ldd does not resolve {soname}"):
            continue
        package = owners.get(resolved)
        if not c.check(package is not None, binary, f"no Debian package owns {resolved}"):
            continue
        c.check(package in runtime_packages or package in ESSENTIAL_PACKAGES, path,
                f"runtime stage lacks {package} ({soname}, needed by {os.path.basename(binary)})")
    for target in ROOMSYNC_BINARIES:
        c.check(re.search(rf"/out/{target}\b", build) is not None, path, f"{target} is not installed into /out")
    c.check("COPY --from=build /out/ /usr/local/bin/" in runtime, path, "binaries go to /usr/local/bin")

    user = re.search(r"^USER (\d+)(?::(\d+))?", runtime, re.M)
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.*)$", runtime, re.M) for p in line.split()}
    c.check(user is not None and user.group(1) != "0", path, "runtime stage needs a numeric non-root USER")
    for w in workload_docs:
        spec = pod_spec(w)
        if not any(binary_of(ct) for ct in spec["containers"]):
            continue
        security = spec.get("securityContext", {}) or {}
        if user:
            c.check(str(security.get("runAsUser")) == user.group(1), f"{w['kind']}/{w['metadata']['name']}",
                    f"runAsUser {security.get('runAsUser')} is not the image's USER {user.group(1)}")
        for ct in spec["containers"]:
            if binary_of(ct):
                for p in ct.get("ports", []) or []:
                    c.check(p["containerPort"] in exposed, path, f"port {p['containerPort']} is not EXPOSEd")
    secretish = re.findall(r"(?i)^(?:ENV|ARG)\s+\S*(SECRET|PASSWORD|TOKEN|KEY)\S*", text, re.M)
    c.check(not secretish, path, f"secrets in ENV/ARG: {secretish}")


# ------------------------------------------------------------ main

# Where scripts/install-deps.sh puts kubectl when none on PATH will do.
INSTALLED_KUBECTL = "/usr/local/lib/roomsync/kubectl/kubectl"


def kustomize_version(kubectl):
    """(major, version text) of `kubectl`'s kustomize, or None."""
    try:
        out = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    m = re.search(r"^Kustomize Version: v(\d+)\S*", out.stdout, re.M)
    return (int(m.group(1)), m.group(0)) if m else None


def find_kubectl(requested):
    """A kubectl whose kustomize can render components (v4+), or None, and
    what was tried."""
    candidates = [requested] if requested else [shutil.which("kubectl"), INSTALLED_KUBECTL]
    tried = []
    for k in candidates:
        if not k or not os.path.exists(k):
            continue
        version = kustomize_version(k)
        tried.append(f"{k}: {version[1] if version else 'no kustomize version'}")
        if version and version[0] >= 4:
            return k, version[1], tried
    return None, None, tried


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", required=True)
    parser.add_argument("--room-bin", required=True)
    parser.add_argument("--gateway-bin", required=True)
    parser.add_argument("--node-bin", required=True)
    parser.add_argument("--kubectl", default=None,
                        help="renders the overlays with `kubectl kustomize` (default: the first of kubectl "
                             f"on PATH and {INSTALLED_KUBECTL} whose kustomize is v4 or later)")
    parser.add_argument("--require-kustomize", action="store_true",
                        help="a problem when no kubectl can render the overlays (CI: scripts/install-deps.sh "
                             "installs one)")
    parser.add_argument("--skip-runtime-libraries", action="store_true",
                        help="the binaries are not built as the image builds them (sanitizers, "
                             "clang): skip checking the runtime stage's packages against their "
                             "shared libraries")
    args = parser.parse_args()

    c = Checker()
    kubectl, kustomize, tried = find_kubectl(args.kubectl)
    if args.require_kustomize:
        c.check(kubectl is not None, "kubectl",
                f"no kubectl with kustomize v4+ to render the overlays (tried: {tried or 'none found'}); "
                f"scripts/install-deps.sh installs one")
    committed = check_committed_secrets(c, args.repo)
    flags_by_binary = {
        "roomsync-room": flags_of(args.room_bin),
        "roomsync-gateway": flags_of(args.gateway_bin),
        "roomsync": flags_of(args.node_bin),
    }
    deploy = os.path.join(args.repo, "deploy")
    readme = open(os.path.join(deploy, "README.md")).read()

    with tempfile.TemporaryDirectory(prefix="roomsync-deploy-check-") as tmp:
        # A copy, so that the generated secrets never land in the work tree.
        k8s = os.path.join(tmp, "k8s")
        shutil.copytree(os.path.join(deploy, "k8s"), k8s,
                        ignore=shutil.ignore_patterns("secrets"))
        dev_generated = run_dev_secrets(c, os.path.join(k8s, "overlays", "dev"))
        check_kustomizations(c, k8s, readme, dev_generated)

        base_dir = os.path.join(k8s, "base")
        base = load_all(os.path.join(base_dir, "kustomization.yaml"))[0]
        base_docs = [d for r in base["resources"] if os.path.isfile(os.path.join(base_dir, r))
                     for d in load_all(os.path.join(base_dir, r))]
        check_workloads(c, base_docs, flags_by_binary, "base")
        check_dockerfile(c, args.repo, [args.room_bin, args.gateway_bin, args.node_bin],
                         [d for d in base_docs if d.get("kind") in WORKLOAD_KINDS],
                         check_libraries=not args.skip_runtime_libraries)
        # The env entries that overlays' patches add are flags too.
        for root, _dirs, files in os.walk(os.path.join(k8s, "overlays")):
            for name in files:
                if name.endswith(".yaml") and name != "kustomization.yaml":
                    for d in load_all(os.path.join(root, name)):
                        if d.get("kind") in WORKLOAD_KINDS:
                            for ct in pod_spec(d).get("containers", []):
                                binary = {"room": "roomsync-room", "gateway": "roomsync-gateway"}.get(ct["name"])
                                if binary:
                                    check_container_flags(c, os.path.join(root, name), ct, flags_by_binary[binary])

        rendered = []
        overlays = os.path.join(k8s, "overlays")
        if kubectl:
            for overlay in sorted(os.listdir(overlays)):
                odir = os.path.join(overlays, overlay)
                if not os.path.exists(os.path.join(odir, "kustomization.yaml")):
                    continue
                if overlay != "dev":
                    # Placeholders for the files an operator provides; an
                    # .env file with the keys of the dev overlay's one.
                    for _kind, source in kustomize_sources(load_all(os.path.join(odir, "kustomization.yaml"))[0]):
                        if source.startswith("secrets/"):
                            os.makedirs(os.path.join(odir, "secrets"), exist_ok=True)
                            text = "placeholder\n"
                            dev_env = os.path.join(overlays, "dev", source)
                            if source.endswith(".env"):
                                keys = [line.partition("=")[0] for line in open(dev_env).read().splitlines()] \
                                    if os.path.exists(dev_env) else ["placeholder"]
                                text = "".join(f"{k}=placeholder\n" for k in keys)
                            with open(os.path.join(odir, source), "w") as f:
                                f.write(text)
                out = subprocess.run([kubectl, "kustomize", odir], capture_output=True, text=True, timeout=120)
                if not c.check(out.returncode == 0, f"overlays/{overlay}", f"kubectl kustomize failed: {out.stderr}"):
                    continue
                docs = [d for d in yaml.safe_load_all(out.stdout) if d is not None]
                check_workloads(c, docs, flags_by_binary, f"overlays/{overlay} (rendered)", secrets=True)
                generated = [g["name"] for g in
                             load_all(os.path.join(odir, "kustomization.yaml"))[0].get("secretGenerator") or []]
                check_rendered_secrets(c, f"overlays/{overlay} (rendered)", docs, generated)
                namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
                own = [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"]
                c.check(len(namespaces) == 1 and list(namespaces) == own, f"overlays/{overlay}",
                        f"resources in namespaces {namespaces}, Namespace objects {own}")
                rendered.append(overlay)

    for p in c.problems:
        print(f"PROBLEM {p}")
    if rendered:
        how = f"{', '.join(rendered)} (kubectl {kubectl}, {kustomize})"
    else:
        how = f"none (no kubectl with kustomize v4+, tried: {tried or 'none found'}; raw base and patches only)"
    print(f"check_manifests: {c.checks} checks; {committed} committed files under deploy/ searched for "
          f"secrets; overlays rendered: {how}")
    print(f"{c.checks - len(c.problems)} passed, {len(c.problems)} failed")
    return 1 if c.problems else 0


if __name__ == "__main__":
    sys.exit(main())
