"""The durable job queue: job types (`model`), handler context (`context`), events (`events`), worker (`worker`)."""

from agent.queue.context import JobContext
from agent.queue.model import Job, JobSpec, Outcome, Priority, Status
from agent.queue.worker import Handler, Queue

__all__ = ["Handler", "Job", "JobContext", "JobSpec", "Outcome", "Priority", "Queue", "Status"]
