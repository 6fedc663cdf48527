"""Initialisation order (key file > secrets > stored user credentials), projects, and no leaks."""

from __future__ import annotations

import json
import logging

import pytest

from core.ee import auth
from core.ee.errors import EENotConfiguredError


#: the look-up itself (tests/ee/conftest.py replaces it for the tests that replace ee.Initialize)
CHECK_SERVERS_FOUND = auth._check_servers_found


@pytest.fixture(scope="module")
def key_info():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "key-project",
        "private_key_id": "f00dfeedbeefcafe0123456789abcdef01234567",
        "private_key": pem,
        "client_email": "cropmap@key-project.iam.gserviceaccount.com",
        "client_id": "123456789012345678901",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


def secret_fragments(info: dict) -> list[str]:
    body = [line for line in info["private_key"].splitlines() if line and "PRIVATE KEY" not in line]
    return body[:3] + body[-2:] + [info["private_key_id"]]


@pytest.fixture(autouse=True)
def no_user_store(tmp_path, monkeypatch):
    """Point the earthengine credentials file at an empty temp dir (never the real one), and the home
    folder, where gcloud keeps its application default credentials, too."""
    from ee import oauth

    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    path = tmp_path / "earthengine" / "credentials"
    monkeypatch.setattr(oauth, "get_credentials_path", lambda: str(path))
    return path


@pytest.fixture(autouse=True)
def fresh_memo(monkeypatch):
    monkeypatch.setattr(auth, "_last_ok", None)


@pytest.fixture
def init_calls(monkeypatch):
    import ee

    calls = []
    monkeypatch.setattr(ee, "Initialize", lambda credentials=None, **kw: calls.append((credentials, kw)))
    # initialised once Initialize has been called, as the client is
    monkeypatch.setattr(ee.data, "is_initialized", lambda: any(len(c) == 2 and isinstance(c[1], dict) for c in calls))
    monkeypatch.setattr(ee.data, "setMaxRetries", lambda n: calls.append(("setMaxRetries", n)))
    monkeypatch.setattr(ee.data, "setDeadline", lambda ms: calls.append(("setDeadline", ms)))
    return calls


def test_key_file_first(tmp_path, key_info, init_calls):
    keyfile = tmp_path / "key.json"
    keyfile.write_text(json.dumps(key_info))
    other = dict(key_info, client_email="other@x.iam.gserviceaccount.com")
    st = auth.initialize(env={"GOOGLE_APPLICATION_CREDENTIALS": str(keyfile)}, secrets={"ee_service_account_json": json.dumps(other)})
    assert st.ok and st.method == "service_account_file" and st.project == "key-project"
    creds, kw = init_calls[0]
    assert creds.service_account_email == key_info["client_email"]
    assert kw == {"project": "key-project"}
    # then the ee client's own retries are off: core retries every request once, not 5 x 5 times; and each
    # request has a time limit (none by default: a stalled request hung a download for good)
    assert init_calls[1:] == [("setMaxRetries", 0), ("setDeadline", 360_000)]


def test_second_call_reuses_initialisation(tmp_path, key_info, init_calls, monkeypatch):
    import ee

    monkeypatch.setattr(ee.data, "is_initialized", lambda: True)
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "key.json")}
    (tmp_path / "key.json").write_text(json.dumps(key_info))
    first = auth.initialize(env=env)
    assert auth.initialize(env=env) == first and len(init_calls) == 3  # Initialize, setMaxRetries, setDeadline
    auth.initialize(env=dict(env, EE_PROJECT="other"))  # another project: initialise again
    auth.initialize(env=env, reuse=False)
    assert len(init_calls) == 9


def test_project_precedence(tmp_path, key_info, init_calls):
    keyfile = tmp_path / "key.json"
    keyfile.write_text(json.dumps(key_info))
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(keyfile), "EE_PROJECT": "env-project"}
    assert auth.initialize(env=env).project == "env-project"
    assert auth.initialize(project="arg-project", env=env).project == "arg-project"
    assert auth.initialize(env={"GOOGLE_APPLICATION_CREDENTIALS": str(keyfile)}, secrets={"ee_project": "sec-project"}).project == "sec-project"


