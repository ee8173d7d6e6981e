#!/bin/sh
# Job script of the eventgen example (the paper's gen_30.sh): generate 30 single-pion events
# with the release on the snapshot, then bundle the event file and the log into results.tar.bz2.
# ATLASDir (where the snapshot is mounted) and AWSACworkingDir (the unpacked session archive)
# are set by the agent.
# shellcheck disable=SC2154
echo ATLAS JOB BEGIN: gen 30 events
date
echo =====

# shellcheck source=/dev/null
. "${ATLASDir}/14.2.10/setup.sh"
generate_events --run 007410 --first-event 1 --events 30 --seed 765432 \
  --config "${AWSACworkingDir}/CSC.007410.singlepart_singlepi_logE.cfg" \
  --output EVGEN_007410_00001.txt > generate_events_gen30.log 2>&1
rc=$?
echo "generator exit code: ${rc}"
echo =====

echo BUNDLE RESULTFILES INTO ARCHIVE
if tar cjvf results.tar.bz2 EVGEN_007410_00001.txt generate_events_gen30.log; then
  echo "bundle successful"
else
  echo "tar error"
fi

echo =====
date
echo ATLAS JOB END: gen 30 events
exit "${rc}"
