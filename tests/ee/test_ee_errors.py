"""Error mapping (each EE failure -> a precise error with advice) and retries with backoff."""

from __future__ import annotations

import pytest

from core.ee import errors as E
from core.errors import EarthEngineError, NoDataError
from fake_ee_ops import http_error


def ee_exc(message: str):
    import ee

    return ee.EEException(message)


@pytest.mark.parametrize(
    "exc, cls, words",
    [
        (lambda: ee_exc("Too many concurrent aggregations."), E.EEQuotaError, "--workers"),
        # texts that got the generic "request failed" (found by fuzzing the error mapping)
        (lambda: ee_exc("Too many tasks already in the queue (3000). Please wait for some of them to complete."),
         E.EarthEngineError, "cancel some in the task list"),
        (lambda: ee_exc("Cannot overwrite asset 'projects/p/assets/crop'."), E.EarthEngineError, "choose another asset id"),
        (lambda: ee_exc("Asset projects/p/assets/crop already exists."), E.EarthEngineError, "choose another asset id"),
        (lambda: ee_exc("Geometry has too many edges (2000000 > 1000000)."), E.EEPayloadTooLargeError, "simplify the region"),
        (lambda: ee_exc("Computed value is too large."), E.EERequestTooLargeError, "smaller tiles"),
        (lambda: ee_exc("Reprojection output too large (40000x40000 pixels)."), E.EERequestTooLargeError, "smaller tiles"),
        (lambda: http_error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token"),
         E.EENotConfiguredError, "earthengine authenticate"),
        (lambda: ee_exc("Quota exceeded for quota metric"), E.EEQuotaError, "retry"),
        (lambda: http_error(429, "RESOURCE_EXHAUSTED"), E.EEQuotaError, "429"),
        (lambda: ee_exc("User memory limit exceeded."), E.EEMemoryError, "smaller region"),
        (lambda: ee_exc("Computation timed out."), E.EETimeoutError, "export"),
        (lambda: ee_exc("Total request size (55000000 bytes) must be less than or equal to 50331648 bytes."), E.EERequestTooLargeError, "split"),
        (lambda: ee_exc("Output of image computation is too large (4 bands for 1048576 pixels = 96.0 MiB > 80.0 MiB)."),
         E.EERequestTooLargeError, "smaller tiles"),
        (lambda: ee_exc("Request payload size exceeds the limit: 10485760 bytes."), E.EEPayloadTooLargeError, "simplify the region"),
        (lambda: ee_exc("Too many pixels in the region. Found 1e12, but maxPixels allows only 1e8."), E.EERequestTooLargeError, "export"),
        # reduceResolution's limit of source pixels a pixel aggregates: a coarser grid than it allows
        (lambda: ee_exc("Image.reduceResolution: Too many input pixels per output pixel. Need 10404, but only 4096 "
                        "allowed."), E.EEPixelSizeError, "finer pixel size"),
        (lambda: http_error(503, "Service unavailable"), E.EEServerError, "503"),
        (lambda: http_error(500, "User memory limit exceeded."), E.EEMemoryError, "coarser scale"),
        # a front end's deadline (504) is transient, retried; a computation over its time limit is not
        (lambda: http_error(504, "Deadline exceeded"), E.EEServerError, "retrying"),
        (lambda: ee_exc("Deadline exceeded"), E.EEServerError, "retrying"),  # as the ee client raises it (no status)
        (lambda: http_error(500, "Computation timed out."), E.EETimeoutError, "export"),
        (lambda: ee_exc("Please authorize access to your Earth Engine account by running\n\nearthengine authenticate"), E.EENotConfiguredError, "EE_PROJECT"),
        (lambda: ee_exc("Image.select: Pattern 'R' did not match any bands."), NoDataError, "widen the date range"),
        # a year an annual product does not have yet: ImageCollection.first() is null
        (lambda: ee_exc("Image.select: Parameter 'input' is required."), NoDataError, "not be published yet"),
        (lambda: http_error(403, "Permission denied on asset"), E.EEPermissionError, "shared"),
        # credentials refused: sign in again (not "Earth Engine request failed" with nothing to do)
        (lambda: http_error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token."),
         E.EENotConfiguredError, "earthengine authenticate"),
        # a request Earth Engine rejects says so, with its status and Earth Engine's own words
        (lambda: http_error(400, "Invalid JSON payload received."), EarthEngineError,
         "Earth Engine rejected the request (HTTP 400): "),
        (lambda: ee_exc("Image.load: Image asset 'projects/my-proj/assets/glc30' not found (does not exist or caller "
                        "does not have access)."), E.EEPermissionError, "asset id"),
        # the project itself cannot be used (at initialisation): about EE_PROJECT and the role, not an asset id
        (lambda: http_error(403, "Caller does not have required permission to use project my-proj. Grant the caller "
                            "the roles/serviceusage.serviceUsageConsumer role"), E.EENotConfiguredError, "EE_PROJECT"),
        (lambda: ee_exc("Project 'projects/my-proj' not found or deleted."), E.EENotConfiguredError, "serviceUsageConsumer"),
        # a service account without an Earth Engine role (said as an asset's permission: no advice to act on)
        (lambda: ee_exc("Permission 'earthengine.computations.create' denied on resource 'projects/my-proj' (or it may "
                        "not exist)."), E.EENotConfiguredError, "roles/earthengine.viewer"),
        (lambda: ee_exc("Something odd"), EarthEngineError, "Something odd"),
        # the ee client raises HTTP failures as EEException(message), without the status code
        (lambda: ee_exc("Earth Engine capacity exceeded."), E.EEQuotaError, "--workers"),
        (lambda: ee_exc("Earth Engine memory capacity exceeded."), E.EEMemoryError, "smaller region"),
        (lambda: ee_exc("An internal error has occurred (request: 1234)."), E.EEServerError, "retrying"),
        (lambda: ee_exc("The service is currently unavailable."), E.EEServerError, "retrying"),
        # a 5xx whose body is not JSON (a front end's HTML page): the ee client keeps only the reason phrase
        (lambda: ee_exc("Bad Gateway"), E.EEServerError, "retrying"),
        (lambda: ee_exc("Gateway Timeout"), E.EEServerError, "retrying"),
        (lambda: ee_exc("Internal Server Error"), E.EEServerError, "retrying"),
        # a user's mistake sent with a 5xx status is the mistake (not retried as a server failure)
        (lambda: http_error(500, "Request payload size exceeds the limit: 10485760 bytes."), E.EEPayloadTooLargeError,
         "simplify the region"),
        (lambda: ee_exc("Grid dimensions (40000x40000) must be less than 32768."), E.EERequestTooLargeError, "smaller"),
        (lambda: http_error(401, "Unauthorized"), E.EENotConfiguredError, "earthengine authenticate"),
    ],
)
def test_map_ee_error(exc, cls, words):
    err = E.map_ee_error(exc())
    assert type(err) is cls
    assert words in str(err)