def test_secrets_json_text_and_table(key_info, init_calls):
    st = auth.initialize(env={}, secrets={"ee_service_account_json": json.dumps(key_info)})
    assert st.ok and st.method == "service_account_secrets"
    st = auth.initialize(env={}, secrets={"gcp_service_account": dict(key_info), "ee_project": "p2"})
    assert st.project == "p2"
    assert init_calls[-3][0].service_account_email == key_info["client_email"]


@pytest.mark.parametrize("twice", [True, False])
def test_secret_json_that_is_not_a_key_object(key_info, init_calls, twice):
    """A key pasted as a quoted JSON string (JSON encoded twice), or JSON that is a list or a number,
    crashed status() with AttributeError ('str' object has no attribute 'get') instead of saying so."""
    texts = [json.dumps(json.dumps(key_info))] if twice else ["[1, 2]", "42"]
    for text in texts:
        st = auth.status(env={}, secrets={"ee_service_account_json": text})
        assert not st.ok and "ee_service_account_json is JSON but not a service-account key" in st.message
        assert not any(secret in st.message for secret in secret_fragments(key_info))
    assert init_calls == []


def test_user_credentials(no_user_store, init_calls):
    no_user_store.parent.mkdir(parents=True)
    no_user_store.write_text(json.dumps({"refresh_token": "1//secret-refresh-token", "project": "user-project"}))
    st = auth.initialize(env={})
    assert st.ok and st.method == "user" and st.project == "user-project"
    assert init_calls[0][0].refresh_token == "1//secret-refresh-token"
    assert "secret-refresh-token" not in repr(st)


def test_secrets_come_before_stored_user_credentials_and_env_project_before_secrets(no_user_store, key_info, init_calls):
    no_user_store.parent.mkdir(parents=True)
    no_user_store.write_text(json.dumps({"refresh_token": "1//tok", "project": "user-project"}))
    st = auth.initialize(env={}, secrets={"gcp_service_account": dict(key_info)})
    assert st.method == "service_account_secrets" and st.project == "key-project"
    st = auth.initialize(env={"EE_PROJECT": "env-project"}, secrets={"gcp_service_account": dict(key_info),
                                                                     "ee_project": "secret-project"})
    assert st.project == "env-project"
    assert auth.initialize(env={}).method == "user"  # without the secrets


def test_a_key_path_from_home_and_an_empty_key_secret_fall_through_as_a_user_means(tmp_path, key_info, init_calls,
                                                                                     monkeypatch):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "key.json").write_text(json.dumps(key_info))
    monkeypatch.setenv("HOME", str(home))
    assert auth.initialize(env={"GOOGLE_APPLICATION_CREDENTIALS": "~/key.json"}).method == "service_account_file"
    # an empty key secret (a template's placeholder) is no key: the table after it is used
    st = auth.initialize(env={}, secrets={"ee_service_account_json": "", "gcp_service_account": dict(key_info)})
    assert st.ok and st.method == "service_account_secrets"


def test_stored_user_credentials_without_a_refresh_token_are_passed_over(no_user_store, init_calls):
    no_user_store.parent.mkdir(parents=True)
    no_user_store.write_text(json.dumps({"project": "user-project"}))
    with pytest.raises(EENotConfiguredError, match="no credentials found"):
        auth.initialize(env={})


@pytest.mark.parametrize("content, said", [
    ("[1, 2]", "not a service-account JSON key"),
    ('{"type": "service_account", "private_key": "x"}', "incomplete"),
])
def test_a_key_file_that_is_no_usable_key_is_said_so(tmp_path, init_calls, content, said):
    """A JSON list gave an AttributeError, a key without its client_email a KeyError."""
    keyfile = tmp_path / "key.json"
    keyfile.write_text(content)
    with pytest.raises(EENotConfiguredError, match=said):
        auth.initialize(env={"GOOGLE_APPLICATION_CREDENTIALS": str(keyfile)})
    assert init_calls == []


def test_user_credentials_without_project(no_user_store, init_calls):
    no_user_store.parent.mkdir(parents=True)
    no_user_store.write_text(json.dumps({"refresh_token": "1//tok"}))
    with pytest.raises(EENotConfiguredError, match="EE_PROJECT"):
        auth.initialize(env={})
    assert init_calls == []


