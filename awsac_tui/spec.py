"""The session spec: ``session.toml`` (read with tomllib, written with tomli-w), and the legacy
``session.ini`` (``[startinfo]``, the paper's six keys) read and converted; validation lists every problem.
"""

from __future__ import annotations

import configparser
import difflib
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import tomli_w
from awsac_agent.assignment import ASSIGNMENTS, QUEUE, STATIC
from awsac_agent.errors import FormatError, join_problems
from awsac_agent.fsutil import atomic_write
from awsac_agent.jobscfg import JobLine, check_scripts_exist, n_jobs, parse_jobs_cfg, read_jobs_cfg
from awsac_agent.sessionid import check_shortdescr
from awsac_agent.status import DEFAULT_MAX_ATTEMPTS, DEFAULT_STORE, STORE_KINDS, store_kinds_text

ImageMode = Literal["baked", "stock"]


@dataclass(frozen=True)
class CloudProfile:
    """Which cloud a session talks to: the local cloud, or AWS/an EC2-compatible endpoint."""

    local: bool = False
    profile: str | None = None  # AWS shared-config profile name
    region: str | None = None
    endpoint_url: str | None = None

    def describe(self) -> str:
        if self.local:
            return "local"
        parts = [self.profile or "default"]
        if self.region:
            parts.append(self.region)
        if self.endpoint_url:
            parts.append(self.endpoint_url)
        return "/".join(parts)


@dataclass(frozen=True)
class SessionSpec:
    """Everything needed to start a session, apart from the jobs themselves (jobs.cfg)."""

    instance_type: str
    image_id: str
    bucket: str
    shortdescr: str
    image_owner: str | None = None
    key_name: str | None = None
    security_groups: tuple[str, ...] = ()
    subnet_id: str | None = None
    availability_zone: str | None = None
    instance_profile: str | None = None  # IAM instance profile name or ARN
    spot: bool = False
    spot_max_price: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    status_store: str = DEFAULT_STORE  # a kind of status.STORE_KINDS
    cloud: CloudProfile = field(default_factory=CloudProfile)
    jobs_cfg: str = "jobs.cfg"  # relative to the spec file's directory
    job_dir: str | None = None  # directory archived as the session archive (default: spec's dir)
    archive: str | None = None  # a prebuilt .tar.bz2 session archive, instead of job_dir
    n_jobs: int | None = None  # stated job count (legacy); must match jobs.cfg
    jobs_per_instance: int | None = None  # lowers the instance type's vCPU count
    image_mode: ImageMode = "baked"
    ssh_user: str = "ec2-user"
    max_job_minutes: float | None = None
    max_session_hours: float = 12.0
    include: tuple[str, ...] = ()  # credential-looking files the archive may carry after all
    # How jobs reach instances (issue 14): "static" is the paper's rule (awsac_agent.assignment);
    # "queue": at most max_instances (or max_vcpus' worth of) instances claim pending jobs.
    assignment: str = STATIC
    max_instances: int | None = None
    max_vcpus: int | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS  # tries of a lost job (of a failed one: retry_failed)
    retry_failed: bool = False
    job_minutes: float | None = None  # estimated minutes per job (for the plan's time estimate)
    # Fallback instance types, tried in order when EC2 has no capacity (or quota) for the one
    # before: the session runs on the first type that launches (issue 14).
    instance_types: tuple[str, ...] = ()


IMAGE_MODES = ("baked", "stock")
REQUIRED_KEYS = ("instance_type", "image_id", "bucket", "shortdescr")
LEGACY_SECTION = "startinfo"
# The paper's six keys of [startinfo] -> SessionSpec field.
LEGACY_KEYS = {
    "instance_type": "instance_type",
    "ami_id": "image_id",
    "sessionsbucket": "bucket",
    "ec2_uid": "image_owner",
    "shortdescr": "shortdescr",
    "n_jobs": "n_jobs",
}

INSTANCE_TYPE_RE = re.compile(
    r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\."
    r"(nano|micro|small|medium|large|xlarge|[0-9]+xlarge|metal(-[0-9]+xl)?)$"
)
AMI_ID_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")
SUBNET_ID_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")
BUCKET_CHARS_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
BUCKET_BAD_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_BAD_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
PRICE_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")

