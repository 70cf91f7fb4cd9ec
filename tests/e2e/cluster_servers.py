"""cluster_servers.py -- the real servers a cluster test needs, started on
loopback from Debian's packages: `nats-server -js` with a temporary store
directory, and a PostgreSQL cluster made with initdb in a temporary
directory, run as an unprivileged user (postgres refuses root; as root the
tests run it as the `postgres` system user, or `nobody`).  Each waits for
its server to answer before returning; each is stopped by .stop()."""
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port, proc, what, log, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("%s exited with %d: %s" % (what, proc.returncode, _tail(log)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)  # polling for the port to open, not synchronising on time
    raise AssertionError("%s did not open port %d: %s" % (what, port, _tail(log)))


def _tail(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")[-2000:]
    except OSError:
        return ""


def nats_server_bin():
    for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server", shutil.which("nats-server") or ""):
        if p and os.access(p, os.X_OK):
            return p
    return None


def pg_bindir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    return dirs[-1] if dirs else None


def available():
    """Why the cluster tests cannot run here, or None."""
    if not nats_server_bin():
        return "nats-server is not installed (scripts/install-deps)"
    if not pg_bindir():
        return "PostgreSQL is not installed (scripts/install-deps)"
    return None


class Nats:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fw-nats-")
        self.port = free_port()
        self.url = "nats://127.0.0.1:%d" % self.port
        self.log = os.path.join(self.dir, "nats.log")
        self.proc = None

    def start(self):
        cmd = [nats_server_bin(), "-js", "-sd", os.path.join(self.dir, "store"), "-a", "127.0.0.1",
               "-p", str(self.port), "-l", self.log]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.proc, "nats-server", self.log)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        shutil.rmtree(self.dir, ignore_errors=True)


class Postgres:
    """A throwaway PostgreSQL: initdb, trust on loopback, fsync off (the tests crash forewarn's
    nodes, never PostgreSQL)."""

    def __init__(self):
        # As root the server runs as another user, who must reach the directory: under /tmp,
        # not under a test run's private temporary directory.
        self.dir = tempfile.mkdtemp(prefix="fw-pg-", dir="/tmp" if os.geteuid() == 0 else None)
        self.port = free_port()
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "pg.log")
        self.proc = None
        self.user = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self.user = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.conninfo = "host=127.0.0.1 port=%d dbname=postgres user=forewarn" % self.port

    def _demote(self):
        if self.user:
            os.setgid(self.user.pw_gid)
            os.setuid(self.user.pw_uid)

    def start(self):
        b = pg_bindir()
        p = subprocess.run([os.path.join(b, "initdb"), "-D", self.data, "-U", "forewarn", "-A", "trust",
                            "--no-sync", "-E", "UTF8", "--locale=C"], preexec_fn=self._demote,
                           capture_output=True, text=True, cwd=self.dir)
        assert p.returncode == 0, p.stderr
        cmd = [os.path.join(b, "postgres"), "-D", self.data, "-p", str(self.port), "-k", self.dir,
               "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
               "-c", "full_page_writes=off", "-c", "max_connections=200"]
        logf = open(self.log, "wb")
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=logf, preexec_fn=self._demote, cwd=self.dir)
        _wait_port(self.port, self.proc, "postgres", self.log)
        # The port opens before the server takes connections: ask until it answers.
        deadline = time.monotonic() + 30
        while True:
            r = subprocess.run([os.path.join(b, "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                                "-U", "forewarn", "-d", "postgres", "-Atc", "SELECT 1"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                return self
            assert time.monotonic() < deadline, r.stderr
            time.sleep(0.05)  # polling until the server answers

    def sql(self, query):
        """Rows of a query, as lists of strings (psql's unaligned output)."""
        b = pg_bindir()
        r = subprocess.run([os.path.join(b, "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                            "forewarn", "-d", "postgres", "-AtF", "\t", "-v", "ON_ERROR_STOP=1",
                            "-c", query], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return [line.split("\t") for line in r.stdout.splitlines()]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
