"""session.toml / session.ini: load, write (round trips), validate, load_session."""

from __future__ import annotations

import dataclasses
import shutil
import tarfile
from pathlib import Path

import pytest
from awsac_agent.errors import FormatError
from awsac_agent.jobscfg import parse_jobs_cfg

from awsac_tui.spec import (
    CloudProfile,
    SessionSpec,
    dump_spec,
    key_lines,
    load_session,
    load_spec,
    parse_spec_ini,
    parse_spec_toml,
    validate_spec,
    write_spec,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "eventgen"

MINIMAL = 'shortdescr = "eventgen"\ninstance_type = "c5.large"\nimage_id = "ami-0abc1234"\nbucket = "atlassessions"\n'
PAPER_INI = """[startinfo]
instance_type = c1.medium
ami_id = ami-c97591a0
sessionsbucket = atlassessions
ec2_uid = 201521871620
shortdescr = eventgen
n_jobs = 4
"""

FULL = SessionSpec(
    instance_type="m7g.16xlarge",
    image_id="ami-0123456789abcdef0",
    bucket="my.sessions-bucket",
    shortdescr="full_1",
    image_owner="self",
    key_name="mykey",
    security_groups=("sg-0123abcd", "default"),
    subnet_id="subnet-0123abcd",
    instance_profile="arn:aws:iam::123456789012:instance-profile/awsac",
    spot=True,
    spot_max_price="0.05",
    tags={"project": "atlas", "owner": "jp"},
    status_store="s3",
    cloud=CloudProfile(profile="work", region="eu-west-1", endpoint_url="https://ec2.example.org"),
    jobs_cfg="jobs/jobs.cfg",
    job_dir="jobs",
    n_jobs=6,
    jobs_per_instance=3,
    image_mode="stock",
    ssh_user="ubuntu",
    max_job_minutes=45.5,
    max_session_hours=2.0,
)


def spec(**changes) -> SessionSpec:
    return dataclasses.replace(parse_spec_toml(MINIMAL), **changes)


# ---------------------------------------------------------------- reading


def test_minimal_toml_defaults() -> None:
    s = parse_spec_toml(MINIMAL)
    assert s == SessionSpec("c5.large", "ami-0abc1234", "atlassessions", "eventgen")
    assert s.status_store == "simpledb" and s.cloud == CloudProfile() and s.jobs_cfg == "jobs.cfg"
    assert validate_spec(s) == []


def test_paper_ini_converts() -> None:
    s = parse_spec_ini(PAPER_INI)
    assert s == SessionSpec(
        instance_type="c1.medium",
        image_id="ami-c97591a0",
        bucket="atlassessions",
        shortdescr="eventgen",
        image_owner="201521871620",
        n_jobs=4,
    )
    assert validate_spec(s) == []


def test_ini_values_lose_whitespace_and_keys_ignore_case() -> None:
    text = PAPER_INI.replace("shortdescr = eventgen", "SHORTDESCR = event gen").replace(
        "ec2_uid = 201521871620", "ec2_uid ="
    )
    s = parse_spec_ini(text)
    assert s.shortdescr == "eventgen" and s.image_owner is None


def test_example_toml_and_ini_agree(tmp_path: Path) -> None:
    toml_spec = load_spec(EXAMPLE / "session.toml")
    ini_spec = load_spec(EXAMPLE / "session.ini")
    assert toml_spec.cloud == CloudProfile(local=True)
    assert ini_spec.cloud == CloudProfile()
    assert dataclasses.replace(toml_spec, cloud=CloudProfile(), tags={}) == ini_spec
    # a legacy file without .ini suffix is recognised by its [startinfo] section
    plain = tmp_path / "startinfo"
    plain.write_text(PAPER_INI)
    assert load_spec(plain).bucket == "atlassessions"


def test_example_session_loads() -> None:
    s, jobs = load_session(EXAMPLE / "session.toml")
    assert s.shortdescr == "eventgen" and s.n_jobs == 4
    assert [(j.script, j.count) for j in jobs] == [("gen_30.sh", 2), ("gen_1000.sh", 2)]
    s_ini, jobs_ini = load_session(EXAMPLE / "session.ini")
    assert jobs_ini == jobs and s_ini.n_jobs == 4


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "value",
    [
        FULL,
        SessionSpec("c5.large", "ami-0abc1234", "bkt", "x"),
        dataclasses.replace(FULL, cloud=CloudProfile(local=True), tags={}),
    ],
)
def test_write_load_round_trip(tmp_path: Path, value: SessionSpec) -> None:
    path = tmp_path / "session.toml"
    write_spec(path, value, header="written by a test\n\nsecond line")
    assert load_spec(path) == value
    assert parse_spec_toml(dump_spec(value)) == value
    assert [p.name for p in tmp_path.iterdir()] == ["session.toml"]  # no temporary file left
    assert path.read_text().startswith("# written by a test\n#\n# second line\n")


