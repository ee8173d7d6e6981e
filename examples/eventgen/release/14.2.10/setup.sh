# shellcheck shell=sh
# Stand-in for the paper's "ATLAS Software Release 14.2.10" setup script. A job sources it:
#   . "${ATLASDir}/14.2.10/setup.sh"
# and finds this release's tools (generate_events) on PATH afterwards.
if [ -z "${ATLASDir:-}" ]; then
  echo "setup.sh: ATLASDir is not set (the agent sets it to where the snapshot is mounted)" >&2
  return 1
fi
AWSAC_RELEASE_DIR="${ATLASDir}/14.2.10"
PATH="${AWSAC_RELEASE_DIR}/bin:${PATH}"
export AWSAC_RELEASE_DIR PATH
echo "release 14.2.10 set up from ${AWSAC_RELEASE_DIR}"
