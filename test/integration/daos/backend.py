"""Where the DAOS bdev's pools and containers live, for the DAOS tests.

DBK_DFS_ENGINE selects the engine the tests run against:
  local (default)  the embedded engine: a temporary root made with daosblk-dfs.
  daos             a live DAOS: the daos CLI of DBK_DAOS_PREFIX, the pool DBK_DAOS_POOL
                   (default test-pool, which must exist), and containers the test creates
                   and destroys itself under unique labels.

A test run against the real engine needs a daosblk built with the real engine
(DBK_HAVE_DAOS=1, set by CMake when configured with -DDAOS_PREFIX) and a pool that
`daos pool query` reaches. Without them skip_reason() says why, and the test exits
77 so that CTest reports it as skipped, never as passed.
"""

import os
import shutil
import subprocess
import tempfile

SKIP = 77


def engine_name():
    return os.environ.get("DBK_DFS_ENGINE", "local")


class LocalBackend:
    name = "local"

    def __init__(self):
        self.root = None

    @staticmethod
    def skip_reason():
        return None

    def _dfs(self, *args, check=True):
        exe = os.path.join(os.environ["DBK_BUILD_DIR"], "tools", "dfs", "daosblk-dfs")
        p = subprocess.run([exe, "--dfs-root", self.root] + list(args), capture_output=True, text=True,
                           timeout=30)
        if check and p.returncode != 0:
            raise RuntimeError("daosblk-dfs %s: %s" % (" ".join(args), p.stderr))
        return p

    def setup(self):
        self.root = tempfile.mkdtemp(prefix="dbk-dfs-")
        self.pool = "test-pool"
        self._dfs("pool", "create", self.pool)
        return self

    def create_cont(self, label, ctype="POSIX"):
        self._dfs("cont", "create", self.pool, label, "--type", ctype)
        return label

    def target_args(self):
        return ("--dfs-root", self.root)

    def file_names(self, cont):
        return self._dfs("ls", self.pool, cont).stdout

    def teardown(self):
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)


class DaosBackend:
    name = "daos"

    def __init__(self):
        self.prefix = os.environ.get("DBK_DAOS_PREFIX", "")
        self.pool = os.environ.get("DBK_DAOS_POOL", "test-pool")
        self.conts = []

    def _daos(self, *args, check=True, timeout=120):
        exe = os.path.join(self.prefix, "bin", "daos")
        p = subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError("daos %s: %s%s" % (" ".join(args), p.stdout, p.stderr))
        return p

    def skip_reason(self):
        if os.environ.get("DBK_HAVE_DAOS") != "1":
            return "this daosblk build has no real DAOS engine (configure with -DDAOS_PREFIX=<DAOS install>)"
        if not self.prefix or not os.access(os.path.join(self.prefix, "bin", "daos"), os.X_OK):
            return "no daos CLI at DBK_DAOS_PREFIX=%r" % self.prefix
        try:
            p = self._daos("pool", "query", self.pool, check=False, timeout=60)
        except subprocess.TimeoutExpired:
            return "daos pool query %s timed out: no live DAOS here" % self.pool
        if p.returncode != 0:
            err = (p.stderr or p.stdout).strip().splitlines()
            return "daos pool query %s failed (%s): no live DAOS pool here" % (self.pool, err[-1] if err else "")
        return None

    def setup(self):
        self.tag = "dbk%d" % os.getpid()
        return self

    def create_cont(self, label, ctype="POSIX"):
        label = "%s-%s" % (self.tag, label)
        self._daos("container", "create", self.pool, label, "--type", ctype)
        self.conts.append(label)
        return label

    def target_args(self):
        return ("--dfs-engine", "daos")

    def file_names(self, cont):
        """None: the daos CLI lists no files (the tests check the file through a re-create instead)."""
        return None

    def teardown(self):
        for c in self.conts:
            self._daos("container", "destroy", "--force", self.pool, c, check=False)
        self.conts = []


def backend():
    return DaosBackend() if engine_name() == "daos" else LocalBackend()