def test_map_keeps_mapped_errors():
    err = E.EEMemoryError("x")
    assert E.map_ee_error(err) is err
    empty = NoDataError("no scene")
    assert E.map_ee_error(empty) is empty


def test_refused_credentials_while_calling_are_said_as_a_sign_in_to_do():
    """google.auth's RefreshError (a revoked or expired sign-in) came out raw from a request."""
    from google.auth.exceptions import RefreshError

    def fn():
        raise RefreshError("invalid_grant: Token has been expired or revoked.")

    with pytest.raises(E.EENotConfiguredError):
        E.call_with_retries(fn, sleep=lambda s: pytest.fail("retried"))


def test_retryable():
    assert E.is_retryable(http_error(429))
    assert E.is_retryable(http_error(502))
    assert E.is_retryable(ee_exc("Too many concurrent aggregations."))
    assert E.is_retryable(ee_exc("An internal error has occurred."))
    assert E.is_retryable(ee_exc("Earth Engine capacity exceeded."))
    assert E.is_retryable(ee_exc("Bad Gateway"))  # HTTP 502 through the ee client (its own retries are off)
    assert not E.is_retryable(ee_exc("Bad Gateway is not a band name"))  # only the bare reason phrase
    assert not E.is_retryable(ee_exc("Earth Engine memory capacity exceeded."))
    assert not E.is_retryable(ee_exc("User memory limit exceeded."))
    assert not E.is_retryable(http_error(400, "bad"))


