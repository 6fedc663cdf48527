"""Earth Engine errors with actionable messages, their mapping from raw exceptions, and retries.

:func:`map_ee_error` turns an ``ee.EEException`` or a ``googleapiclient`` ``HttpError`` into one
of the :class:`~core.errors.EarthEngineError` subclasses below (a ``google.api_core``
``GoogleAPICallError``, as Cloud Storage raises, by its ``.code``; a dropped connection, timeout,
DNS or TLS failure as :class:`EENetworkError`; google.auth's ``RefreshError``, expired or revoked
credentials, as :class:`EENotConfiguredError`); :func:`call_with_retries` re-runs a call on
retryable failures (HTTP 429 / 5xx, "Too many concurrent aggregations", network failures) with
exponential backoff and jitter. ``ee`` is never imported here.
"""

from __future__ import annotations

import random
import re
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from core.errors import EarthEngineError, NoDataError

T = TypeVar("T")


class EENotConfiguredError(EarthEngineError):
    """No credentials or no Cloud project: Earth Engine cannot be used until it is set up."""


class EEQuotaError(EarthEngineError):
    """Quota or rate limit hit (HTTP 429, too many concurrent aggregations); retrying later helps."""

    retryable = True


class EEServerError(EarthEngineError):
    """A transient server-side failure (HTTP 5xx, backend unavailable); retrying helps."""

    retryable = True


class EENetworkError(EEServerError):
    """Earth Engine (or Cloud Storage) could not be reached: connection refused or reset, timeout,
    DNS or TLS failure. Transient as a rule, so retried like a server error."""

    retryable = True


class EEOfflineError(EENetworkError):
    """Google's servers could not be found by name (DNS): as a rule no internet connection, where 5
    tries with backoff took 20-35 s to say so; tried twice (a moment's DNS failure)."""

    retryable = True
    most_attempts = 2


def started_anyway(err: EEServerError, what: str) -> EEServerError:
    """``err`` (a start whose retries ran out on server or network failures) saying that ``what`` (a
    task) may have started anyway, and to check the task list before starting it again."""
    return type(err)(f"{err}; {what} may have started anyway: check the task list (Earth Engine page, or "
                     "python -m core ee-tasks) before starting it again")


class EEMemoryError(EarthEngineError):
    """"User memory limit exceeded": the computation is too big for an interactive request."""


class EETimeoutError(EarthEngineError):
    """"Computation timed out": interactive requests are limited to a few minutes."""


class EERequestTooLargeError(EarthEngineError):
    """Too many pixels, or the request/response payload is over Earth Engine's size limit."""


class EEPixelSizeError(EarthEngineError):
    """reduceResolution's limit: too many source pixels under each pixel of a coarse grid. A finer pixel
    size helps; smaller tiles do not (each tile's pixels aggregate as many)."""


class EEPayloadTooLargeError(EarthEngineError):
    """The request itself (the expression: a region polygon with very many vertices, a long list) is
    over Earth Engine's request payload limit. Smaller tiles do not help; a simpler region does."""


class EETaskFailedError(EarthEngineError):
    """A batch task (export or ingestion) ended in state FAILED."""

    def __init__(self, message: str, task_id: str | None = None, error_message: str = ""):
        super().__init__(message)
        self.task_id = task_id
        self.error_message = error_message


class EEPermissionError(EarthEngineError):
    """The account may not read an asset or use the project (HTTP 403), or the asset is missing."""