# TOML value kinds per field: what a key must hold.
_STR, _OPT_STR, _BOOL, _OPT_INT, _OPT_FLOAT, _FLOAT, _STR_LIST, _STR_TABLE, _PRICE = range(9)
_KINDS: dict[str, int] = {
    "instance_type": _STR,
    "image_id": _STR,
    "bucket": _STR,
    "shortdescr": _STR,
    "image_owner": _OPT_STR,
    "key_name": _OPT_STR,
    "security_groups": _STR_LIST,
    "subnet_id": _OPT_STR,
    "availability_zone": _OPT_STR,
    "instance_profile": _OPT_STR,
    "spot": _BOOL,
    "spot_max_price": _PRICE,
    "tags": _STR_TABLE,
    "status_store": _STR,
    "jobs_cfg": _STR,
    "job_dir": _OPT_STR,
    "archive": _OPT_STR,
    "n_jobs": _OPT_INT,
    "jobs_per_instance": _OPT_INT,
    "image_mode": _STR,
    "ssh_user": _STR,
    "max_job_minutes": _OPT_FLOAT,
    "max_session_hours": _FLOAT,
    "assignment": _STR,
    "max_instances": _OPT_INT,
    "max_vcpus": _OPT_INT,
    "max_attempts": _OPT_INT,
    "retry_failed": _BOOL,
    "job_minutes": _OPT_FLOAT,
    "instance_types": _STR_LIST,
    "include": _STR_LIST,
}

# The documented range of every number (docs/session-spec.md): (lowest, highest, lowest is
# allowed). Each value must also be finite (TOML allows inf and nan).
RANGES: dict[str, tuple[float, float, bool]] = {
    "n_jobs": (1, 100_000, True),
    "jobs_per_instance": (1, 1024, True),
    "max_job_minutes": (0, 525_600, False),  # up to a year
    "max_session_hours": (0, 8_760, False),  # up to a year
    "spot_max_price": (0, 1_000, False),  # USD per hour
    "max_instances": (1, 100_000, True),
    "max_vcpus": (1, 1_000_000, True),
    "max_attempts": (1, 100, True),
    "job_minutes": (0, 525_600, False),  # up to a year
}
_CLOUD_KINDS: dict[str, int] = {
    "local": _BOOL,
    "profile": _OPT_STR,
    "region": _OPT_STR,
    "endpoint_url": _OPT_STR,
}
_KIND_HELP = {
    _STR: 'a string in double quotes, e.g. "text"',
    _OPT_STR: 'a string in double quotes, e.g. "text" (or leave the key out)',
    _BOOL: "true or false",
    _OPT_INT: "a whole number, e.g. 4 (or leave the key out)",
    _OPT_FLOAT: "a number, e.g. 30 or 2.5 (or leave the key out)",
    _FLOAT: "a number, e.g. 12 or 2.5",
    _STR_LIST: 'a list of strings, e.g. ["sg-0123abcd"]',
    _STR_TABLE: 'a table of string values, e.g. [tags] with project = "atlas"',
    _PRICE: 'a price in USD per hour as a string, e.g. "0.05"',
}


# ---------------------------------------------------------------- locating keys in the text


def key_lines(text: str) -> dict[str, int]:
    """Line number of each key in TOML/INI ``text``, by dotted name (``bucket``, ``cloud.region``).

    A light scan (tables and ``key = value`` lines), good enough to point a user at a line.
    """
    out: dict[str, int] = {}
    table = ""
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = re.match(r"^\[\s*([^\[\]]+?)\s*\]", line)
        if m:
            table = m.group(1).strip().strip("\"'")
            out.setdefault(table, lineno)
            continue
        m = re.match(r"^(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_.-]+)\s*[=:]", line)
        if m:
            key = m.group(1).strip("\"'")
            out.setdefault(f"{table}.{key}" if table else key, lineno)
    return out


def _where(source: str, lines: Mapping[str, int] | None, key: str | None) -> str:
    """``source, line N: key 'k'`` (parts left out when unknown)."""
    lineno = None
    if lines and key:
        lineno = lines.get(key)
        if lineno is None and "." in key:
            lineno = lines.get(key.split(".", 1)[0])
    text = f"{source}, line {lineno}" if lineno else source
    return f"{text}: key {key!r}" if key else text


# ---------------------------------------------------------------- session.toml


def _check_kind(value: Any, kind: int) -> bool:
    if kind in (_STR, _OPT_STR):
        return isinstance(value, str)
    if kind == _BOOL:
        return isinstance(value, bool)
    if kind == _OPT_INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in (_OPT_FLOAT, _FLOAT):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == _STR_LIST:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == _STR_TABLE:
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    if kind == _PRICE:
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    return False


