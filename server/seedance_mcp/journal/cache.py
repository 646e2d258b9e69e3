"""The version-checked cache of settled jobs every store keeps."""

from __future__ import annotations

from collections import OrderedDict

from seedance_mcp.journal.job import Job

SETTLED_CACHE_SIZE = 2048


class SettledJobs:
    """The bounded cache every store keeps of settled jobs, by job id and task id, so a status call for one reads a
    version number from the journal instead of the whole job. The cache never answers alone: a job another process
    changed since (re-opened to fetch its last frame, a download tried again) has a newer version, and is read
    whole. It keeps copies and hands out copies: nothing a caller changes reaches it."""

    def __init__(self, size: int = SETTLED_CACHE_SIZE) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._size = size

    def version_of(self, key: str) -> int:
        """The version of the cached copy, or -1 (no version the journal has) when none is cached."""
        cached = self._jobs.get(key)
        return cached.version if cached is not None else -1

    def get(self, key: str, version: int) -> Job | None:
        """The cached copy of `key` if it is still at `version` (the journal's), else None."""
        cached = self._jobs.get(key)
        return cached.clone() if cached is not None and cached.version == version else None

    def remember(self, job: Job) -> None:
        if not (job.settled and not job.download_error):
            self.forget(job)
            return
        kept = job.clone()
        for key in (job.job_id, job.task_id):
            if key:
                self._jobs[key] = kept
                self._jobs.move_to_end(key)
        while len(self._jobs) > self._size:
            self._jobs.popitem(last=False)

    def forget(self, job: Job) -> None:
        self._jobs.pop(job.job_id, None)
        if job.task_id:
            self._jobs.pop(job.task_id, None)
