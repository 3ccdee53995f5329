"""`tune` on a real PostgreSQL server (what a team points many machines at): two workers on
one study, one killed mid-trial, exactly N trials per optimizer, the retried trial with the
killed one's parameters. The server is Debian's ``postgresql`` (``initdb``/``pg_ctl``),
started by the test on a free local port in a scratch directory and stopped after it."""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("psycopg2", reason="the PostgreSQL driver psycopg2 is not installed "
                                       "(pip install psycopg2-binary; the test extra has it)")

from larq_bamsprod.harness.experiments import studies  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]
WORKER = TESTS / "support" / "tune_worker.py"
sys.path.insert(0, str(TESTS / "support"))
from ports import free_ports  # noqa: E402

REPO = TESTS.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
       "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
SERVER_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _as_server_user(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run it as Debian's `postgres` user then.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture
def postgres_url():
    if not SERVER_BIN:
        pytest.skip("no PostgreSQL server: /usr/lib/postgresql/*/bin/initdb is missing "
                    "(apt-get install postgresql)")
    bin_dir = Path(SERVER_BIN[-1])
    if os.geteuid() == 0:
        try:
            server_user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the server")
    root = Path(tempfile.mkdtemp(prefix="larq-bamsprod-pg-"))
    if os.geteuid() == 0:
        os.chown(root, server_user.pw_uid, server_user.pw_gid)
    data, (port,) = root / "data", free_ports(1)
    subprocess.run(_as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust",
                                    "-U", "postgres"]),
                   check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
                                    "-l", str(root / "server.log"), "-w", "start"]),
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m",
                                        "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _worker(storage, output, trials, seconds):
    return subprocess.Popen(
        [sys.executable, str(WORKER), storage, str(output), str(trials),
         str(seconds)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _trials(storage, name):
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except KeyError:  # not created yet
        return []


@pytest.mark.slow
def test_two_workers_on_postgres_one_killed_mid_trial_run_exactly_n_per_optimizer(
        postgres_url, tmp_path):
    workers = [_worker(postgres_url, tmp_path / f"w{i}", 3, 1.5) for i in range(2)]
    storage = studies.open_storage(postgres_url)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline:
        time.sleep(0.3)
        running = [t for t in _trials(storage, "adam/study1")
                   if t.state.name == "RUNNING" and t.params
                   and t.user_attrs.get("pid") == workers[0].pid]
        killed = running[0] if running else None
    assert killed is not None, "worker 0 never ran an adam trial"
    workers[0].send_signal(signal.SIGKILL)  # mid-trial: its objective sleeps 1.5 s
    workers[0].wait(timeout=30)
    log = workers[1].communicate(timeout=300)[0]
    assert workers[1].returncode == 0, log
    assert "enqueued again" in log and "Traceback" not in log
    states = {name: sorted(t.state.name for t in _trials(storage, name))
              for name in ("adam/study1", "sgdm/study1")}
    assert states["adam/study1"] == ["COMPLETE"] * 3 + ["FAIL"]
    assert states["sgdm/study1"].count("COMPLETE") == 3
    retried = [t for t in _trials(storage, "adam/study1")
               if t.user_attrs.get("retry_of") == killed.number]
    assert len(retried) == 1 and retried[0].state.name == "COMPLETE"
    assert retried[0].params == killed.params