def test_nothing_configured(init_calls):
    with pytest.raises(EENotConfiguredError) as info:
        auth.initialize(env={})
    assert "earthengine authenticate" in str(info.value) and "GOOGLE_APPLICATION_CREDENTIALS" in str(info.value)
    st = auth.status(env={})
    assert not st.ok and st.method == "none" and "EE_PROJECT" in st.message
    # every way the README gives, the app's secrets' too (the sidebar's Why named one of them)
    assert "[gcp_service_account] table" in st.message and "ee_project in the secrets" in st.message
    assert "gcloud auth application-default login" in st.message
    assert init_calls == []


def test_missing_key_file(init_calls):
    with pytest.raises(EENotConfiguredError, match="does not exist"):
        auth.initialize(env={"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json"})


def test_initialize_failure_is_mapped(tmp_path, key_info, monkeypatch):
    import ee

    def boom(*a, **k):
        raise ee.EEException("Please authorize access to your Earth Engine account by running earthengine authenticate")

    monkeypatch.setattr(ee, "Initialize", boom)
    with pytest.raises(EENotConfiguredError, match="key-project"):
        auth.initialize(env={}, secrets={"ee_service_account_json": json.dumps(key_info)})


def test_no_secret_leaks(tmp_path, key_info, monkeypatch, caplog, capsys):
    import ee

    caplog.set_level(logging.DEBUG)
    keyfile = tmp_path / "key.json"
    keyfile.write_text(json.dumps(key_info))
    seen = []
    monkeypatch.setattr(ee, "Initialize", lambda c=None, **kw: seen.append(kw))
    outputs = [repr(auth.initialize(env={"GOOGLE_APPLICATION_CREDENTIALS": str(keyfile)}))]
    outputs.append(repr(auth.status(env={}, secrets={"ee_service_account_json": json.dumps(key_info)})))

    # A malformed key: the parser's error must not echo it.
    bad = dict(key_info, private_key=key_info["private_key"].replace("\n", "\nBROKEN", 3))
    with pytest.raises(EENotConfiguredError) as info:
        auth.initialize(env={}, secrets={"gcp_service_account": bad})
    outputs.append(str(info.value))

    # A damaged authorized-user file (gcloud ADC, or Credentials.to_json's): its refresh token pasted
    # into the expiry field. google.auth's error quotes the value it could not read; neither our
    # message nor its traceback (as a log of the failure would show it) may carry it on.
    import traceback

    refresh_token = "1//0gRefreshTokenThatMustNotLeak-abcdefghijklmnopqrstuvwxyz0123456789"
    adc = tmp_path / "adc.json"
    adc.write_text(json.dumps({"type": "authorized_user", "client_id": "123-abc.apps.googleusercontent.com",
                               "client_secret": "GOCSPX-ClientSecretThatMustNotLeak", "refresh_token": refresh_token,
                               "expiry": refresh_token}))
    with pytest.raises(EENotConfiguredError, match="holds credentials that cannot be used") as info:
        auth.initialize(env={"GOOGLE_APPLICATION_CREDENTIALS": str(adc)})
    outputs += [str(info.value), "".join(traceback.format_exception(info.value))]
    outputs.append(repr(auth.status(env={"GOOGLE_APPLICATION_CREDENTIALS": str(adc)})))

    def failing(c=None, **kw):
        raise ee.EEException("Invalid JWT Signature.")

    monkeypatch.setattr(ee, "Initialize", failing)
    outputs.append(repr(auth.status(env={"GOOGLE_APPLICATION_CREDENTIALS": str(keyfile)})))

    # an initialisation error that quotes what it could not read (the key itself, whole or cut short): the
    # status message gave the first 300 characters of any such text
    # (also as Python prints a dict, and a token request's form)
    user = {"client_secret": "GOCSPX-ClientSecretThatMustNotLeak", "refresh_token": refresh_token}
    for quoted in (key_info["private_key"], key_info["private_key"][:200], json.dumps(key_info), str(key_info),
                   str(user), json.dumps(user), f"grant_type=refresh_token&refresh_token={refresh_token}&client_id=1"):
        def quoting(c=None, quoted=quoted, **kw):
            raise ValueError(f"Could not deserialize key data: {quoted}")

        monkeypatch.setattr(ee, "Initialize", quoting)
        said = repr(auth.status(env={"GOOGLE_APPLICATION_CREDENTIALS": str(keyfile)}))
        assert "[private key removed]" in said
        outputs.append(said)

    captured = capsys.readouterr()
    outputs += [captured.out, captured.err, caplog.text]
    outputs += [r.getMessage() for r in caplog.records]
    blob = "\n".join(outputs)
    for fragment in secret_fragments(key_info):
        assert fragment not in blob
    assert "BROKEN" not in blob
    assert "PRIVATE KEY" not in blob
    assert "RefreshTokenThatMustNotLeak" not in blob and "ClientSecretThatMustNotLeak" not in blob
    assert len(list(tmp_path.iterdir())) == 2  # nothing written besides the two files we created


