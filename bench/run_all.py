"""Run every awsac benchmark and write bench/RESULTS.md (and the raw figures, bench/results.json).

``python bench/run_all.py`` runs them all (about 6-8 minutes on 2 cores);
``python bench/run_all.py --render`` rewrites RESULTS.md from results.json without running.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import common
from common import fmt_bytes, machine_info, median, private_local_cloud

BENCH = Path(__file__).resolve().parent
RESULTS_JSON = common.RESULTS_JSON
RESULTS_MD = BENCH / "RESULTS.md"
ANALYSIS_MD = BENCH / "analysis.md"


def _plain(obj: Any) -> Any:
    if is_dataclass(obj):
        return {k: _plain(v) for k, v in asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def run_everything(args: argparse.Namespace) -> dict[str, Any]:
    import agent_throughput
    import e2e
    import monitor_scale

    out: dict[str, Any] = {
        "machine": machine_info(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": {
            "e2e_runs": args.e2e_runs,
            "scale_repeats": args.scale_repeats,
            "throughput_runs": args.throughput_runs,
        },
    }
    t_all = time.monotonic()
    print("# 4. TUI latency (own process, for its peak RSS)", flush=True)
    tui_out = BENCH / ".tui.json"
    subprocess.run(
        [sys.executable, str(BENCH / "tui_latency.py"), f"--out={tui_out}"],
        check=True,
        cwd=BENCH,
        stdout=subprocess.DEVNULL,
    )
    out["tui"] = json.loads(tui_out.read_text())
    tui_out.unlink()
    with private_local_cloud(boot_delay=0.0) as (info, state):
        print("# 1. end-to-end overhead", flush=True)
        out["e2e"] = _plain(e2e.run(info, state, runs=args.e2e_runs, profile=True))
        print("# 2+3. monitor scaling, naive and raw boto3", flush=True)
        sizes = tuple(int(s) for s in args.sizes.split(","))
        scale = monitor_scale.run(info, sizes, repeats=args.scale_repeats)
        out["scale"] = [{**_plain(r), "summary": monitor_scale.summary(r)} for r in scale]
        print("# 5. agent throughput", flush=True)
        out["throughput"] = _plain(
            agent_throughput.run(info, state, runs=args.throughput_runs, profile=True)
        )
    out["duration_s"] = time.monotonic() - t_all
    return out


# ---- rendering ----------------------------------------------------------------------------------


def _ms(s: float) -> str:
    return f"{s * 1000:.0f} ms"


def _profile_excerpt(text: str, lines: int = 45) -> str:
    body = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(body[:lines])


def _pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))] if v else float("nan")


def _ratio_verdict(scale: list[dict[str, Any]]) -> str:
    over = [
        f"{r['n_jobs']} jobs by {r['summary']['client_wall'] / r['summary']['raw_wall'] - 1.2:.2f}x"
        for r in scale
        if r["summary"]["client_wall"] / r["summary"]["raw_wall"] > 1.2
    ]
    return "(**met** at every size)." if not over else f"(**missed** at {', '.join(over)})."


def _opt_ms(v: float | None) -> str:
    return "-" if v is None else _ms(v)


def _render_scale(res: dict[str, Any]) -> list[str]:
    scale = res["scale"]
    runs: dict[str, list[str]] = {}  # a size can be measured again alone: each size's date
    for r in scale:
        runs.setdefault(r.get("measured") or res.get("scale_date") or "?", []).append(
            str(r["n_jobs"])
        )
    when = (
        " Measured "
        + "; ".join(
            f"on {d} by `python bench/monitor_scale.py {' '.join(sizes)} --save`"
            for d, sizes in sorted(runs.items())
        )
        + f" (load average at the end of the last run {res.get('scale_load', '?')})."
        if res.get("scale_date")
        else ""
    )
    lines = [
        "## 2. Monitor scaling (one `Monitor.refresh`) and 3. client vs raw boto3",
        "",
        "Sessions of c5.2xlarge (8 cores), jobs `sleep 900`, SimpleDB store, one volume from "
        "the release snapshot per instance. Per size, in the same run and interleaved: the "
        "client's **incremental** refresh (`Monitor.refresh` after 1 % of the jobs changed "
        "status, written through the agent's store code: DescribeInstances of the instances "
        "not running, DescribeVolumes of the volumes not in use, `select ... where updated >= "
        "mark - 10 s`), the client's **full** refresh (`force_full`: everything with the "
        "session tag, `select *` paged by 2,500), the minimal hand-written boto3 script "
        "(paginated DescribeInstances and DescribeVolumes filtered by the session tag, "
        "`select *` paged with `limit 2500` as the client pages; also with SimpleDB's default "
        "100 up to 1,000 jobs) and, up to 1,000 jobs, a naive refresh (DescribeInstances per "
        "instance id, DescribeVolumes per volume id, GetAttributes per job). API calls and "
        "response bytes are counted with a botocore `before-parse` hook on every client." + when,
        "",
        "**What is emulated.** 10 jobs: 2 real instances running the real agent. From 100 jobs: "
        "the instances are really launched by `session.start` (RunInstances, tags, user-data) "
        "on the local cloud, but boot no process (boot command `[]`): 1,250 agents do not fit "
        "a 2-core machine. What the agents would have written is written by the agent's own "
        "code from the benchmark process: one volume per instance (CreateVolume from the "
        "snapshot with the session tag, AttachVolume) and one status record per job through "
        "`awsac_agent.store.SimpleDbStore.put_many` (status running); between two ticks 1 % "
        "of the jobs change status the same way. The monitor cannot tell the difference.",
        "",
        "| jobs | instances | agents | changed per tick | incremental | full | "
        "raw, limit 2500 | raw, 100 per page | naive | full / raw 2500 |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in scale:
        s = r["summary"]
        full = s.get("full_wall")
        ratio = f"{full / s['raw_limit_wall']:.2f}x" if full and s.get("raw_limit_wall") else "-"
        lines.append(
            f"| {r['n_jobs']} | {r['n_instances']} | {'real' if r['real_agents'] else 'emulated'} "
            f"| {r.get('changed_per_tick', '-')} | {_opt_ms(s['client_wall'])} "
            f"| {_opt_ms(full)} | {_opt_ms(s.get('raw_limit_wall'))} "
            f"| {_opt_ms(s.get('raw_wall'))} | {_opt_ms(s.get('naive_wall'))} | {ratio} |"
        )
    lines += [
        "",
        "API calls and bytes received per refresh:",
        "",
        "| jobs | incremental calls | incremental bytes | full calls | full bytes | "
        "raw 2500 calls | raw 2500 bytes | naive calls |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def n(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    def b(v: float | None) -> str:
        return "-" if v is None else fmt_bytes(v)

    for r in scale:
        s = r["summary"]
        lines.append(
            f"| {r['n_jobs']} | {n(s['client_calls'])} | {b(s['client_bytes'])} "
            f"| {n(s.get('full_calls'))} | {b(s.get('full_bytes'))} "
            f"| {n(s.get('raw_limit_calls'))} | {b(s.get('raw_limit_bytes'))} "
            f"| {n(s.get('naive_calls'))} |"
        )
    lines += ["", "Client calls by operation and their summed time (last sample):", ""]
    for r in scale:
        for kind in ("client", "full"):
            if not r.get(kind):
                continue
            c = r[kind][-1]
            ops = ", ".join(
                f"{op} x{k} ({c['op_seconds'].get(op, 0) * 1000:.0f} ms)"
                for op, k in sorted(c["ops"].items())
            )
            label = "incremental" if kind == "client" else "full"
            lines.append(f"- {r['n_jobs']} jobs, {label}: {ops}")
    by_n = {r["n_jobs"]: r for r in scale}
    big = max(scale, key=lambda r: r["n_jobs"])
    bs = big["summary"]
    inc, calls = bs["client_wall"], bs["client_calls"]
    ok = inc is not None and inc < 0.3 and calls is not None and calls <= 3
    lines += [
        "",
        f"- Target: at {big['n_jobs']} jobs the incremental refresh under 300 ms with at most "
        f"3 calls: " + ("**met**" if ok else "**missed**") + f" ({_opt_ms(inc)}, {n(calls)} calls, "
        f"samples {', '.join(_ms(x['wall']) for x in big['client'])}).",
    ]
    if bs.get("beats_wall") is not None:
        lines.append(
            f"- The heartbeat poll, apart from the ticks (its own timer, once per beat interval, "
            f"30 s): {_opt_ms(bs['beats_wall'])}, {n(bs.get('beats_calls'))} call(s) "
            f"(ListObjectsV2 of {big['n_instances']} heartbeats) at {big['n_jobs']} jobs."
        )
    small = by_n.get(1000)
    if small is not None and small["summary"].get("full_wall") and bs.get("full_wall"):
        growth = bs["full_wall"] / small["summary"]["full_wall"]
        factor = big["n_jobs"] / 1000
        lines.append(
            f"- Target: the full refresh grows at most linearly from 1,000 to {big['n_jobs']} "
            f"jobs: {_ms(small['summary']['full_wall'])} -> {_ms(bs['full_wall'])}, "
            f"{growth:.1f}x for {factor:.0f}x the jobs: "
            + ("**met**" if growth <= factor else "**missed**")
            + "."
        )
    if small is not None and small["summary"].get("full_wall"):
        fw = small["summary"]["full_wall"]
        lines.append(
            "- Target: a 1000-job refresh under 1 s: "
            + (f"**met** ({_ms(fw)})" if fw < 1 else f"**missed** by {_ms(fw - 1)} ({_ms(fw)})")
            + f" (the full one; incremental {_opt_ms(small['summary']['client_wall'])})."
        )
    ratios = [
        (r["n_jobs"], r["summary"]["full_wall"] / r["summary"]["raw_limit_wall"])
        for r in scale
        if r["summary"].get("full_wall") and r["summary"].get("raw_limit_wall")
    ]
    over = [f"{k} jobs" for k, x in ratios if x > 1.2]
    lines += [
        "- Target: the client's full refresh within 1.2x of the raw script paging as it does: "
        + ", ".join(f"{k} jobs {x:.2f}x" for k, x in ratios)
        + (" (**met** at every size)." if not over else f" (**missed** at {', '.join(over)})."),
        "- Rounds per figure: "
        + ", ".join(f"{r['n_jobs']} jobs {len(r['client'])}" for r in scale)
        + "; session set-up: "
        + ", ".join(f"{r['n_jobs']} jobs {r['setup_s']:.0f} s" for r in scale)
        + ".",
        "",
    ]
    for key, label in (("profile", "incremental"), ("full_profile", "full")):
        if big.get(key):
            lines += [
                f"<details><summary>pyinstrument profile of one {label} client refresh at "
                f"{big['n_jobs']} jobs</summary>",
                "",
                "```",
                _profile_excerpt(big[key], 60),
                "```",
                "</details>",
                "",
            ]
    return lines


def _render_tui(t: dict[str, Any]) -> list[str]:
    def row(label: str, v: list[float]) -> str:
        return (
            f"| {label} | {median(v):.1f} ms | {_pct(v, 0.9):.1f} ms | {max(v):.1f} ms | {len(v)} |"
        )

    live = t.get("live")
    fixed_big = t.get("fixed_big")
    lines = [
        "## 4. TUI latency (session screen, refreshing)",
        "",
        "`AwsacApp` in a Textual pilot, terminal 120x40, the session screen refreshing every "
        "1 s (interval scale 0.2). Latency = from the key press to the first frame that shows "
        "the effect (the benchmark renders each frame to terminal sequences, as a real driver "
        "does; the headless driver skips that). **Fixed backend**: a FixedBackend whose "
        "session (8 cores per instance) changes state at every refresh; its snapshots are made "
        "in advance, so a refresh costs nothing but applying it.",
    ]
    if live:
        lines += [
            "",
            f"**Live backend**: the real `LiveBackend` on a private local cloud holding a "
            f"{live['n_jobs']:,}-job session ({live['n_instances']:,} instances launched, agents "
            f"emulated as in section 2), {live['changed_per_s']} jobs changing status every "
            "second from another process; the screen's refreshes run the real Monitor on the "
            f"MonitorPool's thread (incremental, every 12th full). Keys every {KEY_GAP_S} s.",
        ]
    lines += [
        "",
        "| measure | median | p90 | max | samples |",
        "|---|---:|---:|---:|---:|",
        row("fixed, 1,000 jobs: cursor down in the jobs table", t["cursor_ms"]),
        row("fixed, 1,000 jobs: open a job log (`l`) until its lines show", t["log_open_ms"]),
        row("fixed, 1,000 jobs: one refresh applied to the tables", t["apply_ms"]),
    ]
    if fixed_big:
        k = f"{fixed_big['n_jobs']:,}"
        lines += [
            row(f"fixed, {k} jobs: cursor down in the jobs table", fixed_big["cursor_ms"]),
            row(f"fixed, {k} jobs: one refresh applied to the tables", fixed_big["apply_ms"]),
        ]
    if live:
        k = f"{live['n_jobs']:,}"
        lines += [
            row(f"**live, {k} jobs: cursor down while it refreshes**", live["cursor_ms"]),
            row(f"live, {k} jobs: one refresh applied to the tables", live["apply_ms"]),
            row(
                f"live, {k} jobs: one Monitor.refresh (monitor thread)",
                [x * 1000 for x in live["refresh_s"]],
            ),
        ]
        p90 = _pct(live["cursor_ms"], 0.9)
        lines += [
            "",
            f"Target: key-to-screen p90 under 50 ms on the {k}-job session while it refreshes "
            "(live backend): "
            + (f"**met** ({p90:.1f} ms)" if p90 < 50 else f"**missed** ({p90:.1f} ms)")
            + f". {live['refreshes']} screen refreshes during the presses, {live['full_reads']} "
            f"full reads of the monitor in all; load average {live['load']} at the end; "
            f"set-up {live['setup_s']:.0f} s.",
        ]
    lines += [
        "",
        f"Peak memory: {t['peak_rss_mib']:.0f} MiB resident (ru_maxrss of the benchmark "
        f"process: Python, Textual, the app, {t['refreshes']} refreshes"
        + (", then the live run" if live else "")
        + "), "
        + (
            f"{t['tracemalloc_peak_mib']:.1f} MiB peak of Python allocations (tracemalloc, "
            "separate pass: 1,000 jobs, load, 3 refreshes, open a log)."
            if t.get("tracemalloc_peak_mib") is not None
            else "tracemalloc not measured."
        ),
        "",
    ]
    return lines


KEY_GAP_S = 0.25  # tui_latency.KEY_GAP


def _render_queue(q: dict[str, Any]) -> list[str]:
    import queue_vs_static

    d = q["distribution"]
    lines = [
        "## 7. Static vs queue mode (`bench/queue_vs_static.py`, issue 14)",
        "",
        f"{q['n_jobs']} jobs, each a `sleep` drawn from a seeded {d['kind']} (seed {d['seed']}), "
        f"on {q['cores']} cores of {q['instance_type']} under a vCPU quota of {q['cores']}, "
        "real client and real agents on the local cloud. Static mode is the paper's rule (one "
        f"job per core): {q['cores']} jobs fit the quota at a time, so the workload runs as "
        f"{q['static']['sessions']} sessions of {q['cores']} jobs on "
        f"{q['static']['instances'] // q['static']['sessions']} instances, one after the other. "
        f"Queue mode: one session, `max_instances = {q['queue']['instances']}`. Paid time is an "
        f"instance's launch to its TerminateInstances. Measured {q['date']}; load average "
        f"{q['load_at_start']} at the start, {q['load_at_end']} at the end.",
        "",
        *queue_vs_static.table(q),
        "",
        queue_vs_static.verdict(q) + " Static mode loses its time to boot and teardown per "
        f"{q['cores']} jobs and to each instance waiting for its longest job. The first run of "
        "this benchmark found queue mode's agent spending three loop ticks per job between a "
        "job's end and the next claim; the loop now reaps ended jobs before the claim round and "
        "waits on a claim in flight instead of a whole tick (tests/agent/test_queue_loop.py).",
        "",
    ]
    return lines


def render(res: dict[str, Any]) -> str:
    import e2e

    m = res["machine"]
    lines = [
        "# awsac benchmark results",
        "",
        f"Written by `python bench/run_all.py` on {res['date']} "
        f"(the whole run took {res['duration_s'] / 60:.1f} min). Every figure is the median of "
        "several runs (the count is given); comparisons were measured in the same run, "
        "interleaved. The machine is shared with other work, so expect noise of some 10-30 %.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in m.items()],
        "",
    ]
    # ---- 1
    e = res["e2e"]
    total = e["total"]
    verdict = (
        f"**met** ({total:.1f} s < 10 s)"
        if total < 10
        else f"**missed** by {total - 10:.1f} s ({total:.1f} s)"
    )
    lines += [
        "## 1. End-to-end overhead (eventgen shape, jobs exit at once, boot delay 0)",
        "",
        "4 jobs on 2 x c5.large (2 cores), SimpleDB status store, the release snapshot mounted "
        "as in the paper, each job script replaced by one that prints a line and exits. "
        "Phase boundaries: client-side hooks on RunInstances, the agents' own status writes "
        "(logged by `bench/agent_probe.py`, a botocore hook in the agent processes), the "
        "agents' TerminateInstances, and the client's poll that sees every instance terminated.",
        "",
        f"Target < 10 s: {verdict}. Runs: "
        + ", ".join(f"{t:.2f} s" for t in e["totals"])
        + f" (median of {len(e['totals'])}).",
        "",
        "| phase | median | what it covers |",
        "|---|---:|---|",
    ]
    for name, what in e2e.PHASES:
        lines.append(f"| {name} | {e['phases'][name]:.2f} s | {what} |")
    lines.append(f"| **total** | **{total:.2f} s** | start to results downloaded |")
    if e.get("boot"):
        lines += [
            "",
            "The boot phase split (from the agent processes' own start times, first instance):",
            "",
            "| part of 'boot to first status' | median |",
            "|---|---:|",
            *[f"| {k} | {v:.2f} s |" for k, v in e["boot"].items()],
        ]
    last = e["runs"][-1]
    lines += [
        "",
        f"API calls of one session: client {last['client_calls']} (start, polls every 0.5 s, "
        f"download); agents (both instances) {sum(last['agent_calls'].values())}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(last["agent_calls"].items()))
        + ".",
        "",
    ]
    # ---- 2 + 3
    lines += _render_scale(res)
    # ---- 4
    lines += _render_tui(res["tui"])
    # ---- 5
    tp = res["throughput"]
    lines += [
        "## 5. Agent throughput (64 jobs of `true`, c5.4xlarge = 16 vCPUs)",
        "",
        "The paper's assignment gives an instance at most cores-per-instance jobs, so 64 jobs "
        "on 16-core instances are 4 instances of 16. Both shapes were measured: "
        "**one agent, 64 jobs** (one c5.4xlarge whose user-data says 64 cores per instance, so "
        "one worker runs, saves and reports all 64 jobs) and **4 agents x 16 jobs** (the "
        "standard start). No snapshot (jobs.cfg `-;true.sh;64`), SimpleDB store. Window = "
        "first `running` write to last `finished` write, from the agents' own call log (jobs "
        "that end within the status writer's 2 s coalescing window get only their end record: "
        "then from the first worker's process start, imports included); calls "
        "counted in the worker processes by `bench/agent_probe.py` (a botocore `before-parse` "
        "hook on every client the agent creates; the image's Python is the probe, which then "
        "runs the real `awsac_agent autorun` and the real `awsac-processjobs.pyz`).",
        "",
        "| shape | jobs/s | window | first pending to last finished | S3 calls/job | "
        "status (SimpleDB) calls/job | EC2 calls/job |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in ("one agent, 64 jobs", "4 agents x 16 jobs"):
        v = tp[variant]
        lines.append(
            f"| {variant} | {v['jobs_per_s']:.1f} | {v['window_s']:.2f} s "
            f"| {v['pending_to_finished_s']:.2f} s | {v['s3_per_job']:.2f} "
            f"| {v['sdb_per_job']:.2f} | {v['ec2_per_job']:.2f} |"
        )
    n_runs = len([r for r in tp["runs"] if r["variant"] == "one agent, 64 jobs"])
    lines += [
        "",
        f"Median of {n_runs} runs per shape. Worker calls (one agent, last run): "
        + ", ".join(f"{k} {v}" for k, v in sorted(tp["one agent, 64 jobs"]["calls"].items()))
        + ".",
        "",
    ]
    for name, text in sorted(tp.get("profiles", {}).items())[:1]:
        lines += [
            f"<details><summary>pyinstrument profile of the worker (one agent, 64 jobs; "
            f"{name})</summary>",
            "",
            "```",
            _profile_excerpt(text, 60),
            "```",
            "</details>",
            "",
        ]
    # ---- 6
    if res.get("log_save"):
        import log_save

        ls = res["log_save"]
        lines += [
            "## 6. Saving a big job log (`bench/log_save.py`)",
            "",
            "The agent's `archive.bundle_log` (the redactor's table over the log in 1 MiB chunks "
            "of lines, then tar.bz2 level 9, streaming) against plain `bzip2 -9 -c` on the same "
            "file, each in its own process (wall time and peak RSS of that process), interleaved. "
            "The log is shaped like the eventgen output, with an environment dump holding "
            "secrets every 64 MiB. Run separately: `python bench/log_save.py` (it adds its "
            "figures to results.json).",
            "",
            f"- {log_save.line(ls)}",
            f"- sizes: plain {fmt_bytes(ls['plain_bz2_bytes'])}, ours "
            f"{fmt_bytes(ls['ours_bytes'])}; load average at the start: {ls.get('load')}",
            "",
        ]
    # ---- profiles of the e2e run
    if e.get("profiles"):
        lines += ["## Profiles of one end-to-end session (pyinstrument)", ""]
        for name, text in sorted(e["profiles"].items()):
            lines += [
                f"<details><summary>{name}</summary>",
                "",
                "```",
                _profile_excerpt(text, 50),
                "```",
                "</details>",
                "",
            ]
    if ANALYSIS_MD.exists():
        lines += [ANALYSIS_MD.read_text().strip(), ""]
    if res.get("queue_vs_static"):
        lines += _render_queue(res["queue_vs_static"])
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--render", action="store_true", help="only rewrite RESULTS.md")
    p.add_argument("--e2e-runs", type=int, default=3)
    p.add_argument("--scale-repeats", type=int, default=5)
    p.add_argument("--throughput-runs", type=int, default=3)
    p.add_argument("--sizes", default="10,100,1000")
    args = p.parse_args()
    if args.render:
        res = json.loads(RESULTS_JSON.read_text())
    else:
        res = run_everything(args)
        RESULTS_JSON.write_text(json.dumps(res, indent=1) + "\n")
    RESULTS_MD.write_text(render(res))
    print(f"wrote {RESULTS_MD} ({res['duration_s'] / 60:.1f} min)")


if __name__ == "__main__":
    assert common.ROOT.is_dir()
    main()
