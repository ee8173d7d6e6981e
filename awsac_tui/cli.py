"""The ``awsac`` command: the TUI by default, the session verbs as subcommands (and the paper's
``--start/--check/--getresults/--cleanup`` spelling) for scripts and logs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from awsac_agent.errors import AwsacError, FormatError
from awsac_agent.status import FAILED, FINISHED, KILLED, LOST

from .progress import Output
from .report import (
    format_counts,
    format_job_blocks,
    format_paper_config,
    format_resources,
    format_time,
)
from .spec import CloudProfile

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
LEGACY_ACTIONS = ("--start", "--check", "--getresults", "--cleanup")


class UsageError(AwsacError):
    """Wrong command-line arguments."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # render_error puts "awsac: " in front; a subcommand's parser names the subcommand
        where = self.prog.removeprefix("awsac").strip()
        raise UsageError(f"{where + ': ' if where else ''}{message} (see `{self.prog} --help`)")


# ----------------------------------------------------------------------------- formatting


def snapshot_exit(snap: Any, *, final: bool) -> int:
    """1 when a job failed/was killed/lost (or, when ``final``, any job is not finished)."""
    bad = {FAILED, KILLED, LOST}
    if any(j.status in bad for j in snap.jobs):
        return EXIT_FAILED
    if final and any(j.status != FINISHED for j in snap.jobs):
        return EXIT_FAILED
    return EXIT_OK


# ----------------------------------------------------------------------------- helpers


def _profile_from(
    args: argparse.Namespace, base: CloudProfile | None = None
) -> CloudProfile | None:
    """The cloud the command line names, or None when it names none."""
    if getattr(args, "local", False):
        return CloudProfile(local=True, region=args.region)
    if args.profile or args.region or args.endpoint_url:
        b = base or CloudProfile()
        return CloudProfile(
            local=False if (args.profile or args.endpoint_url) else b.local,
            profile=args.profile or (None if b.local else b.profile),
            region=args.region or b.region,
            endpoint_url=args.endpoint_url or (None if b.local else b.endpoint_url),
        )
    return None


def _load(args: argparse.Namespace) -> Any:
    from .records import load_record

    rec = load_record(args.session)
    prof = _profile_from(args, rec.cloud)
    return dataclasses.replace(rec, cloud=prof) if prof else rec


