"""Tornado handlers of the physviz REST API: thin, authenticated, XSRF-respecting views over physviz.jobs.

Routes, all under the server's ``base_url`` (``/user/NAME/`` under JupyterHub)::

    GET    physviz/api/version
    GET    physviz/api/jobs                            {"jobs": [job, ...]}  (?backend=, ?status=, ?fresh=0)
    POST   physviz/api/jobs                            a fine-tune from the form: 201 job, or 400 {"errors": {field: message}}
    GET    physviz/api/jobs/ID                         job
    DELETE physviz/api/jobs/ID                         cancel; the job after it
    POST   physviz/api/jobs/ID/cancel                  cancel; the job after it
    GET    physviz/api/jobs/ID/logs?offset=&rank=      {"text", "offset", "rank", "status"}
    GET    physviz/api/jobs/ID/logs/stream?offset=&rank=      Server-Sent Events until the job ends
    GET    physviz/api/jobs/ID/metrics?offset=         {"metrics": [...], "offset", "status"}
    GET    physviz/api/jobs/ID/metrics/stream?offset=  Server-Sent Events until the job ends
    GET    physviz/jobs                                a page over all of these (physviz.server.page)

Bad query arguments or headers (offsets and ranks are ASCII digits, offsets at most 2**53 - 1) are a 400
naming them; an unknown job is a 404; the logs and metrics of a job that never started (no job folder) a 409.
A job is ``Job.to_dict()`` with its current ``status``. Non-finite floats become ``null`` (the
browser's JSON.parse refuses NaN). Every call into physviz.jobs runs in a worker thread, so a
slow scheduler or SSH host never blocks the server. POST and DELETE need the ``_xsrf`` cookie and
an ``X-XSRFToken`` header unless the request carries the token itself, as everywhere in Jupyter Server.
"""
from __future__ import annotations

import asyncio
import functools
import json
import math
import re
import sys
import time
from typing import Any, Callable

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

import physviz
from physviz.errors import PhysvizError
from physviz.jobs.layout import MAX_OFFSET, log_key
from physviz.jobs.states import is_terminal

AUTH_RESOURCE = "physviz"
_JOB_ID = r"(?P<job_id>[^/]+)"
_ASCII_INT = re.compile(r"[0-9]{1,16}")


def ascii_int(text: str) -> int | None:
    """The integer `text` writes in ASCII digits alone, else None ('²', Arabic-Indic digits, '+1', '1_0', ' 1')."""
    return int(text) if _ASCII_INT.fullmatch(text) else None


def json_safe(value: Any) -> Any:
    """`value` with NaN and infinities replaced by None, so that any JSON parser reads it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Strict JSON text of `value` (non-finite floats as null)."""
    return json.dumps(json_safe(value), allow_nan=False, default=str)


def fail(status: int, message: str, reason: str | None = None) -> web.HTTPError:
    """An HTTPError whose JSON reply carries `message` as written (tornado %-formats log messages)."""
    error = web.HTTPError(status, message.replace("%", "%%"), reason=reason)
    error.physviz_message = message  # type: ignore[attr-defined]
    return error


def job_dict(job: Any) -> dict[str, Any]:
    """The job's JSON record with its current status (asks the backend: call in a thread)."""
    record = dict(job.to_dict())
    record["status"] = job.status()
    return record


