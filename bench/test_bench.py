"""Unit tests of the benchmark helpers (not of any timing): ``python -m pytest bench -q``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agent_probe  # noqa: E402
import run_all  # noqa: E402
from common import CallCounter, kill_leftovers, median  # noqa: E402


def test_status_of_reads_simpledb_and_s3_status_writes() -> None:
    body = {
        "Action": "PutAttributes",
        "ItemName": "job12",
        "Attribute.1.Name": "instance_id",
        "Attribute.1.Value": "i-1",
        "Attribute.2.Name": "status",
        "Attribute.2.Value": "waitforsave",
    }
    assert agent_probe._status_of("sdb", "PutAttributes", {"body": body}) == (12, "waitforsave")
    s3 = {"url_path": "/b/sid/status/job_3.json", "body": json.dumps({"jobnr": 3, "status": "x"})}
    assert agent_probe._status_of("s3", "PutObject", s3) == (3, "x")
    assert agent_probe._status_of("s3", "PutObject", {"url_path": "/b/sid/live/job_3.log"}) == (
        None,
        None,
    )
    assert agent_probe._status_of("sdb", "Select", {"body": body}) == (None, None)
    batch = {
        "Action": "BatchPutAttributes",
        "Item.1.ItemName": "job4",
        "Item.1.Attribute.1.Name": "status",
        "Item.1.Attribute.1.Value": "finished",
        "Item.2.ItemName": "job5",
        "Item.2.Attribute.1.Name": "jobnr",
        "Item.2.Attribute.1.Value": "5",
        "Item.2.Attribute.2.Name": "status",
        "Item.2.Attribute.2.Value": "running",
    }
    assert agent_probe._statuses_of("sdb", "BatchPutAttributes", {"body": batch}) == [
        (4, "finished"),
        (5, "running"),
    ]
    assert agent_probe._statuses_of("sdb", "PutAttributes", {"body": body}) == [(12, "waitforsave")]


def test_call_counter_counts_calls_and_bytes() -> None:
    import boto3
    import moto

    with moto.mock_aws():
        s3 = boto3.client(
            "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
        )
        counter = CallCounter()
        counter.install(s3)
        s3.create_bucket(Bucket="bench-bucket")
        s3.put_object(Bucket="bench-bucket", Key="k", Body=b"0123456789")
        body = s3.get_object(Bucket="bench-bucket", Key="k")["Body"].read()
        assert body == b"0123456789"
        assert counter.calls == {"s3:CreateBucket": 1, "s3:PutObject": 1, "s3:GetObject": 1}
        assert counter.bytes_received >= 10  # the streamed GetObject counts its Content-Length
        assert set(counter.op_seconds) == set(counter.calls)
        counter.reset()
        assert counter.total == 0 and counter.bytes_received == 0


def test_kill_leftovers_ends_only_groups_started_from_the_state_dir(tmp_path: Path) -> None:
    inside = subprocess.Popen(["sh", "-c", f"sleep 60; : {tmp_path}"], start_new_session=True)
    outside = subprocess.Popen(["sh", "-c", "sleep 60; : elsewhere"], start_new_session=True)
    try:
        ended = kill_leftovers(tmp_path)
        assert inside.wait(timeout=10) == -9
        assert ended == [inside.pid]
        assert outside.poll() is None
    finally:
        outside.kill()
        outside.wait()


def test_median_and_render_say_met_or_missed() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    phases = {name: 1.0 for name, _ in __import__("e2e").PHASES}
    sample = {"wall": 1.5, "calls": 12, "bytes": 1000, "ops": {"a": 1}, "op_seconds": {"a": 0.1}}
    summary = {
        f"{k}_{a}": v
        for k in ("client", "full", "naive", "raw", "raw_limit")
        for a, v in (("wall", 1.5), ("calls", 12), ("bytes", 1000))
    }
    res = {
        "machine": {"cpu": "test"},
        "date": "today",
        "duration_s": 60,
        "settings": {"scale_repeats": 1},
        "e2e": {
            "total": 11.0,
            "totals": [11.0],
            "phases": phases,
            "runs": [{"client_calls": 3, "agent_calls": {"s3:PutObject": 2}}],
        },
        "scale": [
            {
                "n_jobs": 1000,
                "n_instances": 125,
                "real_agents": False,
                "setup_s": 1,
                "summary": summary,
                "client": [sample],
            }
        ],
        "tui": {
            "cursor_ms": [1.0],
            "log_open_ms": [2.0],
            "apply_ms": [3.0],
            "refreshes": 1,
            "peak_rss_mib": 10.0,
            "tracemalloc_peak_mib": None,
        },
        "throughput": {
            "runs": [{"variant": "one agent, 64 jobs"}],
            **{
                v: {
                    "jobs_per_s": 1.0,
                    "window_s": 64.0,
                    "pending_to_finished_s": 65.0,
                    "s3_per_job": 2,
                    "sdb_per_job": 5,
                    "ec2_per_job": 0,
                    "calls": {},
                }
                for v in ("one agent, 64 jobs", "4 agents x 16 jobs")
            },
        },
    }
    text = run_all.render(res)
    assert "Target < 10 s: **missed** by 1.0 s" in text
    assert "a 1000-job refresh under 1 s: **missed** by 500 ms" in text
    assert "1.00x" in text


def test_render_of_results_json_keeps_every_section_of_results_md() -> None:
    """`run_all.py --render` rewrites RESULTS.md from results.json: no section may be lost
    (section 7 came from queue_vs_static.py, the analysis from analysis.md)."""
    res = json.loads(run_all.RESULTS_JSON.read_text())
    text = run_all.render(res)
    headings = [ln for ln in run_all.RESULTS_MD.read_text().splitlines() if ln.startswith("## ")]
    rendered = {ln for ln in text.splitlines() if ln.startswith("## ")}
    assert "## 7. Static vs queue mode (`bench/queue_vs_static.py`, issue 14)" in rendered
    assert [h for h in headings if h not in rendered] == []


def test_scale_render_reads_incremental_full_and_live_figures() -> None:
    def sample(wall: float, calls: int) -> dict:
        return {"wall": wall, "calls": calls, "bytes": 2000, "ops": {"x": calls}, "op_seconds": {}}

    def size(n: int, inc: float, full: float) -> dict:
        s = {
            f"{k}_{a}": None
            for k in ("client", "full", "naive", "raw", "raw_limit")
            for a in ("wall", "calls", "bytes")
        }
        s.update(client_wall=inc, client_calls=3, client_bytes=2000, full_wall=full, full_calls=3)
        s.update(raw_limit_wall=full, raw_limit_calls=3, raw_limit_bytes=9)
        return {
            "n_jobs": n,
            "n_instances": n // 8,
            "real_agents": False,
            "setup_s": 1,
            "changed_per_tick": n // 100,
            "summary": s,
            "client": [sample(inc, 3)],
            "full": [sample(full, 3)],
        }

    text = "\n".join(
        run_all._render_scale({"scale": [size(1000, 0.1, 1.0), size(10000, 0.2, 12.0)]})
    )
    assert "under 300 ms with at most 3 calls: **met** (200 ms, 3 calls" in text
    assert "1000 ms -> 12000 ms, 12.0x for 10x the jobs: **missed**" in text
    live = {
        "n_jobs": 10000,
        "n_instances": 1250,
        "cursor_ms": [10.0] * 9 + [80.0],
        "apply_ms": [5.0],
        "refreshes": 4,
        "full_reads": 1,
        "refresh_s": [0.2],
        "changed_per_s": 100,
        "setup_s": 60,
        "load": "1 2 3",
    }
    tui = {
        "cursor_ms": [1.0],
        "log_open_ms": [2.0],
        "apply_ms": [3.0],
        "refreshes": 1,
        "peak_rss_mib": 10.0,
        "tracemalloc_peak_mib": None,
        "live": live,
    }
    assert "while it refreshes (live backend): **met** (10.0 ms)" in "\n".join(
        run_all._render_tui(tui)
    )


def test_changes_flip_one_percent_of_the_jobs_per_tick() -> None:
    import monitor_scale
    from awsac_agent.status import RUNNING, JobRecord

    class Store:
        def __init__(self) -> None:
            self.writes: list[list[JobRecord]] = []

        def put_many(self, records: list[JobRecord]) -> None:
            self.writes.append(records)

    store = Store()
    recs = {n: JobRecord(jobnr=n, status=RUNNING) for n in range(1, 1001)}
    changes = monitor_scale.Changes(store, recs)
    changes.write()
    changes.write()
    assert [len(w) for w in store.writes] == [10, 10]
    flipped = {r.jobnr for r in store.writes[0]}
    assert all(
        changes.records[n].status != RUNNING for n in flipped - {r.jobnr for r in store.writes[1]}
    )
