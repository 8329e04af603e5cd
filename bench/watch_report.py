#!/usr/bin/env python3
"""Turns a bench/watch_scale.sh results directory into watch.json and watch.md.

  python3 bench/watch_report.py [--check] bench/results/<run>-watch

Reads run.txt and, per run MODE_N_KIND[_rK] (KIND spread, one or resub),
fanout_*.json (roomsync-bench fanout), samples_*.csv (the sampler: the room
node's roomsync_room_subscribers every 50 ms; every 0.5 s the gateway's
roomsync_gateway_upstream_streams and _subscriptions and both processes'
VmRSS) and events_*.txt (baseline VmRSS and the times of the fanout start,
the kill and the restart). Prints three markdown tables:

  - per mode and N: upstream streams and subscriptions held, deliveries/s,
    delivery p50/p99, missing deliveries, RESYNCs, disconnects, the time
    from the start of the connect phase until the room node counted N
    subscribers, and both processes' VmRSS per active room above their
    baseline (idle: every session open, before publishing; and the peak);
  - memory per active room above its SSE session: (idle VmRSS with N rooms
    - idle VmRSS with the same N sessions in one room) / N, gateway and
    room node;
  - re-subscription after kill -9 of the room node: from the restart until
    it counts N subscribers again, and what the SSE sessions saw.

--check (bench/watch_scale.sh --quick): exit 1 unless every subscriber
opened, watch held 1 upstream stream and per_room N, every resub came back
to N subscribers, and no SSE session saw a RESYNC or a disconnect.
"""
import csv
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_lib  # noqa: E402
from report_lib import kv, parse_args  # noqa: E402

check, run = parse_args(__doc__)
GOAL_BYTES_PER_ROOM = 1024  # issue 11: < 1 KiB per active room (watch)


def samples(path):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            try:
                rows.append({k: float(v) for k, v in r.items()})
            except (TypeError, ValueError):
                pass  # a line cut short when the sampler was stopped
    return rows


meta = kv(os.path.join(run, "run.txt"))
runs = {}
for path in sorted(glob.glob(os.path.join(run, "fanout_*.json"))):
    m = re.match(r"fanout_(per_room|watch)_(\d+)_(spread|one|resub)(_r(\d+))?\.json$",
                 os.path.basename(path))
    if not m:
        continue
    mode, n, kind, rep = m.group(1), int(m.group(2)), m.group(3), int(m.group(5) or 1)
    tag = os.path.basename(path)[len("fanout_"):-len(".json")]
    series = json.load(open(path))["series"][0]
    ev = kv(os.path.join(run, f"events_{tag}.txt"))
    rows = samples(os.path.join(run, f"samples_{tag}.csv"))
    full = [r for r in rows if r["full"] == 1]
    t0 = float(ev["fanout_start"])
    t_end = float(ev.get("fanout_end", rows[-1]["t"] if rows else t0))
    # The generator samples the servers' VmRSS 1 s after its connects
    # finished, then starts publishing: the last of our samples before then.
    t_idle = t0 + series["connect_s"] + 1.0
    idle = [r for r in full if t0 <= r["t"] <= t_idle]
    idle = idle[-1] if idle else None
    during = [r for r in full if t0 <= r["t"] <= t_end]

    def first_at_least(rs, col, value, after):
        return next((r["t"] for r in rs if r["t"] > after and r[col] >= value), None)

    p = {
        "mode": mode, "rooms": n, "kind": kind, "repeat": rep,
        "sse_rooms": series["rooms"],
        "subscribers": series["subscribers"],
        "opened": series["opened"],
        "connect_errors": series["connect_errors"],
        "connect_s": series["connect_s"],
        "publish_rate": series["publish_rate"],
        "published": series["published"],
        "publish_errors": sum(series["publish_errors"].values()),
        "publish_error_kinds": series["publish_errors"],
        "deliveries_per_s": series["deliveries_per_s"],
        "missing_deliveries": series["missing_deliveries"],
        "p50_ms": series["delivery_latency"]["p50_us"] / 1000,
        "p99_ms": series["delivery_latency"]["p99_us"] / 1000,
        "max_ms": series["delivery_latency"]["max_us"] / 1000,
        "resyncs": series["resyncs"],
        "disconnects": series["disconnects"],
        "server_cpu_s": series.get("server_cpu_s"),
        "baseline_gw_rss_kib": int(ev["baseline_gw_rss_kib"]),
        "baseline_room_rss_kib": int(ev["baseline_room_rss_kib"]),
        "idle_gw_rss_kib": idle["gw_rss_kib"] if idle else None,
        "idle_room_rss_kib": idle["room_rss_kib"] if idle else None,
        "idle_streams": idle["gw_streams"] if idle else None,
        "idle_subscriptions": idle["gw_subscriptions"] if idle else None,
        "peak_gw_rss_kib": max((r["gw_rss_kib"] for r in during), default=None),
        "peak_room_rss_kib": max((r["room_rss_kib"] for r in during), default=None),
        "max_streams": max((r["gw_streams"] for r in during), default=None),
        "max_subscriptions": max((r["gw_subscriptions"] for r in during), default=None),
        # Until the room node counts every room's subscription (50 ms polls).
        "all_subscribed_s": (lambda t: t - t0 if t else None)(
            first_at_least(rows, "room_subscribers", series["rooms"], t0)),
        "loadavg_before": float(ev["loadavg_before"].split()[0]),
    }
    if kind == "resub" and "restart" in ev:
        t_kill, t_restart = float(ev["kill"]), float(ev["restart"])
        back = first_at_least(rows, "room_subscribers", n, t_restart)
        p["resubscribed_s"] = back - t_restart if back else None
        up = next((r["t"] for r in rows if r["t"] > t_restart and r["room_subscribers"] >= 0), None)
        p["metrics_up_s"] = up - t_restart if up else None
        after = [r for r in full if r["t"] > (back or t_end)]
        p["streams_after"] = after[0]["gw_streams"] if after else None
        p["subscriptions_after"] = after[0]["gw_subscriptions"] if after else None
        p["kill_to_restart_s"] = t_restart - t_kill
        p["gateway_died"] = "gateway_died" in ev
    runs[(rep, n, mode, kind)] = p

