"""6. Saving a big job log: the agent's ``archive.bundle_log`` (redact, then tar.bz2, streaming)
against plain ``bzip2 -9`` on the same data, with the peak memory of each.

``python bench/log_save.py`` (500 MB; ``--mb 50`` for a quick look) prints the figures and adds
them to results.json (key ``log_save``), from which ``run_all.py --render`` writes RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS_JSON, ROOT, machine_info, update_results

TARGET_RATIO = 2.0


def make_log(path: Path, mb: int, seed: int = 7) -> int:
    """A job log of ``mb`` MB shaped like the eventgen example's output (one line per particle),
    with an environment dump holding secrets every 64 MiB (what the redactor must catch)."""
    rng = random.Random(seed)
    lines = []
    for i in range(60_000):
        lines.append(
            f"EVGEN {i:08d} pdg={rng.choice((11, -11, 13, -13, 22, 211, -211, 2212))} "
            f"px={rng.gauss(0, 12):.4f} py={rng.gauss(0, 12):.4f} pz={rng.gauss(0, 60):.4f} "
            f"E={rng.expovariate(0.02):.4f} status=1 vtx=({rng.random():.6f},{rng.random():.6f})\n"
        )
    block = "".join(lines).encode()
    env = (
        b"HOME=/home/atlas\nPATH=/usr/bin:/bin\nMY_DB_PASSWORD=pw-7731\n"
        b"GITHUB_TOKEN=ghp_Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2\n"
        b"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    )
    total = mb * 1_000_000
    written = 0
    with path.open("wb") as fh:
        n = 0
        while written < total:
            if written // (64 << 20) != (written + len(block)) // (64 << 20) or n == 0:
                fh.write(env)
                written += len(env)
            chunk = block[: total - written]
            fh.write(chunk)
            written += len(chunk)
            n += 1
    return written


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MiB) of a command, measured by a fresh wrapper
    process (CPU time does not depend on what else the machine runs; wall time does)."""
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.monotonic()\n"
        "subprocess.run(sys.argv[1:], check=True)\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps([time.monotonic() - t, u.ru_utime + u.ru_stime, u.ru_maxrss / 1024]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], check=True, capture_output=True, text=True
    )
    wall, cpu, rss = json.loads(out.stdout.strip().splitlines()[-1])
    return wall, cpu, rss


def run(mb: int = 500, runs: int = 1) -> dict:
    with tempfile.TemporaryDirectory(
        prefix="awsac-bench-log-", dir=os.environ.get("TMPDIR")
    ) as tmp:
        src = Path(tmp) / "stdouterr_job_1.log"
        size = make_log(src, mb)
        plain: list[tuple[float, float, float]] = []
        ours: list[tuple[float, float, float]] = []
        bundle = (
            "import sys; sys.path[:0] = [sys.argv[4], sys.argv[4] + '/agent']\n"
            "from awsac_agent.archive import bundle_log\n"
            "n = bundle_log(sys.argv[1], sys.argv[2], sys.argv[3])\n"
            "print(n, file=sys.stderr)\n"
        )
        for _ in range(runs):  # interleaved, so that load on the machine hits both alike
            plain.append(timed(["sh", "-c", f"bzip2 -9 -c '{src}' > '{tmp}/plain.bz2'"]))
            ours.append(
                timed(
                    [
                        sys.executable,
                        "-c",
                        bundle,
                        str(src),
                        f"{tmp}/ours.tar.bz2",
                        src.name,
                        str(ROOT),
                    ]
                )
            )
        plain_s = sorted(p[0] for p in plain)[len(plain) // 2]
        ours_s = sorted(o[0] for o in ours)[len(ours) // 2]
        plain_cpu = sorted(p[1] for p in plain)[len(plain) // 2]
        ours_cpu = sorted(o[1] for o in ours)[len(ours) // 2]
        sizes = {
            "plain_bz2_bytes": (Path(tmp) / "plain.bz2").stat().st_size,
            "ours_bytes": (Path(tmp) / "ours.tar.bz2").stat().st_size,
        }
    return {
        "log_bytes": size,
        "runs": runs,
        "plain_bzip2_s": plain_s,
        "bundle_log_s": ours_s,
        "ratio": ours_s / plain_s,
        "plain_bzip2_cpu_s": plain_cpu,
        "bundle_log_cpu_s": ours_cpu,
        "cpu_ratio": ours_cpu / plain_cpu,
        "target_ratio": TARGET_RATIO,
        "plain_peak_rss_mib": max(p[2] for p in plain),
        "bundle_peak_rss_mib": max(o[2] for o in ours),
        "plain_mb_per_s": size / 1e6 / plain_s,
        "bundle_mb_per_s": size / 1e6 / ours_s,
        "load": machine_info().get("load average at start"),
        **sizes,
    }


def line(r: dict) -> str:
    verdict = "met" if r["ratio"] <= r["target_ratio"] else "NOT met"
    return (
        f"{r['log_bytes'] / 1e6:.0f} MB log: bundle_log {r['bundle_log_s']:.1f} s "
        f"({r['bundle_mb_per_s']:.1f} MB/s, peak {r['bundle_peak_rss_mib']:.0f} MiB) vs plain "
        f"bzip2 -9 {r['plain_bzip2_s']:.1f} s ({r['plain_mb_per_s']:.1f} MB/s, peak "
        f"{r['plain_peak_rss_mib']:.0f} MiB): {r['ratio']:.2f}x in wall time, target <= "
        f"{r['target_ratio']:.0f}x {verdict}; CPU time {r['bundle_log_cpu_s']:.1f} s vs "
        f"{r['plain_bzip2_cpu_s']:.1f} s ({r['cpu_ratio']:.2f}x)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--mb", type=int, default=500)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--no-save", action="store_true", help="print only, leave results.json")
    args = p.parse_args()
    t0 = time.monotonic()
    r = run(args.mb, args.runs)
    print(line(r))
    print(f"(took {time.monotonic() - t0:.0f} s)")
    if not args.no_save and RESULTS_JSON.exists():
        update_results(log_save=r)


if __name__ == "__main__":
    main()
