#!/usr/bin/env python3
"""Turns a bench/scaling.sh results directory into scaling.json and scaling.md.

  python3 bench/scaling_report.py [--check] bench/results/<run>-scaling

Reads run.txt, push_nodes_N[_rK].json (roomsync-bench push),
cpu_nodes_N[_rK]_{before,after}.txt (the counters bench/scaling.sh took
around the measured window) and leases_nodes_N[_rK].txt. Per point: pushes/s,
the ratio to one node of the same sweep, p50/p99, and the CPU of every
room node (cpuacct, in cores, against its quota, with the share of CFS
periods it was throttled in), of the gateway, PostgreSQL and the
generator, and how busy the whole machine was. --check (bench/scaling.sh
--quick): exit 1 unless every point ran without errors and every room
node served pushes.
"""
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_lib  # noqa: E402
from report_lib import kv, parse_args  # noqa: E402

check, run = parse_args(__doc__)
GOAL = 2.4  # issue 11 item 6: 3 nodes >= 2.4x one node
clk_tck = os.sysconf("SC_CLK_TCK")


def counters(path):
    """A snapshot file: {'t_ns': int, 'acct': {group: ns}, 'throttle': {...}, ...}."""
    s = {"acct": {}, "throttle": {}, "proc": {}, "pushes": {}}
    for line in open(path):
        f = line.split()
        if not f:
            continue
        if f[0] == "t_ns":
            s["t_ns"] = int(f[1])
        elif f[0] == "loadavg":
            s["loadavg"] = [float(x) for x in f[1:4]]
        elif f[0] == "stat_cpu":
            s["stat_cpu"] = [int(x) for x in f[1:]]
        elif f[0] == "acct":
            s["acct"][f[1]] = int(f[2])
        elif f[0] == "throttle":
            s["throttle"][f[1]] = [int(x) for x in f[2:5]]
        elif f[0] == "proc":
            s["proc"][f[1]] = int(f[3])
        elif f[0] == "pushes":
            s["pushes"][f[1]] = (int(float(f[2])), int(float(f[3])))
    return s


meta = kv(os.path.join(run, "run.txt"))
nproc = int(meta.get("nproc", os.cpu_count()))
share = float(meta["cpu_share"])

points = []
for path in sorted(glob.glob(os.path.join(run, "push_nodes_*.json"))):
    m = re.match(r"push_nodes_(\d+)(_r(\d+))?\.json$", os.path.basename(path))
    if not m:
        continue
    n, rep = int(m.group(1)), int(m.group(3) or 1)
    tag = os.path.basename(path)[len("push_"):-len(".json")]
    series = json.load(open(path))["series"][0]
    before = counters(os.path.join(run, f"cpu_{tag}_before.txt"))
    after = counters(os.path.join(run, f"cpu_{tag}_after.txt"))
    window = (after["t_ns"] - before["t_ns"]) / 1e9

    def cores(group):
        if group not in before["acct"] or group not in after["acct"]:
            return None
        return (after["acct"][group] - before["acct"][group]) / 1e9 / window

    leases = {}
    lpath = os.path.join(run, f"leases_{tag}.txt")
    if os.path.exists(lpath):
        for line in open(lpath):
            f = line.split()
            if len(f) == 2:
                leases[f[0]] = int(f[1])
    node_list = []
    total_node_pushes = sum(after["pushes"][k][0] - before["pushes"][k][0] for k in after["pushes"])
    for i in range(n):
        name = f"node-{i}"
        tb, ta = before["throttle"][name], after["throttle"][name]
        periods, throttled = ta[0] - tb[0], ta[1] - tb[1]
        pushes = after["pushes"][name][0] - before["pushes"][name][0]
        node_list.append({
            "node": name,
            "cpu_cores": cores(name),
            "cpu_cores_proc_stat": (after["proc"][name] - before["proc"][name]) / clk_tck / window,
            "quota_cores": share,
            "cfs_periods": periods,
            "throttled_periods": throttled,
            "throttled_share": throttled / periods if periods else None,
            "throttled_s": (ta[2] - tb[2]) / 1e9,
            "pushes_per_s": pushes / window,
            "push_share": pushes / total_node_pushes if total_node_pushes else None,
            "push_errors": after["pushes"][name][1] - before["pushes"][name][1],
            "shard_leases": leases.get(f"room-{i}"),
        })
    sb, sa = before["stat_cpu"], after["stat_cpu"]
    delta = [a - b for a, b in zip(sa, sb)]
    total = sum(delta[:8])  # user nice system idle iowait irq softirq steal
    idle = delta[3] + delta[4]
    machine_busy = (total - idle) / total * nproc if total else None
    ours = sum(c for c in (cores(g) for g in after["acct"]) if c is not None)
    points.append({
        "nodes": n,
        "repeat": rep,
        "clients": series["clients"],
        "rooms": series["rooms"],
        "duration_s": series["duration_s"],
        "pushes_per_s": series["pushes_per_s"],
        "p50_ms": series["latency"]["p50_us"] / 1000,
        "p99_ms": series["latency"]["p99_us"] / 1000,
        "errors": series["error_count"],
        "error_kinds": series["errors"],
        "room_nodes_cpu_us_per_push": series.get("server_cpu_us_per_push"),
        "window_s": window,
        "room_nodes": node_list,
        "gateway_cores": cores("gateway"),
        "postgres_cores": cores("postgres"),
        "generator_cores": cores("generator"),
        "machine_busy_cores": machine_busy,
        "other_processes_cores": machine_busy - ours if machine_busy is not None else None,
        "loadavg_before": before["loadavg"],
    })

