"""examples/eventgen: the files parse, the scripts are clean sh, and the generator does its job."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from awsac_agent.jobscfg import expand_jobs, read_jobs_cfg
from needs import needs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "eventgen"
RELEASE = EXAMPLE / "release" / "14.2.10"
GENERATOR = RELEASE / "bin" / "generate_events"
CONFIG = EXAMPLE / "CSC.007410.singlepart_singlepi_logE.cfg"


def run_generator(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), *args], cwd=tmp_path, capture_output=True, text=True
    )


def read_events(path: Path) -> list[list[float]]:
    return [
        [float(x) for x in line.split()]
        for line in path.read_text().splitlines()
        if not line.startswith("#")
    ]


def test_jobs_cfg_is_the_papers() -> None:
    lines = read_jobs_cfg(EXAMPLE / "jobs.cfg")
    assert [(j.snapshot, j.script, j.count) for j in lines] == [
        ("snap-00000000", "gen_30.sh", 2),
        ("snap-00000000", "gen_1000.sh", 2),
    ]
    assert len(expand_jobs(lines)) == 4
    assert "placeholder" in (EXAMPLE / "jobs.cfg").read_text()


def test_files_are_executable() -> None:
    for path in (EXAMPLE / "gen_30.sh", EXAMPLE / "gen_1000.sh", GENERATOR):
        assert os.access(path, os.X_OK), path


@needs(shutil.which("shellcheck"), "shellcheck is not installed (apt-get install shellcheck)")
def test_scripts_are_shellcheck_clean() -> None:
    scripts = [EXAMPLE / "gen_30.sh", EXAMPLE / "gen_1000.sh", RELEASE / "setup.sh"]
    proc = subprocess.run(
        ["shellcheck", "-s", "sh", *map(str, scripts)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout


def test_generator_1000_events_fast_and_physical(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = run_generator(
        tmp_path, "--events", "1000", "--seed", "765432", "--config", str(CONFIG), "-o", "ev.txt"
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 2.0  # interpreter start included; the generation itself takes milliseconds
    assert "wrote 1000 events to ev.txt" in proc.stdout
    events = read_events(tmp_path / "ev.txt")
    assert len(events) == 1000
    assert [int(e[0]) for e in events] == list(range(1, 1001))
    mass = 0.13957
    for _, pdg, energy, px, py, pz, eta, _phi in events:
        assert pdg == 211
        assert 0.2 <= energy <= 2000
        assert -2.5 <= eta <= 2.5
        p2 = px * px + py * py + pz * pz
        assert math.isclose(energy * energy, p2 + mass * mass, rel_tol=1e-4, abs_tol=1e-4)
    # log-uniform: half the events lie below the geometric middle of the range (20 GeV)
    below = sum(1 for e in events if e[2] < math.sqrt(0.2 * 2000))
    assert 400 < below < 600


def test_generator_is_seedable(tmp_path: Path) -> None:
    for name, seed in (("a.txt", "1"), ("b.txt", "1"), ("c.txt", "2")):
        assert run_generator(tmp_path, "-n", "30", "--seed", seed, "-o", name).returncode == 0
    a, b, c = ((tmp_path / n).read_text() for n in ("a.txt", "b.txt", "c.txt"))
    assert a == b
    assert a != c


@pytest.mark.parametrize(
    ("args", "config", "message"),
    [
        (["-n", "0", "-o", "x"], None, "--events must be at least 1"),
        (["-n", "5"], None, "the following arguments are required: --output/-o"),
        (["-n", "5", "-o", "x", "--config", "nope.cfg"], None, "cannot read config nope.cfg"),
        (
            ["-n", "5", "-o", "x", "--config", "c.cfg"],
            "[singlepart]\nenergy = 5\n",
            "unknown key 'energy'",
        ),
        (["-n", "5", "-o", "x", "--config", "c.cfg"], "[other]\n", "has no [singlepart] section"),
        (["-n", "5", "-o", "nodir/x"], None, "cannot write nodir/x"),
    ],
)
def test_generator_errors(
    tmp_path: Path, args: list[str], config: str | None, message: str
) -> None:
    if config is not None:
        (tmp_path / "c.cfg").write_text(config)
    proc = run_generator(tmp_path, *args)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_setup_sh_needs_atlasdir(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ATLASDir"}
    proc = subprocess.run(
        ["/bin/sh", "-c", f'. "{RELEASE / "setup.sh"}" && echo sourced'],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "sourced" not in proc.stdout
    assert "ATLASDir is not set" in proc.stderr


def test_job_script_runs_like_on_an_instance(tmp_path: Path) -> None:
    env = {**os.environ, "ATLASDir": str(EXAMPLE / "release"), "AWSACworkingDir": str(EXAMPLE)}
    proc = subprocess.run(
        ["/bin/sh", str(EXAMPLE / "gen_1000.sh")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ATLAS JOB BEGIN: gen 1000 events\n")
    assert "bundle successful" in proc.stdout
    assert len(read_events(tmp_path / "EVGEN_007410_00001.txt")) == 1000
    assert "wrote 1000 events" in (tmp_path / "generate_events_gen1000.log").read_text()
    assert (tmp_path / "results.tar.bz2").stat().st_size > 0


def test_job_script_fails_without_release(tmp_path: Path) -> None:
    env = {**os.environ, "ATLASDir": str(tmp_path / "nothing"), "AWSACworkingDir": str(EXAMPLE)}
    proc = subprocess.run(
        ["/bin/sh", str(EXAMPLE / "gen_30.sh")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert not (tmp_path / "results.tar.bz2").exists()
