"""Stock-image bootstrap: the cloud-init user-data that runs a session on an unmodified image.

``stock_userdata`` wraps the legacy user-data string in a ``#!/bin/sh`` script that installs
Python 3 and boto3 from the distribution, fetches the worker from the session archive and runs the
agent's boot step from it, exactly as the image's ``awsac-autorun.service`` would.
"""

from __future__ import annotations

from . import s3layout
from .archive import PROCESSJOBS_PYZ
from .userdata import UserData, build_userdata, wrap_cloud_init

WORKER_NAME = PROCESSJOBS_PYZ  # the worker zipapp in the session archive

# The instance profile's credentials and the region come from the metadata service (IMDSv2).
# Prints the region, so the shell part can hand it to the boot step. The endpoint is passed to
# boto3 explicitly, as in aws.py (a distribution's boto3 may predate AWS_ENDPOINT_URL).
_FETCH_PY = r"""
import os, sys, tarfile, urllib.request
bucket, key, dest = sys.argv[1:4]
imds = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or "http://169.254.169.254/"
imds = imds.rstrip("/") + "/"
def meta(path, token):
    req = urllib.request.Request(imds + path, headers={"X-aws-ec2-metadata-token": token})
    return urllib.request.urlopen(req, timeout=5).read().decode()
region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
if not region:
    req = urllib.request.Request(imds + "latest/api/token", method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
    token = urllib.request.urlopen(req, timeout=5).read().decode()
    region = meta("latest/meta-data/placement/region", token)
import boto3
archive = dest + ".archive"
endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
boto3.client("s3", region_name=region, endpoint_url=endpoint).download_file(bucket, key, archive)
with tarfile.open(archive, "r:*") as tar:
    names = [m for m in tar.getmembers() if m.isfile() and m.name.lstrip("./") == "WORKER"]
    if not names:
        sys.exit("awsac-bootstrap: s3://%s/%s has no WORKER at its top level; "
                 "stock images need it (the archive builder adds it) or use a baked image" % (bucket, key))
    src = tar.extractfile(names[0])
    with open(dest + ".part", "wb") as out:
        out.write(src.read())
os.replace(dest + ".part", dest)
os.remove(archive)
print(region)
""".replace("WORKER", WORKER_NAME)

_SCRIPT = r"""# awsac stock-image bootstrap (cloud-init runs it once per instance). No credential here:
# the instance profile grants the rights. Output goes to the console (GetConsoleOutput).
set -u
log() { echo "awsac-bootstrap: $*"; }
fail() { echo "awsac-bootstrap: ERROR: $*" >&2; exit 1; }
BUCKET='@BUCKET@'
KEY='@KEY@'
WORK="${AWSAC_WORK_DIR:-/mnt/awsac}"
if [ -x /usr/local/bin/awsac-agent ] && [ -e /etc/systemd/system/awsac-autorun.service ]; then
    log "this image has the awsac boot service; it runs the session"
    exit 0
fi
if ! python3 -c 'import boto3' >/dev/null 2>&1; then
    log "installing python3 and boto3 from the distribution"
    if command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q || log "apt-get update failed, trying the install anyway"
        apt-get install -y -q --no-install-recommends python3 python3-boto3
    elif command -v dnf >/dev/null 2>&1; then
        dnf install -y python3 python3-boto3
    elif command -v yum >/dev/null 2>&1; then
        yum install -y python3 python3-boto3 || yum install -y python3 python3-pip
    else
        fail "no apt-get, dnf or yum: use an image with python3 and boto3, or a baked awsac image"
    fi
    if ! python3 -c 'import boto3' >/dev/null 2>&1; then
        log "no boto3 package in the distribution, installing it with pip"
        python3 -m pip install -q boto3 || fail "cannot install boto3"
    fi
fi
mkdir -p "$WORK/bootstrap" || fail "cannot create $WORK/bootstrap"
WORKER="$WORK/bootstrap/@WORKER@"
log "fetching s3://$BUCKET/$KEY"
REGION=$(python3 - "$BUCKET" "$KEY" "$WORKER" <<'PY'
@FETCH@
PY
) || fail "cannot fetch the worker from s3://$BUCKET/$KEY (instance profile, bucket region?)"
export AWS_DEFAULT_REGION="$REGION" AWSAC_PYTHON=python3
export PYTHONPATH="$WORKER${PYTHONPATH:+:$PYTHONPATH}"
log "running the boot step of $WORKER (region $REGION)"
if [ -z "${AWSAC_BOOTSTRAP_FOREGROUND:-}" ] && [ -d /run/systemd/system ] \
    && command -v systemd-run >/dev/null 2>&1; then
    exec systemd-run --unit=awsac-autorun --description="awsac boot step" \
        -p StandardOutput=journal+console -p StandardError=journal+console -p KillMode=process \
        --setenv=PYTHONPATH="$PYTHONPATH" --setenv=AWS_DEFAULT_REGION="$REGION" \
        --setenv=AWSAC_PYTHON=python3 --setenv=PYTHONUNBUFFERED=1 \
        "$(command -v python3)" -m awsac_agent autorun
fi
exec python3 -m awsac_agent autorun
"""


def stock_userdata(ud: UserData) -> str:
    """The ``#!/bin/sh`` cloud-init user-data that runs the session ``ud`` on a stock image."""
    legacy = build_userdata(ud)
    body = (
        _SCRIPT.replace("@BUCKET@", ud.bucket)
        .replace("@KEY@", s3layout.archive_key(ud.session_id, ud.archive_name))
        .replace("@WORKER@", WORKER_NAME)
        .replace("@FETCH@", _FETCH_PY.strip())
    )
    return wrap_cloud_init(legacy, body)  # raises FormatError above MAX_USERDATA_BYTES
