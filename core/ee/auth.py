"""Earth Engine initialisation without prompts, and a status the app's sidebar can show.

Order of credentials (first found wins):

1. a service-account JSON key file named by ``GOOGLE_APPLICATION_CREDENTIALS``;
2. a service-account key in the app's secrets: ``ee_service_account_json`` (JSON text or a
   mapping) or a ``[gcp_service_account]`` table (the key's fields);
3. the user's stored credentials from ``earthengine authenticate``;
4. gcloud's application default credentials (``gcloud auth application-default login``), as
   ``ee.Initialize`` itself would find them.

The project comes from the ``project`` argument, then ``EE_PROJECT``, then the secrets
(top-level ``ee_project`` / ``EE_PROJECT`` / ``project``), then the credentials (the key's ``project_id``,
also that of a ``[gcp_service_account]`` table, or the project saved by ``earthengine set_project``).

The app passes Streamlit's secrets; the command line reads the same files (:func:`read_secrets_files`).

Key material is never printed, logged, written, or put in an error message.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from core.ee.errors import EENotConfiguredError, map_ee_error
from core.errors import EarthEngineError

log = logging.getLogger(__name__)

SETUP_HELP = (
    "set GOOGLE_APPLICATION_CREDENTIALS to a service-account JSON key (or put it in the app's "
    "secrets, .streamlit/secrets.toml, as ee_service_account_json or a [gcp_service_account] table), or run "
    "`earthengine authenticate` (or `gcloud auth application-default login`) once; and set EE_PROJECT (or "
    "ee_project in the secrets) to a Google Cloud project registered for Earth Engine"
)
_SA_SECRET_KEYS = ("ee_service_account_json", "EE_SERVICE_ACCOUNT_JSON")
_SA_TABLE_KEYS = ("gcp_service_account", "ee_service_account")
_PROJECT_SECRET_KEYS = ("ee_project", "EE_PROJECT", "project")
#: ((project, method, who, fingerprint), status) of the last successful initialisation in this process.
_last_ok: tuple[tuple[str, str, str, str], "EEStatus"] | None = None


@dataclass(frozen=True)
class EEStatus:
    """Result of initialisation: ``ok``, the project, how we authenticated, one line for the UI."""

    ok: bool
    project: str | None
    method: str  # "service_account_file" | "service_account_secrets" | "credentials_file" | "user" | "gcloud_adc" | "none"
    message: str


@dataclass(frozen=True)
class _Creds:
    credentials: Any
    method: str
    project: str | None
    who: str  # safe to show: a service-account e-mail or "stored user credentials"
    #: a digest of the credentials' material (kept in memory, never shown): new credentials under the same
    #: name (a token from `earthengine authenticate` again, a rotated key) are initialised anew
    fingerprint: str = ""


def _digest(material: Mapping[str, Any]) -> str:
    """A SHA-256 digest of credentials' fields, to tell new credentials from the ones in use."""
    import hashlib

    return hashlib.sha256(json.dumps(dict(material), sort_keys=True, default=str).encode()).hexdigest()


def secrets_paths() -> list[Path]:
    """The files Streamlit reads the app's secrets from, in the order they are merged (a later one's keys
    win): the user's ``~/.streamlit/secrets.toml``, then the project's (the working folder's)."""
    return [Path.home() / ".streamlit" / "secrets.toml", Path.cwd() / ".streamlit" / "secrets.toml"]


def read_secrets_files(paths: list[Path] | None = None) -> dict:
    """The app's secrets for the command line, read as the app reads them (:func:`secrets_paths`, or
    ``paths``), so that the set-up the messages give works for both; {} where there is none.

    Raises:
        EENotConfiguredError: a file that is not valid TOML (said by its name and the place of the
            mistake, never by its content) or cannot be read.
    """
    import tomllib

    merged: dict = {}
    for path in secrets_paths() if paths is None else paths:
        if not path.is_file():
            continue
        try:
            with open(path, "rb") as f:
                merged.update(tomllib.load(f))
        except tomllib.TOMLDecodeError as err:  # (its message gives the line and column, not the text)
            raise EENotConfiguredError(f"{path} is not valid TOML ({err}); correct it") from None
        except UnicodeDecodeError as err:  # (its message gives the byte's place, not the text)
            raise EENotConfiguredError(f"{path} is not UTF-8 text (a byte at position {err.start}); save it as "
                                       "UTF-8") from None
        except OSError as err:
            raise EENotConfiguredError(f"cannot read {path} ({err.strerror}); check its permissions") from None
    return merged