# (pattern, error class, advice). First match wins; patterns are matched case-insensitively.
_RULES: tuple[tuple[str, type[EarthEngineError] | type[NoDataError], str], ...] = (
    (
        # the project's queue of batch tasks is full (3,000 waiting: core.ee.export.MAX_PENDING_TASKS)
        r"too many tasks",
        EarthEngineError,
        "Earth Engine's queue of this project's tasks is full (3,000 at most); wait for some to finish, or "
        "cancel some in the task list (Earth Engine page, or python -m core ee-tasks --cancel ID)",
    ),
    (
        r"asset .*already exists|cannot overwrite asset",
        EarthEngineError,
        "the asset already exists; choose another asset id, or replace it (--overwrite; 'Replace existing files "
        "and asset' in the dashboard)",
    ),
    (
        # "capacity exceeded" is the 429 text of the ee client (it drops the status code); the memory
        # variant ("Earth Engine memory capacity exceeded") belongs to the next rule
        r"too many concurrent aggregations|quota exceeded|rate limit|too many requests|resource_exhausted|"
        r"(?<!memory )capacity exceeded",
        EEQuotaError,
        "Earth Engine quota or rate limit reached; wait a minute and retry (a download from the "
        "command line: fewer parallel requests, --workers)",
    ),
    (
        r"user memory limit exceeded|out of memory|memory capacity exceeded",
        EEMemoryError,
        "Earth Engine ran out of memory for this request; choose a smaller region or larger pixels "
        "(a coarser scale), or run it as a batch export (exports have far larger limits)",
    ),
    (
        r"computation timed out|timed out",
        EETimeoutError,
        "the Earth Engine computation timed out; use a smaller region or a shorter date range, or run "
        "it as a batch export, which has no interactive time limit",
    ),
    (
        r"geometry has too many edges|too many edges",
        EEPayloadTooLargeError,
        "the region's outline has more edges than Earth Engine takes; simplify the region (fewer points), draw it "
        "again, or upload it as a table asset",
    ),
    (
        r"request payload size exceeds|payload size exceeds the limit",
        EEPayloadTooLargeError,
        "the request sent to Earth Engine is too large, usually because the region has very many "
        "vertices; simplify the region (fewer points), draw it again, or upload it as a table asset",
    ),
    (
        # reduceResolution's own limit (core.ee.composites.aggregation: a grid much coarser than the
        # sources' pixels), before the "too many pixels" of a request's size below
        r"too many input pixels per output pixel",
        EEPixelSizeError,
        "the pixel size is too coarse for Earth Engine to aggregate the source pixels under each pixel "
        "(the mean reflectance, the most frequent label class); choose a finer pixel size",
    ),
    (
        # "Output of image computation is too large (N bands for M pixels = X MiB > 80.0 MiB)": a
        # tile's computation over EE's per-tile output limit; smaller tiles do help
        r"total request size|too many pixels|response size exceeds|output of image computation is too large|"
        r"must be less than or equal to \d+ bytes|grid dimensions .* must be less than|computed value is too large|"
        r"reprojection output too large",
        EERequestTooLargeError,
        "the request is larger than Earth Engine allows (48 MB / 32768 px a side per request); "
        "split it into smaller tiles (core.ee.pixels plans this) or use a batch export",
    ),
    (
        r"did not match any bands|image\.select: .*no band|collection is empty|empty collection|"
        r"parameter 'input' is required",
        NoDataError,
        "no images matched the dates, region and cloud filter; widen the date range or raise the cloud-cover limit "
        "('Cloud cover under %' in the Region page's Earth Engine settings, --max-cloud on the command line) "
        "(an annual label map such as CDL may not be published yet for the chosen year: pick an earlier one). "
        "For a user asset as labels: check that its id is right and that it has the band asked for",
    ),
    (
        r"please authorize access|earthengine authenticate|no project found|not signed up|"
        r"not registered to use earth engine|earth engine api has not been used|invalid authentication credentials",
        EENotConfiguredError,
        "Earth Engine is not set up for this account/project; run `earthengine authenticate` (or set "
        "GOOGLE_APPLICATION_CREDENTIALS to a service-account key) and set EE_PROJECT to a Cloud "
        "project registered for Earth Engine",
    ),
    (
        # the project (EE_PROJECT) itself cannot be used: not asset advice
        r"required permission to use project|serviceusage\.services\.use|project '[^']*' not found|"
        r"project \S+ (is )?not found or deleted",
        EENotConfiguredError,
        "this account cannot use the Cloud project: check that EE_PROJECT (or --project, or ee_project in the "
        "app's secrets) names a project registered for Earth Engine, and that the account has the Service Usage "
        "Consumer role (roles/serviceusage.serviceUsageConsumer) on it",
    ),
    (
        # Earth Engine's own permissions on the project ("Permission 'earthengine.computations.create' denied on
        # resource 'projects/X' (or it may not exist)."): a service account without an Earth Engine role
        r"permission '?earthengine\.[a-z.]+'? denied",
        EENotConfiguredError,
        "this account has no Earth Engine role on the Cloud project: grant it Earth Engine Resource Viewer "
        "(roles/earthengine.viewer), or Writer (roles/earthengine.writer) for exports and uploads, and the "
        "Service Usage Consumer role (roles/serviceusage.serviceUsageConsumer); check that EE_PROJECT names "
        "the project",
    ),
    (
        r"permission denied|caller does not have|not found|does not exist|access denied",
        EEPermissionError,
        "Earth Engine refused access: check that the asset id is right and shared with this account, "
        "and that the project has the Earth Engine API enabled",
    ),
    (
        # 5xx texts as the ee client raises them (an EEException without the status code); a response
        # that is not JSON (a front end's HTML error page) leaves only the HTTP reason phrase
        # "Deadline exceeded" (504, DEADLINE_EXCEEDED) is a front end's time limit: retried; a computation
        # over its own limit says "Computation timed out" (the timeout rule above)
        r"internal error|service (is )?(currently )?unavailable|backend error|temporarily unavailable|deadline exceeded|"
        r"^(internal server error|bad gateway|gateway time-?out)$",
        EEServerError,
        "Earth Engine had a transient server error; retrying usually helps",
    ),
)


