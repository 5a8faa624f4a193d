"""Long jobs: work-done progress after a short delay, and cancellation from every direction.

A job owns a `threading.Event` that the engine polls (`cancel=`). It is set by `$/cancelRequest` for the
request that started the job, by `window/workDoneProgress/cancel` for the job's progress token, and on
shutdown. `Job.run` returns as soon as the job is cancelled, without waiting for the engine thread to
notice, so a cancelled request is answered at once and no edit is applied.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import CancelledError as FutureCancelled
from typing import TYPE_CHECKING, Any, TypeVar

from lsprotocol import types

from ..engine import Cancelled

if TYPE_CHECKING:
    from ..server import PassPilotServer

log = logging.getLogger(__name__)
T = TypeVar("T")

PROGRESS_DELAY_S = 0.2


class Job:
    def __init__(
        self, ls: PassPilotServer, title: str, *, cancellable: bool = True, follow_request: bool = True, background: bool = False
    ):
        self.ls = ls
        self.title = title
        self.cancellable = cancellable
        self.background = background  # yields the cores to every other job (JobTracker.foreground)
        self.cancel = threading.Event()
        self.message: str | None = None
        self._cancelled = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._token: str | None = None
        self._begun = False
        self._finished = False
        self._timer: asyncio.TimerHandle | None = None
        self._begin_task: asyncio.Task | None = None
        # None until the job reports done/total: a `begin` without a percentage is an indeterminate
        # progress, whose later reports VS Code shows by message; a `begin` with one makes VS Code drop
        # every later report that carries none (vscode-languageclient's ProgressPart).
        self._percentage: int | None = None
        self._started_at = 0.0
        # The request's own `workDoneToken`, when the client gave one: progress goes there (client-initiated
        # progress, shown where the client chose) instead of on a token the server creates.
        self._client_token = getattr(ls.protocol, "work_done_token", None) if follow_request else None
        if follow_request:
            self._follow_current_request()

    # Cancellation

    def request_cancel(self) -> None:
        """Cancel the job (loop thread only)."""
        if not self.cancel.is_set():
            log.info("job %r cancelled", self.title)
        self.cancel.set()
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def _follow_current_request(self) -> None:
        """`$/cancelRequest` for the request being handled cancels this job.

        pygls keeps the future of each in-flight request by id; for `workspace/executeCommand` the command
        handler runs outside that future, so a cancelled request would otherwise go unnoticed.
        """
        protocol = self.ls.protocol
        msg_id = protocol.msg_id
        future = protocol._request_futures.get(msg_id) if msg_id is not None else None  # noqa: SLF001
        if future is None:
            return

        def on_done(done) -> None:
            if done.cancelled():
                self._loop.call_soon_threadsafe(self.request_cancel)

        future.add_done_callback(on_done)

    # Lifecycle

    async def __aenter__(self) -> Job:
        self._started_at = time.monotonic()
        log.info("job started: %s", self.title)
        self.ls.jobs.started(self)
        # A client that gave its own token already shows progress for this request: report on it at once.
        # Otherwise wait a little, so that quick jobs never flash a progress bar.
        delay = 0.0 if self._client_token is not None else PROGRESS_DELAY_S
        self._timer = self._loop.call_later(delay, self._start_progress)
        return self

    async def __aexit__(self, *exc_info) -> None:
        self._finished = True
        outcome = "cancelled" if self.cancelled else "failed" if exc_info and exc_info[0] is not None else "done"
        log.info(
            "job %s: %s in %.2f s%s", outcome, self.title, time.monotonic() - self._started_at, f" ({self.message})" if self.message else ""
        )
        if self._timer is not None:
            self._timer.cancel()
        if self._begin_task is not None and not self._begin_task.done():
            self._begin_task.cancel()
        if self._begun and self._token is not None:
            message = "cancelled" if self.cancelled else "done"
            try:
                self.ls.work_done_progress.end(self._token, types.WorkDoneProgressEnd(message=message))
            except Exception:  # noqa: BLE001
                log.debug("could not end progress", exc_info=True)
            self.ls.work_done_progress.tokens.pop(self._token, None)
        self.ls.jobs.finished(self)

    def _start_progress(self) -> None:
        if self._finished or (self._client_token is None and not self.ls.supports("window.work_done_progress")):
            return
        self._begin_task = asyncio.ensure_future(self._begin())

    async def _begin(self) -> None:
        token = self._client_token
        if token is None:
            token = f"passpilot-{uuid.uuid4()}"
            try:
                await self.ls.work_done_progress.create_async(token)
            except Exception as error:  # noqa: BLE001 - a client may refuse; the job goes on without progress
                log.info("client refused a progress token: %s", error)
                return
        if self._finished:
            self.ls.work_done_progress.tokens.pop(token, None)
            return
        self._token = token
        self.ls.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(
                title=self.title, cancellable=self.cancellable, message=self.message, percentage=self._percentage
            ),
        )
        self._begun = True
        cancelled = self.ls.work_done_progress.tokens.get(token)
        if cancelled is not None:
            cancelled.add_done_callback(lambda f: f.cancelled() and self._loop.call_soon_threadsafe(self.request_cancel))

    # Reporting

    def report(self, done: int, total: int, message: str | None = None) -> None:
        """Thread-safe: called from engine threads."""
        self._loop.call_soon_threadsafe(self._report, done, total, message)

    def _report(self, done: int, total: int, message: str | None) -> None:
        percentage = int(100 * done / total) if total else 0
        self._percentage = max(percentage, self._percentage or 0)  # never backwards
        self.message = message or (f"{done}/{total} candidates measured" if total else None)
        if self._begun and self._token is not None and not self._finished:
            self.ls.work_done_progress.report(
                self._token, types.WorkDoneProgressReport(message=self.message, percentage=self._percentage)
            )

    def set_message(self, message: str) -> None:
        """Loop thread only."""
        self.message = message
        if self._begun and self._token is not None and not self._finished:
            self.ls.work_done_progress.report(self._token, types.WorkDoneProgressReport(message=message, percentage=self._percentage))

    # Running engine work

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking work in the executor; raise `Cancelled` as soon as the job is cancelled."""
        if self.cancelled:
            raise Cancelled()
        work = asyncio.ensure_future(self.ls.run_sync(function, *args, **kwargs))
        stop = asyncio.ensure_future(self._cancelled.wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self.request_cancel()
            raise
        finally:
            stop.cancel()
        if not work.done():
            work.add_done_callback(_swallow)
            raise Cancelled()
        try:
            return work.result()
        except FutureCancelled:
            raise Cancelled() from None


def _swallow(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


class JobTracker:
    """The jobs in flight, for `passpilot/status` and for cancelling everything on shutdown."""

    def __init__(self, ls: PassPilotServer):
        self.ls = ls
        self.active: list[Job] = []

    @property
    def busy(self) -> bool:
        return bool(self.active)

    @property
    def foreground(self) -> int:
        """How many jobs in flight are not background work."""
        return sum(1 for job in self.active if not job.background)

    def started(self, job: Job) -> None:
        self.active.append(job)
        self.ls.notify_status(job.title)

    def finished(self, job: Job) -> None:
        if job in self.active:
            self.active.remove(job)
        self.ls.notify_status(self.active[-1].title if self.active else None)

    def cancel_all(self) -> None:
        for job in list(self.active):
            job.cancel.set()
