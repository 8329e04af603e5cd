#!/usr/bin/env python3
"""Checks deploy/monitoring/ against the metrics the code exports.

  check_monitoring.py --repo DIR [--promtool PATH]

The exported metrics are read from the sources at run time: every
`prometheus::BuildCounter|Gauge|Histogram|Summary().Name("...")` in a
non-test .cc file, with its type, and the label names and string
literals of the file that registers it. So a renamed or removed metric
makes this check fail until the alerts, the dashboard and the docs
follow.

deploy/monitoring/roomsync-alerts.yaml (a Prometheus rule file, the
`groups:` of a PrometheusRule):
  - groups have unique names and rules; alert names are unique;
  - each alert has an expr, a `for` duration, a severity label
    (critical, warning or info), a summary and a description annotation;
  - each expr names only exported metrics (histograms: their _bucket,
    _sum and _count series; `up`, which Prometheus makes itself), known
    PromQL functions, label names the metric has (or target labels) and,
    for `label="value"` matchers, values the registering file spells;
    rate()/irate()/increase() only over counters and histogram series;
    brackets balance;
  - with promtool (on PATH or --promtool): `promtool check rules` passes.

deploy/monitoring/roomsync-dashboard.json (Grafana):
  - valid JSON with a title, a uid and panels with unique ids inside the
    24-column grid; every query panel's targets have an expr and unique
    refIds and use the dashboard's Prometheus datasource variable;
  - every expr (templating queries too) passes the metric checks above;
  - the dashboard shows push rate and latency, commit group size,
    deliveries, connections, RESYNCs and store errors.

docs/operations.md names every exported metric and every alert, and no
doc (docs/*.md, deploy/README.md) names a roomsync_gateway_* or
roomsync_room_* metric that is not exported.

Exits 1 with a list of problems, 0 when there are none.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys

try:
    import yaml
except ImportError:
    sys.exit("check_monitoring: the python3 yaml module is missing "
             "(Debian: python3-yaml; scripts/install-deps.sh installs it)")

# Directories whose .cc files never register a served metric.
SKIP_DIRS = {".git", "node_modules", "tests", "fuzz", "bench", "clients", "deploy", "docs"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Series Prometheus adds to every target itself.
SCRAPE_SERIES = {"up"}
# Labels Prometheus (or the Kubernetes service discovery / ServiceMonitor
# relabelling) puts on every scraped series.
TARGET_LABELS = {"instance", "job", "namespace", "pod", "service", "container", "endpoint"}
SEVERITIES = {"critical", "warning", "info"}
PROMQL_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp", "clamp_max",
    "clamp_min", "count_over_time", "day_of_month", "day_of_week", "days_in_month", "delta", "deriv",
    "exp", "floor", "histogram_quantile", "holt_winters", "hour", "idelta", "increase", "irate",
    "label_join", "label_replace", "last_over_time", "ln", "log10", "log2", "max_over_time",
    "min_over_time", "minute", "month", "predict_linear", "present_over_time", "quantile_over_time",
    "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "stddev_over_time",
    "stdvar_over_time", "sum_over_time", "time", "timestamp", "vector", "year",
    # aggregation operators
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
    "topk", "quantile",
    # Grafana's templating query
    "label_values",
}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
                   "and", "or", "unless", "inf", "nan"}
COUNTER_FUNCTIONS = {"rate", "irate", "increase"}
# What the dashboard must show (issue 12: push rate/latency, commit group
# size, deliveries, connections, RESYNCs, store errors), as the series
# that carry it. There is no metric of lease moves yet.
DASHBOARD_TOPICS = {
    "push rate": {"roomsync_gateway_requests_total", "roomsync_room_pushes_total"},
    "push latency": {"roomsync_gateway_request_duration_seconds_bucket"},
    "commit latency": {"roomsync_room_commit_seconds_bucket"},
    "commit group size": {"roomsync_room_pushes_per_commit_sum", "roomsync_room_pushes_per_commit_bucket",
                          "roomsync_room_documents_per_commit_sum"},
    "deliveries": {"roomsync_gateway_sse_frames_sent_total"},
    "connections": {"roomsync_gateway_sse_sessions", "roomsync_room_subscribers"},
    "RESYNCs": {"roomsync_gateway_sse_resyncs_total"},
    "store errors": {"roomsync_room_commits_total"},
}
DOC_METRIC = re.compile(r"\broomsync_(?:gateway|room)_[a-z0-9_]+")


class Checker:
    def __init__(self):
        self.problems = []
        self.checks = 0

    def check(self, ok, where, message):
        self.checks += 1
        if not ok:
            self.problems.append(f"{where}: {message}")
        return ok


# ------------------------------------------------------------ the sources

class Metric:
    def __init__(self, name, kind, path, labels, literals):
        self.name, self.kind, self.path = name, kind, path
        self.labels, self.literals = labels, literals


def exported_metrics(repo):
    """{name: Metric} of every metric registered in the non-test sources."""
    metrics = {}
    registration = re.compile(
        r"prometheus::Build(Counter|Gauge|Histogram|Summary)\(\)\s*\.Name\(\s*\"([^\"]+)\"\s*\)")
    for root, dirs, files in os.walk(repo):
        rel = os.path.relpath(root, repo)
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith("build")
                   and not (rel == "." and d.startswith("."))]
        for name in files:
            if not name.endswith(".cc") or name.endswith("_test.cc"):
                continue
            path = os.path.join(root, name)
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            found = registration.findall(text)
            if not found:
                continue
            # Label names: the first string of each {"name", value} pair.
            labels = set(re.findall(r"\{\s*\"([a-zA-Z_][a-zA-Z0-9_]*)\"\s*,", text))
            literals = set(re.findall(r"\"((?:[^\"\\\n]|\\.)*)\"", text))
            for kind, metric in found:
                metrics[metric] = Metric(metric, kind.lower(), os.path.relpath(path, repo), labels, literals)
    return metrics


def series_names(metrics):
    """{series name: (Metric, suffix)}: a histogram's _bucket/_sum/_count."""
    names = {}
    for m in metrics.values():
        if m.kind in ("histogram", "summary"):
            for suffix in HISTOGRAM_SUFFIXES:
                names[m.name + suffix] = (m, suffix)
            if m.kind == "summary":
                names[m.name] = (m, "")
        else:
            names[m.name] = (m, "")
    return names


