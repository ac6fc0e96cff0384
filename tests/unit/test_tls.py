"""The TLS files: which layout a directory holds, what is wrong with it, and how each client
is told (the `glusterfs` command line, the gfapi translator options, the CLI flag).

Certificates are real, made by `openssl` (tests/sandbox/pki.py); whole passes against TLS
volumes are in tests/integration/test_tls.py.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from recycler_job import tls
from recycler_job.cli import main
from recycler_job.config import ConfigError, load_config
from recycler_job.exit_codes import ExitCode
from tests.sandbox.pki import GLUSTER, Pki

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("tls") / "pki")


@pytest.fixture(autouse=True)
def _unconfigured() -> Iterator[None]:
    tls.configure(None)
    yield
    tls.configure(None)


def _copy(pki: Pki, tmp_path: Path, **kwargs: object) -> Path:
    """A client directory of this test's own (the module's PKI is shared)."""
    source = pki.client_dir(f"c-{tmp_path.name}", **kwargs)  # type: ignore[arg-type]
    target = tmp_path / "secret"
    shutil.copytree(source, target)
    return target


def test_the_fork_layout_is_found_and_usable(pki: Pki, tmp_path: Path) -> None:
    directory = _copy(pki, tmp_path)
    files = tls.load(str(directory))
    assert (files.cert, files.key, files.ca) == tuple(
        str(directory / name) for name in ("tls.crt", "tls.key", "tls.ca")
    )
    assert files.usable, files.problem


def test_gluster_file_names_are_found_too(pki: Pki, tmp_path: Path) -> None:
    directory = _copy(pki, tmp_path, names=GLUSTER)
    files = tls.load(str(directory))
    assert files.cert == str(directory / "glusterfs.pem")
    assert files.usable, files.problem


def test_a_kubernetes_tls_secret_with_its_ca_works_too(pki: Pki, tmp_path: Path) -> None:
    directory = _copy(pki, tmp_path, names=("tls.crt", "tls.key", "ca.crt"))
    files = tls.load(str(directory))
    assert (files.cert, files.ca) == (str(directory / "tls.crt"), str(directory / "ca.crt"))
    assert files.usable, files.problem


def test_a_missing_key_is_named(pki: Pki, tmp_path: Path) -> None:
    directory = _copy(pki, tmp_path, without=("tls.key",))
    files = tls.load(str(directory))
    assert files.problem == f"tls.key is missing in {directory}"


def test_an_empty_directory_names_the_fork_files(tmp_path: Path) -> None:
    problem = tls.load(str(tmp_path)).problem
    assert problem is not None and "tls.crt is missing" in problem and "tls.ca" in problem


def test_an_empty_file_is_a_problem(pki: Pki, tmp_path: Path) -> None:
    directory = _copy(pki, tmp_path)
    (directory / "tls.ca").write_text("\n")
    assert tls.load(str(directory)).problem == f"{directory}/tls.ca is empty"


def test_a_key_of_another_certificate_is_a_problem(pki: Pki, tmp_path: Path) -> None:
    directory = _copy(pki, tmp_path)
    shutil.copyfile(pki.root / "work" / "wrong-ca.key", directory / "tls.key")
    problem = tls.load(str(directory)).problem
    assert problem is not None and "do not make a certificate and its key" in problem


def test_a_ca_file_without_a_certificate_is_a_problem(pki: Pki, tmp_path: Path) -> None:
    directory = _copy(pki, tmp_path)
    (directory / "tls.ca").write_text("not a certificate\n")
    problem = tls.load(str(directory)).problem
    assert problem is not None and "holds no usable CA certificate" in problem


def test_only_volumes_with_client_ssl_need_the_files(pki: Pki, tmp_path: Path) -> None:
    tls.configure(tls.load(str(_copy(pki, tmp_path, without=("tls.key",)))))
    tls.require_for("plain", {})
    tls.require_for("off", {"client.ssl": "off", "server.ssl": "on"})
    with pytest.raises(tls.TlsError, match=r"volume v has client.ssl on, but tls.key is missing"):
        tls.require_for("v", {"client.ssl": "on"})


def test_a_tls_volume_without_configured_files_is_refused() -> None:
    with pytest.raises(tls.TlsError, match="no TLS files are configured"):
        tls.require_for("v", {"client.ssl": "enable"})


def test_usable_files_serve_a_tls_volume(pki: Pki, tmp_path: Path) -> None:
    tls.configure(tls.load(str(_copy(pki, tmp_path))))
    tls.require_for("v", {"client.ssl": "on"})


def test_every_client_translator_of_the_volume_gets_the_three_paths(
    pki: Pki, tmp_path: Path
) -> None:
    assert tls.xlator_options("vol") == []
    directory = _copy(pki, tmp_path)
    tls.configure(tls.load(str(directory)))
    assert tls.xlator_options("vol") == [
        ("vol-client-*", "transport.socket.ssl-own-cert", f"{directory}/tls.crt"),
        ("vol-client-*", "transport.socket.ssl-private-key", f"{directory}/tls.key"),
        ("vol-client-*", "transport.socket.ssl-ca-list", f"{directory}/tls.ca"),
    ]


def test_fuse_command_is_what_mount_glusterfs_would_run_plus_the_files(
    pki: Pki, tmp_path: Path
) -> None:
    assert tls.fuse_command(["h1"], "vol", None, "/m/pv", read_only=False) is None
    directory = _copy(pki, tmp_path)
    tls.configure(tls.load(str(directory)), log_dir=str(tmp_path))
    old_log = tmp_path / "fuse-pv.log"
    old_log.write_text("an earlier mount's errors\n")
    args = tls.fuse_command(["h1", "h2"], "vol", "a/b", "/m/pv", read_only=True)
    assert args == [
        "--process-name",
        "fuse",
        "--volfile-server=h1",
        "--volfile-server=h2",
        "--volfile-id=/vol",
        f"--log-file={tmp_path}/fuse-pv.log",
        "--secure-mgmt=no",
        "--read-only",
        f"--xlator-option=vol-client-*.transport.socket.ssl-own-cert={directory}/tls.crt",
        f"--xlator-option=vol-client-*.transport.socket.ssl-private-key={directory}/tls.key",
        f"--xlator-option=vol-client-*.transport.socket.ssl-ca-list={directory}/tls.ca",
        "--subdir-mount=/a/b",
        "/m/pv",
    ]
    assert not old_log.exists()


def test_the_cli_is_told_about_the_management_path_only_when_tls_is_configured(
    pki: Pki, tmp_path: Path
) -> None:
    assert tls.cli_args() == []
    directory = str(_copy(pki, tmp_path))
    tls.configure(tls.load(directory))
    assert tls.cli_args() == ["--secure-mgmt=no"]
    tls.configure(tls.load(directory, management=True))
    assert tls.cli_args() == ["--secure-mgmt=yes"]


# Lines as glusterfs 10.3 wrote them for a wrong CA and for a missing key.
LOG = """\
[2026-12-02 03:47:01.375213 +0000] I [socket.c:4287:ssl_setup_connection_params] 0-v-client-0: \
SSL support for MGMT is NOT enabled IO path is ENABLED certificate depth is 1 for peer x
[2026-12-02 03:47:01.375213 +0000] E [socket.c:224:ssl_dump_error_stack] 0-v-client-0:   \
error:0A000086:SSL routines::certificate verify failed
[2026-12-02 03:47:01.386106 +0000] E [fuse-bridge.c:5364:fuse_first_lookup] 0-fuse: first \
lookup on root failed (Transport endpoint is not connected)
[2026-12-02 03:47:02.000000 +0000] E [socket.c:4353:ssl_setup_connection_params] \
0-v-client-0: could not load private key at /s/tls.key
"""


def test_explain_picks_the_tls_errors_from_the_client_log(tmp_path: Path) -> None:
    log = tmp_path / "client.log"
    log.write_text("[2026] E [x.c:1:f] 0-v: an old SSL error before this connection\n")
    start = tls.log_size(str(log))
    with log.open("a") as handle:
        handle.write(LOG)
    assert tls.explain(str(log), start=start) == (
        "client log: error:0A000086:SSL routines::certificate verify failed; "
        "could not load private key at /s/tls.key"
    )
    assert tls.explain(str(tmp_path / "missing.log")) is None
    assert tls.log_size(str(tmp_path / "missing.log")) == 0


def test_no_management_tls_needs_nothing_at_start() -> None:
    assert tls.startup_problem(False, "gfapi") is None


@pytest.mark.skipif(
    os.path.exists(os.path.join(tls.DEFAULT_SSL_DIR, "glusterfs.pem")),
    reason="this machine has management TLS files in the default directory",
)
def test_management_tls_without_the_default_files_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["--tls-management", "--log-dir", str(tmp_path)], {})
    assert code == ExitCode.BAD_CONFIG
    err = capsys.readouterr().err
    assert "--tls-management: the management path reads its files from /usr/lib/ssl" in err
    assert err.count("\n") == 1


def test_tls_dir_must_be_an_existing_absolute_directory(tmp_path: Path) -> None:
    assert load_config(["--tls-dir", str(tmp_path)], {}).tls_dir == str(tmp_path)
    assert load_config([], {"GLUSTER_TLS_DIR": str(tmp_path)}).tls_dir == str(tmp_path)
    assert load_config([], {"GLUSTER_TLS_MANAGEMENT": "true"}).tls_management is True
    with pytest.raises(ConfigError, match="--tls-dir: is not a directory"):
        load_config(["--tls-dir", str(tmp_path / "nope")], {})
    with pytest.raises(ConfigError, match="must be an absolute path"):
        load_config(["--tls-dir", "relative"], {})


def test_management_tls_with_gfapi_needs_the_secure_access_file_and_never_creates_it(
    pki: Pki, tmp_path: Path
) -> None:
    ssl_dir = str(_copy(pki, tmp_path, names=GLUSTER))
    secure = tmp_path / "glusterd" / "secure-access"
    args = {"ssl_dir": ssl_dir, "secure_access": str(secure)}
    assert tls.startup_problem(True, "fuse", **args) is None  # --secure-mgmt=yes suffices
    problem = tls.startup_problem(True, "gfapi", **args)
    assert problem is not None and f"only when {secure} exists" in problem
    assert not secure.parent.exists()
    secure.parent.mkdir()
    secure.write_text("")
    assert tls.startup_problem(True, "gfapi", **args) is None


def test_an_encrypted_key_is_a_problem_not_a_prompt(pki: Pki, tmp_path: Path) -> None:
    directory = _copy(pki, tmp_path)
    subprocess.run(
        ["openssl", "pkey", "-in", str(directory / "tls.key"), "-aes256", "-passout", "pass:x",
         "-out", str(tmp_path / "encrypted.key")],
        check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    os.replace(tmp_path / "encrypted.key", directory / "tls.key")
    problem = tls.load(str(directory)).problem
    assert problem is not None and "do not make a certificate and its key" in problem
    # On a terminal OpenSSL would ask for the passphrase and wait: `script` gives it one.
    if shutil.which("script") is None:
        pytest.skip("`script` (util-linux) is needed to give the check a terminal")
    code = "import os; from recycler_job import tls; print(tls.load(os.environ['D']).problem)"
    done = subprocess.run(
        ["script", "-qec", shlex.join([sys.executable, "-c", code]), "/dev/null"],
        env={**os.environ, "D": str(directory)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "pass phrase" not in done.stdout, done.stdout
    assert "do not make a certificate and its key" in done.stdout, done.stdout