def test_ini_to_toml_conversion(tmp_path: Path) -> None:
    legacy = parse_spec_ini(PAPER_INI)
    write_spec(tmp_path / "session.toml", legacy)
    text = (tmp_path / "session.toml").read_text()
    assert 'bucket = "atlassessions"' in text and "sessionsbucket" not in text
    assert load_spec(tmp_path / "session.toml") == legacy


def test_write_spec_mode_and_replace(tmp_path: Path) -> None:
    path = tmp_path / "rec.toml"
    write_spec(path, FULL, mode=0o600)
    write_spec(path, dataclasses.replace(FULL, shortdescr="again"), mode=0o600)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_spec(path).shortdescr == "again"


def test_int_numbers_load_as_floats() -> None:
    s = parse_spec_toml(MINIMAL + "max_job_minutes = 30\nmax_session_hours = 3\n")
    assert s.max_job_minutes == 30.0 and isinstance(s.max_job_minutes, float)
    assert isinstance(s.max_session_hours, float)


# ---------------------------------------------------------------- structural errors (toml)


def problems_of(text: str, parse=parse_spec_toml) -> list[str]:
    with pytest.raises(FormatError) as exc:
        parse(text)
    return exc.value.problems


def test_unknown_key_names_key_line_and_suggestion() -> None:
    (p,) = problems_of(MINIMAL + 'shortdesc = "x"\n')
    assert p.startswith(
        "session.toml, line 5: key 'shortdesc': unknown key (did you mean 'shortdescr'?)"
    )


def test_legacy_key_in_toml_gets_its_new_name() -> None:
    text = MINIMAL.replace('bucket = "atlassessions"', 'sessionsbucket = "atlassessions"')
    probs = problems_of(text)
    assert (
        "session.toml, line 4: key 'sessionsbucket': unknown key (the legacy session.ini key "
        "'sessionsbucket' is called 'bucket' in session.toml)"
    ) in probs[0]
    assert probs[1] == (
        "session.toml: key 'bucket' is missing (add a line bucket = \"...\" at the top of the file)"
    )


def test_unknown_cloud_key() -> None:
    (p,) = problems_of(MINIMAL + '[cloud]\nlocal = true\nregon = "eu-west-1"\n')
    assert p.startswith(
        "session.toml, line 7: key 'cloud.regon': unknown key (did you mean 'cloud.region'?)"
    )


def test_wrong_types_all_reported() -> None:
    text = (
        MINIMAL + 'spot = "yes"\nn_jobs = 4.5\nsecurity_groups = "sg-1"\ncloud = 3\n[tags]\nn = 1\n'
    )
    probs = problems_of(text)
    assert len(probs) == 5
    assert probs[0] == "session.toml, line 5: key 'spot': found 'yes', expected true or false"
    assert probs[1].startswith(
        "session.toml, line 6: key 'n_jobs': found 4.5, expected a whole number"
    )
    assert probs[2].startswith(
        "session.toml, line 7: key 'security_groups': found 'sg-1', expected a list of strings"
    )
    assert probs[3].startswith(
        "session.toml, line 10: key 'tags.n': found 1, expected a string in double quotes, e.g. n = \"text\""
    )
    assert probs[4].startswith("session.toml, line 8: key 'cloud': expected a table")


def test_bool_is_not_an_int() -> None:
    (p,) = problems_of(MINIMAL + "n_jobs = true\n")
    assert "key 'n_jobs': found True, expected a whole number" in p


def test_missing_required_keys() -> None:
    probs = problems_of('shortdescr = "x"\n')
    assert [p.split(": ")[1] for p in probs] == [
        "key 'instance_type' is missing (add a line instance_type = \"...\" at the top of the file)",
        "key 'image_id' is missing (add a line image_id = \"...\" at the top of the file)",
        "key 'bucket' is missing (add a line bucket = \"...\" at the top of the file)",
    ]


def test_toml_syntax_error() -> None:
    (p,) = problems_of('shortdescr = "x\n')
    assert p.startswith("session.toml: not valid TOML: ")
    assert "line 1" in p and p.endswith("(fix the syntax at that line)")