# ------------------------------------------------------------ PromQL

SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^{}]*)\}")
MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*\"((?:[^\"\\]|\\.)*)\"")
IDENT = re.compile(r"(?<![\w.$:])([A-Za-z_:][A-Za-z0-9_:]*)")


def balanced(expr):
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    in_string = False
    previous = ""
    for ch in expr:
        if in_string:
            if ch == '"' and previous != "\\":
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "([{":
            stack.append(ch)
        elif ch in ")]}":
            if not stack or stack.pop() != pairs[ch]:
                return False
        previous = ch
    return not stack and not in_string


def check_expr(c, where, expr, series, used):
    """Checks one PromQL expression; adds the series it names to `used`."""
    if not c.check(isinstance(expr, str) and expr.strip(), where, "empty expr"):
        return
    c.check(balanced(expr), where, f"unbalanced brackets or quotes in {expr!r}")
    # Grafana's label_values(METRIC, LABEL): LABEL is a label of METRIC.
    m = re.match(r"^\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)[^,]*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", expr)
    if m:
        known = series.get(m.group(1))
        c.check(known is None or m.group(2) in known[0].labels or m.group(2) in TARGET_LABELS, where,
                f"label_values: {m.group(1)} has no label {m.group(2)!r}")
        expr = expr[: m.start(2)].rstrip().rstrip(",") + ")"
    # Selectors: the metric before {...} and its matchers.
    for m in SELECTOR.finditer(expr):
        metric, body = m.group(1), m.group(2)
        if metric in PROMQL_FUNCTIONS or metric in PROMQL_KEYWORDS:
            metric = None
        c.check(metric is not None, where, f"selector {{{body}}} has no metric name before it")
        known = series.get(metric) if metric else None
        for label, _op, value in MATCHER.findall(body):
            if label == "__name__":
                c.check(False, where, "select metrics by name, not by __name__")
                continue
            if known is None:
                continue
            source, suffix = known
            ok = label in source.labels or label in TARGET_LABELS or (label == "le" and suffix == "_bucket")
            c.check(ok, where, f"{metric}: no label {label!r} is registered for it in {source.path}")
            if ok and _op == "=" and label in source.labels and not value.lstrip("-").isdigit():
                c.check(value in source.literals, where,
                        f"{metric}{{{label}=\"{value}\"}}: {source.path} never spells \"{value}\"")
    # Counter functions over what they may take.
    for m in re.finditer(r"\b(rate|irate|increase)\s*\(\s*([A-Za-z_:][A-Za-z0-9_:]*)", expr):
        fn, metric = m.group(1), m.group(2)
        known = series.get(metric)
        if known is not None:
            source, suffix = known
            c.check(source.kind == "counter" or suffix in HISTOGRAM_SUFFIXES, where,
                    f"{fn}({metric}): {metric} is a {source.kind}, not a counter")
    # What is left once matchers, strings, ranges and label lists are gone.
    stripped = re.sub(r"\"(?:[^\"\\]|\\.)*\"", '""', expr)
    stripped = re.sub(r"\{[^{}]*\}", " ", stripped)
    stripped = re.sub(r"\[[^\]]*\]", " ", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped)
    for m in IDENT.finditer(stripped):
        name = m.group(1)
        after = stripped[m.end():].lstrip()
        if after.startswith("("):
            c.check(name in PROMQL_FUNCTIONS, where, f"{name}(): not a PromQL function")
            continue
        if name in PROMQL_KEYWORDS:
            continue
        if name in SCRAPE_SERIES:
            used.add(name)
            continue
        if name in series:
            used.add(name)
            continue
        base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
        hint = ""
        if name.startswith("roomsync_"):
            hint = " (not registered in any non-test .cc file)"
        if base is not None and base in series:
            hint = f" ({base} is a {series[base][0].kind}: it has no {name[len(base):]} series)"
        c.check(False, where, f"metric {name} is not exported by the code{hint}")


