"""Jobs: one `segment` or `detect` run, from an input path to a complete output folder.

:func:`~.runner.run_job` runs a :class:`~.request.JobRequest` and returns a
:class:`~.request.JobResult`; the command line and the demo call it, one call per job.
"""

from .request import JobRequest, JobResult
from .runner import run_job

__all__ = ["JobRequest", "JobResult", "run_job"]