def _convert(value: Any, kind: int) -> Any:
    if kind in (_OPT_FLOAT, _FLOAT):
        return float(value)
    if kind == _STR_LIST:
        return tuple(value)
    if kind == _STR_TABLE:
        return dict(value)
    if kind == _PRICE:
        return value if isinstance(value, str) else repr(value)
    return value


def _unknown_key(key: str, known: Sequence[str], prefix: str = "") -> str:
    hint = ""
    legacy = LEGACY_KEYS.get(key)
    if legacy and legacy != key:
        hint = f" (the legacy session.ini key {key!r} is called {legacy!r} in session.toml)"
    else:
        close = difflib.get_close_matches(key, known, n=1)
        if close:
            hint = f" (did you mean {prefix + close[0]!r}?)"
    return f"unknown key{hint}; known keys: {', '.join(known)}"


def _spec_from_mapping(
    data: Mapping[str, Any], source: str, lines: Mapping[str, int] | None
) -> tuple[SessionSpec | None, list[str]]:
    """A SessionSpec from parsed TOML data, and every problem found: structural ones (unknown
    keys, wrong types, missing keys) and, for every value that did parse, its value problems,
    so that one run lists them all."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    bad: set[str] = set()  # keys whose value could not be taken (their problem is said)
    for key, value in data.items():
        if key == "cloud":
            continue
        kind = _KINDS.get(key)
        if kind is None:
            problems.append(
                f"{_where(source, lines, key)}: {_unknown_key(key, [*_KINDS, 'cloud'])}"
            )
        elif kind == _STR_TABLE and isinstance(value, dict):
            wrong = [k for k, v in value.items() if not isinstance(v, str)]
            for k in wrong:
                problems.append(
                    f"{_where(source, lines, f'{key}.{k}')}: found {value[k]!r}, "
                    f'expected a string in double quotes, e.g. {k} = "text"'
                )
            if wrong:
                bad.add(key)
            else:
                values[key] = _convert(value, kind)
        elif not _check_kind(value, kind):
            bad.add(key)
            problems.append(
                f"{_where(source, lines, key)}: found {value!r}, expected {_KIND_HELP[kind]}"
            )
        else:
            values[key] = _convert(value, kind)
    cloud = CloudProfile()
    raw_cloud = data.get("cloud", {})
    if not isinstance(raw_cloud, dict):
        bad.add("cloud")
        problems.append(
            f"{_where(source, lines, 'cloud')}: expected a table "
            '(write [cloud] on its own line, then local = true or region = "...")'
        )
    else:
        cvalues: dict[str, Any] = {}
        for key, value in raw_cloud.items():
            dotted = f"cloud.{key}"
            kind = _CLOUD_KINDS.get(key)
            if kind is None:
                problems.append(
                    f"{_where(source, lines, dotted)}: {_unknown_key(key, list(_CLOUD_KINDS), 'cloud.')}"
                )
            elif not _check_kind(value, kind):
                bad.add(dotted)
                problems.append(
                    f"{_where(source, lines, dotted)}: found {value!r}, expected {_KIND_HELP[kind]}"
                )
            else:
                cvalues[key] = value
        cloud = CloudProfile(**cvalues)
    missing = [k for k in REQUIRED_KEYS if k not in data]
    for key in missing:
        bad.add(key)
        problems.append(
            f'{source}: key {key!r} is missing (add a line {key} = "..." at the top of the file)'
        )
    if not problems:
        return SessionSpec(cloud=cloud, **values), []
    # Every value that did parse is still checked, so one run lists every problem.
    partial = SessionSpec(cloud=cloud, **{**{k: "" for k in REQUIRED_KEYS}, **values})
    problems += [
        f"{_where(source, lines, key)}: {why}"
        for key, why in _value_problems(partial)
        if key not in bad and key.split(".", 1)[0] not in bad
    ]
    return None, problems


def parse_spec_toml(text: str, source: str = "session.toml") -> SessionSpec:
    """Parse session.toml text; structural problems (syntax, unknown keys, types) raise FormatError."""
    spec, problems = _parse_toml(text, source)
    if spec is None:
        raise FormatError(join_problems(problems), problems)
    return spec


def _parse_toml(text: str, source: str) -> tuple[SessionSpec | None, list[str]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [f"{source}: not valid TOML: {exc} (fix the syntax at that line)"]
    return _spec_from_mapping(data, source, key_lines(text))


# ---------------------------------------------------------------- legacy session.ini


def parse_spec_ini(text: str, source: str = "session.ini") -> SessionSpec:
    """Parse a legacy ``session.ini`` ([startinfo] with the paper's six keys) into a SessionSpec."""
    spec, problems = _parse_ini(text, source)
    if spec is None:
        raise FormatError(join_problems(problems), problems)
    return spec


def _parse_ini(text: str, source: str) -> tuple[SessionSpec | None, list[str]]:
    lines = key_lines(text)
    where = {k.split(".", 1)[1]: v for k, v in lines.items() if k.startswith(LEGACY_SECTION + ".")}
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read_string(text, source=source)
    except configparser.Error as exc:
        msg = " ".join(str(exc).split())
        return None, [f"{source}: not a valid ini file: {msg} (fix that line)"]
    fmt = "[startinfo] with " + ", ".join(f"{k} =" for k in LEGACY_KEYS)
    if not config.has_section(LEGACY_SECTION):
        return None, [f"{source}: no [startinfo] section (the legacy format is {fmt})"]
    problems: list[str] = []
    for section in config.sections():
        if section != LEGACY_SECTION:
            problems.append(
                f"{_where(source, lines, section)}: unknown section [{section}] "
                "(a legacy session.ini has only [startinfo]; use session.toml for more settings)"
            )
    values: dict[str, Any] = {}
    for key, raw in config.items(LEGACY_SECTION):
        value = "".join(raw.split())  # the paper drops all whitespace from values
        if key not in LEGACY_KEYS:
            close = difflib.get_close_matches(key, list(LEGACY_KEYS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                f"{_where(source, where, key)}: unknown key{hint}; [startinfo] has only "
                f"{', '.join(LEGACY_KEYS)} (use session.toml for more settings)"
            )
            continue
        target = LEGACY_KEYS[key]
        if target == "n_jobs":
            if not re.match(r"^[0-9]+$", value) or int(value) < 1:
                problems.append(
                    f"{_where(source, where, key)}: {value!r} is not a positive whole number "
                    "(give the number of jobs in jobs.cfg, e.g. n_jobs = 4)"
                )
                continue
            values[target] = int(value)
        elif target == "image_owner":
            values[target] = value or None
        elif not value:
            problems.append(
                f"{_where(source, where, key)}: value is empty (give it a value, e.g. {key} = ...)"
            )
        else:
            values[target] = value
    for key in LEGACY_KEYS:
        if not config.has_option(LEGACY_SECTION, key):
            problems.append(
                f"{source}: key {key!r} is missing from [startinfo] (the legacy format is {fmt})"
            )
    if problems:
        return None, problems
    return SessionSpec(**values), []


# ---------------------------------------------------------------- files


def _is_ini(path: Path, text: str) -> bool:
    if path.suffix.lower() == ".ini":
        return True
    if path.suffix.lower() == ".toml":
        return False
    return bool(re.search(r"^\s*\[startinfo\]", text, re.MULTILINE))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is not content
    except FileNotFoundError:
        raise FormatError(
            f"{path}: file not found (give the path of a session.toml or a legacy session.ini)"
        ) from None
    except IsADirectoryError:
        raise FormatError(
            f"{path}: is a directory (give the session.toml file inside it)"
        ) from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not UTF-8 text (save it as UTF-8)") from None


def _load(path: Path) -> tuple[SessionSpec | None, list[str], dict[str, int]]:
    text = _read_text(path)
    if _is_ini(path, text):
        spec, problems = _parse_ini(text, str(path))
        lines = {
            LEGACY_KEYS.get(k.split(".", 1)[1], k): v
            for k, v in key_lines(text).items()
            if k.startswith(LEGACY_SECTION + ".")
        }
        return spec, problems, lines
    spec, problems = _parse_toml(text, str(path))
    return spec, problems, key_lines(text)


def load_spec(path: str | os.PathLike[str]) -> SessionSpec:
    """Read ``session.toml`` (or a legacy ``session.ini``, by suffix or a [startinfo] section).

    Raises FormatError listing every structural problem; see validate_spec for the values.
    """
    spec, problems, _ = _load(Path(path))
    if spec is None:
        raise FormatError(join_problems(problems), problems)
    return spec


def spec_to_dict(spec: SessionSpec) -> dict[str, Any]:
    """The TOML data of a spec: None and empty values left out, [cloud] and [tags] as tables."""
    out: dict[str, Any] = {}
    for f in fields(spec):
        value = getattr(spec, f.name)
        if f.name in ("cloud", "tags") or value is None:
            continue
        if isinstance(value, tuple):
            if not value:
                continue
            value = list(value)
        out[f.name] = value
    if spec.tags:
        out["tags"] = dict(spec.tags)
    cloud = {f.name: getattr(spec.cloud, f.name) for f in fields(spec.cloud)}
    out["cloud"] = {k: v for k, v in cloud.items() if v is not None}
    return out


def dump_spec(spec: SessionSpec, header: str = "") -> str:
    """session.toml text for ``spec`` (load_spec of it gives the same spec)."""
    text = tomli_w.dumps(spec_to_dict(spec))
    if header:
        text = "".join(f"# {h}\n".replace("# \n", "#\n") for h in header.splitlines()) + "\n" + text
    return text


def write_spec(
    path: str | os.PathLike[str], spec: SessionSpec, header: str = "", mode: int = 0o644
) -> None:
    """Write ``spec`` as session.toml atomically (a temporary file renamed over ``path``)."""
    atomic_write(Path(path), dump_spec(spec, header).encode("utf-8"), mode)


def update_spec_text(old_text: str, spec: SessionSpec, header: str = "") -> str:
    """``old_text`` (a user's session.toml) changed to hold ``spec``, comments and layout kept.

    Keys whose value is unchanged stay as written; changed keys get the new value in place; keys
    the spec no longer has are removed; new keys are added at the end of their table. A stated
    ``n_jobs`` the spec drops is kept up to date instead (give it with ``spec.n_jobs``). Empty
    ``old_text`` gives ``dump_spec(spec, header)``.
    """
    import tomlkit  # round-trip TOML: only this writer needs it

    if not old_text.strip():
        return dump_spec(spec, header)
    doc = tomlkit.parse(old_text)
    new = spec_to_dict(spec)

    defaults = {f.name: f.default for f in fields(SessionSpec)}

    def merge(table: Any, values: Mapping[str, Any], known: Sequence[str]) -> None:
        for key in list(table.keys()):
            if key in known and key not in values:
                del table[key]
        for key, value in values.items():
            if key not in table and table is doc and defaults.get(key) == value:
                continue  # a default the user did not write stays unwritten
            if isinstance(value, dict):
                sub = table.get(key)
                if sub is None or not isinstance(sub, dict):
                    table[key] = tomlkit.table()
                    sub = table[key]
                merge(sub, value, list(value) + list(sub.keys()))
            elif key not in table or table[key] != value:
                table[key] = value

    known = [f.name for f in fields(SessionSpec)]
    merge(doc, {k: v for k, v in new.items() if k not in ("cloud", "tags")}, known)
    for name, kinds in (("tags", None), ("cloud", _CLOUD_KINDS)):
        values = new.get(name) or {}
        sub = doc.get(name)
        if not values and sub is None:
            continue
        if sub is None:
            doc[name] = tomlkit.table()
            sub = doc[name]
        merge(sub, values, list(kinds) if kinds else list(sub.keys()))
    return tomlkit.dumps(doc)


# ---------------------------------------------------------------- validation


def check_bucket_name(name: str) -> str | None:
    """Why ``name`` breaks the S3 bucket naming rules, or None."""
    fix = "(use 3-63 lowercase letters, digits, hyphens and dots, e.g. 'awsac-sessions')"
    if not 3 <= len(name) <= 63:
        return f"bucket name {name!r} is {len(name)} characters long, must be 3 to 63 {fix}"
    if name != name.lower():
        return f"bucket name {name!r} has uppercase letters {fix}"
    if not BUCKET_CHARS_RE.match(name):
        return (
            f"bucket name {name!r} may only use a-z, 0-9, '.' and '-' and must start and end "
            f"with a letter or digit {fix}"
        )
    if ".." in name:
        return f"bucket name {name!r} has two adjacent dots {fix}"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return f"bucket name {name!r} looks like an IP address {fix}"
    for prefix in BUCKET_BAD_PREFIXES:
        if name.startswith(prefix):
            return f"bucket name {name!r} starts with the reserved prefix {prefix!r} {fix}"
    for suffix in BUCKET_BAD_SUFFIXES:
        if name.endswith(suffix):
            return f"bucket name {name!r} ends with the reserved suffix {suffix!r} {fix}"
    return None


def check_instance_type(name: str) -> str | None:
    """Why ``name`` is not an instance type (``family.size``), or None."""
    if INSTANCE_TYPE_RE.match(name):
        return None
    return (
        f"{name!r} is not an instance type (write family.size in lowercase, "
        "e.g. c5.large, m7g.16xlarge or t3a.nano)"
    )


def check_image_id(image_id: str) -> str | None:
    """Why ``image_id`` is not an AMI id, or None."""
    if AMI_ID_RE.match(image_id):
        return None
    return (
        f"{image_id!r} is not an AMI id (expected ami- and 8 or 17 hex digits, e.g. ami-0abc1234)"
    )


def validate_spec(
    spec: SessionSpec,
    jobs_lines: Sequence[JobLine] | None = None,
    source: str = "session.toml",
    *,
    lines: Mapping[str, int] | None = None,
    jobs_source: str = "jobs.cfg",
) -> list[str]:
    """Every problem with the values of ``spec`` (empty when it is fine).

    With ``jobs_lines`` the stated n_jobs is checked against jobs.cfg; ``lines`` maps keys to line
    numbers of the spec file so each message can point at its line.
    """
    found = _value_problems(spec, jobs_lines, jobs_source)
    return [f"{_where(source, lines, key)}: {why}" for key, why in found]


def _number_problem(key: str, value: float | int | str | None) -> str | None:
    """Why a number is not finite or outside its documented range (``RANGES``), or None."""
    if value is None or key not in RANGES:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None  # not a number at all: said by the key's own check
    low, high, low_ok = RANGES[key]
    span = f"{'from' if low_ok else 'above'} {low:g} {'to' if low_ok else 'up to'} {high:g}"
    if not math.isfinite(number):
        return f"{value!r} is not a finite number (give a number {span})"
    if number < low or (number == low and not low_ok) or number > high:
        return f"{value!r} is out of range (give a number {span})"
    return None


def _value_problems(
    spec: SessionSpec,
    jobs_lines: Sequence[JobLine] | None = None,
    jobs_source: str = "jobs.cfg",
) -> list[tuple[str, str]]:
    """(key, why) for every problem with the values of ``spec``."""
    found: list[tuple[str, str]] = []

    def bad(key: str, why: str | None) -> None:
        if why:
            found.append((key, why))

    bad("shortdescr", check_shortdescr(spec.shortdescr))
    bad("bucket", check_bucket_name(spec.bucket))
    bad("instance_type", check_instance_type(spec.instance_type))
    for fallback in spec.instance_types:
        problem = check_instance_type(fallback)
        if problem:
            bad("instance_types", problem)
        elif fallback == spec.instance_type:
            bad(
                "instance_types",
                f"{fallback!r} is the instance_type itself (list only the types to fall back "
                "to, in order)",
            )
    bad("image_id", check_image_id(spec.image_id))
    if spec.image_owner is not None and not re.match(
        r"^([0-9]{12}|self|amazon|aws-marketplace)$", spec.image_owner
    ):
        bad(
            "image_owner",
            f"{spec.image_owner!r} is not an image owner (give a 12-digit account id, "
            "'self' or 'amazon', or leave it out)",
        )
    if spec.status_store not in STORE_KINDS:
        bad(
            "status_store",
            f"{spec.status_store!r} is not a status store (use {store_kinds_text(chr(34))})",
        )
    if spec.image_mode not in IMAGE_MODES:
        bad(
            "image_mode",
            f'{spec.image_mode!r} is not an image mode (use "baked" for an image with the agent '
            'installed, or "stock" for a plain image bootstrapped by cloud-init)',
        )
    if spec.n_jobs is not None and spec.n_jobs < 1:
        bad("n_jobs", f"{spec.n_jobs} must be at least 1 (or leave it out: jobs.cfg defines it)")
    elif spec.n_jobs is not None and jobs_lines is not None:
        derived = n_jobs(jobs_lines)
        if derived != spec.n_jobs:
            bad(
                "n_jobs",
                f"states {spec.n_jobs} jobs but {jobs_source} defines {derived} "
                f"(set n_jobs = {derived}, or leave it out: jobs.cfg defines the jobs)",
            )
    if spec.jobs_per_instance is not None and spec.jobs_per_instance < 1:
        bad("jobs_per_instance", f"{spec.jobs_per_instance} must be at least 1 (or leave it out)")
    if (
        spec.max_job_minutes is not None
        and math.isfinite(spec.max_job_minutes)
        and not spec.max_job_minutes > 0
    ):
        bad("max_job_minutes", f"{spec.max_job_minutes} must be above 0 (or leave it out)")
    if math.isfinite(spec.max_session_hours) and not spec.max_session_hours > 0:
        bad("max_session_hours", f"{spec.max_session_hours} must be above 0 (e.g. 12)")
    if spec.assignment not in ASSIGNMENTS:
        bad(
            "assignment",
            f"{spec.assignment!r} is not a job assignment (use "
            + " or ".join(f'"{a}"' for a in ASSIGNMENTS)
            + ")",
        )
    for key in ("max_instances", "max_vcpus"):
        value = getattr(spec, key)
        if value is None:
            continue
        if value < 1:
            bad(key, f"{value} must be at least 1 (or leave it out)")
        elif spec.assignment != QUEUE:
            bad(key, f'caps queue mode only (set assignment = "{QUEUE}", or remove {key})')
    if spec.max_attempts is None or spec.max_attempts < 1:
        bad("max_attempts", f"{spec.max_attempts} must be at least 1 (1: never retry)")
    if spec.job_minutes is not None and not spec.job_minutes > 0:
        bad("job_minutes", f"{spec.job_minutes} must be above 0 (or leave it out)")
    if spec.spot_max_price is not None:
        if not spec.spot:
            bad("spot_max_price", "is set but spot is false (set spot = true, or remove the price)")
        if not PRICE_RE.match(spec.spot_max_price):
            bad(
                "spot_max_price",
                f'{spec.spot_max_price!r} is not a price (give USD per hour, e.g. "0.05")',
            )
    if spec.subnet_id is not None and not SUBNET_ID_RE.match(spec.subnet_id):
        bad("subnet_id", f"{spec.subnet_id!r} is not a subnet id (expected subnet-<hex>)")
    if spec.subnet_id and spec.availability_zone:
        bad(
            "availability_zone",
            "is set together with subnet_id (a subnet lies in one zone: keep only one of them)",
        )
    for name in spec.security_groups:
        if not name.strip():
            bad("security_groups", "has an empty entry (give group ids like sg-0123abcd or names)")
    if spec.job_dir is not None and spec.archive is not None:
        bad("archive", "is set together with job_dir (give a job directory or a prebuilt archive)")
    if spec.archive is not None and not spec.archive.endswith(".tar.bz2"):
        bad("archive", f"{spec.archive!r} must be a .tar.bz2 session archive")
    if not spec.jobs_cfg.strip():
        bad("jobs_cfg", 'is empty (give the path of jobs.cfg, e.g. jobs_cfg = "jobs.cfg")')
    if not spec.ssh_user.strip():
        bad("ssh_user", 'is empty (give the login user of the image, e.g. "ec2-user")')
    elif not re.match(r"^[a-z_][a-z0-9_.-]{0,31}$", spec.ssh_user):
        bad("ssh_user", f"{spec.ssh_user!r} is not a login name (lowercase letters, digits, _ . -)")
    if spec.key_name is not None and not re.match(r"^[A-Za-z0-9 ._+=,@-]{1,255}$", spec.key_name):
        bad(
            "key_name",
            f"{spec.key_name!r} is not an EC2 key pair name "
            "(letters, digits, space and ._+=,@- only)",
        )
    for key, value in spec.tags.items():
        tag = f"tags.{key}"
        if key.lower().startswith("aws:"):
            bad(tag, "tag keys starting with 'aws:' are reserved by AWS (rename the tag)")
        elif key.lower().startswith("awsac:"):
            bad(tag, "tag keys starting with 'awsac:' are set by awsac itself (rename the tag)")
        if not key or len(key) > 128:
            bad(tag, "tag keys must be 1 to 128 characters long (shorten the key)")
        if len(value) > 256:
            bad(tag, f"tag value is {len(value)} characters long (at most 256)")
    cloud = spec.cloud
    if cloud.local and (cloud.endpoint_url or cloud.profile):
        bad(
            "cloud.local",
            "local = true ignores profile and endpoint_url (remove them, or set local = false)",
        )
    if cloud.endpoint_url is not None and not re.match(r"^https?://[^\s/]+", cloud.endpoint_url):
        bad(
            "cloud.endpoint_url",
            f'{cloud.endpoint_url!r} is not a URL (e.g. "https://ec2.example.org")',
        )
    if cloud.region is not None and not re.match(r"^[a-z0-9-]+$", cloud.region):
        bad("cloud.region", f'{cloud.region!r} is not a region name (e.g. "eu-west-1")')
    for key in RANGES:
        why = _number_problem(key, getattr(spec, key))
        if why and not any(k == key for k, _ in found):
            found.append((key, why))
    for entry in spec.include:
        parts = entry.strip().split("/")
        if not entry.strip() or entry.startswith("/") or ".." in parts:
            found.append(
                (
                    "include",
                    f"{entry!r} is not a path inside the job directory (give relative paths or "
                    'globs, e.g. include = [".ssh/id_rsa"])',
                )
            )
    return found


# ---------------------------------------------------------------- spec + jobs.cfg


def job_dir_path(spec_path: str | os.PathLike[str], spec: SessionSpec) -> Path:
    """The directory archived as the session archive (``job_dir``, default: the spec's directory)."""
    base = Path(spec_path).parent
    return base / spec.job_dir if spec.job_dir else base


def load_session(spec_path: str | os.PathLike[str]) -> tuple[SessionSpec, list[JobLine]]:
    """Read a spec and its jobs.cfg (``jobs_cfg`` relative to the spec) and validate both.

    Raises FormatError listing every problem (file, line, key and fix in each).
    """
    path = Path(spec_path)
    source = str(path)
    spec, problems, lines = _load(path)
    if spec is None:  # still read jobs.cfg: one run lists every problem of both files
        jobs_path = path.parent / _raw_jobs_cfg(path)
        if jobs_path.is_file():
            try:
                read_jobs_cfg(jobs_path)
            except FormatError as exc:
                problems += exc.problems
        raise FormatError(join_problems(problems), problems)
    jobs_path = path.parent / spec.jobs_cfg
    jobs: list[JobLine] | None = None
    if spec.archive is not None:
        jobs, more = jobs_from_archive(path.parent / spec.archive, source, lines)
        problems += more
    else:
        try:
            jobs = read_jobs_cfg(jobs_path)
        except FormatError as exc:
            problems += exc.problems
        job_dir = job_dir_path(path, spec)
        if not job_dir.is_dir():
            problems.append(
                f"{_where(source, lines, 'job_dir')}: {job_dir} is not a directory "
                "(give the directory with your job scripts and jobs.cfg)"
            )
        else:
            if jobs_path.exists() and jobs_path.resolve().parent != job_dir.resolve():
                problems.append(
                    f"{_where(source, lines, 'jobs_cfg')}: {jobs_path} must lie at the top of "
                    f"the job directory {job_dir} (it travels in the session archive)"
                )
            if jobs is not None:
                have = [
                    p.relative_to(job_dir).as_posix() for p in job_dir.rglob("*") if p.is_file()
                ]
                problems += check_scripts_exist(jobs, have, str(jobs_path))
    problems += validate_spec(spec, jobs, source, lines=lines, jobs_source=str(jobs_path))
    if problems:
        raise FormatError(join_problems(problems), problems)
    assert jobs is not None
    return spec, jobs


def _raw_jobs_cfg(path: Path) -> str:
    """The jobs_cfg a spec names (read loosely, for a spec with other problems)."""
    try:
        value = tomllib.loads(_read_text(path)).get("jobs_cfg")
    except (FormatError, tomllib.TOMLDecodeError):
        value = None
    return value if isinstance(value, str) and value.strip() else "jobs.cfg"


def jobs_from_archive(
    archive_path: Path, source: str = "session.toml", lines: Mapping[str, int] | None = None
) -> tuple[list[JobLine] | None, list[str]]:
    """jobs.cfg read from inside a prebuilt session archive (None if unreadable), and every
    problem: no jobs.cfg, parse errors, scripts missing from the archive."""
    from awsac_agent.archive import JOBS_CFG, read_member
    from awsac_agent.errors import ArchiveError

    where = _where(source, lines, "archive")
    try:
        data = read_member(archive_path, JOBS_CFG)
    except ArchiveError as exc:
        return None, [f"{where}: {exc}"]
    if data is None:
        return None, [
            f"{where}: {archive_path} has no jobs.cfg at its top level (add it to the archive)"
        ]
    try:
        text = data.decode("utf-8-sig")  # read as from a directory: a BOM is not content
        jobs = parse_jobs_cfg(text, f"{archive_path}:jobs.cfg")
    except UnicodeDecodeError:
        return None, [f"{archive_path}:jobs.cfg: not UTF-8 text (save it as UTF-8)"]
    except FormatError as exc:
        return None, exc.problems
    from awsac_agent.archive import list_archive

    names = [n[2:] if n.startswith("./") else n for n in list_archive(archive_path)]
    return jobs, check_scripts_exist(jobs, names, f"{archive_path}:jobs.cfg")
