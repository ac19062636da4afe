#!/usr/bin/env python3
"""auditlake against DuckDB and ClickHouse (chDB) used by hand: one command, same files, one run.

    cargo build --release --workspace --bins
    pip install duckdb chdb
    python3 benches/peers/run.py                      # 1 M and 10 M events, median of 3
    python3 benches/peers/run.py --scales 1m,10m,50m   # 50 M: ingest only (RSS budget)

For each scale it generates a month of messy logs with `auditlake generate` (reused when the
folder already holds them), then times each job as a whole process (wall clock around the
process, peak RSS from the kernel's rusage of that process, `os.wait4`), median of `--runs`:

- ingest: JSON Lines -> deduplicated, day-partitioned, zstd store (auditlake: `ingest events`
  + `ingest directory` into a fresh lake; DuckDB `duck.py ingest`; chDB `ch.py ingest`);
- the monthly 12 KPIs: auditlake `kpi --raw` (from the events) and `kpi` (from rollups, built
  beforehand by `rollups --rebuild`, timed on its own); the peers from their own stores;
- one user's downloads, all time (`sql` / `lookup`);
- a full rule evaluation at one instant (`alerts evaluate` / `duck_rules.py`).

It checks that the answers agree (KPIs field by field to 1e-9 relative, lookups by count and
first/last event, findings as sets of (rule, key)) and writes `benches/RESULTS.md` (the measured
tables above the marker line; the hand-written analysis below it is kept). Numbers are printed,
never asserted: nothing here fails on a slow machine.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
MARKER = "<!-- Everything below this line is written by hand and kept by run.py. -->"

# events -> generator users: about 25 events per user and day over 31 days.
SCALES = {
    "1m": {"users": 1290, "jobs": ["ingest", "kpis", "lookup", "rules"]},
    "10m": {"users": 12904, "jobs": ["ingest", "kpis", "lookup", "rules"]},
    "50m": {"users": 64520, "jobs": ["ingest"]},
}
FROM, TO = "2026-10-01", "2026-10-31"
RULES_NOW = "2026-10-31T18:00:00+08:00"


def log(msg):
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


class Run:
    """One timed process: wall seconds, peak RSS in MiB, stdout text."""

    def __init__(self, secs, rss_mib, out):
        self.secs, self.rss_mib, self.out = secs, rss_mib, out


def timed(cmd, cwd=None, stdin=None):
    """Runs `cmd` as one process; its wall clock and its own peak RSS (ru_maxrss, KiB)."""
    out_path = Path(cwd or ".") / f".peer-stdout-{os.getpid()}"
    with open(out_path, "w") as out, open(os.devnull) as devnull:
        start = time.perf_counter()
        p = subprocess.Popen(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.PIPE, stdin=stdin or devnull, text=True
        )
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        secs = time.perf_counter() - start
        p.returncode = os.waitstatus_to_exitcode(status)
    text = out_path.read_text()
    out_path.unlink()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {p.returncode}:\n{err[-3000:]}")
    return Run(secs, ru.ru_maxrss / 1024.0, text)


def median_of(runs):
    """The run of median wall time (its RSS is reported with it; peak RSS is the max)."""
    ordered = sorted(runs, key=lambda r: r.secs)
    mid = ordered[len(ordered) // 2]
    return {
        "secs": statistics.median(r.secs for r in runs),
        "all": [round(r.secs, 3) for r in runs],
        "rss_mib": max(r.rss_mib for r in runs),
        "out": mid.out,
    }


# ---------------------------------------------------------------------------------------------
# Answers


def close(x, y):
    return abs(x - y) <= 1e-9 * max(abs(x), abs(y), 1.0)


def diff(ref, other, path=""):
    """Differences of `other` from `ref` (fields `other` lacks are listed apart)."""
    missing, wrong = [], []
    if isinstance(ref, dict):
        if not isinstance(other, dict):
            return [], [f"{path}: not an object"]
        for k, v in ref.items():
            if k not in other:
                missing.append(f"{path}.{k}".lstrip("."))
                continue
            m, w = diff(v, other[k], f"{path}.{k}")
            missing += m
            wrong += w
    elif isinstance(ref, list):
        if not isinstance(other, list) or len(other) != len(ref):
            return [], [f"{path}: list of {len(ref)} vs {len(other) if isinstance(other, list) else other!r}"]
        for i, (a, b) in enumerate(zip(ref, other)):
            m, w = diff(a, b, f"{path}[{i}]")
            missing += m
            wrong += w
    elif isinstance(ref, bool) or ref is None or isinstance(ref, str):
        if ref != other:
            wrong.append(f"{path.lstrip('.')}: {ref!r} vs {other!r}")
    elif isinstance(ref, (int, float)):
        if not isinstance(other, (int, float)) or isinstance(other, bool) or not close(ref, other):
            wrong.append(f"{path.lstrip('.')}: {ref!r} vs {other!r}")
    return missing, wrong


def compare_kpis(ref_text, other_text):
    """Per KPI: 'same', 'same (N fields not computed)', or the first differences."""
    ref = json.loads(ref_text)["kpis"]
    other = json.loads(other_text).get("kpis", {})
    verdicts = {}
    for name, fields in ref.items():
        if name not in other:
            verdicts[name] = "not computed"
            continue
        missing, wrong = diff(fields, other[name])
        if wrong:
            verdicts[name] = "DIFFERENT: " + "; ".join(wrong[:3])
        elif missing:
            verdicts[name] = f"same ({len(missing)} fields not computed: {', '.join(missing[:4])})"
        else:
            verdicts[name] = "same"
    return verdicts


# ---------------------------------------------------------------------------------------------
# The jobs, one function per tool and job: each returns the command and its working folder.


class Scale:
    def __init__(self, args, name):
        self.name = name
        self.users = SCALES[name]["users"]
        self.jobs = SCALES[name]["jobs"]
        self.root = Path(args.dir).resolve() / f"u{self.users}"
        self.data = self.root / "data"
        self.auditlake = str(Path(args.auditlake).resolve())
        self.python = sys.executable

    def generate(self):
        marker = self.data / ".peers-data"
        want = f"users={self.users} days=31 files=4 seed=42\n"
        if marker.exists() and marker.read_text() == want:
            return
        shutil.rmtree(self.data, ignore_errors=True)
        self.data.mkdir(parents=True)
        log(f"generating {self.users} users x 31 days into {self.data}")
        subprocess.run(
            [self.auditlake, "generate", "--users", str(self.users), "--out", str(self.data)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        marker.write_text(want)

    def inputs(self):
        return sorted(str(p) for p in self.data.glob("events-*.jsonl*"))

    def lines(self):
        n = 0
        for f in self.inputs():
            with open(f, "rb") as fh:
                n += sum(buf.count(b"\n") for buf in iter(lambda: fh.read(1 << 24), b""))
        return n

    def store(self, tool):
        return self.root / f"store-{tool}"

    def fresh_auditlake_store(self):
        store = self.store("auditlake")
        shutil.rmtree(store, ignore_errors=True)
        store.mkdir(parents=True)
        toml = (self.data / "auditlake.toml").read_text()
        toml = toml.replace('lake = "./lake"', f'lake = "{store / "lake"}"')
        (store / "auditlake.toml").write_text(toml)
        return store

    def peer(self, tool, *sub):
        script = {"duckdb": "duck.py", "chdb": "ch.py"}[tool]
        return [self.python, str(HERE / script), *sub]


def run_ingest(sc, tool):
    if tool == "auditlake":
        store = sc.fresh_auditlake_store()
        cfg = str(store / "auditlake.toml")
        ev = timed([sc.auditlake, "ingest", "events", "--config", cfg, "--format", "json", *sc.inputs()], cwd=store)
        dr = timed(
            [sc.auditlake, "ingest", "directory", "--config", cfg,
             "--users", str(sc.data / "users.jsonl"), "--departments", str(sc.data / "departments.jsonl")],
            cwd=store,
        )
        return Run(ev.secs + dr.secs, max(ev.rss_mib, dr.rss_mib), ev.out)
    store = sc.store(tool)
    shutil.rmtree(store, ignore_errors=True)
    return timed(sc.peer(tool, "ingest", "--data", str(sc.data), "--store", str(store)))


def ingest_counts(tool, out):
    v = json.loads(out)
    if tool == "auditlake":
        return {
            "written": v.get("written", v.get("events_written")),
            "duplicates": v.get("duplicates", v.get("duplicates_skipped")),
            "rejected": v.get("quarantined", v.get("rejected")),
        }
    return {k: v.get(k) for k in ("written", "duplicates", "rejected")}


def kpi_cmd(sc, tool, raw=False):
    if tool == "auditlake":
        store = sc.store("auditlake")
        cmd = [sc.auditlake, "kpi", "--config", str(store / "auditlake.toml"),
               "--from", FROM, "--to", TO, "--format", "json"]
        return (cmd + ["--raw"] if raw else cmd), store
    return sc.peer(tool, "kpis", "--data", str(sc.data), "--store", str(sc.store(tool)),
                   "--from", FROM, "--to", TO), None


def lookup_cmd(sc, tool, user):
    if tool == "auditlake":
        store = sc.store("auditlake")
        sql = ("SELECT event_id, ts FROM events WHERE user_id = '%s' AND action = 'file_download' "
               "ORDER BY ts, event_id" % user)
        return [sc.auditlake, "sql", "--config", str(store / "auditlake.toml"), "--format", "json", sql], store
    return sc.peer(tool, "lookup", "--store", str(sc.store(tool)), "--user", user), None


def lookup_answer(tool, out):
    if tool == "auditlake":
        rows = json.loads(out) if out.strip() else []
        if isinstance(rows, dict):
            rows = rows.get("rows", [])
        return {"rows": len(rows), "first": rows[0]["event_id"] if rows else None,
                "last": rows[-1]["event_id"] if rows else None}
    v = json.loads(out)
    return {k: v.get(k) for k in ("rows", "first", "last")}


def rules_cmd(sc, tool):
    if tool == "auditlake":
        store = sc.store("auditlake")
        return [sc.auditlake, "alerts", "evaluate", "--config", str(store / "auditlake.toml"),
                "--now", RULES_NOW, "--format", "json"], store
    return [sc.python, str(HERE / "duck_rules.py"), "--data", str(sc.data),
            "--store", str(sc.store("duckdb")), "--now", RULES_NOW], None


def findings(out):
    v = json.loads(out)
    items = v["findings"] if isinstance(v, dict) else v
    return {(f["rule"], f["key"]) for f in items}


# ---------------------------------------------------------------------------------------------


def available(tool):
    if tool == "auditlake":
        return True
    mod = {"duckdb": "duckdb", "chdb": "chdb"}[tool]
    script = HERE / {"duckdb": "duck.py", "chdb": "ch.py"}[tool]
    ok = subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True).returncode == 0
    return ok and script.exists()


def repeat(n, fn):
    return median_of([fn() for _ in range(n)])


def bench_scale(args, name, tools):
    sc = Scale(args, name)
    sc.generate()
    runs = 1 if name == "50m" else args.runs
    res = {"scale": name, "users": sc.users, "lines": sc.lines(), "jobs": {}, "runs": runs,
           "when": time.strftime("%Y-%m-%d, started %H:%M UTC", time.gmtime())}
    log(f"{name}: {res['lines']} lines; tools {', '.join(tools)}; {runs} run(s) each")

    ing = {}
    for tool in tools:
        log(f"{name}: ingest, {tool}")
        try:
            m = repeat(runs, lambda: run_ingest(sc, tool))
            m["answer"] = ingest_counts(tool, m.pop("out"))
            ing[tool] = m
        except Exception as e:  # a peer that fails is reported, not fatal
            ing[tool] = {"error": str(e)[:500]}
    res["jobs"]["ingest"] = ing
    if "kpis" not in sc.jobs:
        return res

    # Rollups: built from nothing, timed, then the KPI set from them.
    log(f"{name}: auditlake rollups --rebuild")
    store = sc.store("auditlake")
    res["rollup_build"] = repeat(
        runs, lambda: timed([sc.auditlake, "rollups", "--config", str(store / "auditlake.toml"), "--rebuild"], cwd=store)
    )
    res["rollup_build"].pop("out")

    kp = {}
    for tool in tools:
        variants = [("auditlake rollups", False), ("auditlake raw", True)] if tool == "auditlake" else [(tool, False)]
        for label, raw in variants:
            log(f"{name}: KPIs, {label}")
            try:
                cmd, cwd = kpi_cmd(sc, tool, raw)
                kp[label] = repeat(runs, lambda: timed(cmd, cwd=cwd))
            except Exception as e:
                kp[label] = {"error": str(e)[:500]}
    ref = kp.get("auditlake raw", {}).get("out")
    for label, m in kp.items():
        out = m.pop("out", None)
        if ref and out and label != "auditlake raw":
            m["answer"] = compare_kpis(ref, out)
    res["jobs"]["kpis"] = kp

    user = "u%05d" % (sc.users // 3)
    lk = {}
    for tool in tools:
        log(f"{name}: lookup of {user}, {tool}")
        try:
            cmd, cwd = lookup_cmd(sc, tool, user)
            m = repeat(runs, lambda: timed(cmd, cwd=cwd))
            m["answer"] = lookup_answer(tool, m.pop("out"))
            lk[tool] = m
        except Exception as e:
            lk[tool] = {"error": str(e)[:500]}
    res["jobs"]["lookup"] = lk
    res["lookup_user"] = user

    rl = {}
    for tool in [t for t in tools if t != "chdb"]:
        if tool == "duckdb" and not (HERE / "duck_rules.py").exists():
            continue
        log(f"{name}: rules at {RULES_NOW}, {tool}")
        try:
            cmd, cwd = rules_cmd(sc, tool)
            m = repeat(runs, lambda: timed(cmd, cwd=cwd))
            m["answer"] = sorted(map(list, findings(m.pop("out"))))
            rl[tool] = m
        except Exception as e:
            rl[tool] = {"error": str(e)[:500]}
    res["jobs"]["rules"] = rl
    return res


# ---------------------------------------------------------------------------------------------
# RESULTS.md


def fmt_s(m):
    if not m:
        return "—"
    if "error" in m:
        return "failed"
    s = m["secs"]
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def ratio(ours, peers):
    times = [p["secs"] for p in peers if p and "secs" in p]
    if not ours or "secs" not in ours or not times:
        return None
    return min(times) / ours["secs"]


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {mem} RAM, {platform.system()} {platform.release()}"


def versions(args):
    out = []
    a = subprocess.run([args.auditlake, "--version"], capture_output=True, text=True).stdout.strip()
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out.append(f"{a} (release build, commit {rev})")
    for mod in ("duckdb", "chdb"):
        v = subprocess.run([sys.executable, "-c", f"import {mod}; print({mod}.__version__)"], capture_output=True, text=True)
        out.append(f"{mod} {v.stdout.strip() or 'not installed'} (Python module)")
    out.append(f"Python {platform.python_version()}")
    return out


def answer_line(job, tool, m, ref):
    if not m or "error" in m:
        return None
    if m.get("answer") == ref:
        return "same"
    return f"DIFFERENT: {m.get('answer')} vs auditlake {ref}"


def write_results(args, results):
    lines = [
        "# Benchmarks: auditlake against DuckDB and ClickHouse (chDB) by hand",
        "",
        "Written by `python3 benches/peers/run.py` (see its docstring and `benches/README.md`):",
        "every job is a whole process, the wall clock around it, the median of the runs; peak RSS",
        "is that process's own (`ru_maxrss`). Ratios are the faster peer's time over auditlake's",
        "(above 1: auditlake faster). The peers' code is `benches/peers/duck.py`, `ch.py` and",
        "`duck_rules.py`, written as a user would write them by hand.",
        "",
        f"- Machine: {machine()}",
        f"- Written: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; each scale says when it ran and how many runs",
    ]
    lines += [f"- {v}" for v in versions(args)]
    aims = {"ingest": "≥ 2× ClickHouse, ≥ 3× DuckDB", "kpis raw": "≥ 2×", "kpis rollups": "≥ 10×",
            "lookup": "≥ 4×"}
    for res in results:
        J = res["jobs"]
        when = f"; run {res['when']}, median of {res['runs']}" if "runs" in res else ""
        lines += ["", f"## {res['scale'].upper()} events ({res['lines']:,} lines, {res['users']:,} users, 31 days{when})", ""]
        lines += ["| job | auditlake | DuckDB | chDB | ratio to the faster | aim |",
                  "|---|---|---|---|---|---|"]
        ing = J["ingest"]
        a = ing.get("auditlake")
        lines.append(
            f"| ingest (dedup, day partitions, zstd) | {fmt_s(a)} | {fmt_s(ing.get('duckdb'))} | "
            f"{fmt_s(ing.get('chdb'))} | {fmt_ratio(ratio(a, [ing.get('duckdb'), ing.get('chdb')]))} "
            f"(DuckDB {fmt_ratio(ratio(a, [ing.get('duckdb')]))}, chDB {fmt_ratio(ratio(a, [ing.get('chdb')]))}) | {aims['ingest']} |"
        )
        rss = " / ".join(
            f"{t} {ing[t]['rss_mib']:.0f} MiB" for t in ("auditlake", "duckdb", "chdb") if t in ing and "rss_mib" in ing[t]
        )
        if "kpis" in J:
            k = J["kpis"]
            peers = [k.get("duckdb"), k.get("chdb")]
            for label, aim in (("auditlake raw", aims["kpis raw"]), ("auditlake rollups", aims["kpis rollups"])):
                what = "from raw events" if label.endswith("raw") else "from rollups"
                lines.append(
                    f"| the monthly 12 KPIs, {what} | {fmt_s(k.get(label))} | {fmt_s(k.get('duckdb'))} | "
                    f"{fmt_s(k.get('chdb'))} | {fmt_ratio(ratio(k.get(label), peers))} | {aim} |"
                )
            lk = J["lookup"]
            lines.append(
                f"| one user's downloads, all time | {fmt_s(lk.get('auditlake'))} | {fmt_s(lk.get('duckdb'))} | "
                f"{fmt_s(lk.get('chdb'))} | {fmt_ratio(ratio(lk.get('auditlake'), [lk.get('duckdb'), lk.get('chdb')]))} | {aims['lookup']} |"
            )
            rl = J.get("rules", {})
            lines.append(
                f"| all 12 rules at one instant | {fmt_s(rl.get('auditlake'))} | {fmt_s(rl.get('duckdb'))} | — | "
                f"{fmt_ratio(ratio(rl.get('auditlake'), [rl.get('duckdb')]))} | — |"
            )
        lines += ["", f"Peak RSS of ingest: {rss}."]
        if "rollup_build" in res:
            b = res["rollup_build"]
            lines.append(f"Building every rollup from nothing (`rollups --rebuild`): {fmt_s(b)}, peak {b['rss_mib']:.0f} MiB.")
            k = J["kpis"]
            rss = " / ".join(f"{t} {m['rss_mib']:.0f} MiB" for t, m in k.items() if "rss_mib" in m)
            lines.append(f"Peak RSS of the KPI set: {rss}.")
        lines += ["", "Same answers:", ""]
        ref = ing.get("auditlake", {}).get("answer")
        for t in ("duckdb", "chdb"):
            m = ing.get(t)
            if m and "answer" in m:
                lines.append(f"- ingest, {t}: {m['answer']} (auditlake {ref})")
            elif m:
                lines.append(f"- ingest, {t}: failed: {m.get('error', '')[:200]}")
        if "kpis" in J:
            for label, m in J["kpis"].items():
                if "answer" in m:
                    bad = {n: v for n, v in m["answer"].items() if v != "same"}
                    summary = "all 12 the same as `kpi --raw`" if not bad else "; ".join(f"{n}: {v}" for n, v in bad.items())
                    lines.append(f"- KPIs, {label}: {summary}")
                elif "error" in m:
                    lines.append(f"- KPIs, {label}: failed: {m['error'][:200]}")
            lr = J["lookup"].get("auditlake", {}).get("answer")
            for t in ("duckdb", "chdb"):
                m = J["lookup"].get(t)
                if m and "answer" in m:
                    lines.append(f"- lookup of {res['lookup_user']}, {t}: {'same' if m['answer'] == lr else m['answer']} ({lr})")
            rl = J.get("rules", {})
            if "auditlake" in rl and "duckdb" in rl and "answer" in rl["duckdb"]:
                a, d = set(map(tuple, rl["auditlake"]["answer"])), set(map(tuple, rl["duckdb"]["answer"]))
                lines.append(f"- rules, duckdb: {len(a)} findings by auditlake, {len(d)} by DuckDB, "
                             f"{len(a & d)} the same (rule, key)")
        lines += ["", "<details><summary>every run (seconds)</summary>", "", "```"]
        for job, per in J.items():
            for t, m in per.items():
                if "all" in m:
                    lines.append(f"{res['scale']} {job:7} {t:18} {m['all']}")
        lines += ["```", "", "</details>"]
    out = Path(args.out)
    kept = ""
    if out.exists() and MARKER in out.read_text():
        kept = out.read_text().split(MARKER, 1)[1]
    out.write_text("\n".join(lines) + "\n\n" + MARKER + (kept or "\n"))
    (Path(args.dir) / "results.json").write_text(json.dumps(results, indent=1))
    log(f"wrote {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", default="1m,10m")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=str(REPO / "target" / "bench-peers"))
    ap.add_argument("--auditlake", default=str(REPO / "target" / "release" / "auditlake"))
    ap.add_argument("--tools", default="auditlake,duckdb,chdb")
    ap.add_argument("--out", default=str(REPO / "benches" / "RESULTS.md"))
    args = ap.parse_args()
    if not Path(args.auditlake).exists():
        sys.exit(f"no auditlake binary at {args.auditlake}: build it with `cargo build --release --workspace --bins`"
                 " or pass --auditlake PATH")
    tools = [t for t in args.tools.split(",") if t]
    for t in tools:
        if not available(t):
            log(f"{t}: not available (pip install duckdb chdb; benches/peers/*.py) — left out")
    tools = [t for t in tools if available(t)]
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    # Scales measured by an earlier invocation (same --dir) are kept unless measured again, so
    # e.g. `--scales 50m --tools auditlake` adds the 50 M row to the 1 M and 10 M tables.
    earlier = Path(args.dir) / "results.json"
    by_scale = {r["scale"]: r for r in json.loads(earlier.read_text())} if earlier.exists() else {}
    for s in [s for s in args.scales.split(",") if s]:
        by_scale[s] = bench_scale(args, s, tools)
    results = [by_scale[s] for s in SCALES if s in by_scale]
    write_results(args, results)
    print(Path(args.out).read_text().split(MARKER)[0])


if __name__ == "__main__":
    main()
