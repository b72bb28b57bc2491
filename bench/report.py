"""Prints the table of bench/compare.sh from its JSON lines.

  python3 bench/report.py bench/out/<time>/results.jsonl <cores>

Several rounds of one service and scenario are reduced to their median."""
import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
cores = int(sys.argv[2]) if len(sys.argv) > 2 else 2


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


runs = {}
for r in rows:
    if "scenario" in r:
        runs.setdefault((r["service"], r["scenario"]), []).append(r)


def summary(service, scenario):
    rs = runs.get((service, scenario))
    if not rs:
        return None
    failures = {}
    for r in rs:
        for k, v in r["failures"].items():
            failures[k] = failures.get(k, 0) + v
    return {
        "rounds": len(rs),
        "rate": median([r["flows_per_second"] for r in rs]),
        "p50": median([r["p50_ms"] for r in rs]),
        "p99": median([r["p99_ms"] for r in rs]),
        "max": median([r["max_ms"] for r in rs]),
        "cpu": median([r["server_cpu_ms_per_flow"] for r in rs]),
        "backend": median([r.get("backend_cpu_ms_per_flow") for r in rs]),
        "flows": sum(r["flows"] for r in rs),
        "failures": failures,
        "concurrency": rs[0]["concurrency"],
    }


def fmt(v, digits=1):
    return "–" if v is None else f"{v:.{digits}f}"


services = ["original", "phoneauth-embedded", "phoneauth-production"]
print("| scenario | service | conc. | flows/s | × original | p50 ms | p99 ms | max ms "
      "| server CPU ms/flow | CPU ÷ original | backend CPU ms/flow | failures |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for scenario in ["image", "send", "register"]:
    base = summary("original", scenario)
    for service in services:
        s = summary(service, scenario)
        if not s:
            continue
        times = s["rate"] / base["rate"] if base and base["rate"] else None
        cpu_ratio = base["cpu"] / s["cpu"] if base and base["cpu"] and s["cpu"] else None
        fails = ", ".join(f"{k}: {v}" for k, v in s["failures"].items()) or "0"
        print(f"| {scenario} | {service} | {s['concurrency']} | {fmt(s['rate'])} | "
              f"{'1' if service == 'original' else fmt(times, 1) + '×'} | {fmt(s['p50'], 2)} | "
              f"{fmt(s['p99'], 2)} | {fmt(s['max'], 1)} | {fmt(s['cpu'], 3)} | "
              f"{'1' if service == 'original' else fmt(cpu_ratio, 1) + '× less'} | "
              f"{fmt(s['backend'], 3)} | {fails} |")

print()
hashes = [r for r in rows if r.get("service") == "argon2id"]
if hashes:
    h = hashes[0]
    bound = cores / h["median_ms"] * 1000
    strict = cores / h["min_ms"] * 1000
    print(f"- argon2id (m={h['memory_kib']} KiB, t={h['iterations']}, p={h['parallelism']}), one hash alone: "
          f"{h['median_ms']:.1f} ms median, {h['min_ms']:.1f} ms fastest. {cores} cores ÷ that = "
          f"{bound:.1f} hashes/s (median), **{strict:.1f}/s** (fastest, the strict ceiling).")
    for service in services[1:]:
        s = summary(service, "register")
        if s:
            print(f"  - {service} register: {s['rate']:.1f}/s = {s['rate'] / bound * 100:.0f} % of the median "
                  f"ceiling, **{s['rate'] / strict * 100:.0f} %** of the strict one.")
over = summary("phoneauth-embedded-overload", "register")
if over:
    fails = ", ".join(f"{k}: {v}" for k, v in over["failures"].items()) or "none"
    print(f"- register overload ({over['concurrency']} concurrent, embedded): {over['rate']:.1f} registrations/s, "
          f"p50 {over['p50']:.0f} ms, p99 {over['p99']:.0f} ms, max {over['max']:.0f} ms; refused: {fails}.")
for service in services[1:]:
    idle = [r["idle_rss_mb"] for r in rows if r.get("service") == service and "idle_rss_mb" in r]
    loaded = [r["loaded_rss_mb"] for r in rows if r.get("service") == service and "loaded_rss_mb" in r]
    if idle:
        print(f"- {service} RSS: idle after start {min(idle)}–{max(idle)} MB; "
              f"after each run (image, send, register…) {', '.join(str(v) for v in loaded)} MB")
mem = [r for r in rows if r.get("service") == "store_memory"]
if mem:
    m = mem[0]
    print(f"- embedded store, {m['count']:,} captchas, bound {m['bound_mb']} MiB: stored {m['stored']:,}, "
          f"refused {m['refused']:,}; RSS {m['rss_start_mb']} → {m['rss_full_mb']} MB "
          f"(accounted {m['accounted_mb']} MB); after expiry and sweep {m['rss_after_expiry_mb']} MB, "
          f"{m['left_after_sweep']} entries left.")
