"""Reporting: uploads to real FTP, FTPS, HTTP and HTTPS servers on loopback, the
acknowledge-then-mark rule, the schedule, the configuration's errors, and the
Send command written over Modbus to a running local meter."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, override

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import FTPServer

from s8000_engine.client.client import connect_tcp
from s8000_engine.config.reporting import ReportingConfig, ReportingProtocol, reporting_config
from s8000_engine.exceptions import ConfigError, ReportError
from s8000_engine.local.meter import DEMO_CONFIG
from s8000_engine.storage.export import to_csv
from s8000_engine.storage.reporting import (
    META_LAST_ATTEMPT,
    META_STATUS,
    NOT_CONFIGURED,
    FtpUploader,
    HttpUploader,
    Reporter,
    report_filename,
)
from s8000_engine.storage.store import Checkpoint, Flag, IntervalRecord, PointRecord, Store
from tests.engine.meterproc import Progress, serving_meter

T0 = 1_795_564_800  # 2026-11-25T00:00:00Z
LENGTH = 900
NOW = float(T0 + 10 * LENGTH + 17)
SERIAL = "0212060212"
NAMES = ("Kitchen", "Garage")
USER = "meter"
PASSWORD = "Pa55-w0rd-s3cret"
TOKEN = "tok-9f8e7d6c5b4a"
LOOPBACK = "127.0.0.1"


# -- the interval memory ----------------------------------------------------------------


def _interval(index: int) -> IntervalRecord:
    return IntervalRecord(
        start=T0 + index * LENGTH,
        length=LENGTH,
        flags=Flag.CLOCK_SET if index == 1 else Flag(0),
        covered=float(LENGTH),
        voltage=[120.5, 119.75, None],
        frequency=60.01,
        pulses=[10 + index, 0],
        pulse_deltas=[1, 0],
        points=[
            PointRecord(
                point=p,
                registers=[1_000_000 * (index + 1) + p, 0, 5000, 0],
                deltas=[1_000_000, 0, 500, 0],
                peak_demand_w=1234.5,
                peak_demand_time=float(T0 + index * LENGTH + 300),
                power_w=[4000.0, None, None],
                current_a=[33.3, None, None],
            )
            for p in range(len(NAMES))
        ],
    )


def _open_store(path: Path, count: int) -> Store:
    store = Store.open(path)
    store.commit(
        Checkpoint(time=float(T0 + count * LENGTH), registers=[[0] * 8 for _ in NAMES], state={}),
        [_interval(n) for n in range(count)],
    )
    return store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with _open_store(tmp_path / "meter.db", 4) as opened:
        yield opened


def _unreported(store: Store) -> list[int]:
    return [r.start for r in store.intervals(unreported=True)]


def _expected_csv(records: list[IntervalRecord]) -> bytes:
    return to_csv(records, NAMES).encode("utf-8")


# -- certificates for FTPS and HTTPS ----------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    cert_file: Path
    key_file: Path


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A private CA and a server certificate for 127.0.0.1 signed by it."""
    directory = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s8000 test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    result = Certificates(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server.key",
    )
    result.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    result.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    result.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return result


# -- a real FTP server ------------------------------------------------------------------------


@dataclass
class FtpSite:
    port: int
    home: Path

    def config(self, **changes: Any) -> ReportingConfig:
        base = ReportingConfig(
            protocol=ReportingProtocol.FTP,
            host=LOOPBACK,
            port=self.port,
            username=USER,
            password=PASSWORD,
            upload_directory="upload",
            timeout_s=10.0,
        )
        return replace(base, **changes)

    def files(self, directory: str = "upload") -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted((self.home / directory).iterdir())}


@contextmanager
def _ftp_server(
    home: Path, base: type[FTPHandler] = FTPHandler, **attributes: Any
) -> Iterator[FtpSite]:
    for directory in ("upload", "readonly"):
        (home / directory).mkdir(parents=True, exist_ok=True)
    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, str(home), perm="elradfmwMT")
    authorizer.override_perm(USER, str(home / "readonly"), perm="elr", recursive=True)
    quick = {"authorizer": authorizer, "auth_failed_timeout": 0.05}  # not 3 s per wrong password
    handler = type("Handler", (base,), {**quick, **attributes})
    server = FTPServer((LOOPBACK, 0), handler)
    port = server.socket.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)

    thread = threading.Thread(target=serve, name="ftp-server", daemon=True)
    thread.start()
    try:
        yield FtpSite(port=port, home=home)
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close_all()