def _read_yes(question: str) -> bool:
    try:
        answer = input(f"{question} (y/n): ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


async def _ask_tty(question: str) -> bool:
    """Ask ``question`` on the terminal without blocking the event loop while the user thinks."""
    return await asyncio.to_thread(_read_yes, question)


def _cloud_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cloud")
    g.add_argument("--local", action="store_true", help="use the local cloud (no AWS account)")
    g.add_argument("--profile", help="AWS profile name")
    g.add_argument("--region", help="region, e.g. us-east-1")
    g.add_argument("--endpoint-url", help="endpoint of an EC2/S3-compatible cloud")


# ----------------------------------------------------------------------------- verbs


async def cmd_start(args: argparse.Namespace, out: Output) -> int:
    from . import records, session
    from .cloud import Cloud
    from .spec import load_spec

    spec_path = Path(args.spec)
    spec = await asyncio.to_thread(load_spec, spec_path)
    prof = _profile_from(args, spec.cloud) or spec.cloud
    if args.json:
        out.quiet = True
    out.say(f"# starting new session from {spec_path}")
    async with Cloud(prof) as cloud:
        with out.bar("building session archive") as build:
            plan = await session.plan_start(
                spec_path,
                archive=args.archive,
                cloud=cloud,
                say=out.say,
                keep_instance_on_failure=getattr(args, "keep_instance_on_failure", None),
                progress=build,
            )
        out.say(f"# ----- shortdescription of new session: {plan.spec.shortdescr.upper()} -----")
        out.say(f"# {plan.summary()}")
        out.say(f"# session ID: {plan.session_id}")
        confirm = None if args.yes else _ask_tty
        with out.bar("uploading session archive") as bar:
            record = await session.start(plan, cloud, confirm=confirm, progress=bar, say=out.say)
    if args.write_cfg:
        path = await asyncio.to_thread(records.write_paper_cfg, record, Path.cwd())
        out.say(f"# saving session to file... {path.name}")
    if args.json:
        print(
            json.dumps(
                {
                    "session_id": record.session_id,
                    "reservation_id": record.reservation_id,
                    "record": str(record.path),
                }
            )
        )
    else:
        out.say(
            f"session {record.session_id} started; follow it with `awsac check {record.session_id} --watch`"
        )
    return EXIT_OK


async def cmd_check(args: argparse.Namespace, out: Output) -> int:
    from .cloud import Cloud
    from .monitor import Monitor
    from .views import all_terminal, snapshot_to_json

    rec = _load(args)
    async with Cloud(rec.cloud) as cloud:
        mon = Monitor(rec, cloud, boot_timeout=args.boot_timeout)
        if not args.watch:
            snap = await mon.refresh()
            if args.json:
                print(snapshot_to_json(snap))
            else:
                out.say(format_paper_config(rec) + "\n")
                out.say(format_job_blocks(snap) + "\n")
                out.say(format_resources(snap))
            return snapshot_exit(snap, final=False)
        snap = None
        async for snap in _watch(
            mon, rec, cloud, args.interval, retry=getattr(args, "retry", False), out=out
        ):
            if args.json:
                print(snapshot_to_json(snap), flush=True)
            else:
                out.say(f"{format_time(snap.taken_at)}  {format_counts(snap)}")
        assert snap is not None
        if not args.json:
            out.say("\n" + format_job_blocks(snap))
        return snapshot_exit(snap, final=all_terminal(snap))


def _retryable(snap: Any, rec: Any) -> bool:
    """Whether a job of ``snap`` may get another attempt by itself (lost, or failed with
    retry_failed, under max_attempts): the rule is status.may_retry's."""
    from awsac_agent.status import FAILED, LOST

    for job in snap.jobs:
        if job.status == LOST or (rec.retry_failed and job.status == FAILED):
            if job.attempt < rec.max_attempts:
                return True
    return False


async def _watch(
    mon: Any, rec: Any, cloud: Any, interval: float, *, retry: bool, out: Output
) -> Any:
    """Snapshots every ``interval`` s until every job is terminal; with ``retry``, lost jobs
    are retried (a new reservation) while attempts remain, and the watch goes on."""
    from . import records, session
    from .views import all_terminal

    while True:
        snap = await mon.refresh()
        yield snap
        if retry and _retryable(snap, rec):
            rec = await asyncio.to_thread(records.load_record, rec.session_id)
            result = await session.retry(rec, cloud=cloud, say=out.say)
            out.say(result.text())
            continue
        if all_terminal(snap):
            return
        await asyncio.sleep(interval)


async def cmd_retry(args: argparse.Namespace, out: Output) -> int:
    from . import session
    from .cloud import Cloud

    rec = _load(args)
    async with Cloud(rec.cloud) as cloud:
        result = await session.retry(rec, args.jobs or None, cloud=cloud, say=out.say)
    if args.json:
        print(
            json.dumps(
                {
                    "session_id": rec.session_id,
                    "jobs": list(result.jobs),
                    "skipped": list(result.skipped),
                    "reservation_id": result.reservation_id,
                    "instance_ids": list(result.instance_ids),
                }
            )
        )
    else:
        out.say(result.text())
    return 0 if result.jobs else 1


async def cmd_results(args: argparse.Namespace, out: Output) -> int:
    from . import session

    rec = _load(args)
    if args.paper:
        out.say(format_paper_config(rec) + "\n")
    with out.bar("downloading results") as bar:
        got = await session.results(
            rec,
            args.outdir,
            overwrite=args.overwrite,
            ask_overwrite=None if args.overwrite else (_ask_tty if sys.stdin.isatty() else None),
            progress=bar,
            say=out.say,
        )
    count = {a: sum(1 for d in got if d.action == a) for a in ("skipped", "kept", "refused")}
    saved = sum(1 for d in got if d.action in ("saved", "overwritten"))
    line = f"{saved} saved, {count['skipped']} identical skipped, {count['kept']} kept (differ)"
    if count["refused"]:
        line += f", {count['refused']} refused (their keys would leave the directory)"
    out.say(line)
    return EXIT_FAILED if count["refused"] else EXIT_OK


async def cmd_cleanup(args: argparse.Namespace, out: Output) -> int:
    from . import session
    from .cloud import Cloud

    rec = _load(args)
    if args.paper:
        out.say(format_paper_config(rec) + "\n")
    if rec.state == "cleaned":
        out.say(
            f"session {rec.session_id} was cleaned up already"
            + (f" at {rec.cleaned_at}" if rec.cleaned_at else "")
            + "; asking the cloud again"
        )
    kinds = args.kind or session.CLEANUP_KINDS
    interactive = not args.yes and sys.stdin.isatty()
    async with Cloud(rec.cloud) as cloud:
        plan = await session.plan_cleanup(rec, kinds, cloud=cloud)
        out.say(plan.describe())
        report = await session.cleanup(
            rec,
            kinds,
            force=args.force,
            kill_running=args.kill_running or args.force,
            confirm=_ask_tty if interactive else None,
            say=out.say,
            cloud=cloud,
            plan=plan,
        )
    out.say(report.summary)
    return EXIT_FAILED if report.refused else EXIT_OK


async def cmd_kill(args: argparse.Namespace, out: Output) -> int:
    from . import session

    rec = _load(args)
    try:
        status = await session.kill(rec, args.job, wait=args.wait, timeout=args.timeout)
    except session.JobEnded as ended:
        out.say(str(ended))
        return EXIT_OK
    out.say(f"job {args.job}: {status}")
    return EXIT_OK if (not args.wait or status == KILLED) else EXIT_FAILED


async def cmd_terminate(args: argparse.Namespace, out: Output) -> int:
    from . import session

    rec = _load(args)
    state = await session.terminate(rec, args.instance)
    out.say(f"instance {args.instance}: {state}")
    return EXIT_OK


async def _follow(
    fetch: Callable[[], Awaitable[tuple[str, bool]]], *, follow: bool, interval: float
) -> int:
    """Print the text ``fetch`` returns; with ``follow``, then only what is new while it is live."""
    shown = ""
    while True:
        text, live = await fetch()
        new = text[len(shown) :] if text.startswith(shown) else text
        if new:
            sys.stdout.write(new)
            sys.stdout.flush()
        shown = text
        if not follow or not live:
            return EXIT_OK
        await asyncio.sleep(interval)


async def cmd_console(args: argparse.Namespace, out: Output) -> int:
    from . import session
    from .cloud import Cloud

    rec = _load(args)
    async with Cloud(rec.cloud) as cloud:

        async def fetch() -> tuple[str, bool]:
            return await session.console_output(rec, args.instance, cloud=cloud), True

        return await _follow(fetch, follow=args.follow, interval=args.interval)


async def cmd_logs(args: argparse.Namespace, out: Output) -> int:
    from . import session
    from .cloud import Cloud

    rec = _load(args)

    def write(block: bytes) -> None:
        sys.stdout.buffer.write(block)
        sys.stdout.flush()

    async with Cloud(rec.cloud) as cloud:
        shown = ""
        while True:
            ended = await session.job_ended(rec, args.job, cloud=cloud)
            if ended:
                if shown:
                    out.say(f"\n----- job {args.job} has ended; its saved log follows -----")
                sys.stdout.flush()
                if await session.saved_log(rec, args.job, write, cloud=cloud, say=out.error):
                    return EXIT_OK
            text = await session.live_tail(rec, args.job, cloud=cloud)
            new = text[len(shown) :] if text.startswith(shown) else text
            if new:
                sys.stdout.write(new)
                sys.stdout.flush()
            shown = text
            if not args.follow or ended:  # ended without a saved log: the tail is all there is
                return EXIT_OK
            await asyncio.sleep(args.interval)


async def cmd_ssh(args: argparse.Namespace, out: Output) -> int:
    from . import session

    rec = _load(args)
    cmd = await session.ssh_command(rec, args.instance)
    if cmd[:3] == ["awsac", "local", "shell"]:
        from .local import cli as local_cli

        return int(await asyncio.to_thread(local_cli.main, cmd[2:]) or 0)
    out.say("$ " + " ".join(cmd))
    return await asyncio.to_thread(subprocess.call, cmd)


def cmd_list(args: argparse.Namespace, out: Output) -> int:
    from .records import list_records

    recs = list_records()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "session_id": r.session_id,
                        "state": r.state,
                        "cloud": r.cloud.describe(),
                        "n_jobs": r.n_jobs,
                        "n_instances": r.n_instances,
                        "instance_type": r.instance_type,
                        "created_at": r.created_at,
                        "record": str(r.path),
                    }
                    for r in recs
                ]
            )
        )
        return EXIT_OK
    if not recs:
        out.say(
            "no sessions recorded yet (start one with `awsac start session.toml` or `awsac demo`)"
        )
    for r in recs:
        out.say(
            f"{r.session_id:<32} {r.state:<9} {r.cloud.describe():<12} {r.n_jobs} job(s) on {r.n_instances} instance(s)"
        )
    return EXIT_OK