def test_retry_backoff_then_success():
    calls, sleeps = [], []
    failures = [http_error(429), http_error(503), ee_exc("Too many concurrent aggregations.")]

    def fn():
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "ok"

    policy = E.RetryPolicy(attempts=5, base_delay=1.0, max_delay=32.0, jitter=0.5)
    assert E.call_with_retries(fn, policy, sleep=sleeps.append, rng=lambda: 0.0) == "ok"
    assert len(calls) == 4
    assert sleeps == [1.0, 2.0, 4.0]  # exponential, no jitter when rng() = 0


def test_retry_jitter_and_cap():
    policy = E.RetryPolicy(attempts=10, base_delay=1.0, max_delay=8.0, jitter=0.5)
    assert policy.delay(10, rng=lambda: 0.0) == 8.0
    assert policy.delay(3, rng=lambda: 1.0) == 4.0  # 8 * (1 - 0.5)


def test_retry_gives_up_with_mapped_error():
    sleeps = []

    def fn():
        raise http_error(429)

    with pytest.raises(E.EEQuotaError):
        E.call_with_retries(fn, E.RetryPolicy(attempts=3), sleep=sleeps.append)
    assert len(sleeps) == 2


def test_no_retry_for_user_errors():
    sleeps = []

    def fn():
        raise ee_exc("User memory limit exceeded.")

    with pytest.raises(E.EEMemoryError) as info:
        E.call_with_retries(fn, sleep=sleeps.append)
    assert sleeps == []
    assert "batch export" in str(info.value)


def test_bugs_are_not_wrapped():
    def fn():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        E.call_with_retries(fn, sleep=lambda s: None)