points.sort(key=lambda p: (p["repeat"], p["nodes"]))
for p in points:
    one = next((q for q in points if q["repeat"] == p["repeat"] and q["nodes"] == 1), None)
    p["ratio_to_1_node"] = p["pushes_per_s"] / one["pushes_per_s"] if one and one["pushes_per_s"] else None

goal = []
for rep in sorted({p["repeat"] for p in points}):
    three = next((p for p in points if p["repeat"] == rep and p["nodes"] == 3), None)
    if three and three["ratio_to_1_node"] is not None:
        goal.append({"repeat": rep, "ratio_3_to_1": three["ratio_to_1_node"],
                     "met": three["ratio_to_1_node"] >= GOAL})

report = {"run": meta, "goal": {"ratio_3_nodes_to_1": GOAL, "sweeps": goal}, "points": points}
with open(os.path.join(run, "scaling.json"), "w") as f:
    json.dump(report, f, indent=2)


def fmt(x, digits=2):
    return report_lib.fmt(x, digits)


md = []
md.append("### Scaling across room nodes under a CPU quota\n")
md.append(f"Each room node held to {share:g} CPU (cpu.cfs_quota_us {meta['quota_us']} / "
          f"cpu.cfs_period_us {meta['period_us']}; the bench's parent cgroup cpu.shares {meta.get('shares', '?')}); "
          f"{meta['clients']} closed-loop clients, one room each, "
          f"through one gateway; {meta['duration_s']} s per point after {meta['warmup_s']} s warm-up. "
          f"Commit {meta.get('commit', '?')}, {meta.get('date', '?')}, {nproc} cores "
          f"({meta.get('cpu_model', '?')}); load average at the start {meta.get('loadavg_start', '?').split()[0]}.\n")
md.append("| sweep | room nodes | pushes/s | vs 1 node | p50 ms | p99 ms | errors "
          "| CPU per node (cores) | throttled periods | pushes per node | shard leases "
          "| gateway CPU | PostgreSQL CPU | generator CPU | machine busy (of "
          f"{nproc}) | others | load avg before |")
md.append("|" + "---|" * 17)
for p in points:
    nodes = p["room_nodes"]
    md.append("| " + " | ".join([
        str(p["repeat"]),
        str(p["nodes"]),
        fmt(p["pushes_per_s"], 0),
        fmt(p["ratio_to_1_node"]),
        fmt(p["p50_ms"]),
        fmt(p["p99_ms"]),
        str(p["errors"]),
        " / ".join(fmt(x["cpu_cores"], 3) for x in nodes),
        " / ".join("n/a" if x["throttled_share"] is None else f"{x['throttled_share'] * 100:.0f}%" for x in nodes),
        " / ".join(fmt(x["pushes_per_s"], 0) for x in nodes),
        " / ".join(str(x["shard_leases"]) for x in nodes),
        fmt(p["gateway_cores"]),
        fmt(p["postgres_cores"]),
        fmt(p["generator_cores"]),
        fmt(p["machine_busy_cores"]),
        fmt(p["other_processes_cores"]),
        fmt(p["loadavg_before"][0]),
    ]) + " |")
md.append("")
for g in goal:
    md.append(f"Sweep {g['repeat']}: 3 nodes / 1 node = {g['ratio_3_to_1']:.2f} "
              f"(goal >= {GOAL}: {'met' if g['met'] else 'not met'}).")
report_lib.write_markdown(run, "scaling.md", md)

if check:
    problems = []
    if not points:
        problems.append("no points measured")
    for p in points:
        if p["errors"]:
            problems.append(f"{p['nodes']} node(s): {p['errors']} errors {p['error_kinds']}")
        if p["pushes_per_s"] <= 0:
            problems.append(f"{p['nodes']} node(s): no pushes")
        for x in p["room_nodes"]:
            if x["pushes_per_s"] <= 0:
                problems.append(f"{p['nodes']} node(s): {x['node']} served no pushes")
            if x["cpu_cores"] is not None and x["cpu_cores"] > share * 1.2 + 0.02:
                problems.append(f"{p['nodes']} node(s): {x['node']} used {x['cpu_cores']:.3f} cores, above its quota")
    if problems:
        sys.exit("scaling_report.py: " + "; ".join(problems))
