"""The job-assignment rule: which job numbers an instance runs, and how many instances a session needs.

One pure function used by the agent (to pick its jobs), the client (to show which instance
runs which job) and the tests.
"""

from __future__ import annotations

from typing import List


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