def _as_mapping(obj: Any) -> dict | None:
    """Streamlit's secrets sections behave like mappings; copy them into a plain dict."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return {k: obj[k] for k in obj}
    if hasattr(obj, "keys") and hasattr(obj, "__getitem__"):
        return {k: obj[k] for k in obj.keys()}
    return None


def _service_account(info: Mapping[str, Any], method: str) -> _Creds:
    """Build service-account credentials from a key's fields.

    Raises:
        EENotConfiguredError: if the fields are not a service-account key (no key text quoted).
    """
    import ee

    if info.get("type") != "service_account" or not info.get("private_key") or not info.get("client_email"):
        raise EENotConfiguredError(
            "the service-account key is incomplete: it must be the JSON key file of a service account "
            "(type 'service_account' with client_email and private_key); create one in the Cloud "
            "console (IAM > Service accounts > Keys)"
        )
    try:
        creds = ee.ServiceAccountCredentials(str(info["client_email"]), key_data=json.dumps(dict(info)))
    except (ValueError, TypeError, KeyError):
        # The library's message may quote the key: never pass it on.
        raise EENotConfiguredError(
            f"the service-account key of {info['client_email']} could not be read (malformed private key); "
            "download a fresh JSON key"
        ) from None
    return _Creds(creds, method, info.get("project_id"), str(info["client_email"]), _digest(info))


def _from_key_file(path: str) -> _Creds:
    p = Path(path).expanduser()
    if not p.is_file():
        raise EENotConfiguredError(
            f"GOOGLE_APPLICATION_CREDENTIALS points to {p}, which does not exist; fix the path or unset it"
        )
    try:
        info = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise EENotConfiguredError(f"{p} is not a readable JSON key file; download the service-account key again") from None
    if not isinstance(info, dict):
        raise EENotConfiguredError(f"{p} is not a service-account JSON key file")
    if info.get("type") == "service_account":
        return _service_account(info, "service_account_file")
    return _from_credentials_file(p, info, "credentials_file", "credentials file")


def _from_credentials_file(p: Path, info: Mapping[str, Any], method: str, who: str) -> _Creds:
    """An authorized-user or external-account file (gcloud's application default credentials), read by
    google.auth. A user's refresh token is refreshed with no scopes asked: with Earth Engine's own
    (earthengine, drive, devstorage), Google refuses a token from a plain ``gcloud auth
    application-default login``, which was granted fewer (its refresh grant must cover every scope asked).

    Raises:
        EENotConfiguredError: the file holds credentials google.auth cannot use.
    """
    import google.auth
    from ee import oauth

    scopes = None if info.get("type") == "authorized_user" else oauth.SCOPES
    try:
        creds, project = google.auth.load_credentials_from_file(str(p), scopes=scopes)
    except Exception:  # noqa: BLE001 - google.auth raises several types; message may hold secrets
        raise EENotConfiguredError(f"{p} holds credentials that cannot be used; use a service-account key") from None
    return _Creds(creds, method, project or info.get("quota_project_id"), who, _digest(info))


def gcloud_adc_path(env: Mapping[str, str] = os.environ) -> Path:
    """Where ``gcloud auth application-default login`` keeps its credentials: ``CLOUDSDK_CONFIG``, else
    gcloud's configuration folder (``%APPDATA%\\gcloud`` on Windows, ``~/.config/gcloud`` elsewhere)."""
    if env.get("CLOUDSDK_CONFIG"):
        folder = Path(env["CLOUDSDK_CONFIG"])
    elif os.name == "nt" and env.get("APPDATA"):
        folder = Path(env["APPDATA"]) / "gcloud"
    else:
        folder = Path.home() / ".config" / "gcloud"
    return folder / "application_default_credentials.json"


def _from_gcloud_adc(env: Mapping[str, str]) -> _Creds | None:
    """The application default credentials of ``gcloud auth application-default login`` (read by
    ``ee.Initialize`` itself when nothing else is given: refused as "not configured", they were a
    user's only credentials); None where there are none.

    Raises:
        EENotConfiguredError: the file is there but unreadable or unusable.
    """
    p = gcloud_adc_path(env)
    if not p.is_file():
        return None
    try:
        info = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise EENotConfiguredError(f"gcloud's application default credentials, {p}, are unreadable; run "
                                   "`gcloud auth application-default login` again") from None
    if not isinstance(info, dict):
        raise EENotConfiguredError(f"{p} is not a credentials file; run `gcloud auth application-default login` again")
    if info.get("type") == "service_account":
        return _service_account(info, "gcloud_adc")
    return _from_credentials_file(p, info, "gcloud_adc", "gcloud application default credentials")


def _from_secrets(secrets: Mapping[str, Any] | None) -> _Creds | None:
    if not secrets:
        return None
    for key in _SA_SECRET_KEYS:
        if key in secrets and secrets[key]:
            value = secrets[key]
            info = _as_mapping(value)
            if info is None:
                try:
                    info = json.loads(str(value))
                except ValueError:
                    raise EENotConfiguredError(
                        f"secret {key} is not valid JSON; paste the whole service-account key file"
                    ) from None
            if not isinstance(info, Mapping):  # JSON text of a string, a list, a number
                raise EENotConfiguredError(
                    f"secret {key} is JSON but not a service-account key (a JSON object {{...}}); paste the whole "
                    "key file's text once, not quoted again"
                )
            return _service_account(info, "service_account_secrets")
    for key in _SA_TABLE_KEYS:
        table = _as_mapping(secrets.get(key)) if key in secrets else None
        if table:
            return _service_account(table, "service_account_secrets")
    return None


def _from_user_store() -> _Creds | None:
    """Credentials saved by ``earthengine authenticate``; never refreshed or prompted here."""
    import google.oauth2.credentials
    from ee import oauth

    path = Path(oauth.get_credentials_path())
    if not path.is_file():
        return None
    try:
        args = oauth.get_credentials_arguments()
    except (OSError, ValueError):
        raise EENotConfiguredError(
            f"the Earth Engine credentials file {path} is unreadable; run `earthengine authenticate` again"
        ) from None
    if not args.get("refresh_token"):
        return None
    project = args.get("quota_project_id")
    creds = google.oauth2.credentials.Credentials(None, **args)
    return _Creds(creds, "user", project, "stored user credentials", _digest(args))


def _secret_project(secrets: Mapping[str, Any] | None) -> str | None:
    if not secrets:
        return None
    for key in _PROJECT_SECRET_KEYS:
        value = secrets.get(key) if hasattr(secrets, "get") else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def find_credentials(
    secrets: Mapping[str, Any] | None = None, env: Mapping[str, str] = os.environ
) -> _Creds:
    """The first credentials available in the documented order.

    Raises:
        EENotConfiguredError: if there are none, or a configured key is unusable.
    """
    key_path = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if key_path:
        return _from_key_file(key_path)
    found = _from_secrets(secrets)
    if found is not None:
        return found
    found = _from_user_store()
    if found is not None:
        return found
    found = _from_gcloud_adc(env)
    if found is not None:
        return found
    raise EENotConfiguredError(f"Earth Engine is not configured: no credentials found; {SETUP_HELP}")


def forget() -> None:
    """Forget the last successful initialisation: the next :func:`initialize` initialises again (called
    when a request finds the credentials refused, so that the status says so instead of "ready")."""
    global _last_ok
    _last_ok = None


def initialize(
    project: str | None = None,
    secrets: Mapping[str, Any] | None = None,
    env: Mapping[str, str] = os.environ,
    init: Callable[..., None] | None = None,
    reuse: bool = True,
    set_client_retries: Callable[[int], None] | None = None,
) -> EEStatus:
    """Initialise Earth Engine (no prompts) and return an ok :class:`EEStatus`.

    ``init`` defaults to ``ee.Initialize``. With ``reuse``, a second call that resolves to the
    same credentials (the same material, not only the same account) and project while Earth Engine is
    still initialised returns at once.
    Afterwards the ee client's own retries are turned off (``set_client_retries``, default
    ``ee.data.setMaxRetries``, gets 0): every request core makes is retried by
    :func:`core.ee.errors.call_with_retries`, and two layers of retries would multiply
    (5 x 5 tries, minutes of backoff) before the user hears of a failure. Each request gets a time limit,
    :data:`REQUEST_DEADLINE_MS` (``ee.data.setDeadline``).

    Raises:
        EENotConfiguredError: no credentials, no project, or Earth Engine refuses them.
        EarthEngineError: other failures while initialising (mapped with advice).
    """
    secrets = _as_mapping(secrets) if secrets is not None else None
    found = find_credentials(secrets, env)
    chosen = project or env.get("EE_PROJECT") or _secret_project(secrets) or found.project
    if not chosen:
        raise EENotConfiguredError(
            f"Earth Engine credentials found ({found.who}) but no Cloud project; set EE_PROJECT "
            "(or ee_project in the app's secrets) to a project registered for Earth Engine"
        )
    global _last_ok
    key = (chosen, found.method, found.who, found.fingerprint)
    if init is None:
        import ee

        if reuse and _last_ok is not None and _last_ok[0] == key and ee.data.is_initialized():
            return _last_ok[1]  # already initialised this way in this process: no new requests
        _check_servers_found(env, chosen)
        init = ee.Initialize
    try:
        init(found.credentials, project=chosen)
    except Exception as exc:  # noqa: BLE001 - mapped below; messages never include key material
        err = map_ee_error(exc)
        if not isinstance(err, EarthEngineError):
            err = EarthEngineError(str(err))
        raise type(err)(f"Earth Engine initialisation failed for project {chosen}: {err}") from None
    import ee

    if set_client_retries is None:
        set_client_retries = ee.data.setMaxRetries
    set_client_retries(0)
    # and a time limit on each request (the client's default is none: a request that stalled, a dropped
    # connection, hung a download for good, and Ctrl-C waited on it)
    if ee.data.is_initialized():  # (after ee.Initialize; a stand-in for it, in a test, initialises nothing)
        ee.data.setDeadline(REQUEST_DEADLINE_MS)
    log.info("Earth Engine initialised (project %s, %s)", chosen, found.method)
    st = EEStatus(True, chosen, found.method, f"Earth Engine ready: project {chosen} ({found.who})")
    _last_ok = (key, st)
    return st


#: how long one Earth Engine request may take, in ms: above the server's own limit on an interactive computation
#: (about 5 minutes), so that only a request that stalled is cut off
REQUEST_DEADLINE_MS = 360_000

#: the host of Earth Engine's API, looked up before initialising (see :func:`_check_servers_found`)
EE_HOST = "earthengine.googleapis.com"
#: the variables that send requests through a proxy, which looks the host up itself
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def _check_servers_found(env: Mapping[str, str], project: str, lookup: Callable[..., Any] | None = None) -> None:
    """Look Earth Engine's host up (DNS) before initialising, unless a proxy is set: with no internet,
    the sign-in's and the client's own retries took 25-40 s to fail.

    Raises:
        EEOfflineError: the name is not found.
    """
    import socket

    from core.ee.errors import EEOfflineError

    if any(env.get(v) for v in PROXY_VARIABLES):
        return
    try:
        (lookup or socket.getaddrinfo)(EE_HOST, 443)
    except socket.gaierror as err:
        raise EEOfflineError(f"Earth Engine initialisation failed for project {project}: could not find Google's "
                             f"servers by name ({EE_HOST}: {err.strerror}): no internet connection, or a DNS or proxy "
                             "problem (behind a proxy, set HTTPS_PROXY); check the network connection and try again"
                             ) from None


def status(
    project: str | None = None,
    secrets: Mapping[str, Any] | None = None,
    env: Mapping[str, str] = os.environ,
    init: Callable[..., None] | None = None,
) -> EEStatus:
    """Like :func:`initialize` but never raises: a failed status carries the reason (for the UI),
    the project it was for, wherever it came from (the secrets' or the credentials' own too), and
    the credentials that were found (``method`` is "none" only when there were none)."""
    try:
        return initialize(project, secrets, env, init)
    except EarthEngineError as err:
        mapping = _as_mapping(secrets) if secrets is not None else None
        try:
            found: _Creds | None = find_credentials(mapping, env)
        except EarthEngineError:  # no usable credentials (the reason said already)
            found = None
        chosen = (
            project or env.get("EE_PROJECT") or _secret_project(mapping) or (found.project if found else None)
        )
        return EEStatus(False, chosen, found.method if found else "none", str(err))
