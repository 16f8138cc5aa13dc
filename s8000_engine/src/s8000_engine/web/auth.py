"""Authentication and request security of the web interface.

There is no default password.  The first start creates the admin credential
(:meth:`Credentials.ensure`: a generated password the caller prints once, or
one given on the command line); ``s8000-engine web-password`` sets a new one.
The credential file holds a scrypt hash, never the password, and a random
*generation* that changes with every new password: a session made under an
older generation is refused, so setting a password signs everybody out, even
while the server runs (the file is re-read when it changes on disk).

:func:`setup_auth` installs, on an :class:`aiohttp.web.Application`:

* ``POST /api/login``, ``POST /api/logout`` and ``GET /api/session``;
* a middleware that refuses requests without a valid session (401 JSON under
  ``/api/``, otherwise a 303 redirect to ``/login?next=...``), requires the
  session's CSRF token (header ``X-CSRF-Token`` or form field ``csrf``) and a
  same-host ``Origin``/``Referer`` on every state-changing request, and hands
  the session to handlers (:func:`current_session`, ``request[SESSION_KEY]``);
* security headers (Content-Security-Policy, nosniff, DENY framing,
  ``Referrer-Policy``; ``Cache-Control: no-store`` under ``/api/``) on every
  response.

Failed logins are rate-limited per client address and per username
(:class:`LoginLimiter`) and logged with both, never with the password; cookies,
session tokens and CSRF tokens are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import secrets
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

from aiohttp import web

from s8000_engine.exceptions import CredentialError

_LOGGER = logging.getLogger(__name__)

CREDENTIAL_NAME: Final = "web-credential.json"
"""The credential file's name in the meter's data directory."""
DEFAULT_USERNAME: Final = "admin"
#: OWASP's minimum for a password that is the only factor.
MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024
MAX_USERNAME_LENGTH: Final = 64
SCRYPT_N: Final = 2**15
"""scrypt cost: OWASP's N=2^15, r=8, p=3 (32 MiB, as N=2^17 would need 128;
the three passes run one after the other: about 0.3 s on a small computer)."""
SCRYPT_R: Final = 8
SCRYPT_P: Final = 3
SALT_BYTES: Final = 16
HASH_BYTES: Final = 32
FILE_FORMAT: Final = "s8000-web-credential"
FILE_VERSION: Final = 1

COOKIE_NAME: Final = "s8000_session"
#: The cookie a browser that logged in keeps, so that a lockout others cause
#: does not keep it out (see :class:`LoginLimiter`), and how long it lasts;
#: it is signed with a key of the running meter, so a restart forgets it.
DEVICE_COOKIE: Final = "s8000_device"
DEVICE_LIFETIME: Final = 180 * 24 * 3600
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FIELD: Final = "csrf"
IDLE_TIMEOUT: Final = 30 * 60.0
SESSION_LIFETIME: Final = 12 * 3600.0

DEFAULT_PUBLIC: Final = frozenset(
    {"GET /login", "GET /static/", "POST /api/login", "GET /favicon.ico"}
)
"""Requests served without a session: ``"METHOD /path"``; a path ending in ``/``
is a prefix; ``GET`` also admits ``HEAD``."""

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES: Final = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

Clock = Callable[[], float]
"""Seconds, e.g. :func:`time.time`; tests inject a manual clock."""


# ---------------------------------------------------------------------------
# Credentials


@dataclass(frozen=True, slots=True)
class _Record:
    username: str
    n: int
    r: int
    p: int
    salt: bytes = field(repr=False)
    digest: bytes = field(repr=False)
    generation: str = field(repr=False)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=128 * r * (n + p + 2) + 65536,
        dklen=HASH_BYTES,
    )


def check_password(password: str) -> None:
    """Raise :class:`CredentialError` unless ``password`` is acceptable as a new password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CredentialError(
            f"password: at least {MIN_PASSWORD_LENGTH} characters are needed, "
            f"this one has {len(password)}"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise CredentialError(f"password: at most {MAX_PASSWORD_LENGTH} characters")
    if any(c in password for c in "\r\n\x00"):
        raise CredentialError("password: must not contain line breaks or NUL characters")


def check_username(username: str) -> None:
    """Raise :class:`CredentialError` unless ``username`` is acceptable."""
    if not 1 <= len(username) <= MAX_USERNAME_LENGTH:
        raise CredentialError(f"username: 1 to {MAX_USERNAME_LENGTH} characters")
    if not username.isprintable() or username != username.strip():
        raise CredentialError(
            "username: printable characters only, without leading or trailing spaces"
        )


def generate_password() -> str:
    """A new random password (16 URL-safe characters, 96 bits)."""
    return secrets.token_urlsafe(12)


def _new_record(password: str, username: str, n: int) -> _Record:
    check_password(password)
    check_username(username)
    if n < 2 or n & (n - 1):
        raise CredentialError(f"n: the scrypt cost must be a power of two, not {n}")
    salt = secrets.token_bytes(SALT_BYTES)
    return _Record(
        username=username,
        n=n,
        r=SCRYPT_R,
        p=SCRYPT_P,
        salt=salt,
        digest=_scrypt(password, salt, n, SCRYPT_R, SCRYPT_P),
        generation=secrets.token_hex(16),
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _encode(record: _Record) -> bytes:
    data = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "username": record.username,
        "kdf": {"name": "scrypt", "n": record.n, "r": record.r, "p": record.p},
        "salt": _b64(record.salt),
        "hash": _b64(record.digest),
        "generation": record.generation,
        "set_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def _decode(path: Path, raw: bytes) -> _Record:
    def bad(why: str) -> CredentialError:
        return CredentialError(
            f"{path}: not a usable web credential file ({why}); it was left untouched. "
            "Move it away, then restart the web interface or run "
            "`s8000-engine web-password` to create a new credential"
        )

    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad("not JSON") from None
    if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
        raise bad(f"format: expected {FILE_FORMAT!r}")
    if data.get("version") != FILE_VERSION:
        raise bad(f"version: expected {FILE_VERSION}, found {data.get('version')!r}")
    username = data.get("username")
    if not isinstance(username, str):
        raise bad("username: missing")
    try:
        check_username(username)
    except CredentialError as error:
        raise bad(str(error)) from None
    kdf = data.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise bad("kdf: expected scrypt")
    params: dict[str, int] = {}
    for name, low, high in (("n", 2, 2**20), ("r", 1, 64), ("p", 1, 16)):
        value = kdf.get(name)
        if type(value) is not int or not low <= value <= high:
            raise bad(f"kdf.{name}: expected an integer from {low} to {high}")
        params[name] = value
    if params["n"] & (params["n"] - 1):
        raise bad("kdf.n: expected a power of two")
    blobs: dict[str, bytes] = {}
    for name, low in (("salt", SALT_BYTES), ("hash", 16)):
        value = data.get(name)
        try:
            blob = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            raise bad(f"{name}: expected base64") from None
        if not low <= len(blob) <= 64:
            raise bad(f"{name}: expected {low} to 64 bytes")
        blobs[name] = blob
    generation = data.get("generation")
    if not isinstance(generation, str) or not 16 <= len(generation) <= 64:
        raise bad("generation: missing")
    return _Record(
        username=username,
        salt=blobs["salt"],
        digest=blobs["hash"],
        generation=generation,
        **params,
    )


_Signature = tuple[int, int, int, int]


def _signature(st: os.stat_result) -> _Signature:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _read(path: Path) -> tuple[_Record, _Signature]:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise CredentialError(
            f"{path}: the web credential file is missing; restart the web interface or run "
            "`s8000-engine web-password` to create one"
        ) from None
    except OSError as error:
        raise CredentialError(f"{path}: cannot read the web credential: {error.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        st = os.fstat(file.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise CredentialError(f"{path}: the web credential is not a regular file")
        raw = file.read(65536)
    if st.st_mode & 0o077:
        _LOGGER.warning("%s: other users may read the web credential; chmod 600 it", path)
    return _decode(path, raw), _signature(st)


def _write(path: Path, record: _Record, *, exclusive: bool) -> bool:
    """Write atomically with mode 0600; with ``exclusive``, never over an existing file.

    Returns False when ``exclusive`` and the file appeared meanwhile.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(_encode(record))
            file.flush()
            os.fsync(file.fileno())
        if exclusive:
            try:
                os.link(temp, path)
            except FileExistsError:
                return False
            except OSError:  # a file system without hard links
                if path.exists():
                    return False
                os.replace(temp, path)
        else:
            os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return True


class Credentials:
    """The web interface's admin credential, kept in a JSON file (mode 0600).

    The object follows its file: :meth:`refresh` (called by :meth:`verify`,
    :attr:`username` and :attr:`generation`) re-reads it when its inode, size
    or modification time changed, so a password set by another process takes
    effect at once.  Thread-safe.
    """

    def __init__(self, path: Path, record: _Record, signature: _Signature) -> None:
        """Use :meth:`load`, :meth:`ensure` or :meth:`set_password` instead."""
        self.path = path
        self._record = record
        self._signature = signature
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        """Name the file and user, nothing secret."""
        return f"Credentials({str(self.path)!r}, user={self._record.username!r})"

    @classmethod
    def load(cls, path: Path | str) -> Credentials:
        """Read an existing credential file; :class:`CredentialError` when missing or corrupt."""
        path = Path(path)
        record, signature = _read(path)
        if record.n * record.p < SCRYPT_N * SCRYPT_P:
            _LOGGER.warning(
                "%s: weak scrypt cost n=%d, p=%d; set a new password", path, record.n, record.p
            )
        return cls(path, record, signature)

    @classmethod
    def ensure(
        cls,
        path: Path | str,
        *,
        password: str | None = None,
        username: str = DEFAULT_USERNAME,
        n: int = SCRYPT_N,
    ) -> tuple[Credentials, str | None]:
        """Load the credential, or create it on the first start.

        A new credential gets ``password`` or, without one, a generated
        password, which is returned (the caller shows it once); otherwise the
        second item is None.  ``password`` and ``username`` only apply to a new
        credential.  A corrupt or foreign file raises :class:`CredentialError`
        and is left as it is.  ``n`` (scrypt cost) is lowered only by tests.
        """
        path = Path(path)
        if path.exists() or path.is_symlink():
            return cls.load(path), None
        generated = None
        if password is None:
            password = generated = generate_password()
        record = _new_record(password, username, n)
        if not _write(path, record, exclusive=True):  # another process made it meanwhile
            return cls.load(path), None
        _LOGGER.info("%s: created the web credential of %r", path, username)
        return cls.load(path), generated

    @classmethod
    def set_password(
        cls,
        path: Path | str,
        password: str,
        *,
        username: str | None = None,
        n: int = SCRYPT_N,
    ) -> Credentials:
        """Set a new password (and optionally user name); every session made before ends.

        Creates the file when missing (user ``admin`` unless given).  A corrupt
        or foreign file raises :class:`CredentialError` and is left as it is.
        ``n`` (scrypt cost) is lowered only by tests.
        """
        path = Path(path)
        if username is None:
            username = cls.load(path).username if path.exists() else DEFAULT_USERNAME
        elif path.exists():
            cls.load(path)  # refuse to replace a file that is not ours
        record = _new_record(password, username, n)
        _write(path, record, exclusive=False)
        _LOGGER.info("%s: set a new web password for %r", path, username)
        return cls.load(path)

    def refresh(self) -> bool:
        """Re-read the file if it changed on disk; True when it did.

        Raises :class:`CredentialError` when the file is gone or unusable:
        callers refuse every login and session until it is fixed.
        """
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and _signature(st) == self._signature:
            return False
        with self._lock:
            record, signature = _read(self.path)
            if signature == self._signature:
                return False
            changed = record.generation != self._record.generation
            self._record, self._signature = record, signature
        if changed:
            _LOGGER.info("%s: the web credential changed; earlier sessions end", self.path)
        return True

    @property
    def username(self) -> str:
        """The admin user name (re-read when the file changed)."""
        self.refresh()
        return self._record.username

    @property
    def generation(self) -> str:
        """An opaque id that changes with every new password (never sent to browsers)."""
        self.refresh()
        return self._record.generation

    def authenticate(self, username: str, password: str) -> str | None:
        """The credential generation when ``username`` and ``password`` match, else None.

        Spends the same key-derivation time whether the user name is right or
        not, and compares in constant time.  Slow (scrypt): call it from a
        worker thread in an event loop.
        """
        self.refresh()
        record = self._record
        if len(password) > MAX_PASSWORD_LENGTH:
            password = ""  # still spend the time; cannot match (shorter than the minimum)
        digest = _scrypt(password, record.salt, record.n, record.r, record.p)
        user_ok = hmac.compare_digest(
            hashlib.sha256(username.encode("utf-8", "surrogatepass")).digest(),
            hashlib.sha256(record.username.encode("utf-8")).digest(),
        )
        password_ok = hmac.compare_digest(digest, record.digest)
        return record.generation if user_ok & password_ok else None

    def verify(self, username: str, password: str) -> bool:
        """Whether ``username`` and ``password`` match (see :meth:`authenticate`)."""
        return self.authenticate(username, password) is not None


# ---------------------------------------------------------------------------
# Sessions


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: its user and CSRF token (the cookie's token stays in the store)."""

    user: str
    csrf: str = field(repr=False)
    created: float
    last_seen: float
    expires: float
    """When it ends unless used again: the earlier of idle timeout and lifetime."""
    generation: str = field(repr=False)


# aiohttp >= 3.13 warns about plain string keys on requests.
_request_key: Any = getattr(web, "RequestKey", None)
SESSION_KEY: Final[Any] = _request_key("session", Session) if _request_key else "session"
"""``request[SESSION_KEY]`` is the request's :class:`Session`, absent without one
(a ``web.RequestKey`` named "session"; a plain "session" on aiohttp < 3.13)."""


def current_session(request: web.Request) -> Session | None:
    """The request's valid session, or None (only on public paths)."""
    session = request.get(SESSION_KEY)
    return session if isinstance(session, Session) else None


def _token_key(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class SessionStore:
    """Sessions in memory, keyed by a hash of their cookie token.

    A session ends after ``idle_timeout`` seconds without a request, after
    ``lifetime`` seconds in all, at logout, or when the credential generation
    it was made under is no longer the current one.  At most ``max_sessions``
    live at once (the least recently used one goes first).
    """

    def __init__(
        self,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        lifetime: float = SESSION_LIFETIME,
        max_sessions: int = 64,
        clock: Clock = time.time,
    ) -> None:
        """Make an empty store."""
        if not 0 < idle_timeout <= lifetime:
            raise ValueError("idle_timeout: must be positive and at most the lifetime")
        self.idle_timeout = idle_timeout
        self.lifetime = lifetime
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[bytes, Session] = OrderedDict()

    def __len__(self) -> int:
        """The number of sessions held (expired ones go at the next create)."""
        return len(self._sessions)

    def _expires(self, created: float, last_seen: float) -> float:
        return min(last_seen + self.idle_timeout, created + self.lifetime)

    def create(self, user: str, generation: str) -> tuple[str, Session]:
        """A new session: its cookie token (show it to nobody but its browser) and itself."""
        now = self._clock()
        for key in [k for k, s in self._sessions.items() if now >= s.expires]:
            del self._sessions[key]
        while len(self._sessions) >= self.max_sessions:
            self._sessions.popitem(last=False)
        token = secrets.token_urlsafe(32)
        session = Session(
            user=user,
            csrf=secrets.token_urlsafe(32),
            created=now,
            last_seen=now,
            expires=self._expires(now, now),
            generation=generation,
        )
        self._sessions[_token_key(token)] = session
        return token, session

    def get(self, token: str, generation: str, *, touch: bool = True) -> Session | None:
        """The live session of ``token`` under ``generation``, marked as used now
        (unless not ``touch``: a check that is no use of it); else None."""
        if not token or len(token) > 256:
            return None
        key = _token_key(token)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self._clock()
        if now >= session.expires or not hmac.compare_digest(session.generation, generation):
            del self._sessions[key]
            return None
        if not touch:
            return session
        session = replace(session, last_seen=now, expires=self._expires(session.created, now))
        self._sessions[key] = session
        self._sessions.move_to_end(key)
        return session

    def delete(self, token: str) -> None:
        """End the session of ``token`` (logout); nothing when there is none."""
        self._sessions.pop(_token_key(token), None)

    def clear(self) -> None:
        """End every session."""
        self._sessions.clear()


# ---------------------------------------------------------------------------
# Login rate limit


@dataclass(slots=True)
class _Failures:
    count: int
    last: float


class LoginLimiter:
    """Slows down password guessing, per client address and per user name,
    or per device for a browser that logged in before.

    A lockout on the user name alone would let anyone who can reach the
    page keep the admin out for good (one wrong guess every few minutes).
    So, as OWASP's device cookies do, a browser that shows a valid device
    cookie (:data:`DEVICE_COOKIE`) is counted by that cookie instead of the
    user name: guesses from elsewhere do not lock it out, and guesses made
    with it lock out only it.

    The first ``free_attempts`` failures of a key cost nothing; after that,
    each further attempt must wait ``first_delay`` seconds after the previous
    failure, doubling with every failure up to ``max_delay``.  A key is
    forgotten after ``window`` seconds without failures (counted from the
    end of its current delay), or after a successful login of that user or
    from that address.  At most ``max_entries`` keys are kept (oldest dropped).
    """

    def __init__(
        self,
        *,
        free_attempts: int = 5,
        first_delay: float = 1.0,
        max_delay: float = 15 * 60.0,
        window: float = 15 * 60.0,
        max_entries: int = 10_000,
        clock: Clock = time.time,
    ) -> None:
        """Make a limiter with no failures recorded."""
        self.free_attempts = free_attempts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.window = window
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _Failures] = OrderedDict()

    def __len__(self) -> int:
        """The number of keys (addresses and user names) remembered."""
        return len(self._entries)

    @staticmethod
    def _keys(
        address: str, username: str, device: str | None, generation: str
    ) -> tuple[tuple[str, str], tuple[str, str]]:
        """The keys an attempt counts against: its address, and its device
        (a browser that logged in before) or else the user name.  The user
        name's key is the credential generation's, so a new password ends a
        guesser's hold on it."""
        if device is not None:
            return ("address", address), ("device", device)
        return ("address", address), (
            "user",
            f"{username.casefold()[:MAX_USERNAME_LENGTH]}#{generation}",
        )

    def delay(self, failures: int) -> float:
        """Seconds to wait after the last of ``failures`` failures."""
        if failures < self.free_attempts:
            return 0.0
        exponent = min(failures - self.free_attempts, 64)
        return float(min(self.first_delay * 2.0**exponent, self.max_delay))

    def _forgotten(self, entry: _Failures, now: float) -> bool:
        return now >= entry.last + self.delay(entry.count) + self.window

    def _purge(self, now: float) -> None:
        while self._entries:
            entry = next(iter(self._entries.values()))
            if not self._forgotten(entry, now):
                break
            self._entries.popitem(last=False)

    def retry_after(
        self, address: str, username: str, *, device: str | None = None, generation: str = ""
    ) -> float:
        """Seconds before ``username`` may try again from ``address`` (and
        ``device``, a known browser's id; see :meth:`_keys`); 0 when it may now."""
        now = self._clock()
        self._purge(now)
        wait = 0.0
        for key in self._keys(address, username, device, generation):
            entry = self._entries.get(key)
            if entry is None:
                continue
            if self._forgotten(entry, now):
                del self._entries[key]
                continue
            wait = max(wait, entry.last + self.delay(entry.count) - now)
        return wait

    def failure(
        self, address: str, username: str, *, device: str | None = None, generation: str = ""
    ) -> float:
        """Record a failed login; return the seconds to wait before the next attempt."""
        now = self._clock()
        self._purge(now)
        for key in self._keys(address, username, device, generation):
            entry = self._entries.pop(key, None)
            if entry is None or self._forgotten(entry, now):
                entry = _Failures(0, now)
            entry.count += 1
            entry.last = now
            self._entries[key] = entry
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return self.retry_after(address, username, device=device, generation=generation)

    def success(
        self, address: str, username: str, *, device: str | None = None, generation: str = ""
    ) -> None:
        """Forget the failures of this address and this user name (or device)."""
        for key in self._keys(address, username, device, generation):
            self._entries.pop(key, None)


# ---------------------------------------------------------------------------
# aiohttp integration


@dataclass(eq=False)
class Auth:
    """The authentication state of one web application (``app[AUTH_KEY]``)."""

    credentials: Credentials
    sessions: SessionStore
    limiter: LoginLimiter
    public: frozenset[str]
    secure_cookie: bool = False
    #: The reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are
    #: believed (see :func:`_forwarded`).
    trusted_proxies: tuple[IPNetwork, ...] = ()
    #: The host names the server answers to besides address literals and
    #: localhost (lower case, without a trailing dot).
    host_names: frozenset[str] = frozenset()
    #: Signs the device cookies of this run (OWASP's "device cookies"): a
    #: browser that logged in once is known by it, and is not kept out by
    #: the lockout that guesses from elsewhere put on the user name.
    device_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    kdf_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One password check at a time: bounds the memory scrypt takes and makes the
    rate limit exact under parallel attempts."""
    _last_error: str | None = field(default=None, repr=False)

    @property
    def cookie_name(self) -> str:
        """The session cookie's name: with the ``__Host-`` prefix when it is
        Secure, so the browser keeps it bound to this host, Path=/, over TLS."""
        return f"__Host-{COOKIE_NAME}" if self.secure_cookie else COOKIE_NAME

    @property
    def device_cookie_name(self) -> str:
        """The device cookie's name (``__Secure-``: its Path is the login's)."""
        return f"__Secure-{DEVICE_COOKIE}" if self.secure_cookie else DEVICE_COOKIE

    def credential_error(self, error: CredentialError) -> web.Response:
        """Log a credential failure (once per distinct message) and answer 503."""
        if str(error) != self._last_error:
            self._last_error = str(error)
            _LOGGER.error("web interface refuses every login and session: %s", error)
        return _json_error(503, "the web credential is unavailable; see the server log")


AUTH_KEY: Final = web.AppKey("s8000_auth", Auth)


def _json_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def json_body(request: web.Request) -> Any:
    """The request's body as JSON; ValueError for anything else.

    Python's JSON parser recurses once per nested array or object, so a body
    of ``[[[[…`` raises RecursionError, not ValueError: caught here, so such
    a body is bad input like any other, not an internal error."""
    try:
        return await request.json()
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None


def safe_next(value: str | None, default: str = "/") -> str:
    """``value`` when it is a same-site relative path (for ``?next=``), else ``default``."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
    ):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def _parse_public(public: Iterable[str]) -> frozenset[str]:
    entries = frozenset(public)
    for entry in entries:
        method, _, path = entry.partition(" ")
        if method != method.upper() or not method.isalpha() or not path.startswith("/"):
            raise ValueError(f"public: expected 'METHOD /path', not {entry!r}")
    return entries


def _is_public(public: frozenset[str], request: web.Request) -> bool:
    method = "GET" if request.method == "HEAD" else request.method
    path = request.path
    if ".." in path.split("/") or "%2f" in request.raw_path.lower():
        return False  # never let a traversal ride on a public prefix
    if f"{method} {path}" in public:
        return True
    prefix = f"{method} "
    return any(
        entry.endswith("/") and entry.startswith(prefix) and path.startswith(entry[len(prefix) :])
        for entry in public
    )


def _host_refusal(request: web.Request, names: frozenset[str]) -> str | None:
    """Why the request's Host is not this server's; None when it is.

    DNS rebinding points a name the attacker owns at this meter's address,
    so that a page of that name may read the meter as its own origin: the
    Origin check alone compares with whatever Host the browser sends.  Only
    a name can be rebound, so an address literal (IPv4 or IPv6, what a user
    types or discovery shows), ``localhost`` and the names the meter was told
    it has (``names``) are served, and no other."""
    try:
        hostname = urlsplit("//" + request.host).hostname
    except ValueError:
        hostname = None
    if hostname:
        hostname = hostname.rstrip(".").lower()
        if hostname == "localhost" or hostname in names:
            return None
        try:
            ipaddress.ip_address(hostname)
        except ValueError:
            pass
        else:
            return None
    return (
        f"unknown host name {request.host[:80]!r}: use the meter's address, or give it "
        "the name with --web-host-name"
    )


def _origin_refusal(request: web.Request) -> str | None:
    """Why the request's Origin (or Referer) is foreign; None when absent or same-host."""
    source = "Origin"
    value = request.headers.get("Origin")
    if value is None:
        source, value = "Referer", request.headers.get("Referer")
        if value is None:
            return None
    refusal = f"cross-site request refused: the {source} does not match this server"
    if value == "null":
        return refusal
    try:
        origin = urlsplit(value)
        scheme = origin.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not origin.hostname:
            return refusal
        origin_port = origin.port or _DEFAULT_PORTS[scheme]
        host = urlsplit("//" + request.host)
        host_port = host.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        return refusal
    if (origin.hostname, origin_port) != (host.hostname, host_port):
        return refusal
    return None


async def _sent_csrf(request: web.Request) -> str | None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in _FORM_TYPES:
        value = (await request.post()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent


def _unauthenticated(request: web.Request, had_cookie: bool) -> web.Response:
    if request.path == "/api" or request.path.startswith("/api/"):
        response = _json_error(401, "sign in first: no valid session")
    else:
        location = "/login"
        if request.method in ("GET", "HEAD"):
            location += "?next=" + quote(safe_next(request.path_qs), safe="/")
        response = web.Response(status=303, headers={"Location": location})
    if had_cookie:
        response.del_cookie(request.app[AUTH_KEY].cookie_name, path="/")
    return response


def still_signed_in(request: web.Request) -> bool:
    """Whether the request's session is still valid now: for a long-lived
    response (an event stream), which must end with its session (logout,
    expiry, a new password)."""
    auth = request.app[AUTH_KEY]
    token = request.cookies.get(auth.cookie_name)
    try:
        generation = auth.credentials.generation
    except CredentialError:
        return False
    # Checked, not used: an open page's stream must not keep the session
    # alive past its idle timeout.
    return bool(token) and auth.sessions.get(token or "", generation, touch=False) is not None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
type IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _trusted(address: str | None, proxies: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in network for network in proxies)


@web.middleware
async def _forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Behind a trusted reverse proxy, the client is who the proxy says.

    Only a peer in the trusted proxies is believed: ``X-Forwarded-For`` is
    read from the right (the hop nearest this server) past every trusted
    proxy, and the first address that is not one is the client; the scheme
    is the proxy's ``X-Forwarded-Proto``.  From anyone else both headers are
    ignored, so a client cannot pick the address the limiter counts."""
    proxies = request.app[AUTH_KEY].trusted_proxies
    if not proxies or not _trusted(request.remote, proxies):
        return await handler(request)
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    client = request.remote
    for hop in reversed([h for h in hops if h]):
        client = hop
        if not _trusted(hop, proxies):
            break
    try:
        client = str(ipaddress.ip_address(client or ""))
    except ValueError:
        return _json_error(400, "X-Forwarded-For: not an address")
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).strip().lower()
    if scheme not in _DEFAULT_PORTS:
        return _json_error(400, "X-Forwarded-Proto: expected http or https")
    return await handler(request.clone(remote=client, scheme=scheme))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sessions, CSRF and Origin checks for every request (installed by :func:`setup_auth`)."""
    auth = request.app[AUTH_KEY]
    misdirected = _host_refusal(request, auth.host_names)
    if misdirected is not None:
        return _json_error(421, misdirected)
    try:
        generation = auth.credentials.generation
    except CredentialError as error:
        return auth.credential_error(error)
    token = request.cookies.get(auth.cookie_name)
    session = auth.sessions.get(token, generation) if token else None
    if session is not None:
        request[SESSION_KEY] = session
    safe = request.method in SAFE_METHODS
    websocket = request.headers.get("Upgrade", "").lower() == "websocket"
    if not safe or websocket:
        refusal = _origin_refusal(request)
        if refusal is not None:
            return _json_error(403, refusal)
    if not _is_public(auth.public, request):
        if session is None:
            return _unauthenticated(request, had_cookie=bool(token))
        if not safe:
            sent = await _sent_csrf(request)
            if sent is None:
                return _json_error(
                    403, f"missing CSRF token: send the {CSRF_HEADER} header of /api/session"
                )
            if not hmac.compare_digest(
                sent.encode("utf-8", "surrogatepass"), session.csrf.encode("utf-8")
            ):
                return _json_error(403, "wrong CSRF token: reload the page")
    return await handler(request)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path == "/api" or request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"


def _session_body(session: Session) -> dict[str, Any]:
    return {"user": session.user, "csrf": session.csrf, "expires": session.expires}


def _device_mac(key: bytes, nonce: str, username: str, generation: str) -> str:
    message = f"{nonce}\0{username.casefold()}\0{generation}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _device_cookie(auth: Auth, username: str, generation: str) -> str:
    """A new device cookie for a browser that has just logged in as ``username``."""
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_device_mac(auth.device_key, nonce, username, generation)}"


def _known_device(auth: Auth, cookie: str | None, username: str, generation: str) -> str | None:
    """The id of the browser a valid device cookie names, for ``username``
    under the credential's ``generation``; None for none (or a forged one)."""
    if not cookie or len(cookie) > 128 or cookie.count(".") != 1:
        return None
    nonce, mac = cookie.split(".")
    expected = _device_mac(auth.device_key, nonce, username, generation)
    return nonce if hmac.compare_digest(mac, expected) else None


def _short(username: str) -> str:
    return username[:MAX_USERNAME_LENGTH]


async def _login(request: web.Request) -> web.Response:
    auth = request.app[AUTH_KEY]
    body: Any
    if request.content_type == "application/json":
        try:
            body = await json_body(request)
        except ValueError:
            return _json_error(400, "the body is not valid JSON")
    elif request.content_type in _FORM_TYPES:
        body = dict(await request.post())
    else:
        return _json_error(400, 'send JSON {"username": ..., "password": ...} or the form fields')
    if not isinstance(body, dict):
        return _json_error(400, 'send JSON {"username": ..., "password": ...}')
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not username:
        return _json_error(400, "username: required")
    if not isinstance(password, str) or not password:
        return _json_error(400, "password: required")
    address = request.remote or "unknown"
    async with auth.kdf_lock:
        current = auth.credentials.generation
        device = _known_device(
            auth, request.cookies.get(auth.device_cookie_name), username, current
        )
        wait = auth.limiter.retry_after(address, username, device=device, generation=current)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            _LOGGER.warning(
                "web login of %r from %s refused: too many failures, %d s to wait",
                _short(username),
                address,
                seconds,
            )
            response = _json_error(
                429,
                f"too many failed logins: try again in {seconds} s",
                retry_after=seconds,
            )
            response.headers["Retry-After"] = str(seconds)
            return response
        try:
            generation = await asyncio.to_thread(auth.credentials.authenticate, username, password)
        except CredentialError as error:
            return auth.credential_error(error)
        if generation is None:
            auth.limiter.failure(address, username, device=device, generation=current)
            _LOGGER.warning("failed web login of %r from %s", _short(username), address)
            return _json_error(401, "wrong username or password")
        auth.limiter.success(address, username, device=device, generation=current)
    old = request.cookies.get(auth.cookie_name)
    if old:
        auth.sessions.delete(old)  # no session fixation
    token, session = auth.sessions.create(username, generation)
    _LOGGER.info("web login of %r from %s", _short(username), address)
    response = web.json_response(_session_body(session))
    response.set_cookie(
        auth.cookie_name,
        token,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=True if auth.secure_cookie else None,
    )
    response.set_cookie(
        auth.device_cookie_name,
        _device_cookie(auth, username, generation),
        path="/api/login",  # sent with a login, nowhere else
        max_age=DEVICE_LIFETIME,
        httponly=True,
        samesite="Strict",
        secure=True if auth.secure_cookie else None,
    )
    return response


async def _logout(request: web.Request) -> web.Response:
    auth = request.app[AUTH_KEY]
    token = request.cookies.get(auth.cookie_name)
    if token:
        auth.sessions.delete(token)
    session = current_session(request)
    if session is not None:
        _LOGGER.info("web logout of %r from %s", session.user, request.remote)
    response = web.json_response({"user": None})
    response.del_cookie(auth.cookie_name, path="/")
    return response


async def _session(request: web.Request) -> web.Response:
    session = current_session(request)
    if session is None:  # only when /api/session was made public
        return _json_error(401, "sign in first: no valid session")
    return web.json_response(_session_body(session))


def setup_auth(
    app: web.Application,
    credentials: Credentials | Path | str,
    *,
    secure_cookie: bool = False,
    clock: Clock = time.time,
    public: Iterable[str] = DEFAULT_PUBLIC,
    idle_timeout: float = IDLE_TIMEOUT,
    lifetime: float = SESSION_LIFETIME,
    limiter: LoginLimiter | None = None,
    host_names: Iterable[str] = (),
    trusted_proxies: Iterable[IPNetwork] = (),
) -> Auth:
    """Protect ``app``: login/logout/session routes, the middleware and security headers.

    ``credentials`` is a loaded :class:`Credentials` or the path of its file
    (which must exist: create it first with :meth:`Credentials.ensure`).
    The middleware goes first in ``app.middlewares``; ``public`` lists the
    requests served without a session (see :data:`DEFAULT_PUBLIC`).
    ``secure_cookie`` marks the cookie Secure (serve over HTTPS then).
    """
    if not isinstance(credentials, Credentials):
        credentials = Credentials.load(credentials)
    auth = Auth(
        credentials=credentials,
        sessions=SessionStore(idle_timeout=idle_timeout, lifetime=lifetime, clock=clock),
        limiter=limiter if limiter is not None else LoginLimiter(clock=clock),
        public=_parse_public(public),
        secure_cookie=secure_cookie,
        host_names=frozenset(name.rstrip(".").lower() for name in host_names),
        trusted_proxies=tuple(trusted_proxies),
    )
    app[AUTH_KEY] = auth
    app.middlewares.insert(0, auth_middleware)
    # Before everything else: the client's address and scheme, as a trusted
    # proxy saw them, for the limiter, the logs and the Origin check.
    app.middlewares.insert(0, _forwarded)
    app.on_response_prepare.append(_security_headers)
    app.router.add_post("/api/login", _login)
    app.router.add_post("/api/logout", _logout)
    app.router.add_get("/api/session", _session)
    return auth