def test_spot_price_number_becomes_string() -> None:
    s = parse_spec_toml(MINIMAL + "spot = true\nspot_max_price = 0.05\n")
    assert s.spot_max_price == "0.05"


# ---------------------------------------------------------------- structural errors (ini)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[other]\na = 1\n",
            "session.ini: no [startinfo] section (the legacy format is [startinfo] with instance_type =, ami_id =, sessionsbucket =, ec2_uid =, shortdescr =, n_jobs =)",
        ),
        (
            "no section header\n",
            "session.ini: not a valid ini file: File contains no section headers.",
        ),
        (
            PAPER_INI + "shortdescr = again\n",
            "session.ini: not a valid ini file: While reading from 'session.ini' [line 8]: option 'shortdescr' in section 'startinfo' already exists",
        ),
        (
            PAPER_INI.replace("n_jobs = 4\n", ""),
            "session.ini: key 'n_jobs' is missing from [startinfo]",
        ),
        (
            PAPER_INI.replace("n_jobs = 4", "n_jobs = four"),
            "session.ini, line 7: key 'n_jobs': 'four' is not a positive whole number (give the number of jobs in jobs.cfg, e.g. n_jobs = 4)",
        ),
        (
            PAPER_INI.replace("n_jobs = 4", "n_jobs = 0"),
            "key 'n_jobs': '0' is not a positive whole number",
        ),
        (
            PAPER_INI.replace("ami_id = ami-c97591a0", "ami_id ="),
            "session.ini, line 3: key 'ami_id': value is empty (give it a value, e.g. ami_id = ...)",
        ),
        (
            PAPER_INI + "sessionbucket = x\n",
            "session.ini, line 8: key 'sessionbucket': unknown key (did you mean 'sessionsbucket'?); [startinfo] has only instance_type, ami_id, sessionsbucket, ec2_uid, shortdescr, n_jobs (use session.toml for more settings)",
        ),
        (
            PAPER_INI + "[extra]\na = 1\n",
            "session.ini, line 8: key 'extra': unknown section [extra] (a legacy session.ini has only [startinfo]; use session.toml for more settings)",
        ),
    ],
)
def test_bad_ini(text: str, message: str) -> None:
    probs = problems_of(text, parse_spec_ini)
    assert any(message in p for p in probs), probs