@pytest.fixture
def ftp_site(tmp_path: Path) -> Iterator[FtpSite]:
    with _ftp_server(tmp_path / "ftp") as site:
        yield site


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port with nothing listening (bound, so nobody else takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield sock.getsockname()[1]


def test_ftp_upload_marks_reported(store: Store, ftp_site: FtpSite) -> None:
    records = store.intervals()
    reporter = Reporter(store, ftp_site.config(), serial=SERIAL, names=NAMES)
    result = reporter.send_now(NOW)

    name = "S8000_0212060212_20261125T000000Z_20261125T010000Z.csv"
    assert result.error is None
    assert result.ok
    assert (result.files, result.intervals) == (1, 4)
    assert ftp_site.files() == {name: _expected_csv(records)}  # no .part left behind
    size = len(_expected_csv(records))
    ack = f"ftp://127.0.0.1:{ftp_site.port}/upload/{name} (226, {size} bytes)"
    assert result.destinations == [ack]
    assert _unreported(store) == []
    assert {(r.reported_at, r.destination) for r in store.intervals()} == {(NOW, ack)}

    again = reporter.send_now(NOW + 60)
    assert (again.files, again.intervals, again.error, again.destinations) == (0, 0, None, [])
    assert list(ftp_site.files()) == [name]

    status = reporter.status()
    assert status["attempts"] == 2
    assert status["failures"] == 0
    assert status["files_sent"] == 1
    assert status["intervals_sent"] == 4
    assert status["last_attempt"] == NOW + 60
    assert status["last_success"] == NOW + 60
    assert status["last_error"] is None
    assert status["last_destination"] == ack
    assert store.get_meta(META_STATUS)["files_sent"] == 1


def test_ftp_login_directory(store: Store, ftp_site: FtpSite) -> None:
    reporter = Reporter(store, ftp_site.config(upload_directory=""), serial=SERIAL)
    result = reporter.send_now(NOW)
    assert result.error is None
    name = report_filename(SERIAL, store.intervals())
    assert (ftp_site.home / name).read_bytes() == to_csv(store.intervals()).encode()
    assert result.destinations[0].startswith(f"ftp://127.0.0.1:{ftp_site.port}/{name} (226, ")


def test_ftp_wrong_password_marks_nothing(
    store: Store, ftp_site: FtpSite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="s8000_engine")
    config = ftp_site.config(password=PASSWORD + "-wrong")
    reporter = Reporter(store, config, serial=SERIAL, names=NAMES)
    result = reporter.send_now(NOW)

    assert (result.files, result.intervals, result.destinations) == (0, 0, [])
    assert result.error is not None
    assert f"ftp://127.0.0.1:{ftp_site.port}" in result.error
    assert "login refused for user 'meter'" in result.error
    assert "530" in result.error
    assert PASSWORD not in result.error
    engine_logs = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith("s8000_engine")
    )
    assert "login refused" in engine_logs
    assert PASSWORD not in engine_logs
    assert len(_unreported(store)) == 4
    assert ftp_site.files() == {}
    assert PASSWORD not in repr(config)
    assert PASSWORD not in str(reporter)

    status = reporter.status()
    assert (status["attempts"], status["failures"]) == (1, 1)
    assert status["last_error"] == result.error
    assert status["last_failure"] == NOW
    assert status["last_success"] is None


def test_ftp_directory_without_write_permission(store: Store, ftp_site: FtpSite) -> None:
    reporter = Reporter(store, ftp_site.config(upload_directory="readonly"), serial=SERIAL)
    result = reporter.send_now(NOW)
    assert result.error is not None
    assert "cannot store S8000_" in result.error
    assert "550" in result.error
    assert len(_unreported(store)) == 4
    assert ftp_site.files("readonly") == {}


def test_ftp_missing_directory(store: Store, ftp_site: FtpSite) -> None:
    reporter = Reporter(store, ftp_site.config(upload_directory="nowhere"), serial=SERIAL)
    result = reporter.send_now(NOW)
    assert result.error is not None
    assert "cannot change to the upload directory 'nowhere'" in result.error
    assert "550" in result.error
    assert len(_unreported(store)) == 4