#: The rules whose texts Earth Engine also sends with a 5xx status: the user's to fix, not transient.
_USER_ERRORS_AS_5XX = (EEMemoryError, EETimeoutError, EEPayloadTooLargeError)


def _class_names(exc: BaseException) -> set[tuple[str, str]]:
    """(top-level module, class name) of every class in ``exc``'s MRO (no imports needed)."""
    return {(cls.__module__.split(".")[0], cls.__name__) for cls in type(exc).__mro__}


def _is_api_call_error(exc: BaseException) -> bool:
    """A ``google.api_core.exceptions.GoogleAPICallError`` (Cloud Storage, other Cloud clients)."""
    return ("google", "GoogleAPICallError") in _class_names(exc)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status code of a googleapiclient HttpError (or anything with ``.resp.status``), or
    of a google.api_core GoogleAPICallError (its ``.code``)."""
    resp = getattr(exc, "resp", None)
    if resp is not None:
        status = getattr(resp, "status", None)
    elif _is_api_call_error(exc):
        status = getattr(exc, "code", None)
    else:
        status = getattr(exc, "status_code", None)
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


#: Network failures outside the standard library's OSError family, by (top-level module, class):
#: httplib2 (the ee client's transport), google.auth's TransportError, requests (Cloud Storage's
#: transport; its ConnectionError is not the builtin one), google.api_core's RetryError (its own
#: retries ran out on transient errors).
_NETWORK_CLASSES = {
    ("httplib2", "HttpLib2Error"),
    ("google", "TransportError"),
    ("google", "RetryError"),
    ("requests", "ConnectionError"),
    ("requests", "Timeout"),
    ("requests", "ChunkedEncodingError"),
    ("urllib3", "ProtocolError"),
    ("urllib3", "TimeoutError"),
    ("urllib3", "NewConnectionError"),
}


def is_network_failure(exc: BaseException) -> bool:
    """True for a transient network failure: connection refused/reset/aborted, timeout, DNS or TLS
    failure (builtin, ``ssl``, ``socket``, httplib2, google.auth, requests). Certificate
    verification failures are not transient and are not counted (see :func:`map_ee_error`)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError, ssl.SSLError, socket.gaierror, socket.herror)):
        return True
    return bool(_class_names(exc) & _NETWORK_CLASSES)