def test_load_spec_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="file not found"):
        load_spec(tmp_path / "session.toml")
    with pytest.raises(FormatError, match="is a directory"):
        load_spec(tmp_path)
    bad = tmp_path / "session.toml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(FormatError, match="not UTF-8 text"):
        load_spec(bad)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"shortdescr": "eventgen2"},
            "key 'shortdescr': short description 'eventgen2' is 9 characters long (at most 8)",
        ),
        (
            {"shortdescr": "ev-gen"},
            "key 'shortdescr': short description 'ev-gen' may only use letters, digits and _",
        ),
        ({"bucket": "ab"}, "key 'bucket': bucket name 'ab' is 2 characters long, must be 3 to 63"),
        ({"bucket": "a" * 64}, "is 64 characters long, must be 3 to 63"),
        ({"bucket": "My-Bucket"}, "bucket name 'My-Bucket' has uppercase letters"),
        ({"bucket": "my_bucket"}, "bucket name 'my_bucket' may only use a-z, 0-9, '.' and '-'"),
        ({"bucket": "-bucket"}, "must start and end with a letter or digit"),
        ({"bucket": "my..bucket"}, "bucket name 'my..bucket' has two adjacent dots"),
        ({"bucket": "192.168.5.4"}, "bucket name '192.168.5.4' looks like an IP address"),
        ({"bucket": "xn--bucket"}, "starts with the reserved prefix 'xn--'"),
        ({"bucket": "sthree-bucket"}, "starts with the reserved prefix 'sthree-'"),
        ({"bucket": "bucket-s3alias"}, "ends with the reserved suffix '-s3alias'"),
        ({"bucket": "bucket--ol-s3"}, "ends with the reserved suffix '--ol-s3'"),
        (
            {"instance_type": "c5"},
            "key 'instance_type': 'c5' is not an instance type (write family.size in lowercase, e.g. c5.large, m7g.16xlarge or t3a.nano)",
        ),
        ({"instance_type": "C5.large"}, "'C5.large' is not an instance type"),
        ({"instance_type": "c5.huge"}, "'c5.huge' is not an instance type"),
        ({"instance_type": "large.c5"}, "'large.c5' is not an instance type"),
        (
            {"image_id": "ami-123"},
            "key 'image_id': 'ami-123' is not an AMI id (expected ami- and 8 or 17 hex digits",
        ),
        ({"image_id": "ami-0ABC1234"}, "'ami-0ABC1234' is not an AMI id"),
        ({"image_id": "snap-0abc1234"}, "'snap-0abc1234' is not an AMI id"),
        ({"image_owner": "someone"}, "key 'image_owner': 'someone' is not an image owner"),
        (
            {"status_store": "dynamodb"},
            "key 'status_store': 'dynamodb' is not a status store (use \"simpledb\" or \"s3\")",
        ),
        ({"image_mode": "custom"}, "key 'image_mode': 'custom' is not an image mode"),
        ({"n_jobs": 0}, "key 'n_jobs': 0 must be at least 1"),
        ({"jobs_per_instance": 0}, "key 'jobs_per_instance': 0 must be at least 1"),
        ({"max_job_minutes": 0.0}, "key 'max_job_minutes': 0.0 must be above 0"),
        ({"max_session_hours": -1.0}, "key 'max_session_hours': -1.0 must be above 0"),
        ({"spot_max_price": "0.05"}, "key 'spot_max_price': is set but spot is false"),
        ({"spot": True, "spot_max_price": "cheap"}, "key 'spot_max_price': 'cheap' is not a price"),
        ({"subnet_id": "net-1"}, "key 'subnet_id': 'net-1' is not a subnet id"),
        (
            {"subnet_id": "subnet-0123abcd", "availability_zone": "eu-west-1a"},
            "key 'availability_zone': is set together with subnet_id",
        ),
        ({"security_groups": ("sg-1", " ")}, "key 'security_groups': has an empty entry"),
        (
            {"job_dir": "jobs", "archive": "a.tar.bz2"},
            "key 'archive': is set together with job_dir",
        ),
        ({"archive": "a.zip"}, "key 'archive': 'a.zip' must be a .tar.bz2 session archive"),
        (
            {"tags": {"aws:owner": "x"}},
            "key 'tags.aws:owner': tag keys starting with 'aws:' are reserved by AWS",
        ),
        ({"tags": {"AWS:owner": "x"}}, "tag keys starting with 'aws:' are reserved"),
        (
            {"tags": {"awsac:session": "x"}},
            "key 'tags.awsac:session': tag keys starting with 'awsac:' are set by awsac itself",
        ),
        ({"tags": {"k" * 129: "x"}}, "tag keys must be 1 to 128 characters long"),
        ({"tags": {"k": "v" * 257}}, "tag value is 257 characters long (at most 256)"),
        (
            {"cloud": CloudProfile(local=True, endpoint_url="http://x")},
            "key 'cloud.local': local = true ignores profile and endpoint_url",
        ),
        (
            {"cloud": CloudProfile(endpoint_url="ec2.example.org")},
            "key 'cloud.endpoint_url': 'ec2.example.org' is not a URL",
        ),
        (
            {"cloud": CloudProfile(region="EU West")},
            "key 'cloud.region': 'EU West' is not a region name",
        ),
    ],
)
def test_validate_problems(changes: dict, message: str) -> None:
    problems = validate_spec(spec(**changes))
    assert len(problems) == 1, problems
    assert problems[0].startswith("session.toml: ")
    assert message in problems[0]


@pytest.mark.parametrize(
    "good",
    [
        {"instance_type": "t3a.nano"},
        {"instance_type": "m7g.16xlarge"},
        {"instance_type": "c7i-flex.large"},
        {"instance_type": "u-6tb1.metal"},
        {"instance_type": "r6id.metal-32xl"},
        {"image_id": "ami-0123456789abcdef0"},
        {"bucket": "a.b-c.d1"},
        {"bucket": "a" * 63},
        {"image_owner": "123456789012"},
        {"spot": True, "spot_max_price": "1"},
        {
            "cloud": CloudProfile(
                profile="p", region="us-east-1", endpoint_url="http://127.0.0.1:5000"
            )
        },
    ],
)
def test_validate_accepts(good: dict) -> None:
    assert validate_spec(spec(**good)) == []


