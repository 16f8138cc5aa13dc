"""Reporting: uploading the interval memory to a host server.

The S8000's configuration tool has a *Host Server* (IP address, Upload
Directory, Download Directory), an *FTP Login* (user name, password) and a
*Reporting Schedule*; the display's diagnostics mode has a *Send* command that
forces the meter to report.  This module is the engine's version of that.

Configuration
-------------
:func:`reporting_config` validates plain data (a configuration file or entry)
with :data:`REPORTING_SCHEMA` and returns a frozen :class:`ReportingConfig`.
A wrong value raises :class:`ValueError` naming the field, e.g.
``reporting 'port': value must be at most 65535`` (several wrong values are
reported together, separated by ``;``).  Messages never contain the values of
the secrets.

==========================  ==================================================================
field                       meaning
==========================  ==================================================================
protocol                    ``none`` (default: no reporting), ``ftp``, ``ftps`` (FTP with
                            explicit TLS: ``AUTH TLS`` then ``PROT P``), ``http`` or
                            ``https`` (the CSV is POSTed to ``url``)
host                        FTP(S) server: a host name or IP address (required for ftp/ftps)
port                        FTP(S) control port, default 21 (http/https take theirs from url)
username                    FTP login, default ``anonymous``
password                    FTP password (a secret: never shown in repr, messages or logs)
upload_directory            FTP directory to upload into; ``""`` (default) is the login
                            directory; relative paths are relative to it
url                         ``http://`` or ``https://`` address to POST to (required for
                            http/https; its scheme must match ``protocol``; no user name or
                            password in it — use ``token``)
token                       optional bearer token for http/https (a secret)
every_minutes               the reporting schedule: 0 (default) reports only on *Send*;
                            otherwise one of 5, 15, 30, 60, 120, 240, 360, 720, 1440
max_intervals_per_file      at most this many intervals per uploaded file (default 2880,
                            30 days of 15-minute intervals; at least 1)
timeout_s                   network timeout per operation, seconds (default 30, 1 to 600)
ca_file                     optional PEM file of the CA(s) that sign the host's certificate
                            (ftps/https); without it the system's trusted CAs are used.
                            Certificates and host names are always verified.
==========================  ==================================================================

What is sent
------------
A report is one or more CSV files in the documented export format
(:func:`s8000_engine.export.to_csv`: a header row, then one row per meter
point per interval), UTF-8, named ``S8000_<serial>_<first start>_<last end>.csv``
with the times of the first interval's start and the last interval's end as
UTC ``YYYYMMDDTHHMMSSZ``, e.g. ``S8000_0212060212_20261125T101500Z_20261125T110000Z.csv``.
Each file holds the oldest intervals not yet reported, at most
``max_intervals_per_file`` of them.

FTP and FTPS (:class:`FtpUploader`): connect (with the timeout), for ftps
negotiate TLS on the control channel (``AUTH TLS``) and protect the data
channel (``PROT P``; the data connection reuses the control connection's TLS
session, which servers such as vsftpd require), log in, change to the upload
directory if one is set, ``TYPE I``, ``STOR`` the file under a temporary name
(``<name>.part``), check that the transfer's final reply is 226 or 250 and that
the server's ``SIZE`` of the file equals the bytes sent (servers without
``SIZE`` are trusted on their 226), then rename it to its final name
(``RNFR``/``RNTO``; a server that refuses to rename over an existing file of
the same name — a repeat of a report whose acknowledgement was lost — gets that
file deleted and the rename retried), so the host never sees half a file.  On a
failure after the ``STOR`` the ``.part`` file is deleted if the connection still
allows it.  The acknowledgement is described as
``ftp://host:21/dir/name.csv (226, 1234 bytes)``.

HTTP and HTTPS (:class:`HttpUploader`): ``POST url`` with the CSV as the body
and the headers ``Content-Type: text/csv; charset=utf-8``,
``Content-Disposition: attachment; filename="<name>"``, ``X-S8000-Serial``,
``X-S8000-Intervals: <count>`` and, with a token, ``Authorization: Bearer
<token>``.  A 2xx answer is the acknowledgement, described as
``https://host/path (200, 1234 bytes)`` (without the URL's query, which may
carry a key).  Any other answer — redirects are not followed, since a client
that follows a redirect of a POST may turn it into a GET and take the answer
for an acknowledgement — or no answer is a failure.  Connections are direct:
proxy environment variables are ignored.

Every failure raises :class:`ReportError`, whose message names the host (or
URL) and what failed, e.g. ``ftp://10.0.0.5:21: login refused for user
'meter': 530 Login incorrect.`` or ``POST https://host/in: the host answered
500 Internal Server Error``.  Messages never contain the password or token.

Acknowledgement and retention
-----------------------------
Unlike the meter, whose *Send* "clears data from the Series 8000 meter
memory", the engine marks an interval reported (:meth:`Store.mark_reported
<s8000_engine.storage.Store.mark_reported>`, with the acknowledgement's
description as the destination) only **after** the host acknowledged the file
that carried it, and never deletes it: intervals stay in the store until
retention prunes them by age.  A failed upload marks nothing of its file, so
the same intervals are sent again next time; a host may therefore receive a
file twice (when the acknowledgement is lost on the way back), never miss one.
Files already acknowledged in the same *Send* stay marked.  An interval that is
re-entered after being reported (the clock was set back) becomes unreported
again and is sent again.

Sending and the schedule
------------------------
:class:`Reporter` ties a :class:`~s8000_engine.storage.Store` to a
configuration.  :meth:`Reporter.send_now` is the *Send* command: it uploads
file after file until nothing unreported is left or an upload fails, and
returns a :class:`SendResult`.  With protocol ``none`` it returns the error
``reporting is not configured`` and touches nothing.

With ``every_minutes`` > 0, reports are due at the multiples of that period on
the UTC clock (every 60 minutes: on the hour; 1440: at midnight UTC).
:meth:`Reporter.due` is true once a period boundary has passed since the last
attempt (or when there never was one), and :meth:`Reporter.maybe_send` sends
when it is.  The time of the last attempt is stored in the store's meta
(``reporting_last_attempt``), so a restart does not report again before the
next boundary; a failed attempt is retried at the next boundary.  A clock
that is set back into an earlier period makes a report due once.

Counters and the outcome of the last attempt are kept in the meta key
``reporting_status`` (:class:`ReportingStatus`, returned by
:meth:`Reporter.status`): ``last_attempt``, ``last_success``,
``last_failure``, ``last_error`` (of the last attempt; ``None`` if it
succeeded), ``last_destination``, ``attempts``, ``failures``, ``files_sent``
and ``intervals_sent``.

Uploads block (each network operation up to ``timeout_s``); call the
reporter from a worker thread, not an event loop.  A reporter is not meant to
be used from two threads at once.
"""