def test_import_does_nothing():
    """Importing every module initialises nothing, prompts nothing; the source does not even import ee."""
    import subprocess
    import sys

    code = """
import sys
import core.sources.earthengine, core.sources.base
assert 'ee' not in sys.modules, 'core.sources.earthengine imported ee'
import ee
calls = []
ee.Initialize = lambda *a, **k: calls.append('init')
ee.Authenticate = lambda *a, **k: calls.append('auth')
import core.ee.auth, core.ee.composites, core.ee.labels, core.ee.pixels, core.ee.export
import core.ee.tasks, core.ee.tiles, core.ee.upload, core.ee.presets, core.ee.errors
assert calls == [], calls
print('clean')
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "clean"


def test_a_failed_status_names_the_project_it_was_for(tmp_path, key_info, monkeypatch):
    """ee-status printed "project": null while its message named the key's project."""
    import ee

    keyfile = tmp_path / "key.json"
    keyfile.write_text(json.dumps(key_info))

    def failing(c=None, **kw):
        raise ee.EEException("Invalid JWT Signature.")

    monkeypatch.setattr(ee, "Initialize", failing)
    st = auth.status(env={"GOOGLE_APPLICATION_CREDENTIALS": str(keyfile)})
    assert not st.ok and st.project == "key-project"
    assert st.method == "service_account_file"  # the key was found; Earth Engine refused it ("none" before)
    assert auth.status(env={"GOOGLE_APPLICATION_CREDENTIALS": str(keyfile)}, secrets={"ee_project": "mine"}).project == "mine"
    nothing = auth.status(env={})
    assert nothing.project is None and nothing.method == "none"  # no credentials: nothing to name


def test_no_internet_is_said_at_once_not_after_the_sign_in_s_retries(tmp_path, key_info, monkeypatch):
    """With a key and no internet, ee-status took 25 s and ee-fetch 35 s (the sign-in's and the client's
    retries) to say so: the host is looked up first, unless a proxy looks it up."""
    import socket

    from core.ee.auth import EE_HOST
    from core.ee.errors import EEOfflineError

    check, asked = CHECK_SERVERS_FOUND, []

    def not_found(host, port):
        asked.append((host, port))
        raise socket.gaierror(-2, "Name or service not known")

    with pytest.raises(EEOfflineError, match="project p: could not find Google's servers by name "
                                             r"\(earthengine.googleapis.com: Name or service not known\): no internet"):
        check({}, "p", lookup=not_found)
    assert asked == [(EE_HOST, 443)]
    check({"HTTPS_PROXY": "http://proxy:3128"}, "p", lookup=not_found)  # the proxy looks it up
    assert len(asked) == 1
    check({}, "p", lookup=lambda host, port: [("found",)])  # found: nothing said


def test_initialising_looks_the_host_up_first(tmp_path, key_info, init_calls, monkeypatch):
    from core.ee.errors import EEOfflineError

    def offline(env, project, lookup=None):
        raise EEOfflineError(f"Earth Engine initialisation failed for project {project}: could not find Google's servers")

    monkeypatch.setattr(auth, "_check_servers_found", offline)
    keyfile = tmp_path / "key.json"
    keyfile.write_text(json.dumps(key_info))
    st = auth.status(env={"GOOGLE_APPLICATION_CREDENTIALS": str(keyfile)})
    assert not st.ok and "could not find Google's servers" in st.message and init_calls == []  # before ee.Initialize


def _authorized_user_file(path, project=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "123-abc.apps.googleusercontent.com",
                                "client_secret": "GOCSPX-secret", "refresh_token": "1//adc-refresh-token",
                                **({"quota_project_id": project} if project else {})}))
    return path


