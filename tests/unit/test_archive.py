"""The session archive builder, the worker zipapp, and the safe extractor (hostile tarballs)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from awsac_agent import archive as arch
from awsac_agent.archive import (
    SESSION_SIDE_FILES,
    add_agent_files,
    build_archive,
    build_processjobs_pyz,
    check_archive,
    list_archive,
    read_member,
    safe_extract,
)
from awsac_agent.errors import ArchiveError, FormatError
from needs import need, needs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "eventgen"
AUTORUN = arch.package_dir() / "session_files" / arch.AUTORUN_SH


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    d = tmp_path / "jobs"
    d.mkdir()
    (d / "jobs.cfg").write_text("snap-00000000;run.sh;2\n-;sub/other.sh;1\n")
    (d / "run.sh").write_text("echo run\n")
    (d / "run.sh").chmod(0o755)
    (d / "sub").mkdir()
    (d / "sub" / "other.sh").write_text("echo other\n")
    (d / "empty").mkdir()
    return d


def members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path, "r:bz2") as tar:
        return {m.name: m for m in tar.getmembers()}


# ---------------------------------------------------------------- the worker zipapp


def test_pyz_holds_only_the_package(tmp_path: Path) -> None:
    # the package's __pycache__ (written by importing it) must not end up in the pyz
    pyz = build_processjobs_pyz(tmp_path / "out" / "awsac-processjobs.pyz")
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert os.access(pyz, os.X_OK)
    with zipfile.ZipFile(pyz) as zf:
        names = zf.namelist()
        main = zf.read("__main__.py").decode()
    assert "awsac_agent/jobscfg.py" in names and "awsac_agent/archive.py" in names
    assert not [n for n in names if "__pycache__" in n]
    # each module beside its bytecode (this Python's), nothing else
    sources = sorted(n for n in names if n.endswith(".py") and n != "__main__.py")
    assert sorted(n for n in names if n.endswith(".pyc")) == [n + "c" for n in sources]
    others = [
        n for n in names if not n.endswith((".py", ".pyc", "/")) and "/session_files/" not in n
    ]
    assert others == []
    assert "awsac_agent.processjobs" in main and "main()" in main
    # the package imports from the zipapp alone
    code = f"import sys; sys.path.insert(0, {str(pyz)!r}); import awsac_agent.jobscfg as j; print(j.__file__)"
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    assert str(pyz) in out.stdout
    # ... from its bytecode where the magic matches (zipimport would compile the source again on
    # every start otherwise), from the source where it does not
    code = (
        f"import sys; sys.path.insert(0, {str(pyz)!r}); import awsac_agent.jobscfg as j; "
        "print(j.__spec__.loader.get_filename('awsac_agent.jobscfg'), j.__cached__)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[0].endswith("awsac_agent/jobscfg.pyc"), out.stdout
    with zipfile.ZipFile(pyz) as zf, zipfile.ZipFile(tmp_path / "badmagic.pyz", "w") as bad:
        for info in zf.infolist():
            data = zf.read(info)
            bad.writestr(info, b"\0\0\0\0" + data[4:] if info.filename.endswith(".pyc") else data)
    code = code.replace(str(pyz), str(tmp_path / "badmagic.pyz"))
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[0].endswith("awsac_agent/jobscfg.py"), out.stdout


# ---------------------------------------------------------------- building


def test_pyz_holds_no_whole_example_secret(tmp_path: Path) -> None:
    """The redactor's examples are fake secrets, but a scan of the archive cannot tell: neither
    the sources nor the bytecode in the worker zipapp may hold one whole (CI found the folded
    constant of "AKIA" + "..." in redact.pyc)."""
    from awsac_agent.redact import RULES

    pyz = build_processjobs_pyz(tmp_path / "awsac-processjobs.pyz")
    with zipfile.ZipFile(pyz) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    assert any(n.endswith("redact.pyc") for n in members)
    for rule in RULES:
        found = [n for n, data in members.items() if rule.secret.encode() in data]
        assert found == [], f"the {rule.name} example is whole in {found}"


def test_build_adds_agent_files_in_fixed_order(job_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sessionarchive.tar.bz2"
    report = build_archive(job_dir, out)
    assert report.path == out
    assert report.size_bytes == out.stat().st_size > 0
    assert report.added_agent_files == list(SESSION_SIDE_FILES)
    assert report.files == [
        "empty",
        "jobs.cfg",
        "run.sh",
        "sub",
        "sub/other.sh",
        *SESSION_SIDE_FILES,
    ]
    assert list_archive(out) == report.files
    m = members(out)
    assert m["run.sh"].mode & 0o777 == 0o755
    assert m[arch.AUTORUN_SH].mode & 0o111 and m[arch.PROCESSJOBS_PYZ].mode & 0o111
    assert m["empty"].isdir() and m["run.sh"].uid == 0 and m["run.sh"].uname == ""
    assert read_member(out, arch.AUTORUN_SH) == AUTORUN.read_bytes()
    again = build_archive(job_dir, tmp_path / "again.tar.bz2")
    assert again.files == report.files


def test_build_example_session(tmp_path: Path) -> None:
    report = build_archive(EXAMPLE, tmp_path / "sessionarchive.tar.bz2")
    assert {"jobs.cfg", "gen_30.sh", "gen_1000.sh", *SESSION_SIDE_FILES} <= set(report.files)
    assert report.added_agent_files == list(SESSION_SIDE_FILES)


def test_users_own_agent_files_are_kept(job_dir: Path, tmp_path: Path) -> None:
    for name in SESSION_SIDE_FILES:
        (job_dir / name).write_text(f"my own {name}\n")
    out = tmp_path / "a.tar.bz2"
    report = build_archive(job_dir, out)
    assert report.added_agent_files == []
    for name in SESSION_SIDE_FILES:
        assert read_member(out, name) == f"my own {name}\n".encode()
    assert sorted(report.files) == report.files


def test_own_autorun_kept_pyz_added(job_dir: Path, tmp_path: Path) -> None:
    (job_dir / arch.AUTORUN_SH).write_text("mine\n")
    report = build_archive(job_dir, tmp_path / "a.tar.bz2")
    assert report.added_agent_files == [arch.PROCESSJOBS_PYZ]
    assert read_member(report.path, arch.AUTORUN_SH) == b"mine\n"


def test_missing_session_file_is_a_clear_error(job_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(arch, "package_dir", lambda: tmp_path / "nowhere" / "awsac_agent")
    with pytest.raises(
        ArchiveError,
        match="the agent's session-side file awsac_all_instances_autorun.sh is missing",
    ):
        build_archive(job_dir, tmp_path / "a.tar.bz2")


def test_symlink_inside_is_kept_as_relative_link(job_dir: Path, tmp_path: Path) -> None:
    for name in SESSION_SIDE_FILES:
        (job_dir / name).write_text("own\n")
    (job_dir / "sub" / "link.sh").symlink_to(job_dir / "run.sh")  # absolute, but inside
    out = tmp_path / "a.tar.bz2"
    build_archive(job_dir, out)
    link = members(out)["sub/link.sh"]
    assert link.issym() and link.linkname == "../run.sh"
    dest = tmp_path / "x"
    safe_extract(out, dest)
    assert (dest / "sub" / "link.sh").read_text() == "echo run\n"


def test_symlink_outside_is_refused(job_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    (job_dir / "data.txt").symlink_to(secret)
    (job_dir / "up").symlink_to("..")
    out = tmp_path / "a.tar.bz2"
    with pytest.raises(ArchiveError) as exc:
        build_archive(job_dir, out)
    msg = str(exc.value)
    assert f"{job_dir / 'data.txt'}: symlink points outside the job directory, to {secret}" in msg
    assert "(copy the file into the job directory instead of linking it)" in msg
    assert f"{job_dir / 'up'}: symlink points outside the job directory" in msg
    assert not out.exists()


def test_dangling_symlink_and_fifo_are_refused(job_dir: Path, tmp_path: Path) -> None:
    (job_dir / "gone").symlink_to(job_dir / "missing")
    os.mkfifo(job_dir / "pipe")
    with pytest.raises(ArchiveError) as exc:
        build_archive(job_dir, tmp_path / "a.tar.bz2")
    assert f"{job_dir / 'gone'}: symlink to {job_dir / 'missing'} points nowhere" in str(exc.value)
    assert f"{job_dir / 'pipe'}: is a special file (device, fifo or socket)" in str(exc.value)


@pytest.mark.parametrize(
    ("setup", "error", "message"),
    [
        (lambda d: (d / "jobs.cfg").unlink(), ArchiveError, "no jobs.cfg in the job directory"),
        (
            lambda d: (d / "run.sh").unlink(),
            FormatError,
            "script 'run.sh' is not in the session archive",
        ),
        (lambda d: (d / "jobs.cfg").write_text("bad\n"), FormatError, "line 1: expected 3 fields"),
    ],
)
def test_jobs_cfg_checked(job_dir: Path, tmp_path: Path, setup, error, message: str) -> None:
    setup(job_dir)
    with pytest.raises(error, match=message):
        build_archive(job_dir, tmp_path / "a.tar.bz2")


def test_other_jobs_cfg_name_is_stored_as_jobs_cfg(job_dir: Path, tmp_path: Path) -> None:
    for name in SESSION_SIDE_FILES:
        (job_dir / name).write_text("own\n")
    (job_dir / "jobs.cfg").rename(job_dir / "small.cfg")
    report = build_archive(job_dir, tmp_path / "a.tar.bz2", jobs_cfg_name="small.cfg")
    assert "jobs.cfg" in report.files and "small.cfg" not in report.files
    assert read_member(report.path, "jobs.cfg").startswith(b"snap-00000000;run.sh;2")
    (job_dir / "jobs.cfg").write_text("-;run.sh;1\n")
    with pytest.raises(ArchiveError, match="has both small.cfg and jobs.cfg"):
        build_archive(job_dir, tmp_path / "b.tar.bz2", jobs_cfg_name="small.cfg")


def test_bad_output_paths(job_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ArchiveError, match=r"must be a .tar.bz2 file \(rename it to end in .tar.bz2\)"
    ):
        build_archive(job_dir, tmp_path / "a.tar.gz")
    with pytest.raises(ArchiveError, match="write it somewhere outside the job directory"):
        (job_dir / "a.tar.bz2").write_bytes(b"")
        build_archive(job_dir, job_dir / "a.tar.bz2")
    with pytest.raises(ArchiveError, match="not a directory"):
        build_archive(tmp_path / "nope", tmp_path / "a.tar.bz2")


# ---------------------------------------------------------------- prebuilt archives


def make_tar(path: Path, entries: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:bz2") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_add_agent_files_to_prebuilt(tmp_path: Path) -> None:
    src = make_tar(tmp_path / "in.tar.bz2", {"jobs.cfg": b"-;a.sh;1\n", "./a.sh": b"echo\n"})
    out = tmp_path / "out.tar.bz2"
    assert add_agent_files(src, out) == list(SESSION_SIDE_FILES)
    assert check_archive(out) == ["jobs.cfg", "./a.sh", *SESSION_SIDE_FILES]
    assert read_member(out, "a.sh") == b"echo\n"
    assert add_agent_files(out, out) == []  # in place, nothing missing
    assert list_archive(out) == ["jobs.cfg", "./a.sh", *SESSION_SIDE_FILES]


def test_add_agent_files_in_place_keeps_own(tmp_path: Path) -> None:
    entries = {"jobs.cfg": b"-;a.sh;1\n", "a.sh": b""} | {n: b"own" for n in SESSION_SIDE_FILES}
    path = make_tar(tmp_path / "in.tar.bz2", entries)
    assert add_agent_files(path, path) == []
    assert read_member(path, arch.PROCESSJOBS_PYZ) == b"own"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.tar.gz", None, "a session archive must be a .tar.bz2 file"),
        ("missing.tar.bz2", None, "archive not found (check the path)"),
        ("garbage.tar.bz2", b"this is not bzip2", "not a readable .tar.bz2 archive"),
    ],
)
def test_check_archive_errors(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    elif name.endswith(".gz"):
        path.write_bytes(b"")
    for call in (list_archive, check_archive):
        with pytest.raises(ArchiveError) as exc:
            call(path)
        assert str(exc.value).startswith(f"{path}: {message}")


def test_check_archive_truncated(tmp_path: Path) -> None:
    big = os.urandom(300_000)
    path = make_tar(tmp_path / "t.tar.bz2", {"jobs.cfg": b"-;a;1\n", "blob": big})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ArchiveError, match=f"{path}: (damaged|not a readable)"):
        check_archive(path)


# ---------------------------------------------------------------- safe extraction


def test_safe_extract_round_trip(job_dir: Path, tmp_path: Path) -> None:
    for name in SESSION_SIDE_FILES:
        (job_dir / name).write_text("own\n")
    out = tmp_path / "a.tar.bz2"
    report = build_archive(job_dir, out)
    dest = tmp_path / "dest"
    assert safe_extract(out, dest) == report.files
    assert (dest / "sub" / "other.sh").read_text() == "echo other\n"
    assert os.access(dest / "run.sh", os.X_OK) and (dest / "empty").is_dir()


def hostile(path: Path, kind: str) -> Path:
    """A tarball with one harmless file first and then one hostile member."""
    with tarfile.open(path, "w:bz2") as tar:
        ok = tarfile.TarInfo("harmless.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        info = tarfile.TarInfo()
        data = b""
        if kind == "dotdot":
            info.name, data = "../evil.txt", b"evil"
        elif kind == "dotdot_inner":
            info.name, data = "sub/../../evil.txt", b"evil"
        elif kind == "absolute":
            info.name, data = str(path.parent / "abs_evil.txt"), b"evil"
        elif kind == "symlink_abs":
            info.name, info.type, info.linkname = "etc", tarfile.SYMTYPE, "/etc"
        elif kind == "symlink_out":
            info.name, info.type, info.linkname = "sub/up", tarfile.SYMTYPE, "../../.."
        elif kind == "hardlink_out":
            info.name, info.type, info.linkname = "passwd", tarfile.LNKTYPE, "../../etc/passwd"
        elif kind == "chardev":
            info.name, info.type, info.devmajor, info.devminor = "null", tarfile.CHRTYPE, 1, 3
        elif kind == "blockdev":
            info.name, info.type = "sda", tarfile.BLKTYPE
        elif kind == "fifo":
            info.name, info.type = "pipe", tarfile.FIFOTYPE
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data) if data else None)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("dotdot", "member '../evil.txt' contains '..'"),
        ("dotdot_inner", "member 'sub/../../evil.txt' contains '..'"),
        ("absolute", "has an absolute path"),
        ("symlink_abs", "member 'etc' is a symlink to the absolute path '/etc'"),
        ("symlink_out", "member 'sub/up' is a symlink pointing outside the archive ('../../..')"),
        ("hardlink_out", "member 'passwd' is a hard link pointing outside the archive"),
        ("chardev", "member 'null' is a device file"),
        ("blockdev", "member 'sda' is a device file"),
        ("fifo", "member 'pipe' is a fifo"),
    ],
)
def test_hostile_archive_extracts_nothing(tmp_path: Path, kind: str, message: str) -> None:
    box = tmp_path / "box"
    box.mkdir()
    archive = hostile(box / "hostile.tar.bz2", kind)
    dest = box / "work" / "session"
    with pytest.raises(ArchiveError) as exc:
        safe_extract(archive, dest)
    assert message in str(exc.value)
    assert str(exc.value).startswith(f"{archive}: refusing to extract: ")
    assert not dest.exists()  # nothing extracted, not even harmless.txt
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["box", "hostile.tar.bz2"]


def test_every_bad_member_is_named(tmp_path: Path) -> None:
    path = tmp_path / "multi.tar.bz2"
    with tarfile.open(path, "w:bz2") as tar:
        for name in ("../a", "/b"):
            info = tarfile.TarInfo(name)
            tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(ArchiveError) as exc:
        safe_extract(path, tmp_path / "d")
    assert "member '../a' contains '..'" in str(exc.value)
    assert "member '/b' has an absolute path" in str(exc.value)


def test_data_filter_is_a_second_guard(tmp_path: Path, monkeypatch) -> None:
    """Even if the own check missed something, tarfile's data filter refuses it."""
    need(hasattr(tarfile, "data_filter"), "this Python has no tarfile extraction filters")
    monkeypatch.setattr(arch, "unsafe_member", lambda info: None)
    archive = hostile(tmp_path / "h.tar.bz2", "symlink_abs")
    with pytest.raises(ArchiveError, match="refusing to extract|extraction into"):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "dest" / "etc").exists()