from __future__ import annotations

import contextlib
import ftplib
import http.client
import io
import logging
import math
import re
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import IO, Final, Protocol, TypedDict, override

from s8000_engine import __version__
from s8000_engine.config.reporting import (
    FTP_PROTOCOLS,
    HTTP_PROTOCOLS,
    ReportingConfig,
    ReportingProtocol,
)
from s8000_engine.exceptions import ReportError, StorageError
from s8000_engine.storage.export import to_csv
from s8000_engine.storage.store import IntervalRecord, Store

__all__ = [
    "META_LAST_ATTEMPT",
    "META_STATUS",
    "NOT_CONFIGURED",
    "FtpUploader",
    "HttpUploader",
    "Reporter",
    "ReportingStatus",
    "SendResult",
    "Uploader",
    "make_uploader",
    "report_filename",
]

_LOGGER = logging.getLogger(__name__)

META_LAST_ATTEMPT: Final = "reporting_last_attempt"
META_STATUS: Final = "reporting_status"
NOT_CONFIGURED: Final = "reporting is not configured"

_SERIAL: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FILENAME: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,200}")
_STAMP: Final = "%Y%m%dT%H%M%SZ"
_ERROR_BODY_CHARS: Final = 200


# -- uploaders ----------------------------------------------------------------------------


class Uploader(Protocol):
    """Delivers one report file to the host."""

    def upload(self, filename: str, data: bytes, *, serial: str = "", intervals: int = 0) -> str:
        """Upload ``data`` as ``filename``; return a description of the host's
        acknowledgement, or raise :class:`ReportError`.  ``serial`` and
        ``intervals`` (how many intervals the file holds) are for uploaders
        that can pass them on."""
        ...


def _scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _check_filename(filename: str) -> None:
    if not _FILENAME.fullmatch(filename):
        raise ValueError(
            f"report file name {filename!r}: only letters, digits, '.', '-' and '_' are allowed"
        )