def test_a_gcloud_credentials_file_asks_no_scopes(tmp_path, init_calls):
    """Loaded with Earth Engine's scopes (earthengine, drive, devstorage), a token from a plain
    `gcloud auth application-default login` was refused at its first refresh: a refresh grant must
    cover every scope it asks for, and that login grants fewer."""
    adc = _authorized_user_file(tmp_path / "adc.json", "adc-project")
    st = auth.initialize(env={"GOOGLE_APPLICATION_CREDENTIALS": str(adc)})
    creds = init_calls[0][0]
    assert st.ok and st.method == "credentials_file" and st.project == "adc-project"
    assert creds.refresh_token == "1//adc-refresh-token" and not creds.scopes  # none asked at the refresh


def test_gcloud_application_default_credentials_come_last(tmp_path, no_user_store, init_calls):
    """ee.Initialize itself reads gcloud's application default credentials when given nothing: with
    no other credentials they were refused as "not configured"."""
    env = {"CLOUDSDK_CONFIG": str(tmp_path / "gcloud")}
    assert auth.gcloud_adc_path(env) == tmp_path / "gcloud" / "application_default_credentials.json"
    with pytest.raises(EENotConfiguredError, match="no credentials found"):
        auth.initialize(env=env)
    _authorized_user_file(auth.gcloud_adc_path(env), "adc-project")
    st = auth.initialize(env=env)
    assert st.ok and st.method == "gcloud_adc" and st.project == "adc-project" and "gcloud" in st.message
    assert init_calls[0][0].refresh_token == "1//adc-refresh-token" and not init_calls[0][0].scopes
    # the stored earthengine credentials come first
    no_user_store.parent.mkdir(parents=True)
    no_user_store.write_text(json.dumps({"refresh_token": "1//ee-token", "project": "user-project"}))
    assert auth.initialize(env=env).method == "user"
    # a damaged file is said, with what to do
    no_user_store.unlink()
    auth.gcloud_adc_path(env).write_text("{not json")
    with pytest.raises(EENotConfiguredError, match="application-default login"):
        auth.initialize(env=env)


def test_new_credentials_under_the_same_name_are_initialised_anew(tmp_path, no_user_store, key_info, init_calls,
                                                                  monkeypatch):
    """Running `earthengine authenticate` again (a new token) or rotating a service account's key keeps the
    account's name: the memo of the last initialisation went by the name, and Earth Engine kept the
    revoked credentials until the server restarted."""
    import ee

    monkeypatch.setattr(ee.data, "is_initialized", lambda: True)
    no_user_store.parent.mkdir(parents=True)
    no_user_store.write_text(json.dumps({"refresh_token": "1//old-token", "project": "user-project"}))
    auth.initialize(env={})
    auth.initialize(env={})  # the same credentials: no new initialisation
    no_user_store.write_text(json.dumps({"refresh_token": "1//new-token", "project": "user-project"}))
    assert auth.initialize(env={}).ok
    tokens = [c[0].refresh_token for c in init_calls if not isinstance(c[0], str)]
    assert tokens == ["1//old-token", "1//new-token"]

    keyfile = tmp_path / "key.json"
    keyfile.write_text(json.dumps(key_info))
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(keyfile)}
    auth.initialize(env=env)
    auth.initialize(env=env)
    keyfile.write_text(json.dumps(dict(key_info, private_key_id="0123456789abcdef0123456789abcdef01234567")))
    auth.initialize(env=env)
    emails = [c[0].service_account_email for c in init_calls if hasattr(c[0], "service_account_email")]
    assert emails == [key_info["client_email"]] * 2


def test_refused_credentials_are_initialised_again(no_user_store, init_calls, monkeypatch):
    """A request whose credentials are refused (expired, revoked) forgets the last initialisation: the next
    status initialises again and says what is wrong, instead of "ready"."""
    import ee
    from google.auth.exceptions import RefreshError

    from core.ee import errors as E

    monkeypatch.setattr(ee.data, "is_initialized", lambda: True)
    no_user_store.parent.mkdir(parents=True)
    no_user_store.write_text(json.dumps({"refresh_token": "1//tok", "project": "user-project"}))
    assert auth.status(env={}).ok

    def refused():
        raise RefreshError("invalid_grant: Token has been expired or revoked.")

    with pytest.raises(EENotConfiguredError):
        E.call_with_retries(refused, sleep=lambda s: None)

    def init_refused(credentials=None, **kw):
        raise RefreshError("invalid_grant: Token has been expired or revoked.")

    monkeypatch.setattr(ee, "Initialize", init_refused)
    st = auth.status(env={})
    assert not st.ok and "authenticate" in st.message
