"""The job-assignment rule: which job numbers an instance runs, and how many instances a session needs.

Two assignments. ``static`` is the paper's: one pure function used by the agent (to pick its
jobs), the client (to show which instance runs which job) and the tests; a retry reservation
applies the same rule to its list of jobs. ``queue``: agents claim pending jobs one at a time
(status.claim_expected, s3layout.claim_key), on at most ``queue_instances`` instances.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

STATIC = "static"
QUEUE = "queue"
ASSIGNMENTS = (STATIC, QUEUE)


def _check(cores_per_instance: int) -> None:
    if cores_per_instance < 1:
        raise ValueError(f"cores per instance must be at least 1, got {cores_per_instance}")


def jobs_for_instance(launch_index: int, cores_per_instance: int, n_jobs: int) -> List[int]:
    """Job numbers (1-based) for the instance with this launch index.

    The instance with launch index L runs jobs L*c+1 .. L*c+c, those that exist.
    """
    _check(cores_per_instance)
    if launch_index < 0:
        raise ValueError(f"launch index must be >= 0, got {launch_index}")
    first = launch_index * cores_per_instance + 1
    last = min(first + cores_per_instance - 1, n_jobs)
    return list(range(first, last + 1))


def instance_for_job(jobnr: int, cores_per_instance: int) -> int:
    """Launch index of the instance that runs job ``jobnr`` (1-based)."""
    _check(cores_per_instance)
    if jobnr < 1:
        raise ValueError(f"job numbers start at 1, got {jobnr}")
    return (jobnr - 1) // cores_per_instance


def n_instances(n_jobs: int, cores_per_instance: int) -> int:
    """ceil(n_jobs / cores_per_instance)."""
    _check(cores_per_instance)
    return -(-n_jobs // cores_per_instance) if n_jobs > 0 else 0


def unused_cores(n_jobs: int, cores_per_instance: int) -> int:
    """Cores left idle: n_instances * cores_per_instance - n_jobs."""
    return n_instances(n_jobs, cores_per_instance) * cores_per_instance - n_jobs


def plan(n_jobs: int, cores_per_instance: int) -> List[List[int]]:
    """Job numbers per launch index, for every instance of the session."""
    return [
        jobs_for_instance(li, cores_per_instance, n_jobs)
        for li in range(n_instances(n_jobs, cores_per_instance))
    ]


def jobs_from_list(launch_index: int, cores_per_instance: int, jobnrs: Sequence[int]) -> List[int]:
    """The static rule over an explicit job list (a retry reservation): launch index L runs
    the list's entries L*c .. L*c+c-1."""
    _check(cores_per_instance)
    if launch_index < 0:
        raise ValueError(f"launch index must be >= 0, got {launch_index}")
    first = launch_index * cores_per_instance
    return list(jobnrs[first : first + cores_per_instance])


def queue_instances(
    n_jobs: int,
    cores_per_instance: int,
    max_instances: Optional[int] = None,
    max_vcpus: Optional[int] = None,
    vcpus_per_instance: Optional[int] = None,
) -> int:
    """Instances of a queue-mode session: as many as the jobs need (``n_instances``), at most
    ``max_instances`` and at most ``max_vcpus // vcpus_per_instance`` (vCPUs default to the cores).
    0 when the vCPU cap is below one instance (the caller says so)."""
    needed = n_instances(n_jobs, cores_per_instance)
    caps = [needed]
    if max_instances is not None:
        caps.append(max(0, max_instances))
    if max_vcpus is not None:
        caps.append(max(0, max_vcpus) // max(1, vcpus_per_instance or cores_per_instance))
    return min(caps)
