"""Benchmark: the eventgen shape (4 quick jobs, 2 x c5.large) end to end on the VM runner
(``awsac local up --vm``: QEMU machines of the baked image) beside the process runner.

Prints the figures (and ``--json``): image build and debootstrap times from the cache's records,
phase times from the client's side, the guests' boot (console) times, and QEMU's memory per VM.
Run: ``python bench/vm_e2e.py`` (needs root the first time, to build the images).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, fmt_s, kill_leftovers, machine_info  # noqa: E402
from e2e import job_dir  # noqa: E402


def _cli(state: Path, *argv: str) -> dict[str, Any]:
    env = dict(os.environ, AWSAC_STATE_DIR=str(state), PYTHONPATH=f"{ROOT}:{ROOT / 'agent'}")
    out = subprocess.run(
        [sys.executable, "-m", "awsac_tui.cli", *argv, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode not in (0, 1):
        raise RuntimeError(f"awsac {' '.join(argv)}: {out.stderr}")
    return json.loads(out.stdout)


def _qemu_rss(state: Path) -> list[int]:
    """Resident memory (KiB) of each QEMU of this state dir."""
    sizes = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "cmdline").read_bytes().startswith(b"qemu-system"):
                continue
            if str(state).encode() not in (entry / "cmdline").read_bytes():
                continue
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]))
    return sizes


def run_session(vm: bool, timeout: float) -> dict[str, Any]:
    """One session on a private local cloud; the client-side phase times."""
    from awsac_tui.local import service

    state = Path(tempfile.mkdtemp(prefix="awsac-bench-vm-" if vm else "awsac-bench-proc-"))
    old = os.environ.get("AWSAC_STATE_DIR")
    os.environ["AWSAC_STATE_DIR"] = str(state)
    os.environ.update({"AWSAC_POLL_SECONDS": "2", "AWSAC_WAITER_DELAY_SECONDS": "1"})
    marks: dict[str, float] = {}
    rss: list[int] = []
    try:
        t0 = time.monotonic()
        info = service.ensure_up(boot_delay=0, vm=vm)
        marks["local cloud up"] = time.monotonic() - t0
        snapshot = service.make_snapshot(ROOT / "examples" / "eventgen" / "release", "bench")
        toml = job_dir(state / "job", info.image_id, snapshot)
        start = time.monotonic()
        sid = _cli(state, "start", str(toml), "--yes")["session_id"]
        marks["start returned"] = time.monotonic() - start
        deadline = start + timeout
        while True:
            snap = _cli(state, "check", sid)
            now = time.monotonic() - start
            states = [i["state"] for i in snap["instances"]]
            jobs = [j["status"] for j in snap["jobs"]]
            if states and all(s == "running" for s in states):
                marks.setdefault("instances running", now)
            if any(j != "pending" for j in jobs):
                marks.setdefault("first job started", now)
            if jobs and all(j == "finished" for j in jobs):
                marks.setdefault("all jobs finished", now)
            if states and all(s == "terminated" for s in states) and "all jobs finished" in marks:
                marks["instances terminated"] = now
                break
            if vm:
                rss = max(rss, _qemu_rss(state), key=sum)
            if time.monotonic() > deadline:
                raise RuntimeError(f"session {sid} did not end within {timeout:.0f} s: {snap}")
            time.sleep(1.0)
        boots = []
        for console in (state / "local" / "instances").glob("*/console.log"):
            text = console.read_text(errors="replace")
            # guest uptime when the agent's boot step printed its banner (kernel timestamps)
            for line in text.splitlines():
                if "AWSACtools: autorun" in line and line.startswith("["):
                    boots.append(float(line[1:].split("]")[0]))
                    break
        return {
            "runner": "vm" if vm else "process",
            "marks": marks,
            "boot_to_agent_s": boots,
            "qemu_rss_mib": [round(k / 1024) for k in rss],
            "loadavg": os.getloadavg(),
        }
    finally:
        service.down()
        kill_leftovers(state)
        subprocess.run(["rm", "-rf", str(state)], check=False)
        if old is None:
            os.environ.pop("AWSAC_STATE_DIR", None)
        else:
            os.environ["AWSAC_STATE_DIR"] = old


def image_figures() -> dict[str, Any]:
    from awsac_tui.local import image

    out: dict[str, Any] = {}
    try:
        out["debootstrap_s"] = json.loads((image.rootfs_path() / ".complete").read_text())[
            "seconds"
        ]
    except (OSError, ValueError, KeyError):
        out["debootstrap_s"] = None
    for kind in image.KINDS:
        found = image.find_image(kind)
        out[f"{kind}_build_s"] = found.manifest().get("build_seconds") if found else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--timeout", type=float, default=1200.0)
    args = parser.parse_args(argv)
    started = time.monotonic()
    from awsac_tui.local import image

    image.ensure_images()
    results = {
        "machine": machine_info(),
        "images": image_figures(),
        "process": run_session(False, args.timeout),
        "vm": run_session(True, args.timeout),
        "took_s": 0.0,
    }
    results["took_s"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    imgs = results["images"]
    print(
        f"images: debootstrap {imgs['debootstrap_s']} s (once per machine), "
        f"baked {imgs['baked_build_s']} s, stock {imgs['stock_build_s']} s"
    )
    print(f"{'phase (from start)':<24}{'process':>10}{'vm':>10}")
    names = list(results["vm"]["marks"])
    for name in names:
        cells = [results[r]["marks"].get(name) for r in ("process", "vm")]
        print(f"{name:<24}" + "".join(f"{fmt_s(c) if c is not None else '-':>10}" for c in cells))
    vm = results["vm"]
    print(f"guest boot to the agent's first line: {vm['boot_to_agent_s']} s (guest uptime)")
    print(f"QEMU resident memory per VM: {vm['qemu_rss_mib']} MiB; load {vm['loadavg']}")
    print(f"whole benchmark: {results['took_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