def test_validate_n_jobs_against_jobs_cfg_with_lines() -> None:
    lines = parse_jobs_cfg("snap-00000000;gen_30.sh;2\nsnap-00000000;gen_1000.sh;2\n")
    text = MINIMAL + "n_jobs = 5\n"
    problems = validate_spec(parse_spec_toml(text), lines, "s.toml", lines=key_lines(text))
    assert problems == [
        "s.toml, line 5: key 'n_jobs': states 5 jobs but jobs.cfg defines 4 "
        "(set n_jobs = 4, or leave it out: jobs.cfg defines the jobs)"
    ]
    assert validate_spec(spec(n_jobs=4), lines) == []
    assert validate_spec(spec(n_jobs=None), lines) == []


def test_validate_reports_everything_at_once() -> None:
    problems = validate_spec(
        spec(shortdescr="much_too_long", bucket="B", image_id="x", status_store="x")
    )
    assert [p.split("'")[1] for p in problems] == [
        "shortdescr",
        "bucket",
        "image_id",
        "status_store",
    ]


# ---------------------------------------------------------------- load_session


def copy_example(tmp_path: Path) -> Path:
    dest = tmp_path / "eventgen"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("release"))
    return dest


def test_load_session_n_jobs_mismatch(tmp_path: Path) -> None:
    d = copy_example(tmp_path)
    toml = d / "session.toml"
    toml.write_text(toml.read_text().replace("n_jobs = 4", "n_jobs = 3"))
    with pytest.raises(FormatError) as exc:
        load_session(toml)
    line = key_lines(toml.read_text())["n_jobs"]
    assert exc.value.problems == [
        f"{toml}, line {line}: key 'n_jobs': states 3 jobs but {d / 'jobs.cfg'} defines 4 "
        "(set n_jobs = 4, or leave it out: jobs.cfg defines the jobs)"
    ]


def test_load_session_collects_spec_jobs_and_script_problems(tmp_path: Path) -> None:
    d = copy_example(tmp_path)
    (d / "gen_30.sh").unlink()
    (d / "jobs.cfg").write_text("snap-00000000;gen_30.sh;2\nsnap-00000000;gen_1000.sh;2\n")
    ini = d / "session.ini"
    ini.write_text(ini.read_text().replace("shortdescr = eventgen", "shortdescr = eventgen_x"))
    with pytest.raises(FormatError) as exc:
        load_session(ini)
    assert exc.value.problems == [
        f"{d / 'jobs.cfg'}, line 1: script 'gen_30.sh' is not in the session archive "
        "(add it to the job directory or fix the name)",
        f"{ini}, line 6: key 'shortdescr': short description 'eventgen_x' is 10 characters long (at most 8)",
    ]
    assert str(exc.value).startswith("2 problems:\n  - ")


def test_load_session_bad_jobs_cfg_and_missing(tmp_path: Path) -> None:
    d = copy_example(tmp_path)
    (d / "jobs.cfg").write_text("snap-00000000;gen_30.sh;x\n")
    with pytest.raises(FormatError) as exc:
        load_session(d / "session.toml")
    assert exc.value.problems[0].startswith(
        f"{d / 'jobs.cfg'}, line 1: count 'x' must be a positive integer"
    )
    (d / "jobs.cfg").unlink()
    with pytest.raises(FormatError, match="jobs.cfg: file not found"):
        load_session(d / "session.toml")


def test_load_session_job_dir_and_jobs_cfg_outside(tmp_path: Path) -> None:
    d = copy_example(tmp_path)
    (d / "jobs").mkdir()
    for name in ("gen_30.sh", "gen_1000.sh"):
        (d / name).rename(d / "jobs" / name)
    toml = d / "session.toml"
    toml.write_text(
        toml.read_text().replace('jobs_cfg = "jobs.cfg"', 'jobs_cfg = "jobs.cfg"\njob_dir = "jobs"')
    )
    with pytest.raises(FormatError) as exc:
        load_session(toml)
    assert "must lie at the top of the job directory" in exc.value.problems[0]
    (d / "jobs.cfg").rename(d / "jobs" / "jobs.cfg")
    toml.write_text(toml.read_text().replace('jobs_cfg = "jobs.cfg"', 'jobs_cfg = "jobs/jobs.cfg"'))
    s, jobs = load_session(toml)
    assert s.job_dir == "jobs" and len(jobs) == 2
    toml.write_text(toml.read_text().replace('job_dir = "jobs"', 'job_dir = "nowhere"'))
    with pytest.raises(FormatError, match="nowhere is not a directory"):
        load_session(toml)