points = []
for (rep, n, mode, kind), p in sorted(runs.items()):
    if kind != "spread":
        continue
    one = runs.get((rep, n, mode, "one"))
    resub = runs.get((rep, n, mode, "resub"))

    def per_room(a, b):
        if a is None or b is None:
            return None
        return (a - b) * 1024 / n

    row = dict(p)
    row["gw_bytes_per_room_idle"] = per_room(p["idle_gw_rss_kib"], p["baseline_gw_rss_kib"])
    row["room_bytes_per_room_idle"] = per_room(p["idle_room_rss_kib"], p["baseline_room_rss_kib"])
    row["gw_bytes_per_room_peak"] = per_room(p["peak_gw_rss_kib"], p["baseline_gw_rss_kib"])
    row["room_bytes_per_room_peak"] = per_room(p["peak_room_rss_kib"], p["baseline_room_rss_kib"])
    if one:
        row["one_room"] = one
        row["gw_bytes_per_room_above_sse"] = per_room(p["idle_gw_rss_kib"], one["idle_gw_rss_kib"])
        row["room_bytes_per_room_above_one"] = per_room(p["idle_room_rss_kib"], one["idle_room_rss_kib"])
    if resub:
        row["resub"] = resub
    points.append(row)

report = {"run": meta, "goal_bytes_per_room_watch": GOAL_BYTES_PER_ROOM, "points": points,
          "runs": [runs[k] for k in sorted(runs)]}
with open(os.path.join(run, "watch.json"), "w") as f:
    json.dump(report, f, indent=2)


def fmt(x, digits=0):
    return report_lib.fmt(x, digits)


def mib(kib):
    return None if kib is None else kib / 1024


reps = sorted({p["repeat"] for p in points})
md = []
md.append("### Watch vs per-room upstream streams\n")
md.append(f"One roomsync-room (SQLite) behind one roomsync-gateway, fresh processes per run; "
          f"N SSE subscribers on N rooms, {meta.get('rate', '?')} documents/s over all rooms from "
          f"{meta.get('publishers', '?')} publishers, {meta.get('duration_s', '?')} s measured. "
          f"Commit {meta.get('commit', '?')}, {meta.get('date', '?')}, {meta.get('nproc', '?')} cores "
          f"({meta.get('cpu_model', '?')}); load average at the start "
          f"{meta.get('loadavg_start', '?').split()[0]}.\n")
md.append("| " + ("sweep | " if len(reps) > 1 else "") +
          "rooms | mode | upstream streams | upstream subscriptions | deliveries/s | p50 ms | p99 ms "
          "| missing | RESYNC | disconnects | SSE connect s | every room subscribed after s "
          "| gateway B/room (idle / peak) | room node B/room (idle / peak) | load avg |")