class PhysvizAPIHandler(APIHandler):
    """Base of physviz handlers: JSON errors with one sentence, physviz.jobs calls in a thread."""

    auth_resource = AUTH_RESOURCE

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """JSON error replies; a physviz message is sent as written."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "physviz_message", None)
        if message is None:
            super().write_error(status_code, **kwargs)
            return
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message, "reason": getattr(exc, "reason", None)}))

    @property
    def job_store(self) -> str | None:
        """The job store path set for this server (None: physviz.jobs' default, $PHYSVIZ_JOB_STORE)."""
        return self.settings.get("physviz_job_store") or None

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking physviz.jobs call in a worker thread; map its errors to HTTP statuses."""
        from physviz.jobs.errors import (
            BackendError,
            JobNotFoundError,
            JobNotStartedError,
            JobStoreError,
        )

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))
        except JobNotFoundError as exc:
            raise fail(404, str(exc), reason="Job Not Found") from None
        except JobNotStartedError as exc:
            raise fail(409, str(exc), reason="Job Never Started") from None
        except BackendError as exc:
            raise fail(502, str(exc), reason="Backend Unreachable") from None
        except JobStoreError as exc:
            raise fail(500, str(exc), reason="Job Store Error") from None
        except PhysvizError as exc:
            raise fail(400, str(exc)) from None

    async def job(self, job_id: str) -> Any:
        """The job with this id (404 if the store has none)."""
        from physviz import jobs

        return await self.call(jobs.get, job_id, store=self.job_store)

    def _number_argument(self, name: str, default: Any, parse: Callable[[str], Any], ok: Callable[[Any], bool],
                         expected: str) -> Any:
        """A query argument parsed by `parse` that `ok` accepts (400 saying it must be `expected` otherwise)."""
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = parse(raw)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise fail(400, f"Query argument {name}={raw!r} must be {expected}.")
        return value

    def int_argument(self, name: str, default: int, minimum: int = 0, maximum: int = MAX_OFFSET) -> int:
        """A query argument that must be an integer in ASCII digits from `minimum` to `maximum` (400 otherwise)."""
        return int(self._number_argument(name, default, ascii_int, lambda v: minimum <= v <= maximum,
                                         f"an integer of at least {minimum} and at most {maximum}"))

    def offset_argument(self) -> int:
        """Where to read from: the ``Last-Event-ID`` header (an EventSource resuming), else ``?offset=`` (0)."""
        resume = self.request.headers.get("Last-Event-ID")
        if resume is None or resume == "":
            return self.int_argument("offset", 0)
        offset = ascii_int(resume)
        if offset is None or offset > MAX_OFFSET:
            raise fail(400, f"Header Last-Event-ID={resume!r} must be a byte offset, an integer from 0 to "
                            f"{MAX_OFFSET}, as sent in the stream's event ids.")
        return offset

    def rank_argument(self) -> int | str:
        """The ``rank`` query argument: a global rank (default 0), 'rank<R>', 'node<N>' or 'batch' (400 otherwise)."""
        from physviz.jobs.errors import JobSpecError

        raw = self.get_query_argument("rank", "0") or "0"
        try:
            log_key(raw)
        except JobSpecError:
            raise fail(400, f"Query argument rank={raw!r} is not a log; give a rank (0, 1, ...), 'node<N>' "
                            "or 'batch'.") from None
        number = ascii_int(raw)
        return number if number is not None else raw

    def float_argument(self, name: str, default: float, low: float, high: float) -> float:
        """A query argument that must be a number in [low, high] (400 otherwise)."""
        return float(self._number_argument(name, default, float, lambda v: low <= v <= high,
                                           f"a number from {low} to {high}"))

    def send(self, value: Any, status: int = 200) -> None:
        """Finish with strict JSON."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(dumps(value))


class VersionHandler(PhysvizAPIHandler):
    """GET physviz/api/version: what physviz is installed in this server's environment."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.send({"version": physviz.__version__, "python": sys.executable})


class JobsHandler(PhysvizAPIHandler):
    """GET physviz/api/jobs: every job in the store, oldest first (?backend=local, ?status=running).

    Each status is asked of its backend now; ``?fresh=0`` gives the last recorded ones instead
    (no scheduler or SSH round trip per job).
    """

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from physviz import jobs

        backend = self.get_query_argument("backend", None)
        wanted = self.get_query_argument("status", None)
        fresh = self.get_query_argument("fresh", "1") not in ("0", "false", "no")

        def listing() -> list[dict[str, Any]]:
            out = []
            for job in jobs.list(store=self.job_store):
                if backend and job.backend != backend:
                    continue
                record = job_dict(job) if fresh else {**job.to_dict(), "status": job.record.get("status", "unknown")}
                if wanted and record["status"] != wanted:
                    continue
                out.append(record)
            return out

        self.send({"jobs": await self.call(listing)})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """A new fine-tune job from the JupyterLab form (physviz.server.submit): 201, or 400 with field errors."""
        from physviz.server.submit import post_job

        await post_job(self)


class JobHandler(PhysvizAPIHandler):
    """GET physviz/api/jobs/ID: one job; DELETE: cancel it."""

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        job = await self.job(job_id)
        self.send(await self.call(job_dict, job))

    @web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        await cancel(self, job_id)


class CancelHandler(PhysvizAPIHandler):
    """POST physviz/api/jobs/ID/cancel: cancel a job (a finished one is left as it is)."""

    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        await cancel(self, job_id)


async def cancel(handler: PhysvizAPIHandler, job_id: str) -> None:
    """Cancel the job unless it already ended; answer with the job after it."""
    job = await handler.job(job_id)

    def run() -> dict[str, Any]:
        if not is_terminal(job.status()):
            job.cancel()
        return job_dict(job)

    handler.send(await handler.call(run))


def read_chunk(kind: str, job: Any, offset: int, rank: int | str) -> tuple[dict[str, Any], int, bool]:
    """One read of a job's log ("log") or metrics ("metrics") from `offset`: payload, new offset, whether anything came."""
    if kind == "log":
        text, new = job.logs(offset=offset, rank=rank)
        return {"text": text, "rank": rank}, new, bool(text) or new != offset
    lines, new = job.metrics(offset=offset)
    return {"metrics": lines}, new, bool(lines) or new != offset


class ReadHandler(PhysvizAPIHandler):
    """GET a job's log or metrics from ?offset=N once, with the job's status."""

    kind = "log"

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        offset = self.int_argument("offset", 0)
        rank = self.rank_argument()
        job = await self.job(job_id)

        def read() -> dict[str, Any]:
            status = job.status()  # before reading: text written before a final state is not missed
            payload, new, _ = read_chunk(self.kind, job, offset, rank)
            return {"id": job.id, **payload, "offset": new, "status": status}

        self.send(await self.call(read))


class LogsHandler(ReadHandler):
    """GET physviz/api/jobs/ID/logs?offset=N&rank=R: the log text of one rank from offset N."""

    kind = "log"


class MetricsHandler(ReadHandler):
    """GET physviz/api/jobs/ID/metrics?offset=N: metrics.jsonl lines from offset N, parsed."""

    kind = "metrics"


class StreamHandler(PhysvizAPIHandler):
    """Server-Sent Events of a job's new log text or metrics until the job ends.

    Each event carries the new offset as its ``id``, so a browser ``EventSource`` that reconnects
    resumes where it stopped (``Last-Event-ID``). Events: ``log`` or ``metrics`` with
    ``{"text"|"metrics", "offset", "status"}``, ``status`` when the state changes, and a last
    ``end`` with the final state. ``interval`` (seconds) sets the period of reading new text (the
    job's state is asked every ``PhysvizServer.status_interval`` seconds, at least), ``timeout``
    ends the stream early. A comment line every 15 s keeps proxies from closing it.
    """

    kind = "log"
    keepalive_s = 15.0

    def initialize(self) -> None:  # noqa: D401 - tornado hook
        self._closed = False

    def on_connection_close(self) -> None:
        self._closed = True

    def read(self, job: Any, offset: int, rank: int | str) -> tuple[dict[str, Any], int, bool]:
        """(payload, new offset, whether anything new came) of one poll."""
        return read_chunk(self.kind, job, offset, rank)

    async def emit(self, event: str, data: dict[str, Any], event_id: int | None = None) -> None:
        """Write one SSE event and flush it."""
        head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
        self.write(head + "data: " + dumps(data) + "\n\n")
        await self.flush()

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        offset = self.offset_argument()
        rank = self.rank_argument()
        interval = self.float_argument(
            "interval", float(self.settings.get("physviz_stream_interval", 0.5)), 0.05, 60.0)
        timeout = self.float_argument("timeout", 0.0, 0.0, 86400.0)
        job = await self.job(job_id)
        # The first poll runs before the stream starts, so a bad rank is still a plain 400.
        status = await self.call(job.status)
        first: tuple[dict[str, Any], int, bool] | None = await self.call(self.read, job, offset, rank)

        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # nginx and JupyterHub's proxy pass it on at once
        start = last_write = last_asked = time.monotonic()
        status_every = max(interval, float(self.settings.get("physviz_status_interval", 2.0)))
        last_status = None
        try:
            await self.emit("open", {"id": job.id, "offset": offset, "rank": rank})
            while not self._closed:
                if status != last_status:
                    await self.emit("status", {"status": status})
                    last_status = status
                while not self._closed:  # catch up: one read returns at most the backend's limit
                    payload, new_offset, new = first or await self.call(self.read, job, offset, rank)
                    first = None
                    if not new:
                        break
                    offset = new_offset
                    payload.update(offset=offset, status=status)
                    await self.emit(self.kind, payload, event_id=offset)
                    last_write = time.monotonic()
                # The state was read before the text, so after a final state all text is in.
                if is_terminal(status):
                    await self.emit("end", {"status": status, "offset": offset}, event_id=offset)
                    break
                now = time.monotonic()
                if timeout and now - start >= timeout:
                    await self.emit("timeout", {"status": status, "offset": offset}, event_id=offset)
                    break
                if now - last_write >= self.keepalive_s:
                    self.write(": keepalive\n\n")
                    await self.flush()
                    last_write = now
                await asyncio.sleep(interval)
                if time.monotonic() - last_asked >= status_every:  # squeue or SSH: not on every poll
                    status = await self.call(job.status)
                    last_asked = time.monotonic()
        except StreamClosedError:
            return
        if not self._closed:
            self.finish()


class LogStreamHandler(StreamHandler):
    """GET physviz/api/jobs/ID/logs/stream?offset=&rank=: new log text as Server-Sent Events."""

    kind = "log"


class MetricsStreamHandler(StreamHandler):
    """GET physviz/api/jobs/ID/metrics/stream?offset=: new metrics lines as Server-Sent Events."""

    kind = "metrics"


def routes(base_url: str) -> list[tuple[str, type]]:
    """The physviz routes joined with `base_url`."""
    api = url_path_join(base_url, "physviz", "api")
    job = url_path_join(api, "jobs", _JOB_ID)
    return [
        (url_path_join(api, "version"), VersionHandler),
        (url_path_join(api, "jobs") + "/?", JobsHandler),
        (job + "/?", JobHandler),
        (url_path_join(job, "cancel"), CancelHandler),
        (url_path_join(job, "logs"), LogsHandler),
        (url_path_join(job, "logs", "stream"), LogStreamHandler),
        (url_path_join(job, "metrics"), MetricsHandler),
        (url_path_join(job, "metrics", "stream"), MetricsStreamHandler),
    ]


def setup_handlers(web_app: Any, job_store: str | None = None, stream_interval: float = 0.5,
                   status_interval: float = 2.0) -> None:
    """Add physviz routes under the server's base_url (so /user/NAME/ works under JupyterHub)."""
    web_app.settings["physviz_job_store"] = job_store
    web_app.settings["physviz_stream_interval"] = stream_interval
    web_app.settings["physviz_status_interval"] = status_interval
    from physviz.server.page import page_routes

    base_url = web_app.settings["base_url"]
    web_app.add_handlers(".*$", routes(base_url) + page_routes(base_url))