# ----------------------------------------------------------------------------- parsers


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="awsac", description="Batch job sessions on EC2-style clouds (a modern AWSAC)."
    )
    p.add_argument(
        "--local",
        dest="tui_local",
        action="store_true",
        help="with no command: the terminal UI on the local cloud (started if need be)",
    )
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser)

    def add(name: str, help_: str, session_arg: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        if session_arg:
            sp.add_argument(
                "session", help="session id (or unique prefix), record, or session-<id>.cfg"
            )
        _cloud_flags(sp)
        return sp

    sp = add("start", "start a session from session.toml (or session.ini)", session_arg=False)
    sp.add_argument("spec", help="session.toml or legacy session.ini")
    sp.add_argument("-a", "--archive", help="prebuilt session archive (.tar.bz2)")
    sp.add_argument("-y", "--yes", action="store_true", help="do not ask before running instances")
    sp.add_argument(
        "--json", action="store_true", help="print {session_id, reservation_id, record}"
    )
    sp.add_argument("--write-cfg", action="store_true", help="also write session-<id>.cfg here")
    sp.add_argument(
        "--keep-instance-on-failure",
        type=float,
        metavar="MINUTES",
        help="keep an instance where something failed up MINUTES for debugging, then terminate it",
    )

    sp = add("check", "show the state of a session")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--watch", action="store_true", help="refresh until every job is terminal")
    sp.add_argument("--interval", type=float, default=5.0)
    sp.add_argument("--boot-timeout", type=float, default=300.0)
    sp.add_argument(
        "--retry",
        action="store_true",
        help="with --watch: run lost jobs again (new instances) while max_attempts allows",
    )

    sp = add("retry", "run lost jobs again on new instances (or the named ended jobs)")
    sp.add_argument("jobs", type=int, nargs="*", metavar="JOB", help="job numbers (default: lost)")
    sp.add_argument("--json", action="store_true")

    sp = add("results", "download the session's objects into OUTDIR/session-<id>/")
    sp.add_argument("-o", "--outdir", default=".", help="directory to save into (default: .)")
    sp.add_argument("--overwrite", action="store_true")
    sp.set_defaults(paper=False)

    sp = add(
        "cleanup",
        "remove the session's instances, volumes, unfinished uploads, objects and status store",
    )
    sp.add_argument(
        "-y", "--yes", action="store_true", help="remove without asking (the guards still hold)"
    )
    sp.add_argument(
        "--force",
        action="store_true",
        help="also delete outputs never downloaded, and end running jobs",
    )
    sp.add_argument(
        "--kill-running",
        action="store_true",
        help="terminate instances whose jobs still run (the jobs end as killed)",
    )
    sp.add_argument("--kind", action="append", choices=("instances", "volumes", "store", "objects"))
    sp.set_defaults(paper=False)

    sp = add("kill", "kill one job")
    sp.add_argument("job", type=int)
    sp.add_argument("--wait", action="store_true", help="wait until the job is killed")
    sp.add_argument("--timeout", type=float, default=300.0)

    sp = add("terminate", "terminate one instance of the session")
    sp.add_argument("instance")
    sp = add("console", "an instance's console output")
    sp.add_argument("instance")
    sp.add_argument("--follow", "-f", action="store_true")
    sp.add_argument("--interval", type=float, default=3.0)
    sp = add("logs", "a job's log (live while it runs)")
    sp.add_argument("job", type=int)
    sp.add_argument("--follow", "-f", action="store_true")
    sp.add_argument("--interval", type=float, default=3.0)
    sp = add("ssh", "open a shell on an instance")
    sp.add_argument("instance")

    sp = sub.add_parser("list", help="sessions recorded on this machine")
    sp.add_argument("--json", action="store_true")
    sub.add_parser("local", help="the local cloud (awsac local --help)", add_help=False)
    sp = sub.add_parser("demo", help="run the paper's eventgen example on the local cloud")
    sp.add_argument("--outdir", default=None, help="where to download the results")
    sp.add_argument("--keep-going", action="store_true", help=argparse.SUPPRESS)
    return p


def build_legacy_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="awsac",
        usage="awsac [--start -i SESSION.INI -a ARCHIVE | --check -c CFG | --getresults -c CFG -o DIR | --cleanup -c CFG]",
        description="The paper's awsac-session spelling.",
    )
    g = p.add_mutually_exclusive_group(required=True)
    for a in LEGACY_ACTIONS:
        g.add_argument(a, dest="action", action="store_const", const=a[2:])
    p.add_argument("-i", "--ini", help="session start info file (session.ini or session.toml)")
    p.add_argument("-a", "--archive", help="session archive")
    p.add_argument("-c", "--config", help="session config file session-<id>.cfg")
    p.add_argument("-o", "--outdir", help="directory to save results in")
    p.add_argument("-y", "--yes", action="store_true")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--force", action="store_true", help="cleanup: also outputs never downloaded")
    p.add_argument("--json", action="store_true")
    _cloud_flags(p)
    return p


