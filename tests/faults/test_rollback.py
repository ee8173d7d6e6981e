"""A failed start removes what it created; one part that cannot be removed does not stop the others."""

from __future__ import annotations

import re

from awsac_agent.status import domain_name

from .helpers import leftovers


def test_failed_rollback_step_does_not_stop_the_others(
    cli, session_dir, boto3_client, client_faults
) -> None:
    d = session_dir(store="simpledb")
    client_faults(
        "ec2:RunInstances:fail=99:status=400:InsufficientInstanceCapacity,"
        "sdb:DeleteDomain:fail=99:status=403:AccessDenied"
    )
    rc, out, err = cli("start", str(d / "session.toml"), "--yes")
    client_faults("")
    assert rc != 0 and "Traceback" not in out + err
    assert "InsufficientInstanceCapacity" in err
    assert "could not remove everything" in err and "AccessDenied" in err
    sid = re.search(r"awsac cleanup (\S+)`", err).group(1)  # the fix names the session
    # the domain could not be deleted, but the archive after it in the rollback was removed
    assert domain_name(sid) in boto3_client("sdb").list_domains().get("DomainNames", [])
    assert leftovers(boto3_client, sid).objects == []
    rc, _, err = cli("cleanup", sid, "--yes")
    assert rc == 0, err
    assert domain_name(sid) not in boto3_client("sdb").list_domains().get("DomainNames", [])
