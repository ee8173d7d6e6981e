#!/bin/sh
# Provision an awsac image: Python 3 + boto3 from the distribution, the agent in /opt/awsac,
# the boot service, the working directories, then remove everything secret or machine-specific.
#
# usage: provision.sh [--source DIR] [--root DIR] [--no-packages] [--no-agent] [--no-clean]
#   --source DIR   where agent/awsac_agent/ and ami/awsac-autorun.service are
#                  (default: the repository this script lives in)
#   --root DIR     install into DIR instead of / (also AWSAC_ROOT); package commands then run
#                  with chroot DIR and a clean environment (PATH, HOME, LANG only), so DIR must
#                  hold a working distribution (e.g. debootstrap)
#   --no-packages  do not install Python 3 and boto3 (they are already there)
#   --no-agent     no agent and no boot service: a stock image (python3, boto3, cleaned)
#   --no-clean     keep ssh host keys, cloud-init state, history and machine-id (for tests)
# Packer runs it as root on the build instance (ami/awsac.pkr.hcl). No credential is written:
# instances get their rights from an instance profile.
set -eu

SOURCE=""
ROOT="${AWSAC_ROOT:-/}"
PACKAGES=1
AGENT=1
CLEAN=1

die() {
    echo "provision.sh: $*" >&2
    exit 1
}

say() {
    echo "provision.sh: $*"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --source) [ $# -ge 2 ] || die "--source needs a directory"; SOURCE="$2"; shift 2 ;;
        --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
        --no-packages) PACKAGES=0; shift ;;
        --no-agent) AGENT=0; shift ;;
        --no-clean) CLEAN=0; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

if [ -z "$SOURCE" ]; then
    SOURCE=$(cd "$(dirname "$0")/.." && pwd)
fi
case "$ROOT" in
    /*) ;;
    *) die "--root must be an absolute path, not '$ROOT'" ;;
esac
[ -d "$ROOT" ] || die "root directory '$ROOT' does not exist"
# R is prefixed to every path this script touches: empty for /, else the root without a trailing /.
R="${ROOT%/}"
while [ "${R%/}" != "$R" ]; do R="${R%/}"; done

AGENT_SRC="$SOURCE/agent/awsac_agent"
UNIT_SRC="$SOURCE/ami/awsac-autorun.service"
if [ "$AGENT" = 1 ]; then
    [ -f "$AGENT_SRC/__init__.py" ] || die "no agent package at '$AGENT_SRC' (pass --source DIR)"
    [ -f "$UNIT_SRC" ] || die "no unit file at '$UNIT_SRC' (pass --source DIR)"
fi

# The whole environment of a command run in another root: nothing of the caller's (its TMPDIR,
# proxies, locale or PYTHONPATH may not exist or mean anything inside the root).
CHROOT_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb"

# Run a command inside the target root (directly when the root is /).
in_root() {
    if [ -z "$R" ]; then
        "$@"
    else
        # shellcheck disable=SC2086  # CHROOT_ENV is a list of NAME=value words, split on purpose
        chroot "$R" /usr/bin/env -i $CHROOT_ENV "$@"
    fi
}

has_cmd() {
    # shellcheck disable=SC2016  # $1 is expanded by the inner shell, on purpose
    in_root sh -c 'command -v "$1" >/dev/null 2>&1' sh "$1"
}

install_packages() {
    if has_cmd apt-get; then
        say "installing python3 and python3-boto3 with apt-get"
        in_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            python3 python3-boto3 ca-certificates
        in_root apt-get clean
    elif has_cmd dnf || has_cmd yum; then
        if has_cmd dnf; then pm=dnf; else pm=yum; fi
        say "installing python3 and python3-boto3 with $pm"
        in_root "$pm" install -y python3 python3-boto3
        in_root "$pm" clean all
    else
        die "no apt-get, dnf or yum in '$ROOT': install python3 and boto3, then rerun with --no-packages"
    fi
    in_root python3 -c 'import boto3' || die "python3 in '$ROOT' cannot import boto3 after installing it"
}

install_agent() {
    say "installing awsac_agent into $R/opt/awsac"
    rm -rf "$R/opt/awsac/awsac_agent"
    mkdir -p "$R/opt/awsac"
    cp -R "$AGENT_SRC" "$R/opt/awsac/awsac_agent"
    find "$R/opt/awsac" -name __pycache__ -type d -prune -exec rm -rf {} +
    find "$R/opt/awsac" -name '*.pyc' -exec rm -f {} +
    chmod -R u=rwX,go=rX "$R/opt/awsac"

    mkdir -p "$R/usr/local/bin"
    cat >"$R/usr/local/bin/awsac-agent" <<'WRAPPER'
#!/bin/sh
# awsac agent on this image (installed by ami/provision.sh): python3 -m awsac_agent
PYTHONPATH="/opt/awsac${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
exec "${AWSAC_IMAGE_PYTHON:-python3}" -m awsac_agent "$@"
WRAPPER
    chmod 0755 "$R/usr/local/bin/awsac-agent"
}

install_service() {
    say "installing and enabling awsac-autorun.service"
    mkdir -p "$R/etc/systemd/system/multi-user.target.wants"
    cp "$UNIT_SRC" "$R/etc/systemd/system/awsac-autorun.service"
    chmod 0644 "$R/etc/systemd/system/awsac-autorun.service"
    # What `systemctl enable` does (WantedBy=multi-user.target), without needing a running systemd.
    ln -sf /etc/systemd/system/awsac-autorun.service \
        "$R/etc/systemd/system/multi-user.target.wants/awsac-autorun.service"
    mkdir -p "$R/mnt/awsac"
    chmod 0755 "$R/mnt/awsac"
}

clean_image() {
    say "removing machine-specific state and secrets before the image is taken"
    rm -f "$R"/etc/ssh/ssh_host_*
    rm -rf "$R"/var/lib/cloud/instances/* "$R"/var/lib/cloud/instance "$R"/var/lib/cloud/data/*
    rm -f "$R"/var/log/cloud-init.log "$R"/var/log/cloud-init-output.log
    rm -f "$R"/root/.bash_history "$R"/root/.python_history "$R"/root/.lesshst
    rm -f "$R"/home/*/.bash_history "$R"/home/*/.python_history "$R"/home/*/.lesshst
    # The build's temporary login key; cloud-init installs the launch key pair at first boot.
    rm -f "$R"/root/.ssh/authorized_keys "$R"/home/*/.ssh/authorized_keys
    rm -rf "$R"/root/.aws "$R"/home/*/.aws
    # An empty machine-id makes systemd generate a fresh one on the first boot of each instance.
    if [ -e "$R/etc/machine-id" ]; then
        : >"$R/etc/machine-id"
    fi
    rm -f "$R/var/lib/dbus/machine-id" "$R/var/lib/systemd/random-seed"
    rm -rf "$R/tmp/awsac-src"
}

if [ "$PACKAGES" = 1 ]; then
    install_packages
fi
if [ "$AGENT" = 1 ]; then
    install_agent
    install_service
fi
if [ "$CLEAN" = 1 ]; then
    clean_image
fi
if [ "$AGENT" = 1 ]; then
    say "done: $R/usr/local/bin/awsac-agent, $R/etc/systemd/system/awsac-autorun.service"
else
    say "done: ${R:-/} without the agent (a stock image)"
fi