def test_ftp_several_files(tmp_path: Path, ftp_site: FtpSite) -> None:
    with _open_store(tmp_path / "big.db", 5) as store:
        records = store.intervals()
        config = ftp_site.config(max_intervals_per_file=2)
        result = Reporter(store, config, serial=SERIAL, names=NAMES).send_now(NOW)
        assert result.error is None
        assert (result.files, result.intervals) == (3, 5)
        chunks = [records[0:2], records[2:4], records[4:5]]
        assert ftp_site.files() == {
            report_filename(SERIAL, chunk): _expected_csv(chunk) for chunk in chunks
        }
        assert _unreported(store) == []
        by_start = {r.start: r.destination for r in store.intervals()}
        for chunk, destination in zip(chunks, result.destinations, strict=True):
            assert destination is not None
            assert report_filename(SERIAL, chunk) in destination
            assert {by_start[r.start] for r in chunk} == {destination}


def test_ftp_stops_at_first_failure(tmp_path: Path) -> None:
    """Two files go through, the third is refused: the first two stay marked."""

    class QuotaHandler(FTPHandler):
        stored: ClassVar[int] = 0

        @override
        def ftp_STOR(self, file: str, mode: str = "w") -> Any:
            if QuotaHandler.stored >= 2:
                self.respond("552 Quota exceeded.")
                return None
            QuotaHandler.stored += 1
            return super().ftp_STOR(file, mode)

    with (
        _open_store(tmp_path / "big.db", 5) as store,
        _ftp_server(tmp_path / "ftp", QuotaHandler) as site,
    ):
        result = Reporter(store, site.config(max_intervals_per_file=2), serial=SERIAL).send_now(NOW)
        assert (result.files, result.intervals) == (2, 4)
        assert result.error is not None
        assert "552 Quota exceeded" in result.error
        assert _unreported(store) == [T0 + 4 * LENGTH]
        assert len(site.files()) == 2


def test_ftp_size_mismatch_marks_nothing(tmp_path: Path, store: Store) -> None:
    class ShortHandler(FTPHandler):
        @override
        def ftp_SIZE(self, path: str) -> None:
            self.respond("213 1")

    with _ftp_server(tmp_path / "ftp", ShortHandler) as site:
        result = Reporter(store, site.config(), serial=SERIAL).send_now(NOW)
        assert result.error is not None
        assert "size mismatch" in result.error
        assert "the server has 1 bytes" in result.error
        assert len(_unreported(store)) == 4
        assert site.files() == {}  # the .part file was deleted again


def test_ftp_without_size_trusts_226(tmp_path: Path, store: Store) -> None:
    class NoSizeHandler(FTPHandler):
        @override
        def ftp_SIZE(self, path: str) -> None:
            self.respond("502 Command not implemented.")

    with _ftp_server(tmp_path / "ftp", NoSizeHandler) as site:
        result = Reporter(store, site.config(), serial=SERIAL).send_now(NOW)
        assert result.error is None
        assert _unreported(store) == []
        assert len(site.files()) == 1


def test_ftp_replaces_a_file_the_server_will_not_rename_over(tmp_path: Path, store: Store) -> None:
    """A repeat of a report whose acknowledgement was lost: the server refuses
    to rename over the file that is already there, so it is replaced."""

    class NoOverwriteHandler(FTPHandler):
        refused: ClassVar[int] = 0

        @override
        def ftp_RNTO(self, path: str) -> Any:
            if os.path.exists(path):
                NoOverwriteHandler.refused += 1
                self._rnfr = None
                self.respond("550 File exists.")
                return None
            return super().ftp_RNTO(path)

    with _ftp_server(tmp_path / "ftp", NoOverwriteHandler) as site:
        name = report_filename(SERIAL, store.intervals())
        (site.home / "upload" / name).write_bytes(b"an older copy\n")
        result = Reporter(store, site.config(), serial=SERIAL, names=NAMES).send_now(NOW)
        assert result.error is None
        assert site.files() == {name: _expected_csv(store.intervals())}
        assert _unreported(store) == []
        assert NoOverwriteHandler.refused == 1


def test_ftp_connection_refused(store: Store, closed_port: int) -> None:
    config = ReportingConfig(
        protocol=ReportingProtocol.FTP, host=LOOPBACK, port=closed_port, password=PASSWORD
    )
    result = Reporter(store, config, serial=SERIAL).send_now(NOW)
    assert result.error is not None
    assert result.error.startswith(f"ftp://127.0.0.1:{closed_port}: cannot connect: ")
    assert "refused" in result.error.lower()
    assert len(_unreported(store)) == 4