def test_safe_extract_of_example_archive_is_runnable(tmp_path: Path) -> None:
    """The example's job script runs from an extracted archive, as on an instance."""
    job = tmp_path / "job"
    shutil.copytree(EXAMPLE, job)
    for name in SESSION_SIDE_FILES:
        (job / name).write_text("own\n")
    out = tmp_path / "s.tar.bz2"
    build_archive(job, out)
    work = tmp_path / "awsac"
    safe_extract(out, work)
    run = tmp_path / "run"
    run.mkdir()
    env = {**os.environ, "ATLASDir": str(work / "release"), "AWSACworkingDir": str(work)}
    proc = subprocess.run(
        ["/bin/sh", str(work / "gen_30.sh")], cwd=run, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ATLAS JOB END: gen 30 events" in proc.stdout
    with tarfile.open(run / "results.tar.bz2") as tar:
        assert tar.getnames() == ["EVGEN_007410_00001.txt", "generate_events_gen30.log"]


def python39() -> str | None:
    """The real executable of a Python 3.9 on this machine (on PATH or under pyenv), or None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [
        shutil.which("python3.9"),
        *map(str, sorted(pyenv.glob("versions/3.9*/bin/python3.9"))),
    ]
    probe = "import sys; print(sys.executable) if sys.version_info[:2] == (3, 9) else None"
    env = {k: v for k, v in os.environ.items() if k != "PYENV_VERSION"}
    for exe in filter(None, candidates):
        out = subprocess.run([exe, "-c", probe], capture_output=True, text=True, env=env)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    return None


@needs(python39(), "no python3.9 on this machine (pyenv install 3.9)")
def test_formats_and_archive_run_on_python39(job_dir: Path, tmp_path: Path) -> None:
    """The agent's oldest Python builds, lists and safely extracts an archive."""
    for name in SESSION_SIDE_FILES:
        (job_dir / name).write_text("own\n")
    code = (
        "import sys\n"
        "from awsac_agent import archive, assignment, jobscfg, s3layout, sessionid, status, userdata\n"
        f"r = archive.build_archive({str(job_dir)!r}, {str(tmp_path / 'a.tar.bz2')!r})\n"
        f"names = archive.safe_extract(r.path, {str(tmp_path / 'x')!r})\n"
        "assert names == r.files, (names, r.files)\n"
        "print(sys.version_info[:2], len(names))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(arch.package_dir().parent)}
    proc = subprocess.run([python39(), "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("(3, 9) ")
    assert (tmp_path / "x" / "sub" / "other.sh").read_text() == "echo other\n"


# ---------------------------------------------------------------- names, credentials, log bundles


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("/tmp/x", "absolute path"),
        ("C:/x", "absolute path"),
        ("a/../../x", "contains '..'"),
        ("..", "contains '..'"),
        ("a//b", "empty path segment"),
        ("a/./b", "'.' path segment"),
        ("a\\b", "backslash"),
        ("", "names no file"),
        ("a\0b", "NUL"),
    ],
)
def test_safe_relpath_refuses(name: str, why: str) -> None:
    rel, reason = arch.safe_relpath(name)
    assert rel is None and why in reason


@pytest.mark.parametrize(
    ("name", "rel"), [("a/b.txt", "a/b.txt"), ("./jobs.cfg", "jobs.cfg"), ("dir/", "dir")]
)
def test_safe_relpath_keeps(name: str, rel: str) -> None:
    assert arch.safe_relpath(name) == (rel, None)


def test_member_under_a_link_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.tar.bz2"
    with tarfile.open(path, "w:bz2") as tar:
        link = tarfile.TarInfo("lib")
        link.type, link.linkname = tarfile.SYMTYPE, "sub"
        tar.addfile(link)
        f = tarfile.TarInfo("lib/x.txt")
        f.size = 1
        tar.addfile(f, io.BytesIO(b"x"))
    with pytest.raises(ArchiveError, match="member 'lib/x.txt' lies under the link 'lib'"):
        safe_extract(path, tmp_path / "d")
    with pytest.raises(ArchiveError, match="lies under the link"):
        check_archive(path)


def test_credential_files_are_refused_and_named(job_dir: Path, tmp_path: Path) -> None:
    (job_dir / ".ssh").mkdir()
    (job_dir / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (job_dir / ".aws").mkdir()
    (job_dir / ".aws" / "credentials").write_text("[default]\n")
    (job_dir / "server.pem").write_text("x")
    (job_dir / ".env").write_text("A=1\n")
    (job_dir / ".netrc").write_text("machine x\n")
    (job_dir / "id_ed25519").write_text("k")
    out = tmp_path / "a.tar.bz2"
    with pytest.raises(ArchiveError) as exc:
        build_archive(job_dir, out)
    text = str(exc.value)
    for rel in (".ssh/id_rsa", ".aws/credentials", "server.pem", ".env", ".netrc", "id_ed25519"):
        assert f"{job_dir}/{rel}: looks like a credential file" in text, rel
    assert "include = [" in text
    assert not out.exists()
    included = [".ssh", ".aws/credentials", "*.pem", ".env", ".netrc", "id_ed25519"]
    report = build_archive(job_dir, out, include=included)
    assert ".ssh/id_rsa" in report.files and "server.pem" in report.files


def test_prebuilt_archive_with_a_key_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "in.tar.bz2"
    with tarfile.open(src, "w:bz2") as tar:
        for name in ("jobs.cfg", ".ssh/id_rsa"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ArchiveError, match=r"in.tar.bz2/.ssh/id_rsa: looks like a credential"):
        add_agent_files(src, tmp_path / "out.tar.bz2")
    assert add_agent_files(src, tmp_path / "out.tar.bz2", include=[".ssh/id_rsa"])


def test_prebuilt_archive_complete_is_copied_byte_for_byte(job_dir: Path, tmp_path: Path) -> None:
    for name in SESSION_SIDE_FILES:
        (job_dir / name).write_text("own\n")
    src = build_archive(job_dir, tmp_path / "in.tar.bz2").path
    seen: list[tuple[int, int]] = []
    assert (
        add_agent_files(src, tmp_path / "out.tar.bz2", progress=lambda d, t: seen.append((d, t)))
        == []
    )
    assert (tmp_path / "out.tar.bz2").read_bytes() == src.read_bytes()
    assert seen[-1] == (src.stat().st_size, src.stat().st_size)


def test_build_reports_progress(job_dir: Path, tmp_path: Path) -> None:
    (job_dir / "data.bin").write_bytes(os.urandom(300_000))
    seen: list[tuple[int, int]] = []
    build_archive(job_dir, tmp_path / "a.tar.bz2", progress=lambda d, t: seen.append((d, t)))
    total = seen[0][1]
    assert seen[0] == (0, total) and seen[-1] == (total, total) and total > 300_000
    assert len(seen) > 3  # while it happens, not only at the end


def test_bundle_log_redacts_streams_and_reads_back(tmp_path: Path) -> None:
    src = tmp_path / "stdouterr_job_1.log"
    lines = [f"event {i} ok\n" for i in range(50_000)]
    lines.insert(10, "MY_DB_PASSWORD=hunter2\n")
    lines.insert(20, "-----BEGIN RSA PRIVATE KEY-----\nMIIEsecret\n-----END RSA PRIVATE KEY-----\n")
    src.write_text("".join(lines))
    dest = tmp_path / "stdouterr_job_1.tar.bz2"
    said: list[str] = []
    assert arch.bundle_log(src, dest, src.name, say=said.append) == 2
    with tarfile.open(dest, "r|bz2") as tar:  # one bzip2 stream: stream readers work too
        (member,) = list(tar)
        assert member.name == src.name and member.mode == 0o644
    with tarfile.open(dest) as tar:
        text = tar.extractfile(src.name).read().decode()
    assert "hunter2" not in text and "MIIEsecret" not in text
    assert text.count("\n") == src.read_text().count("\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, dest.name])
    assert arch.bundle_log(tmp_path / "missing.log", tmp_path / "m.tar.bz2", "x.log") == 0
    with tarfile.open(tmp_path / "m.tar.bz2") as tar:
        assert tar.getmember("x.log").size == 0