def _legacy(argv: list[str]) -> tuple[str, argparse.Namespace]:
    a = build_legacy_parser().parse_args(argv)
    ns = argparse.Namespace(
        local=a.local, profile=a.profile, region=a.region, endpoint_url=a.endpoint_url
    )
    if a.action == "start":
        if not a.ini:
            raise UsageError(
                "when --start is set, -i SESSION.INI is needed (and -a ARCHIVE or a job directory)"
            )
        ns.__dict__.update(spec=a.ini, archive=a.archive, yes=a.yes, json=a.json, write_cfg=True)
        return "start", ns
    if not a.config:
        raise UsageError(f"when --{a.action} is set, -c CONFIGFILE is needed")
    ns.session = a.config
    if a.action == "check":
        ns.__dict__.update(json=a.json, watch=False, interval=5.0, boot_timeout=300.0)
        return "check", ns
    if a.action == "getresults":
        if not a.outdir:
            raise UsageError("when --getresults is set, -c CONFIGFILE and -o OUTPUTDIR are needed")
        ns.__dict__.update(outdir=a.outdir, overwrite=a.overwrite, paper=True)
        return "results", ns
    ns.__dict__.update(yes=a.yes, kind=None, paper=True, force=a.force, kill_running=False)
    return "cleanup", ns