# ------------------------------------------------------------ alerts

DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def check_alerts(c, repo, path, series, promtool):
    where = os.path.relpath(path, repo)
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        c.check(False, where, f"does not load: {e}")
        return set(), []
    groups = doc.get("groups") if isinstance(doc, dict) else None
    if not c.check(isinstance(groups, list) and groups, where, "no `groups:` list"):
        return set(), []
    used, alerts, group_names = set(), [], set()
    for g in groups:
        name = g.get("name")
        c.check(name and name not in group_names, where, f"group name {name!r} missing or repeated")
        group_names.add(name)
        rules = g.get("rules") or []
        c.check(rules, where, f"group {name} has no rules")
        for rule in rules:
            alert = rule.get("alert")
            record = rule.get("record")
            at = f"{where}: {alert or record or '?'}"
            c.check(bool(alert) != bool(record), at, "a rule is either an alert or a record")
            check_expr(c, at, rule.get("expr"), series, used)
            if not alert:
                continue
            c.check(re.match(r"^[A-Z][A-Za-z0-9]+$", alert) is not None, at, "alert names are CamelCase")
            c.check(alert not in alerts, at, "alert name repeated")
            alerts.append(alert)
            c.check(DURATION.match(str(rule.get("for", ""))) is not None and
                    not re.match(r"^0+[a-z]+$", str(rule.get("for"))), at,
                    f"needs a `for` duration (got {rule.get('for')!r})")
            labels = rule.get("labels") or {}
            c.check(labels.get("severity") in SEVERITIES, at,
                    f"severity label {labels.get('severity')!r} is not one of {sorted(SEVERITIES)}")
            annotations = rule.get("annotations") or {}
            for key in ("summary", "description"):
                c.check(isinstance(annotations.get(key), str) and annotations[key].strip(), at,
                        f"needs a {key} annotation")
    if promtool:
        out = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True, timeout=60)
        c.check(out.returncode == 0, where, f"promtool check rules failed:\n{out.stdout}{out.stderr}")
    return used, alerts


# ------------------------------------------------------------ dashboard

def all_panels(panels):
    for p in panels or []:
        yield p
        yield from all_panels(p.get("panels"))