def test_ftp_timeout(store: Store) -> None:
    """A server that accepts the connection and never greets."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind((LOOPBACK, 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        config = ReportingConfig(
            protocol=ReportingProtocol.FTP, host=LOOPBACK, port=port, timeout_s=0.5
        )
        with pytest.raises(ReportError, match=r"127\.0\.0\.1:\d+: cannot connect: timed out"):
            FtpUploader(config).upload("x.csv", b"data")
        assert Reporter(store, config, serial=SERIAL).send_now(NOW).error is not None
    assert len(_unreported(store)) == 4


def test_ftps_upload(tmp_path: Path, store: Store, certificates: Certificates) -> None:
    with _ftp_server(
        tmp_path / "ftp",
        TLS_FTPHandler,
        certfile=str(certificates.cert_file),
        keyfile=str(certificates.key_file),
        tls_control_required=True,
        tls_data_required=True,
    ) as site:
        config = site.config(protocol=ReportingProtocol.FTPS, ca_file=str(certificates.ca_file))
        result = Reporter(store, config, serial=SERIAL, names=NAMES).send_now(NOW)
        assert result.error is None
        name = report_filename(SERIAL, store.intervals())
        assert site.files() == {name: _expected_csv(store.intervals())}
        assert result.destinations[0].startswith(f"ftps://127.0.0.1:{site.port}/upload/{name}")
        assert _unreported(store) == []

        # Without our CA the server's certificate is not trusted.
        with pytest.raises(ReportError, match="certificate") as refused:
            FtpUploader(replace(config, ca_file=None)).upload("y.csv", b"data")
        assert PASSWORD not in str(refused.value)


def test_ftps_missing_ca_file(tmp_path: Path) -> None:
    config = ReportingConfig(
        protocol=ReportingProtocol.FTPS, host=LOOPBACK, ca_file=str(tmp_path / "none.pem")
    )
    with pytest.raises(ReportError, match=r"cannot load ca_file .*none\.pem"):
        FtpUploader(config).upload("x.csv", b"")


# -- Send over Modbus ----------------------------------------------------------------------------


def _wait_for[T](what: str, probe: Callable[[], T | None], seconds: float = 60.0) -> T:
    """``probe()``'s first answer that is not None, polled until a deadline."""
    deadline = time.monotonic() + seconds
    while (found := probe()) is None:
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


def _stored(data: Path, *, unreported: bool = False) -> list[IntervalRecord]:
    with Store.open(data, create=False) as store:
        return store.intervals(unreported=unreported)


def _finished(site: FtpSite) -> list[tuple[str, bytes]] | None:
    """The reports whose upload is over: not a ``<name>.part`` the meter is
    still writing (it renames it once the transfer is acknowledged)."""
    try:
        files = site.files()
    except FileNotFoundError:
        return None  # renamed between the listing and the read: look again
    return [(name, body) for name, body in files.items() if not name.endswith(".part")] or None


def test_send_written_over_modbus_reports_the_unreported_intervals(
    tmp_path: Path, ftp_site: FtpSite
) -> None:
    """The client writes Send (Cmd = SEND_DATA) to ``s8000-engine run``: the
    meter uploads its unreported intervals to the FTP host and marks them."""
    data = tmp_path / "meter"
    config = tmp_path / "meter.json"
    reporting = {
        "protocol": "ftp",
        "host": LOOPBACK,
        "port": ftp_site.port,
        "username": USER,
        "password": PASSWORD,
        "upload_directory": "upload",
        "every_minutes": 0,  # never on a schedule: only Send reports
    }
    config.write_text(json.dumps({**DEMO_CONFIG, "reporting": reporting}))
    names = [p["name"] for p in DEMO_CONFIG["points"]]
    options = ("--config", str(config), "--interval", "1", "--speed", "60",
               "--sample-rate", "4000", "--start", "2026-11-25T12:00:00Z")  # fmt: skip
    with serving_meter(data, *options) as port:
        progress = Progress("two stored intervals")
        while len(before := _stored(data, unreported=True)) < 2:
            progress.seen(len(before))
            time.sleep(0.2)
        assert ftp_site.files() == {}  # nothing is sent until Send

        async def send() -> str:
            async with connect_tcp(LOOPBACK, port) as client:
                await client.send_now()
                return (await client.identify()).serial

        serial = asyncio.run(send())
        [(name, body)] = _wait_for("the report", lambda: _finished(ftp_site))
        reported = _wait_for(
            "the intervals marked reported",
            lambda: found if (found := [r for r in _stored(data) if r.reported_at]) else None,
        )

    # Every interval that was waiting went, in one file that holds exactly the
    # marked intervals (those the meter stored before it acted on Send).
    assert {r.start for r in before} <= {r.start for r in reported}
    assert name == report_filename(serial, reported)
    assert body == to_csv(reported, names).encode()
    ack = f"ftp://127.0.0.1:{ftp_site.port}/upload/{name} (226, {len(body)} bytes)"
    assert {r.destination for r in reported} == {ack}
    assert [r.start for r in _stored(data, unreported=True)] == [
        r.start for r in _stored(data) if r.start > reported[-1].start
    ]


