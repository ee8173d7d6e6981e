#!/bin/sh
# awsac_all_instances_autorun.sh: shipped in every session archive and run by the boot step
# (awsac-agent autorun) from the extracted archive. It starts the worker, awsac-processjobs.pyz,
# from its own directory with the image's Python; arguments (e.g. --keep-instance) pass through.
# Replace this file in your job directory to change what every instance of a session does.
set -u
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || {
    echo "awsac_all_instances_autorun.sh: cannot find my own directory" >&2
    exit 1
}
cd "$here" || exit 1
python="${AWSAC_PYTHON:-python3}"
echo "***** awsac_all_instances_autorun.sh *****"
echo "running $python $here/awsac-processjobs.pyz $*"
exec "$python" awsac-processjobs.pyz "$@"