def test_load_session_prebuilt_archive(tmp_path: Path) -> None:
    d = copy_example(tmp_path)
    archive = tmp_path / "prebuilt.tar.bz2"
    with tarfile.open(archive, "w:bz2") as tar:
        for name in ("jobs.cfg", "gen_30.sh"):
            tar.add(d / name, name)
    spec_path = tmp_path / "session.toml"
    spec_path.write_text(MINIMAL + 'archive = "prebuilt.tar.bz2"\n')
    with pytest.raises(FormatError) as exc:
        load_session(spec_path)
    assert exc.value.problems == [
        f"{archive}:jobs.cfg, line 8: script 'gen_1000.sh' is not in the session archive "
        "(add it to the job directory or fix the name)"
    ]
    with tarfile.open(archive, "w:bz2") as tar:
        tar.add(d / "gen_30.sh", "gen_30.sh")
    with pytest.raises(FormatError, match="has no jobs.cfg at its top level"):
        load_session(spec_path)
    archive.write_bytes(b"not bz2")
    with pytest.raises(FormatError, match="not a readable .tar.bz2 archive"):
        load_session(spec_path)


def test_byte_order_mark_and_odd_digits(tmp_path: Path) -> None:
    ini = tmp_path / "session.ini"
    ini.write_bytes(("\ufeff" + PAPER_INI).encode())
    assert load_spec(ini).n_jobs == 4
    toml = tmp_path / "session.toml"
    toml.write_bytes(("\ufeff" + MINIMAL).encode())
    assert load_spec(toml).shortdescr == "eventgen"
    (p,) = problems_of(PAPER_INI.replace("n_jobs = 4", "n_jobs = \u00b2"), parse_spec_ini)
    assert "key 'n_jobs': '\u00b2' is not a positive whole number" in p


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("max_session_hours = inf", "key 'max_session_hours': inf is not a finite number"),
        ("max_session_hours = nan", "key 'max_session_hours': nan is not a finite number"),
        ("max_session_hours = 9000", "key 'max_session_hours': 9000.0 is out of range"),
        ("max_job_minutes = -inf", "key 'max_job_minutes': -inf is not a finite number"),
        ("jobs_per_instance = 5000", "key 'jobs_per_instance': 5000 is out of range"),
        ("n_jobs = 1000000", "key 'n_jobs': 1000000 is out of range"),
    ],
)
def test_every_number_is_finite_and_in_its_range(line: str, message: str) -> None:
    problems = validate_spec(parse_spec_toml(MINIMAL + line + "\n"))
    assert any(message in p for p in problems), problems


def test_structural_and_value_problems_come_in_one_run(tmp_path: Path) -> None:
    d = tmp_path / "job"
    d.mkdir()
    (d / "jobs.cfg").write_text("-;a.sh\n")  # a broken jobs.cfg too
    path = d / "session.toml"
    path.write_text(
        MINIMAL.replace('"eventgen"', '"muchtoolong"')
        + "instnce_type = 1\nmax_session_hours = inf\nspot = 3\n"
    )
    with pytest.raises(FormatError) as exc:
        load_session(path)
    text = "\n".join(exc.value.problems)
    assert "key 'instnce_type': unknown key" in text
    assert "key 'spot': found 3" in text
    assert "key 'shortdescr': short description 'muchtoolong'" in text  # a value problem too
    assert "key 'max_session_hours': inf is not a finite number" in text
    assert "jobs.cfg, line 1: expected 3 fields" in text
    assert len(exc.value.problems) == 5


def test_include_entries_must_stay_inside() -> None:
    problems = validate_spec(spec(include=(".ssh/id_rsa", "../x", "/etc/passwd")))
    assert len(problems) == 2 and all("key 'include'" in p for p in problems)


def test_prebuilt_archive_jobs_cfg_with_a_bom(tmp_path: Path) -> None:
    d = copy_example(tmp_path)
    archive = tmp_path / "prebuilt.tar.bz2"
    (d / "jobs.cfg").write_bytes(b"\xef\xbb\xbf" + (d / "jobs.cfg").read_bytes())
    with tarfile.open(archive, "w:bz2") as tar:
        for name in ("jobs.cfg", "gen_30.sh", "gen_1000.sh"):
            tar.add(d / name, name)
    spec_path = tmp_path / "session.toml"
    spec_path.write_text(MINIMAL + 'archive = "prebuilt.tar.bz2"\n')
    from_archive = load_session(spec_path)[1]
    assert [(j.snapshot, j.script, j.count) for j in from_archive] == [
        (j.snapshot, j.script, j.count) for j in load_session(d / "session.toml")[1]
    ]