def _ssl_context(config: ReportingConfig, where: str) -> ssl.SSLContext:
    """A verifying client context (the system's CAs, or only those of ca_file)."""
    try:
        return ssl.create_default_context(cafile=config.ca_file)
    except (OSError, ssl.SSLError) as error:
        reason = error.strerror or str(error)
        raise ReportError(f"{where}: cannot load ca_file {config.ca_file}: {reason}") from None


def _reason(error: BaseException) -> str:
    """A short description of a network or protocol failure."""
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"the server's certificate was refused: {error.verify_message or error.reason}"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or error}"
    if isinstance(error, EOFError | http.client.RemoteDisconnected):
        return "the server closed the connection"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _ReusingFtpTls(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session.

    Many FTPS servers (vsftpd's ``require_ssl_reuse``, the default) refuse a
    data connection that does not, so that nobody else can hijack it."""

    @override
    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        session = self.sock.session if isinstance(self.sock, ssl.SSLSocket) else None
        try:
            wrapped = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        except BaseException:
            conn.close()
            raise
        return wrapped, size


class FtpUploader:
    """Uploads report files by FTP or FTPS (explicit TLS)."""

    def __init__(self, config: ReportingConfig) -> None:
        if config.protocol not in FTP_PROTOCOLS:
            raise ValueError(f"FtpUploader: protocol {config.protocol.value} is not ftp or ftps")
        if not config.host:
            raise ValueError("FtpUploader: no host configured")
        self.config = config

    @property
    def address(self) -> str:
        """``ftp://host:port`` (or ``ftps://``)."""
        config = self.config
        return f"{config.protocol.value}://{_url_host(config.host)}:{config.port}"

    def __repr__(self) -> str:
        return f"FtpUploader({self.address})"

    def _fail(self, what: str, error: BaseException | str | None = None) -> ReportError:
        text = f"{self.address}: {what}"
        if error is not None:
            text += f": {error if isinstance(error, str) else _reason(error)}"
        return ReportError(_scrub(text, self.config.password))

    def _connect(self) -> ftplib.FTP:
        config = self.config
        ftp: ftplib.FTP
        if config.protocol is ReportingProtocol.FTPS:
            context = _ssl_context(config, self.address)
            ftp = _ReusingFtpTls(context=context, timeout=config.timeout_s)
        else:
            ftp = ftplib.FTP(timeout=config.timeout_s)
        try:
            ftp.connect(config.host, config.port, timeout=config.timeout_s)
        except ftplib.all_errors as error:
            ftp.close()
            raise self._fail("cannot connect", error) from None
        return ftp

    def upload(self, filename: str, data: bytes, *, serial: str = "", intervals: int = 0) -> str:
        """Upload ``data`` as ``filename`` via ``<filename>.part``; return e.g.
        ``ftp://host:21/dir/name.csv (226, 1234 bytes)``."""
        del serial, intervals  # FTP carries them in the file name and contents only
        _check_filename(filename)
        ftp = self._connect()
        try:
            return self._session(ftp, filename, data)
        finally:
            ftp.close()

    def _session(self, ftp: ftplib.FTP, filename: str, data: bytes) -> str:
        config = self.config
        part = filename + ".part"

        def step[T](what: str, action: Callable[[], T]) -> T:
            try:
                return action()
            except ftplib.all_errors as error:
                raise self._fail(what, error) from None

        if isinstance(ftp, ftplib.FTP_TLS):
            step("TLS negotiation (AUTH TLS) failed", ftp.auth)
        step(
            f"login refused for user '{config.username}'",
            lambda: ftp.login(config.username, config.password),
        )
        if isinstance(ftp, ftplib.FTP_TLS):
            step("the server refused to protect the data channel (PROT P)", ftp.prot_p)
        if config.upload_directory:
            step(
                f"cannot change to the upload directory '{config.upload_directory}'",
                lambda: ftp.cwd(config.upload_directory),
            )
        step("binary mode (TYPE I) refused", lambda: ftp.voidcmd("TYPE I"))
        try:
            reply = step(
                f"cannot store {part}", lambda: ftp.storbinary(f"STOR {part}", io.BytesIO(data))
            )
            code = reply[:3]
            if code not in ("226", "250"):
                raise self._fail(f"storing {part} was not confirmed", reply.strip())
            size = self._size(ftp, part)
            if size is not None and size != len(data):
                raise self._fail(
                    f"size mismatch after storing {part}",
                    f"the server has {size} bytes, {len(data)} were sent",
                )
            self._rename(ftp, part, filename)
        except ReportError:
            self._discard(ftp, part)
            raise
        with contextlib.suppress(*ftplib.all_errors):
            ftp.quit()  # the file is in place; a lost goodbye does not matter
        path = "/".join(p for p in (config.upload_directory.strip("/"), filename) if p)
        return f"{self.address}/{path} ({code}, {len(data)} bytes)"

    def _size(self, ftp: ftplib.FTP, name: str) -> int | None:
        """The server's size of ``name``; None if the server does not support SIZE."""
        try:
            return ftp.size(name)
        except ftplib.error_perm as error:
            if str(error)[:3] in ("500", "501", "502", "504"):
                return None  # SIZE is not implemented: the 226 is all we get
            raise self._fail(f"cannot check the size of {name}", error) from None
        except ftplib.all_errors as error:
            raise self._fail(f"cannot check the size of {name}", error) from None
        except ValueError:
            raise self._fail(f"cannot check the size of {name}", "unreadable SIZE reply") from None

    def _rename(self, ftp: ftplib.FTP, part: str, final: str) -> None:
        what = f"cannot rename {part} to {final}"

        def rename_from() -> None:
            reply = ftp.sendcmd(f"RNFR {part}")
            if not reply.startswith("3"):
                raise ftplib.error_reply(reply)

        try:
            rename_from()
        except ftplib.all_errors as error:
            raise self._fail(what, error) from None
        try:
            ftp.voidcmd(f"RNTO {final}")
            return
        except ftplib.error_perm as error:
            refused = error
        except ftplib.all_errors as error:
            raise self._fail(what, error) from None
        # Some servers do not rename over an existing file.  One of this name
        # is this same report, sent before (its acknowledgement was lost).
        try:
            ftp.delete(final)
        except ftplib.all_errors:
            raise self._fail(what, refused) from None
        try:
            rename_from()
            ftp.voidcmd(f"RNTO {final}")
        except ftplib.all_errors as error:
            raise self._fail(what, error) from None

    @staticmethod
    def _discard(ftp: ftplib.FTP, part: str) -> None:
        with contextlib.suppress(*ftplib.all_errors):
            ftp.delete(part)  # best effort: the connection may be gone, or no file made


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuses redirects: following one may turn the POST into a GET."""

    @override
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


class HttpUploader:
    """Uploads report files by HTTP(S) POST."""

    def __init__(self, config: ReportingConfig) -> None:
        if config.protocol not in HTTP_PROTOCOLS:
            raise ValueError(f"HttpUploader: protocol {config.protocol.value} is not http or https")
        if not config.url:
            raise ValueError("HttpUploader: no url configured")
        self.config = config
        parts = urllib.parse.urlsplit(config.url)
        self.display_url = urllib.parse.urlunsplit(
            (parts.scheme, parts.netloc, parts.path or "/", "", "")
        )
        """The URL as shown in messages and acknowledgements (without a query)."""

    def __repr__(self) -> str:
        return f"HttpUploader({self.display_url})"

    def _fail(self, what: str) -> ReportError:
        text = f"POST {self.display_url}: {what}"
        return ReportError(_scrub(text, self.config.token))

    def upload(self, filename: str, data: bytes, *, serial: str = "", intervals: int = 0) -> str:
        """POST ``data``; return e.g. ``https://host/path (200, 1234 bytes)``."""
        _check_filename(filename)
        config = self.config
        headers = {
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-S8000-Intervals": str(intervals),
            "User-Agent": f"s8000-engine/{__version__}",
        }
        if serial:
            headers["X-S8000-Serial"] = serial
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        request = urllib.request.Request(config.url, data=data, headers=headers, method="POST")
        handlers: list[urllib.request.BaseHandler] = [
            urllib.request.ProxyHandler({}),
            _NoRedirect(),
        ]
        if config.protocol is ReportingProtocol.HTTPS:
            context = _ssl_context(config, f"POST {self.display_url}")
            handlers.append(urllib.request.HTTPSHandler(context=context))
        opener = urllib.request.build_opener(*handlers)
        try:
            with opener.open(request, timeout=config.timeout_s) as response:
                status = int(response.status)
                response.read(65536)
        except urllib.error.HTTPError as error:
            detail = ""
            try:
                body = error.read(_ERROR_BODY_CHARS).decode("utf-8", "replace")
                detail = " ".join(body.split())
            except (OSError, http.client.HTTPException):
                pass
            finally:
                error.close()
            answer = f"the host answered {error.code} {error.reason}".rstrip()
            raise self._fail(f"{answer} ({detail})" if detail else answer) from None
        except urllib.error.URLError as error:
            reason = error.reason
            text = _reason(reason) if isinstance(reason, BaseException) else str(reason)
            raise self._fail(f"no response: {text}") from None
        except (OSError, http.client.HTTPException) as error:
            raise self._fail(f"no response: {_reason(error)}") from None
        if not 200 <= status < 300:  # urllib raises HTTPError for these; be sure anyway
            raise self._fail(f"the host answered {status}")
        return f"{self.display_url} ({status}, {len(data)} bytes)"


def make_uploader(config: ReportingConfig) -> Uploader | None:
    """The uploader for a configuration's protocol (None for ``none``)."""
    if config.protocol in FTP_PROTOCOLS:
        return FtpUploader(config)
    if config.protocol in HTTP_PROTOCOLS:
        return HttpUploader(config)
    return None


# -- the reporter ---------------------------------------------------------------------------


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime(_STAMP)


def report_filename(serial: str, records: Sequence[IntervalRecord]) -> str:
    """``S8000_<serial>_<first start>_<last end>.csv`` (UTC ``YYYYMMDDTHHMMSSZ``)."""
    if not records:
        raise ValueError("a report needs at least one interval")
    return f"S8000_{serial}_{_stamp(records[0].start)}_{_stamp(records[-1].end)}.csv"


@dataclass(slots=True)
class SendResult:
    """The outcome of one *Send*."""

    files: int
    """Files the host acknowledged."""
    intervals: int
    """Intervals in those files (all now marked reported)."""
    error: str | None
    """Why sending stopped early; None when everything unreported was sent."""
    destinations: list[str] = field(default_factory=list)
    """The acknowledgement of each file, in order."""

    @property
    def ok(self) -> bool:
        """Whether the send completed without error."""
        return self.error is None


class ReportingStatus(TypedDict):
    """Reporting counters and the last attempt's outcome (meta ``reporting_status``)."""

    last_attempt: float | None
    last_success: float | None
    """When an attempt last completed without error."""
    last_failure: float | None
    last_error: str | None
    """The error of the last attempt; None if it succeeded."""
    last_destination: str | None
    """The acknowledgement of the last file sent."""
    attempts: int
    failures: int
    files_sent: int
    intervals_sent: int


def _empty_status() -> ReportingStatus:
    return ReportingStatus(
        last_attempt=None,
        last_success=None,
        last_failure=None,
        last_error=None,
        last_destination=None,
        attempts=0,
        failures=0,
        files_sent=0,
        intervals_sent=0,
    )


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class Reporter:
    """Sends a store's unreported intervals to the configured host."""

    def __init__(
        self,
        store: Store,
        config: ReportingConfig,
        *,
        serial: str,
        names: Sequence[str] = (),
        uploader: Uploader | None = None,
    ) -> None:
        if not _SERIAL.fullmatch(serial):
            raise ValueError(
                f"serial {serial!r}: 1 to 64 letters, digits, '-' or '_' (it names the files)"
            )
        self.store = store
        self.config = config
        self.serial = serial
        self.names = tuple(names)
        """Point names for the CSV (``Point N`` where missing)."""
        self.uploader = uploader if uploader is not None else make_uploader(config)
        self._last_attempt = _number(store.get_meta(META_LAST_ATTEMPT))

    def __repr__(self) -> str:
        return f"Reporter({self.store.path}, {self.config!r}, serial={self.serial!r})"

    # -- schedule -------------------------------------------------------------------------

    @property
    def last_attempt(self) -> float | None:
        """When reporting was last attempted (persisted in the store)."""
        return self._last_attempt

    def _period(self) -> int | None:
        if not self.config.configured or self.uploader is None or self.config.every_minutes <= 0:
            return None
        return self.config.every_minutes * 60

    def due(self, now: float) -> bool:
        """Whether a scheduled report is due: a period boundary (a multiple of
        ``every_minutes`` on the UTC clock) lies between the last attempt and
        ``now``, or there never was an attempt.  False without a schedule."""
        period = self._period()
        if period is None:
            return False
        if self._last_attempt is None:
            return True
        return math.floor(now / period) != math.floor(self._last_attempt / period)

    def next_due(self, now: float) -> float | None:
        """When the next scheduled report is due: ``now`` if it is due, else
        the next period boundary after the last attempt; None without a schedule."""
        period = self._period()
        if period is None:
            return None
        if self.due(now) or self._last_attempt is None:
            return now
        return float((math.floor(self._last_attempt / period) + 1) * period)

    def maybe_send(self, now: float) -> SendResult | None:
        """Send if a scheduled report is :meth:`due`; None when it is not."""
        if not self.due(now):
            return None
        return self.send_now(now)

    # -- sending --------------------------------------------------------------------------

    def send_now(self, now: float) -> SendResult:
        """The *Send* command: upload every unreported interval, file by file,
        marking each file's intervals reported once the host acknowledged it.
        Stops at the first failure (see the module documentation)."""
        if not self.config.configured or self.uploader is None:
            return SendResult(files=0, intervals=0, error=NOT_CONFIGURED, destinations=[])
        self._last_attempt = now
        try:
            self.store.set_meta(META_LAST_ATTEMPT, now)
        except StorageError as error:
            _LOGGER.warning("Reporting: cannot remember the attempt: %s", error)
        result = SendResult(files=0, intervals=0, error=None, destinations=[])
        sent: set[int] = set()
        while True:
            try:
                batch = self.store.intervals(
                    unreported=True, limit=self.config.max_intervals_per_file
                )
            except StorageError as error:
                result.error = f"cannot read the interval memory: {error}"
                break
            if not batch or any(record.start in sent for record in batch):
                break  # nothing left (or re-entered while sending: next time)
            error_text = self._send_batch(batch, now, result)
            if error_text is not None:
                result.error = error_text
                break
            sent.update(record.start for record in batch)
        self._record(now, result)
        return result

    def _send_batch(
        self, batch: list[IntervalRecord], now: float, result: SendResult
    ) -> str | None:
        """Upload and mark one file; return an error, or None."""
        assert self.uploader is not None
        name = report_filename(self.serial, batch)
        data = to_csv(batch, self.names).encode("utf-8")
        try:
            ack = self.uploader.upload(name, data, serial=self.serial, intervals=len(batch))
        except ReportError as error:
            _LOGGER.warning("Reporting: %s not sent: %s", name, error)
            return str(error)
        except Exception as error:  # a custom uploader's bug must not stop the meter
            _LOGGER.exception("Reporting: the uploader failed on %s", name)
            return _scrub(
                f"{name}: upload failed: {type(error).__name__}: {error}",
                self.config.password,
                self.config.token,
            )
        try:
            self.store.mark_reported([record.start for record in batch], ack, now)
        except StorageError as error:
            _LOGGER.warning("Reporting: %s acknowledged but not marked: %s", name, error)
            return f"{ack}: acknowledged, but not marked reported (it will be sent again): {error}"
        _LOGGER.info("Reporting: sent %d intervals: %s", len(batch), ack)
        result.files += 1
        result.intervals += len(batch)
        result.destinations.append(ack)
        return None

    # -- status ---------------------------------------------------------------------------

    def status(self) -> ReportingStatus:
        """The counters and the last attempt's outcome (from the store)."""
        stored = self.store.get_meta(META_STATUS)
        if not isinstance(stored, dict):
            return _empty_status()

        def text(key: str) -> str | None:
            value = stored.get(key)
            return value if isinstance(value, str) else None

        def count(key: str) -> int:
            value = stored.get(key)
            return max(0, value) if isinstance(value, int) and not isinstance(value, bool) else 0

        return ReportingStatus(
            last_attempt=_number(stored.get("last_attempt")),
            last_success=_number(stored.get("last_success")),
            last_failure=_number(stored.get("last_failure")),
            last_error=text("last_error"),
            last_destination=text("last_destination"),
            attempts=count("attempts"),
            failures=count("failures"),
            files_sent=count("files_sent"),
            intervals_sent=count("intervals_sent"),
        )

    def _record(self, now: float, result: SendResult) -> None:
        status = self.status()
        status["last_attempt"] = now
        status["attempts"] += 1
        status["files_sent"] += result.files
        status["intervals_sent"] += result.intervals
        if result.destinations:
            status["last_destination"] = result.destinations[-1]
        if result.error is None:
            status["last_success"] = now
            status["last_error"] = None
        else:
            status["last_failure"] = now
            status["last_error"] = result.error
            status["failures"] += 1
        try:
            self.store.set_meta(META_STATUS, dict(status))
        except StorageError as error:
            _LOGGER.warning("Reporting: cannot store the status: %s", error)