#: what a failed name lookup says (glibc, macOS, Windows, httplib2, urllib3)
_NAME_NOT_FOUND = re.compile(r"name resolution|name or service not known|nodename nor servname|getaddrinfo failed|"
                             r"unable to find the server|NameResolutionError|No address associated", re.IGNORECASE)


def _name_not_found(exc: BaseException, raw: str) -> bool:
    """Whether a network failure is a failed name lookup (DNS), not a refused or broken connection."""
    return isinstance(exc, socket.gaierror) or bool(_NAME_NOT_FOUND.search(raw))


def _raw_message(exc: BaseException) -> str:
    content = getattr(exc, "content", None)
    text = str(exc)
    if isinstance(content, bytes) and content:
        try:
            text = f"{text} {content.decode('utf-8', 'replace')}"
        except AttributeError:
            pass
    return text


#: a private key's PEM block (whole, or cut short), or a key file's "private_key" (or its id) member, or a
#: token's: never in a message; quoted as JSON ("name": "value"), as Python prints a dict ('name': 'value'),
#: or as a form's field (name=value&...)
_SECRET_NAMES = r"(?:private_key|private_key_id|client_secret|refresh_token|access_token|id_token)"
_SECRETS = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)|"
                      rf"(\"{_SECRET_NAMES}\"\s*:\s*\")[^\"]*|"
                      rf"('{_SECRET_NAMES}'\s*:\s*')[^']*|"
                      rf"(\b{_SECRET_NAMES}=)[^&\s\"']*", re.DOTALL)


def without_secrets(text: str) -> str:
    """``text`` with any private key (or a key file's secret member) in it replaced by "[private key removed]"
    (an error quoting what it failed to read would put the key in a page or a log)."""
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2) or m.group(3) or "") + "[private key removed]", text)


def error_line(exc: BaseException, most: int = 200) -> str:
    """A failure's text on one line, its first ``most`` characters, without secrets (:func:`without_secrets`),
    to quote inside a message; the exception's class name where it has no text."""
    return re.sub(r"\s+", " ", without_secrets(str(exc))).strip()[:most] or type(exc).__name__


def map_ee_error(exc: BaseException) -> EarthEngineError | NoDataError:
    """Map a raw Earth Engine / HTTP exception to a project error with advice (never raises).

    Already-mapped errors are returned unchanged. The original text is kept at the end of the
    message (shortened, :func:`without_secrets`) so nothing is lost for debugging.
    """
    if isinstance(exc, (EarthEngineError, NoDataError)):
        return exc
    raw = without_secrets(_raw_message(exc))
    short = re.sub(r"\s+", " ", raw).strip()[:300]
    what = f"{type(exc).__name__}: {short}" if short else type(exc).__name__
    if isinstance(exc, ssl.SSLCertVerificationError):
        return EarthEngineError(
            "the server's TLS certificate could not be verified; check the system clock and, behind a "
            f"proxy that inspects TLS, point REQUESTS_CA_BUNDLE / SSL_CERT_FILE at its certificate ({what})"
        )
    if is_network_failure(exc) and _name_not_found(exc, raw):
        return EEOfflineError(
            "could not find Google's servers by name (DNS): no internet connection, or a DNS or proxy problem; "
            f"check the network connection and try again ({what[:160]})"
        )
    if is_network_failure(exc):
        # before the text rules: a socket timeout ("timed out") is not a computation timeout
        return EENetworkError(
            f"could not reach Google's servers (network failure): check the network connection "
            f"(and any proxy or firewall) and try again ({what})"
        )
    if ("google", "RefreshError") in _class_names(exc):
        if getattr(exc, "retryable", False):
            return EEServerError(f"Google's sign-in service had a transient failure; retrying usually helps ({what})")
        return EENotConfiguredError(
            "the Earth Engine credentials could not be refreshed (expired, revoked or invalid): run "
            "`earthengine authenticate` again, or check the service-account key that "
            f"GOOGLE_APPLICATION_CREDENTIALS or the Streamlit secrets give ({short})"
        )
    status = http_status(exc)
    if status == 429:
        return EEQuotaError(f"Earth Engine rate limit (HTTP 429); wait a minute and retry (a download from the command "
                            f"line: fewer parallel requests, --workers) ({short})")
    if status is not None and 500 <= status < 600:
        # EE reports some user errors as 5xx too: check the message before calling it transient
        for pattern, cls, advice in _RULES:
            if cls in _USER_ERRORS_AS_5XX and re.search(pattern, raw, re.IGNORECASE):
                return cls(f"{advice} ({short})")
        return EEServerError(f"Earth Engine server error (HTTP {status}); retrying usually helps ({short})")
    for pattern, cls, advice in _RULES:
        if re.search(pattern, raw, re.IGNORECASE):
            return cls(f"{advice} ({short})")
    if status == 401:
        return EENotConfiguredError(
            f"the credentials were refused (HTTP 401); run `earthengine authenticate` again or check "
            f"GOOGLE_APPLICATION_CREDENTIALS ({short})"
        )
    if status == 403:
        return EEPermissionError(f"Earth Engine refused access (HTTP 403) ({short})")
    if status == 404:
        return EEPermissionError(f"not found (HTTP 404): check the asset id, bucket or path ({short})")
    if status == 400:
        return EarthEngineError(f"Earth Engine rejected the request (HTTP 400): {short}")
    return EarthEngineError(f"Earth Engine request failed: {short}")