def _network_failures():
    import socket
    import ssl

    import google.auth.exceptions
    import httplib2
    import requests

    return [
        ConnectionResetError(104, "Connection reset by peer"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        socket.gaierror(-3, "Temporary failure in name resolution"),
        ssl.SSLError(1, "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol"),
        httplib2.ServerNotFoundError("Unable to find the server at earthengine.googleapis.com"),
        google.auth.exceptions.TransportError("HTTPSConnectionPool: Max retries exceeded"),
        requests.exceptions.ConnectionError("Connection aborted."),
    ]


#: the failures among them that are a name lookup's (DNS): no internet, as a rule
NAME_NOT_FOUND = (3, 5)


@pytest.mark.parametrize("index", range(8))
def test_network_failures_are_retryable_server_errors(index):
    exc = _network_failures()[index]
    err = E.map_ee_error(exc)
    assert isinstance(err, E.EEServerError) and isinstance(err, E.EENetworkError)
    assert type(err) is (E.EEOfflineError if index in NAME_NOT_FOUND else E.EENetworkError)
    assert "check the network connection" in str(err)
    assert E.is_retryable(exc)


@pytest.mark.parametrize("index", NAME_NOT_FOUND)
def test_a_failed_name_lookup_is_tried_twice_not_five_times(index):
    """With no internet, ee-status took 20 s and ee-fetch 35 s to say so: 5 tries of a DNS failure with backoff."""
    exc, sleeps = _network_failures()[index], []

    def down():
        raise exc

    with pytest.raises(E.EEOfflineError, match="could not find Google's servers by name .* no internet") as info:
        E.call_with_retries(down, E.RetryPolicy(attempts=5), sleep=sleeps.append)
    assert len(sleeps) == 1 and "failed 2 times" in str(info.value)
    # urllib3's own wording, as requests gives it
    import requests

    said = requests.exceptions.ConnectionError("HTTPSConnectionPool(host='oauth2.googleapis.com', port=443): Max retries "
                                               "exceeded (Caused by NameResolutionError(\"Failed to resolve\"))")
    assert type(E.map_ee_error(said)) is E.EEOfflineError


@pytest.mark.parametrize("index", [i for i in range(8) if i not in NAME_NOT_FOUND])
def test_network_failures_retried_then_clear_message(index):
    """A transient network failure is retried; when it persists the error says to check the network."""
    exc = _network_failures()[index]
    failures, sleeps = [exc, exc], []

    def flaky():
        if failures:
            raise failures.pop(0)
        return "ok"

    assert E.call_with_retries(flaky, E.RetryPolicy(attempts=5), sleep=sleeps.append) == "ok"
    assert len(sleeps) == 2

    def down():
        raise exc

    sleeps.clear()
    with pytest.raises(E.EENetworkError, match="check the network connection") as info:
        E.call_with_retries(down, E.RetryPolicy(attempts=3), sleep=sleeps.append)
    assert len(sleeps) == 2 and "failed 3 times" in str(info.value)
    assert info.value.__cause__ is exc


def test_socket_timeout_is_not_a_computation_timeout():
    err = E.map_ee_error(TimeoutError("The read operation timed out"))
    assert type(err) is E.EENetworkError and "smaller region" not in str(err)


def test_certificate_failure_is_not_retried():
    import ssl

    sleeps = []

    def fn():
        raise ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local issuer certificate")

    with pytest.raises(EarthEngineError, match="certificate") as info:
        E.call_with_retries(fn, sleep=sleeps.append)
    assert sleeps == [] and not getattr(info.value, "retryable", False)
    # nor counted as a network failure where that is asked directly (a Cloud Storage upload)
    assert not E.is_network_failure(ssl.SSLCertVerificationError(1, "certificate verify failed"))


def test_local_os_errors_are_not_network_failures():
    """A missing file is a bug or a user mistake handled elsewhere, not something to retry."""
    assert not E.is_network_failure(FileNotFoundError(2, "No such file"))

    def fn():
        raise FileNotFoundError(2, "No such file")

    with pytest.raises(FileNotFoundError):
        E.call_with_retries(fn, sleep=lambda s: None)


def test_google_api_call_errors_map_by_code():
    from google.api_core import exceptions as g

    assert E.http_status(g.Forbidden("x")) == 403
    assert type(E.map_ee_error(g.TooManyRequests("x"))) is E.EEQuotaError
    assert type(E.map_ee_error(g.ServiceUnavailable("x"))) is E.EEServerError
    assert type(E.map_ee_error(g.Forbidden("x"))) is E.EEPermissionError
    assert type(E.map_ee_error(g.NotFound("x"))) is E.EEPermissionError
    assert E.is_retryable(g.InternalServerError("x")) and not E.is_retryable(g.Forbidden("x"))


def test_expired_credentials_say_to_authenticate_again():
    import google.auth.exceptions

    exc = google.auth.exceptions.RefreshError(
        "invalid_grant: Token has been expired or revoked.", {"error": "invalid_grant"}
    )
    err = E.map_ee_error(exc)
    assert type(err) is E.EENotConfiguredError
    assert "earthengine authenticate" in str(err) and "expired" in str(err)
    assert not E.is_retryable(exc)
    # a transient failure of the token endpoint is retried like a server error
    flaky = google.auth.exceptions.RefreshError("temporarily unavailable", retryable=True)
    assert type(E.map_ee_error(flaky)) is E.EEServerError and E.is_retryable(flaky)


def test_expired_credentials_at_initialisation(monkeypatch):
    import google.auth.exceptions

    from core.ee import auth

    def init(credentials, project):
        raise google.auth.exceptions.RefreshError("invalid_grant: Bad Request", {"error": "invalid_grant"})

    env = {"EE_PROJECT": "p"}
    found = auth._Creds(object(), "user", None, "stored user credentials")
    monkeypatch.setattr(auth, "find_credentials", lambda secrets, env: found)
    st = auth.status(env=env, init=init)
    assert not st.ok and "earthengine authenticate" in st.message