md.append("|" + "---|" * (15 + (len(reps) > 1)))
for p in points:
    md.append("| " + " | ".join(([str(p["repeat"])] if len(reps) > 1 else []) + [
        fmt(p["rooms"]), p["mode"],
        fmt(p["max_streams"]), fmt(p["max_subscriptions"]),
        fmt(p["deliveries_per_s"]), fmt(p["p50_ms"], 2), fmt(p["p99_ms"], 2),
        fmt(p["missing_deliveries"]), fmt(p["resyncs"]), fmt(p["disconnects"]),
        fmt(p["connect_s"], 2), fmt(p["all_subscribed_s"], 2),
        f"{fmt(p['gw_bytes_per_room_idle'])} / {fmt(p['gw_bytes_per_room_peak'])}",
        f"{fmt(p['room_bytes_per_room_idle'])} / {fmt(p['room_bytes_per_room_peak'])}",
        fmt(p["loadavg_before"], 2),
    ]) + " |")
md.append("")
md.append("B/room: (VmRSS - VmRSS before load) / N; gateway figures include the room's SSE session.\n")

mem_start = len(md)
md.append("### Memory per active room above its SSE session\n")
md.append("| " + ("sweep | " if len(reps) > 1 else "") +
          "rooms | mode | gateway idle MiB, N rooms | same sessions in 1 room | gateway B per active room "
          "| room node idle MiB, N rooms | 1 room | room node B per active room |")
md.append("|" + "---|" * (8 + (len(reps) > 1)))
for p in points:
    one = p.get("one_room")
    if not one:
        continue
    md.append("| " + " | ".join(([str(p["repeat"])] if len(reps) > 1 else []) + [
        fmt(p["rooms"]), p["mode"],
        fmt(mib(p["idle_gw_rss_kib"]), 1), fmt(mib(one["idle_gw_rss_kib"]), 1),
        fmt(p.get("gw_bytes_per_room_above_sse")),
        fmt(mib(p["idle_room_rss_kib"]), 1), fmt(mib(one["idle_room_rss_kib"]), 1),
        fmt(p.get("room_bytes_per_room_above_one")),
    ]) + " |")
md.append("")

if not any(p.get("one_room") for p in points):
    del md[mem_start:]
resub_start = len(md)
md.append("### Re-subscription after kill -9 of the room node\n")
md.append("| " + ("sweep | " if len(reps) > 1 else "") +
          "rooms | mode | restart → N subscribers s | upstream streams after | RESYNC | disconnects "
          "| missing deliveries | pushes refused | p99 ms over the window | max ms |")
md.append("|" + "---|" * (10 + (len(reps) > 1)))
for p in points:
    r = p.get("resub")
    if not r:
        continue
    md.append("| " + " | ".join(([str(p["repeat"])] if len(reps) > 1 else []) + [
        fmt(p["rooms"]), p["mode"],
        fmt(r.get("resubscribed_s"), 2), fmt(r.get("streams_after")),
        fmt(r["resyncs"]), fmt(r["disconnects"]), fmt(r["missing_deliveries"]),
        fmt(r["publish_errors"]), fmt(r["p99_ms"], 2), fmt(r["max_ms"], 2),
    ]) + " |")
md.append("")
if not any(p.get("resub") for p in points):
    del md[resub_start:]
report_lib.write_markdown(run, "watch.md", md)

if check:
    problems = []
    if not points:
        problems.append("no points measured")
    for p in runs.values():
        name = f"{p['mode']} {p['rooms']} {p['kind']}"
        if p["opened"] != p["subscribers"] or p["connect_errors"]:
            problems.append(f"{name}: {p['opened']} of {p['subscribers']} subscribers opened")
        want = 1 if p["mode"] == "watch" else p["sse_rooms"]
        if p["idle_streams"] != want:
            problems.append(f"{name}: {p['idle_streams']} upstream streams once connected, expected {want}")
        if p["resyncs"] or p["disconnects"]:
            problems.append(f"{name}: {p['resyncs']} RESYNC, {p['disconnects']} disconnects")
        if p["kind"] == "resub":
            if p.get("gateway_died"):
                problems.append(f"{name}: the gateway died after the room node's restart")
            if p.get("resubscribed_s") is None:
                problems.append(f"{name}: the room node never counted {p['rooms']} subscribers again")
            if p["missing_deliveries"]:
                problems.append(f"{name}: {p['missing_deliveries']} deliveries missing")
    if problems:
        sys.exit("watch_report.py: " + "; ".join(problems))