def is_retryable(err: BaseException) -> bool:
    """True for errors worth retrying: quota/rate limits, concurrent aggregations, HTTP 5xx,
    network failures."""
    return bool(getattr(map_ee_error(err), "retryable", False))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: delay_k = min(max_delay, base * 2**k) * (1 - jitter * U[0,1))."""

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 32.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        raw = min(self.max_delay, self.base_delay * (2**attempt))
        return raw * (1.0 - self.jitter * rng())


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    on_retry: Callable[[int, EarthEngineError, float], None] | None = None,
    retry_if: Callable[[EarthEngineError], bool] | None = None,
) -> T:
    """Call ``fn()``, retrying retryable Earth Engine failures with backoff.

    ``retry_if`` narrows which retryable failures are retried (for a call that is not idempotent).

    Raises:
        EarthEngineError (a subclass from :func:`map_ee_error`) or NoDataError: when ``fn`` fails
        with a non-retryable error, or still fails after ``policy.attempts`` tries.
        Exceptions that are not Earth Engine/HTTP failures (bugs) propagate unchanged.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - filtered just below
            if not _looks_like_ee_failure(exc):
                raise
            err = map_ee_error(exc)
            attempt += 1
            if isinstance(err, EENotConfiguredError):  # credentials refused: no longer "ready"
                from core.ee import auth

                auth.forget()
            if not getattr(err, "retryable", False) or (retry_if is not None and not retry_if(err)):
                if err is exc:
                    raise
                raise err from exc
            if attempt >= min(policy.attempts, getattr(err, "most_attempts", None) or policy.attempts):
                if attempt > 1 and "[failed " not in str(err):  # say that retrying was tried already
                    raise type(err)(f"{err} [failed {attempt} times]") from exc
                if err is exc:
                    raise
                raise err from exc
            wait = policy.delay(attempt - 1, rng)
            if on_retry is not None:
                on_retry(attempt, err, wait)
            sleep(wait)


def _looks_like_ee_failure(exc: BaseException) -> bool:
    if isinstance(exc, (EarthEngineError, NoDataError)):
        return True
    if http_status(exc) is not None or is_network_failure(exc) or isinstance(exc, ssl.SSLError):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"EEException", "HttpError", "TransportError", "RefreshError", "GoogleAPICallError"})