COMMANDS = {
    "start": cmd_start,
    "check": cmd_check,
    "retry": cmd_retry,
    "results": cmd_results,
    "cleanup": cmd_cleanup,
    "kill": cmd_kill,
    "terminate": cmd_terminate,
    "console": cmd_console,
    "logs": cmd_logs,
    "ssh": cmd_ssh,
}


def run_tui(local: bool = False) -> int:
    """The terminal UI; ``local``: on the local cloud (`awsac --local`)."""
    try:
        from .ui.app import run_app
        from .ui.live import LiveBackend
    except ImportError:
        print(
            "awsac: the terminal UI is not available in this installation; use a subcommand (awsac --help)"
        )
        return EXIT_USAGE
    backend = LiveBackend(CloudProfile(local=True)) if local else None
    return int(run_app(backend) or 0)


def render_error(exc: AwsacError) -> str:
    """One paragraph for the user (the problems of a FormatError one per line)."""
    text = str(exc).strip() or exc.__class__.__name__
    return f"awsac: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``awsac``; returns the exit code (0 ok, 1 session failed, 2 usage/input)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    out = Output()
    try:
        if not args_list:
            return run_tui()
        if args_list[0] == "local":
            from .local import cli as local_cli

            return int(local_cli.main(args_list[1:]) or 0)
        if any(a in LEGACY_ACTIONS for a in args_list):
            cmd, args = _legacy(args_list)
        else:
            try:
                args = build_parser().parse_args(args_list)
            except SystemExit as exc:  # --help
                return int(exc.code or 0)
            cmd = args.cmd
            if cmd is None:
                return run_tui(local=args.tui_local)
        if cmd == "list":
            return cmd_list(args, out)
        if cmd == "demo":
            from .demo import run_demo

            return asyncio.run(run_demo(outdir=args.outdir, out=out))
        return asyncio.run(COMMANDS[cmd](args, out))
    except AwsacError as exc:
        out.error(render_error(exc))
        return (
            EXIT_USAGE
            if isinstance(exc, UsageError | FormatError)
            else int(getattr(exc, "exit_code", 1))
        )
    except KeyboardInterrupt:
        out.error("awsac: interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - botocore and friends: no traceback at the user
        from .cloud import CLOUD_EXCEPTIONS, translate

        if isinstance(exc, CLOUD_EXCEPTIONS):
            out.error(render_error(translate(exc)))
            return EXIT_FAILED
        if isinstance(exc, OSError):  # a local file or directory: no traceback either
            out.error(render_error(AwsacError(_os_error_text(exc))))
            return EXIT_FAILED
        raise


def _os_error_text(exc: OSError) -> str:
    """A local file error naming the path and what to check."""
    where = f"{exc.filename}: " if exc.filename else ""
    return (
        f"{where}{exc.strerror or exc} (check that the path is right, that you may write there "
        "and that the disk has room, then run the command again)"
    )


if __name__ == "__main__":
    sys.exit(main())
