"""Claiming a sweep's runs, so that many worker processes (on one machine or on several sharing the
sweep folder) never train the same run twice.

A run's claim is ``SWEEP/.claims/RUN.json``: who holds it (worker name, host, pid), a random
generation token and whether it is still held. Only two filesystem operations decide who wins,
both atomic on local disks and NFS: ``link`` (the first claim: fails if the file exists) and
``O_CREAT|O_EXCL`` (the right to replace generation T: the file ``RUN.json.next-T``, created by
exactly one process). Whoever creates ``RUN.json.next-T`` alone may replace claim T, so a released
claim, or a held one whose heartbeat (the file's mtime, refreshed by a background thread while the
run trains) is older than the timeout, goes to exactly one taker. The markers are kept: deleting
one would let a slow taker that read generation T still win it later.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from tfbert.errors import ConfigError

CLAIMS_DIR = ".claims"
HELD, RELEASED = "held", "released"


def machine_key() -> str:
    """Host, boot and pid namespace: two owners with the same key see the same process ids."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        parts.append("?")
    return "/".join(parts)


@dataclass(frozen=True)
class Worker:
    """Who claims: a name for messages, and where its process lives."""

    name: str
    host: str
    pid: int
    machine: str

    @classmethod
    def here(cls, name: str | None = None) -> "Worker":
        host, pid = socket.gethostname(), os.getpid()
        return cls(name or f"{host}:{pid}", host, pid, machine_key())

    def describe(self) -> str:
        return f"{self.name} (pid {self.pid} on {self.host})"


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by another user
        return False
    return False


class ClaimFile:
    """One run's claim file and its replacement markers."""

    def __init__(self, sweep_dir: str | os.PathLike, run_name: str):
        self.folder = Path(sweep_dir) / CLAIMS_DIR
        self.path = self.folder / f"{run_name}.json"

    def read(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def age(self) -> float | None:
        """Seconds since the last heartbeat, None without a claim."""
        try:
            return time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return None

    def holder(self, timeout: float) -> dict | None:
        """The claim's content while a live worker holds it; None when free, released or stale."""
        data, age = self.read(), self.age()
        if data is None or age is None or data.get("state") != HELD:
            return None
        return None if self._dead(data, age, timeout) else data

    def _dead(self, data: dict, age: float, timeout: float) -> bool:
        """Stale heartbeat, or (a process on this machine) a process that is gone."""
        if age > timeout:
            return True
        return data.get("machine") == machine_key() and _pid_gone(int(data.get("pid", 0)))

    def _content(self, worker: Worker, state: str) -> tuple[str, str]:
        token = uuid.uuid4().hex
        data = {**asdict(worker), "state": state, "token": token, "since": time.time()}
        return token, json.dumps(data, indent=1)

    def _staged(self, text: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_text(text, encoding="utf-8")
        return tmp

    def _create(self, worker: Worker) -> str | None:
        """The first claim of a run: exactly one of several creators gets it."""
        token, text = self._content(worker, HELD)
        tmp = self._staged(text)
        try:
            os.link(tmp, self.path)  # fails if the claim exists; the content is whole when it appears
            return token
        except FileExistsError:
            return None
        except OSError as err:
            raise ConfigError(f"cannot claim runs in {self.folder} ({err.strerror}): the sweep folder's "
                              f"filesystem must support hard links; pass another --output-dir") from None
        finally:
            tmp.unlink(missing_ok=True)

    def replace(self, generation: str, worker: Worker, state: str) -> str | None:
        """Replace claim ``generation`` with a new one; None if another process replaced it first."""
        try:
            os.close(os.open(self.folder / f"{self.path.name}.next-{generation}",
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            return None
        token, text = self._content(worker, state)
        os.replace(self._staged(text), self.path)
        return token

    def acquire(self, worker: Worker, timeout: float) -> "Claim | None":
        """Claim the run for ``worker``: free, released, or held by a dead worker; else None."""
        token = self._create(worker)
        if token is not None:
            return Claim(self, worker, token, taken_from=None)
        data, age = self.read(), self.age()
        if data is None or age is None:  # changed under us: try again at the next pass
            return None
        if data.get("state") == HELD and not self._dead(data, age, timeout):
            return None
        token = self.replace(str(data.get("token")), worker, HELD)
        if token is None:
            return None
        taken = data if data.get("state") == HELD else None
        return Claim(self, worker, token, taken_from=taken)


class Claim:
    """A run held by this process; ``heartbeat()`` keeps it alive while the run trains."""

    def __init__(self, file: ClaimFile, worker: Worker, token: str, taken_from: dict | None):
        self.file, self.worker, self.token = file, worker, token
        self.taken_from = taken_from  # the dead holder's claim, when this one was taken over
        self.lost = False
        self._stop = threading.Event()

    def mine(self) -> bool:
        data = self.file.read()
        return bool(data) and data.get("token") == self.token

    def beat(self) -> None:
        """Refresh the heartbeat; touching the file cannot undo another worker's takeover."""
        if not self.mine():
            if not self.lost:
                print(f"warning: {self.worker.name} lost its claim on {self.file.path.stem} (no heartbeat for "
                      f"longer than the timeout); another worker took it over", flush=True)
            self.lost = True
            return
        try:
            os.utime(self.file.path)
        except OSError:
            pass  # a missed beat is retried at the next interval

    def heartbeat(self, interval: float) -> "Claim":
        def loop():
            while not self._stop.wait(interval):
                self.beat()

        threading.Thread(target=loop, name=f"heartbeat {self.file.path.stem}", daemon=True).start()
        return self

    def release(self) -> None:
        self._stop.set()
        if self.mine():
            self.file.replace(self.token, self.worker, RELEASED)


def heartbeat_interval(timeout: float) -> float:
    """Several beats per timeout, so one slow write does not make a live claim look dead."""
    return max(0.05, min(timeout / 4.0, 30.0))