# -- a real HTTP server -------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpSite:
    server: ThreadingHTTPServer
    scheme: str = "http"
    status: int = 200
    location: str | None = None
    requests: list[Received] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/in") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def config(self, **changes: Any) -> ReportingConfig:
        base = ReportingConfig(
            protocol=ReportingProtocol(self.scheme), url=self.url(), token=TOKEN, timeout_s=10.0
        )
        return replace(base, **changes)


def _make_handler(site: Callable[[], HttpSite]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state = site()
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(Received(self.path, dict(self.headers.items()), body))
            answer = b"" if state.status == 204 else f"status {state.status}\n".encode()
            self.send_response(state.status)
            if state.location:
                self.send_header("Location", state.location)
            if state.status != 204:
                self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def do_GET(self) -> None:
            site().requests.append(Received(self.path, dict(self.headers.items()), b""))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    @override
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # e.g. a client that refused our certificate


@contextmanager
def _http_server(context: ssl.SSLContext | None = None) -> Iterator[HttpSite]:
    holder: list[HttpSite] = []
    server = _QuietServer((LOOPBACK, 0), _make_handler(lambda: holder[0]))
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    site = HttpSite(server=server, scheme="https" if context else "http")
    holder.append(site)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def http_site() -> Iterator[HttpSite]:
    with _http_server() as site:
        yield site


@pytest.mark.parametrize("status", [200, 204])
def test_http_2xx_marks_reported(store: Store, http_site: HttpSite, status: int) -> None:
    http_site.status = status
    records = store.intervals()
    result = Reporter(store, http_site.config(), serial=SERIAL, names=NAMES).send_now(NOW)

    assert result.error is None
    assert (result.files, result.intervals) == (1, 4)
    [request] = http_site.requests
    name = report_filename(SERIAL, records)
    assert request.path == "/in"
    assert request.body == _expected_csv(records)
    assert request.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert request.headers["Content-Disposition"] == f'attachment; filename="{name}"'
    assert request.headers["X-S8000-Serial"] == SERIAL
    assert request.headers["X-S8000-Intervals"] == "4"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    ack = f"{http_site.url()} ({status}, {len(request.body)} bytes)"
    assert result.destinations == [ack]
    assert {(r.reported_at, r.destination) for r in store.intervals()} == {(NOW, ack)}


def test_http_without_token_and_query_kept_out_of_destination(
    store: Store, http_site: HttpSite
) -> None:
    config = http_site.config(token=None, url=http_site.url("/meters/in?key=k3y-value"))
    result = Reporter(store, config, serial=SERIAL).send_now(NOW)
    assert result.error is None
    [request] = http_site.requests
    assert request.path == "/meters/in?key=k3y-value"
    assert "Authorization" not in request.headers
    assert result.destinations[0].startswith(f"{http_site.url('/meters/in')} (200, ")
    assert "k3y-value" not in result.destinations[0]


def test_http_500_marks_nothing(
    store: Store, http_site: HttpSite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="s8000_engine")
    http_site.status = 500
    config = http_site.config()
    reporter = Reporter(store, config, serial=SERIAL)
    result = reporter.send_now(NOW)

    assert (result.files, result.intervals) == (0, 0)
    assert result.error is not None
    assert result.error.startswith(f"POST {http_site.url()}: the host answered 500")
    assert TOKEN not in result.error
    assert TOKEN not in caplog.text
    assert len(http_site.requests) == 1
    assert http_site.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert len(_unreported(store)) == 4
    assert TOKEN not in repr(config)
    assert TOKEN not in str(config)
    assert reporter.status()["last_error"] == result.error


def test_http_redirect_is_not_followed(store: Store, http_site: HttpSite) -> None:
    """A POST redirected elsewhere would arrive as a GET: no acknowledgement."""
    http_site.status = 302
    http_site.location = http_site.url("/elsewhere")
    result = Reporter(store, http_site.config(), serial=SERIAL).send_now(NOW)
    assert result.error is not None
    assert "302" in result.error
    assert [r.path for r in http_site.requests] == ["/in"]
    assert len(_unreported(store)) == 4


def test_http_connection_refused(store: Store, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/in"
    config = ReportingConfig(protocol=ReportingProtocol.HTTP, url=url, token=TOKEN)
    result = Reporter(store, config, serial=SERIAL).send_now(NOW)
    assert result.error is not None
    assert result.error.startswith(f"POST {url}: no response: ")
    assert "refused" in result.error.lower()
    assert TOKEN not in result.error
    assert len(_unreported(store)) == 4


def test_http_timeout(store: Store) -> None:
    """A server that accepts the connection and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind((LOOPBACK, 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/in"
        config = ReportingConfig(protocol=ReportingProtocol.HTTP, url=url, timeout_s=0.5)
        result = Reporter(store, config, serial=SERIAL).send_now(NOW)
    assert result.error == f"POST {url}: no response: timed out"
    assert len(_unreported(store)) == 4


def test_https_upload(store: Store, certificates: Certificates) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.cert_file, certificates.key_file)
    with _http_server(context) as site:
        config = site.config(ca_file=str(certificates.ca_file))
        result = Reporter(store, config, serial=SERIAL, names=NAMES).send_now(NOW)
        assert result.error is None
        assert result.destinations[0].startswith(f"https://127.0.0.1:{site.port}/in (200, ")
        assert [r.body for r in site.requests] == [_expected_csv(store.intervals())]

        with pytest.raises(ReportError, match="certificate") as refused:
            HttpUploader(replace(config, ca_file=None)).upload("x.csv", b"data")
        assert TOKEN not in str(refused.value)


# -- the reporter -----------------------------------------------------------------------------


class RecordingUploader:
    """An uploader that keeps what it is given (for the schedule's tests)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.files: list[tuple[str, bytes, str, int]] = []

    def upload(self, filename: str, data: bytes, *, serial: str = "", intervals: int = 0) -> str:
        if self.fail:
            raise ReportError("host: down")
        self.files.append((filename, data, serial, intervals))
        return f"memory:{filename}"


def _scheduled(every_minutes: int = 15) -> ReportingConfig:
    return ReportingConfig(
        protocol=ReportingProtocol.HTTP, url="http://127.0.0.1:9/in", every_minutes=every_minutes
    )


def test_schedule_due_at_period_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "meter.db"
    with _open_store(path, 2) as store:
        uploader = RecordingUploader()
        reporter = Reporter(store, _scheduled(15), serial=SERIAL, uploader=uploader)
        assert reporter.last_attempt is None
        assert reporter.due(T0 + 10_000)  # never attempted
        first = reporter.maybe_send(T0 + 10_000)  # 2:46:40, in the 2:45 period
        assert first is not None
        assert (first.files, first.intervals, first.error) == (1, 2, None)
        assert uploader.files[0][2:] == (SERIAL, 2)
        assert store.get_meta(META_LAST_ATTEMPT) == T0 + 10_000
        assert not reporter.due(T0 + 10_799)
        assert reporter.maybe_send(T0 + 10_799) is None
        assert reporter.next_due(T0 + 10_799) == T0 + 10_800
        assert reporter.due(T0 + 10_800)  # 3:00
        assert reporter.next_due(T0 + 10_800) == T0 + 10_800

    with Store.open(path) as store:  # a restart does not report early
        reporter = Reporter(store, _scheduled(15), serial=SERIAL, uploader=RecordingUploader())
        assert reporter.last_attempt == T0 + 10_000
        assert not reporter.due(T0 + 10_500)
        assert reporter.due(T0 + 10_800)
        assert reporter.due(T0 + 9_000)  # the clock was set back into an earlier period

        daily = Reporter(store, _scheduled(1440), serial=SERIAL, uploader=RecordingUploader())
        assert not daily.due(T0 + 86_399)
        assert daily.due(T0 + 86_400)  # midnight UTC


def test_schedule_retries_at_the_next_boundary(store: Store) -> None:
    uploader = RecordingUploader(fail=True)
    reporter = Reporter(store, _scheduled(60), serial=SERIAL, uploader=uploader)
    failed = reporter.maybe_send(T0 + 100)
    assert failed is not None
    assert failed.error == "host: down"
    assert not reporter.due(T0 + 3599)
    uploader.fail = False
    assert reporter.maybe_send(T0 + 3599) is None
    sent = reporter.maybe_send(T0 + 3600)
    assert sent is not None
    assert (sent.files, sent.intervals, sent.error) == (1, 4, None)
    status = reporter.status()
    assert (status["attempts"], status["failures"]) == (2, 1)
    assert status["last_failure"] == T0 + 100
    assert status["last_success"] == T0 + 3600
    assert status["last_error"] is None


def test_no_schedule_and_not_configured(store: Store) -> None:
    manual = Reporter(store, _scheduled(0), serial=SERIAL, uploader=RecordingUploader())
    assert not manual.due(NOW)
    assert manual.maybe_send(NOW) is None
    assert manual.next_due(NOW) is None

    off = Reporter(store, ReportingConfig(every_minutes=15), serial=SERIAL)
    assert off.uploader is None
    assert not off.due(NOW)
    result = off.send_now(NOW)
    assert (result.files, result.intervals, result.error) == (0, 0, NOT_CONFIGURED)
    assert store.get_meta(META_LAST_ATTEMPT) is None
    assert off.status()["attempts"] == 0
    assert len(_unreported(store)) == 4


def test_uploader_bug_is_a_failed_send(store: Store) -> None:
    class Broken:
        def upload(
            self, filename: str, data: bytes, *, serial: str = "", intervals: int = 0
        ) -> str:
            raise RuntimeError("boom")

    result = Reporter(store, _scheduled(), serial=SERIAL, uploader=Broken()).send_now(NOW)
    assert result.error is not None
    assert "RuntimeError: boom" in result.error
    assert len(_unreported(store)) == 4


def test_reentered_interval_is_sent_again(store: Store) -> None:
    uploader = RecordingUploader()
    reporter = Reporter(store, _scheduled(), serial=SERIAL, uploader=uploader)
    assert reporter.send_now(NOW).intervals == 4
    checkpoint = store.load_checkpoint()
    assert checkpoint is not None
    store.commit(checkpoint, [_interval(1)])  # the clock was set back over interval 1
    assert _unreported(store) == [T0 + LENGTH]
    again = reporter.send_now(NOW + 900)
    assert (again.files, again.intervals) == (1, 1)


def test_report_filename_and_serial(store: Store) -> None:
    records = store.intervals()
    assert report_filename("A-1", records[1:2]) == "S8000_A-1_20261125T001500Z_20261125T003000Z.csv"
    with pytest.raises(ValueError, match="at least one interval"):
        report_filename(SERIAL, [])
    for serial in ("", "../x", "a b", "x" * 65):
        with pytest.raises(ValueError, match="serial"):
            Reporter(store, ReportingConfig(), serial=serial)


# -- configuration ------------------------------------------------------------------------------


def test_config_defaults() -> None:
    ftp = reporting_config({"protocol": "FTP", "host": " ftp.example.com "})
    assert ftp == ReportingConfig(protocol=ReportingProtocol.FTP, host="ftp.example.com")
    assert (ftp.port, ftp.username, ftp.password, ftp.upload_directory) == (
        21,
        "anonymous",
        "",
        "",
    )
    assert (ftp.every_minutes, ftp.max_intervals_per_file, ftp.timeout_s) == (0, 2880, 30.0)
    assert reporting_config({}) == ReportingConfig()
    plain = ReportingConfig(protocol="ftps", host="h")  # type: ignore[arg-type]
    assert plain.protocol is ReportingProtocol.FTPS
    assert not ReportingConfig().configured

    https = reporting_config(
        {
            "protocol": "https",
            "url": "https://host.example:8443/in",
            "token": TOKEN,
            "every_minutes": "60",
            "ca_file": "/etc/ca.pem",
        }
    )
    assert (https.token, https.every_minutes, https.ca_file) == (TOKEN, 60, "/etc/ca.pem")
    ftps = reporting_config(
        {"protocol": "ftps", "host": "[::1]", "port": 990, "password": PASSWORD}
    )
    assert (ftps.host, ftps.port, ftps.password) == ("::1", 990, PASSWORD)
    assert PASSWORD not in repr(ftps)
    assert FtpUploader(ftps).address == "ftps://[::1]:990"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"protocol": "ftp", "host": "h", "port": 65536},
            "reporting.port: value must be at most 65535",
        ),
        ({"protocol": "ftp", "host": "h", "port": 0}, "reporting.port: value must be at least 1"),
        ({"protocol": "ftp", "host": "h", "port": True}, "reporting.port: expected an integer"),
        ({"protocol": "smtp"}, "reporting.protocol: must be one of none, ftp, ftps, http, https"),
        ({"protocol": "ftp"}, "reporting.host: required for protocol ftp"),
        ({"protocol": "ftps", "host": "ftp://h/x"}, "reporting.host: must be a host name"),
        (
            {"protocol": "ftp", "host": "h", "username": "a\r\nDELE x"},
            "reporting.username: must not contain control",
        ),
        (
            {"protocol": "ftp", "host": "h", "upload_directory": "in\nx"},
            "reporting.upload_directory",
        ),
        ({"protocol": "http"}, "reporting.url: required for protocol http"),
        ({"protocol": "https", "url": "http://h/in"}, "reporting.url: must start with https://"),
        ({"protocol": "http", "url": "ftp://h/in"}, "reporting.url: must start with http://"),
        (
            {"protocol": "http", "url": "http://u:p@h/in"},
            "reporting.url: must not contain a user",
        ),
        ({"protocol": "http", "url": "http:///in"}, "reporting.url: has no host"),
        ({"protocol": "http", "url": "http://h:99999/in"}, "reporting.url: has an invalid port"),
        (
            {"protocol": "http", "url": "http://h/", "token": "a b"},
            "reporting.token: must be printable ASCII",
        ),
        (
            {"every_minutes": 7},
            "reporting.every_minutes: must be one of 0, 5, 15, 30, 60, 120, 240, 360, 720, 1440",
        ),
        ({"every_minutes": 15.5}, "reporting.every_minutes: expected an integer"),
        (
            {"max_intervals_per_file": 0},
            "reporting.max_intervals_per_file: value must be at least 1",
        ),
        ({"timeout_s": 0}, "reporting.timeout_s: value must be at least 1"),
        ({"timeout_s": "nan"}, "reporting.timeout_s: value must be a finite number"),
        ({"host": 5}, "reporting.host: expected a string"),
        ({"colour": "red"}, "reporting.colour: extra keys not allowed"),
    ],
)
def test_config_errors_name_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^reporting\.") as raised:
        reporting_config(data)
    assert message in str(raised.value)
    field = message.split(":", maxsplit=1)[0].split(".")[1]
    assert [path for path, _ in raised.value.errors] == [("reporting", field)]