def check_dashboard(c, repo, path, series):
    where = os.path.relpath(path, repo)
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        c.check(False, where, f"does not load: {e}")
        return set()
    used = set()
    c.check(isinstance(dash.get("title"), str) and dash["title"], where, "no title")
    c.check(isinstance(dash.get("uid"), str) and re.match(r"^[A-Za-z0-9_-]{1,40}$", dash["uid"]), where,
            "no uid (1-40 letters, digits, - or _)")
    variables = {v.get("name"): v for v in (dash.get("templating") or {}).get("list", [])}
    datasource_vars = {n for n, v in variables.items() if v.get("type") == "datasource"
                       and v.get("query") == "prometheus"}
    c.check(datasource_vars, where, "no Prometheus datasource variable in templating")
    for name, v in variables.items():
        if v.get("type") == "query":
            query = v.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            check_expr(c, f"{where}: variable {name}", query, series, used)
    ids = set()
    panels = list(all_panels(dash.get("panels")))
    c.check(panels, where, "no panels")
    for p in panels:
        at = f"{where}: panel {p.get('id')} {p.get('title')!r}"
        c.check(isinstance(p.get("id"), int) and p["id"] not in ids, at, "panel ids must be unique integers")
        ids.add(p.get("id"))
        grid = p.get("gridPos") or {}
        c.check(all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")) and
                grid.get("x", 0) + grid.get("w", 0) <= 24 and grid.get("w", 0) > 0 and grid.get("h", 0) > 0,
                at, f"gridPos {grid} is not inside the 24-column grid")
        if p.get("type") in ("row", "text"):
            continue
        c.check(p.get("title"), at, "no title")
        targets = p.get("targets") or []
        if not c.check(targets, at, "no targets"):
            continue
        refs = [t.get("refId") for t in targets]
        c.check(len(set(refs)) == len(refs) and all(refs), at, f"refIds {refs} missing or repeated")
        for t in targets + [p]:
            ds = t.get("datasource") or {}
            uid = ds.get("uid") if isinstance(ds, dict) else ds
            c.check(uid in {f"${{{n}}}" for n in datasource_vars} | {f"${n}" for n in datasource_vars}, at,
                    f"datasource {ds!r} is not the dashboard's datasource variable")
        for t in targets:
            check_expr(c, f"{at} {t.get('refId')}", t.get("expr"), series, used)
    for topic, wanted in DASHBOARD_TOPICS.items():
        present = {s for s in wanted if s in series}
        if present:
            c.check(present & used, where, f"no panel shows {topic} ({', '.join(sorted(present))})")
    return used


# ------------------------------------------------------------ docs

def check_docs(c, repo, metrics, alerts):
    ops = os.path.join(repo, "docs", "operations.md")
    if c.check(os.path.exists(ops), "docs/operations.md", "missing"):
        text = open(ops, encoding="utf-8").read()
        for name in sorted(metrics):
            c.check(re.search(rf"\b{re.escape(name)}\b", text) is not None, "docs/operations.md",
                    f"metric {name} ({metrics[name].path}) is not described")
        for alert in alerts:
            c.check(re.search(rf"\b{re.escape(alert)}\b", text) is not None, "docs/operations.md",
                    f"alert {alert} is not described")
    series = series_names(metrics)
    for path in sorted(glob.glob(os.path.join(repo, "docs", "*.md")) +
                       [os.path.join(repo, "deploy", "README.md")]):
        if not os.path.exists(path):
            continue
        text = open(path, encoding="utf-8").read()
        for name in sorted(set(DOC_METRIC.findall(text))):
            c.check(name in metrics or name in series, os.path.relpath(path, repo),
                    f"names metric {name}, which the code does not export")


# ------------------------------------------------------------ main

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", required=True)
    parser.add_argument("--promtool", default=shutil.which("promtool"),
                        help="also run `promtool check rules` (default: promtool on PATH, if any)")
    args = parser.parse_args()
    repo = os.path.abspath(args.repo)

    c = Checker()
    metrics = exported_metrics(repo)
    kinds = {m.name.split("_")[1] for m in metrics.values() if m.name.count("_") > 1}
    c.check({"gateway", "room"} <= kinds and len(metrics) >= 10, "sources",
            f"found only {sorted(metrics)} registered: has the registration code changed shape?")
    series = series_names(metrics)

    monitoring = os.path.join(repo, "deploy", "monitoring")
    used, alerts = check_alerts(c, repo, os.path.join(monitoring, "roomsync-alerts.yaml"), series, args.promtool)
    used |= check_dashboard(c, repo, os.path.join(monitoring, "roomsync-dashboard.json"), series)
    check_docs(c, repo, metrics, alerts)

    unused = sorted(m for m in metrics if not ({m} | {m + s for s in HISTOGRAM_SUFFIXES}) & used)
    for p in c.problems:
        print(f"PROBLEM {p}")
    print(f"check_monitoring: {len(metrics)} exported metrics, {len(alerts)} alerts; "
          f"promtool: {args.promtool or 'not installed (rules checked here only)'}; "
          f"exported but in no alert or panel: {', '.join(unused) or 'none'}")
    print(f"{c.checks - len(c.problems)} passed, {len(c.problems)} failed")
    return 1 if c.problems else 0


if __name__ == "__main__":
    sys.exit(main())