def test_config_errors_never_show_secrets() -> None:
    secret = "x" * 300
    with pytest.raises(ValueError, match=r"reporting\.password: must be at most 256") as raised:
        reporting_config({"protocol": "ftp", "host": "h", "password": secret})
    assert secret not in str(raised.value)
    with pytest.raises(ValueError, match=r"reporting\.token") as raised:
        reporting_config({"protocol": "http", "url": "http://h/", "token": f"{TOKEN} extra"})
    assert TOKEN not in str(raised.value)


def test_several_errors_together() -> None:
    with pytest.raises(ConfigError, match=r"^reporting\.every_minutes: .*; reporting\.port: ") as e:
        reporting_config({"port": -1, "every_minutes": 3})
    assert [path for path, _ in e.value.errors] == [
        ("reporting", "every_minutes"),
        ("reporting", "port"),
    ]


def test_uploaders_check_their_protocol() -> None:
    with pytest.raises(ValueError, match="not ftp or ftps"):
        FtpUploader(ReportingConfig(protocol=ReportingProtocol.HTTP, url="http://h/"))
    with pytest.raises(ValueError, match="not http or https"):
        HttpUploader(ReportingConfig(protocol=ReportingProtocol.FTP, host="h"))
    uploader = HttpUploader(ReportingConfig(protocol=ReportingProtocol.HTTP, url="http://h/"))
    with pytest.raises(ValueError, match="file name"):
        uploader.upload('a"b.csv', b"")
