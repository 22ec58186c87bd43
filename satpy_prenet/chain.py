# SPDX-License-Identifier: GPL-3.0-or-later
"""The operational chain on one machine: a trollflow2 launcher, fed and watched over posttroll.

An `Announcer` publishes the messages that announce AGRI files, a `Launcher` runs trollflow2's
``satpy_launcher.py`` subscribed directly to it (no name server), and a `ProductWatcher` collects the
completion messages the product list publishes. Everything listens on the addresses it is given (loopback in
the demo and the tests), waits a bounded time, and stops by itself. Used by ``make demo``, the tests and the
latency benchmark.
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from posttroll.message import Message
from posttroll.publisher import create_publisher_from_dict_config
from posttroll.subscriber import Subscribe

from satpy_prenet.agri_files import parse_agri_name

#: Topic of the messages announcing AGRI L1 files; the product list subscribes to its prefix ``/AGRI/L1``.
ANNOUNCE_TOPIC = "/AGRI/L1/{observation}"
#: The launcher's log line once it has subscribed (posttroll's subscriber says so).
_SUBSCRIBED = re.compile(r"Subscriber adding address")
#: The launcher's log line starting each job.
_JOB_START = "New message received."
#: The first of the launcher's log lines ending a job: trollflow2's result check (a failed job in threaded mode
#: ends with a missing or empty file, in fresh-process mode also with a crashed process).
_JOB_END = re.compile(r"All (\d+) files produced nominally|Process crashed with exit code|Process killed with signal"
                      r"|Missing file: |Empty file detected: ")
#: A message sent within moments of a subscriber connecting can be dropped (zmq's slow joiner): wait this long.
_SUBSCRIBE_GRACE_S = 1.0


def config_dir() -> Path:
    """The operator configuration folder ``etc/``: the source checkout's, else the one installed with the package."""
    for candidate in (Path(__file__).resolve().parents[1] / "etc", Path(sys.prefix) / "share" / "satpy-prenet" / "etc"):
        if (candidate / "trollflow2").is_dir():
            return candidate
    raise FileNotFoundError("satpy-prenet's etc/ folder (trollflow2 product lists) was not found next to the package "
                            f"or in {Path(sys.prefix) / 'share' / 'satpy-prenet'}")


def free_address() -> str:
    """A ``tcp://127.0.0.1:PORT`` address with a port that is free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


def read_product_list(path: str | Path) -> dict:
    """A trollflow2 product list as plain data, importing and running nothing (python tags become plain values)."""
    with open(path) as stream:
        return yaml.load(stream, Loader=_PlainLoader)


def product_list_publisher(path: str | Path) -> str:
    """The address on which the product list's ``FilePublisher`` announces the products."""
    for worker in read_product_list(path).get("workers", []):
        if isinstance(worker.get("fun"), dict) and "address" in worker["fun"]:
            return worker["fun"]["address"]
    raise ValueError(f"{path}: no worker with a publishing 'address' (trollflow2_plugins.delivery.FilePublisher)")


def copy_product_list(path: str | Path, out_dir: str | Path, publisher: str, *, now: dt.datetime | None = None) -> Path:
    """A copy of product list ``path`` in ``out_dir`` whose ``FilePublisher`` publishes on ``publisher`` instead.

    Used to run the shipped product list beside another chain (a site's launcher, another test) on one host.
    With ``now`` (UTC), the input check measures the age of the data from that time instead of the clock: a replay
    of archived or simulated data at a fixed time.
    """
    text = Path(path).read_text()
    current = product_list_publisher(path)
    copy = Path(out_dir) / Path(path).name
    text = text.replace(f"address: {current}", f"address: {publisher}")
    if now is not None:
        text, count = re.subn(r"^(\s*)(max_age_minutes:.*)$", rf"\1\2\n\1now: {as_utc(now).isoformat()}", text,
                              count=1, flags=re.MULTILINE)
        if count != 1:
            raise ValueError(f"{path}: no 'max_age_minutes' option of the input check to measure the age from {now}")
    copy.write_text(text)
    if product_list_publisher(copy) != publisher:
        raise ValueError(f"{path}: could not move the publishing address {current} to {publisher}")
    return copy


class _PlainLoader(yaml.SafeLoader):
    """A YAML loader that turns python tags into plain values."""


_PlainLoader.add_multi_constructor(
    "tag:yaml.org,2002:python/",
    lambda loader, suffix, node: (loader.construct_mapping(node) if isinstance(node, yaml.MappingNode)
                                  else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
                                  else loader.construct_scalar(node)))


def file_message(path: str | Path, *, platform_name: str | None = None, start_time: dt.datetime | None = None,
                 topic: str | None = None) -> Message:
    """The posttroll ``file`` message announcing AGRI L1 file ``path``, filled in from its name.

    ``platform_name`` and ``start_time`` override what the name says (to announce a file as something it is not).
    """
    path = Path(path)
    name = parse_agri_name(path)
    start = as_utc(start_time or name.start_time)
    data = {
        "uri": str(path.absolute()),
        "uid": path.name,
        "platform_name": platform_name or name.platform,
        "sensor": "agri",
        "observation_type": name.observation,
        "start_time": start,
        "end_time": start + (name.end_time - name.start_time),
    }
    return Message(topic or ANNOUNCE_TOPIC.format(observation=name.observation), "file", data)


def as_utc(time_: dt.datetime | str) -> dt.datetime:
    """An aware UTC datetime from a datetime or an ISO 8601 string; naive times are taken as UTC.

    Raises:
        ValueError: ``time_`` is a string that is not an ISO 8601 time.
    """
    if not isinstance(time_, dt.datetime):
        time_ = dt.datetime.fromisoformat(str(time_))
    return time_.astimezone(dt.timezone.utc) if time_.tzinfo else time_.replace(tzinfo=dt.timezone.utc)


class Announcer:
    """A posttroll publisher bound to one address, announcing input files."""

    def __init__(self, address: str):
        """Bind to ``address`` (``tcp://HOST:PORT``)."""
        self.address = address
        self._publisher = create_publisher_from_dict_config({"address": address, "nameservers": False,
                                                             "name": "satpy-prenet-announcer"})
        self._publisher.start()

    def send(self, message: Message) -> float:
        """Publish ``message``; return the monotonic time it was sent."""
        self._publisher.send(message.encode())
        return time.monotonic()

    def stop(self) -> None:
        """Unbind."""
        self._publisher.stop()

    def __enter__(self) -> Announcer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass(frozen=True)
class Received:
    """A completion message and the monotonic time it arrived."""

    message: Message
    at: float


class ProductWatcher:
    """Collects the posttroll messages published on ``address`` (the product list's completion messages)."""

    def __init__(self, address: str, topics: str | list[str] = ""):
        """Subscribe in a background thread."""
        self.address = address
        self._topics = topics
        self._queue: queue.Queue[Received] = queue.Queue()
        self.received: list[Received] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="product-watcher", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        with Subscribe(addresses=[self.address], topics=self._topics, nameserver=False) as subscriber:
            for message in subscriber.recv(timeout=0.2):
                if self._stopping.is_set():
                    return
                if message is not None:
                    self._queue.put(Received(message, time.monotonic()))

    def wait(self, count: int, timeout: float) -> list[Received]:
        """Wait until ``count`` messages in all have arrived, or ``timeout`` seconds; return all received."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            try:
                self.received.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return list(self.received)

    def stop(self) -> None:
        """Stop listening (within a fraction of a second)."""
        self._stopping.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> ProductWatcher:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class Launcher:
    """trollflow2's ``satpy_launcher.py`` subscribed directly to ``listen`` (no name server), logging to a file.

    Args:
        product_list: The trollflow2 product list.
        listen: Address of the publisher announcing the input files.
        log_file: Where the launcher's output goes (replaced at each start).
        threaded: Run the jobs in threads of the launcher process (``-t``) instead of one process per message.
        log_config: Launcher log configuration (``-c``); default: the one in `config_dir`.
        cwd: Working directory (relative paths of the product list are relative to it).
        env: Extra environment variables; ``SATPY_CONFIG_PATH`` defaults to `config_dir` (for its areas).
    """

    product_list: Path
    listen: str
    log_file: Path
    threaded: bool = False
    log_config: Path | None = None
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = field(default=None, init=False)

    def start(self, timeout: float = 120.0) -> Launcher:
        """Start the launcher and return once it has subscribed (or raise `TimeoutError`)."""
        script = Path(sys.executable).with_name("satpy_launcher.py")
        command = [sys.executable, str(script), "-n", "false", "-a", self.listen,
                   "-c", str(self.log_config or config_dir() / "trollflow2" / "log_config.yaml")]
        if self.threaded:
            command.append("-t")
        command.append(str(self.product_list))
        env = {**os.environ, "SATPY_CONFIG_PATH": str(config_dir()), "PYTHONUNBUFFERED": "1", **self.env}
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "wb") as log:
            # A session of its own, so that stop() reaches the job processes and multiprocessing's manager too.
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd, env=env,
                                            start_new_session=True)
        try:
            self._wait_for(lambda text: _SUBSCRIBED.search(text) is not None, timeout, "subscribe")
        except BaseException:
            self.stop()
            raise
        time.sleep(_SUBSCRIBE_GRACE_S)
        return self

    def log(self) -> str:
        """The launcher's output so far."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def finished_jobs(self) -> list[int | None]:
        """One entry per finished job: the number of files it produced, None for a failed one."""
        return _finished_jobs(self.log())

    def wait_for_jobs(self, count: int, timeout: float) -> list[int | None]:
        """Wait until ``count`` jobs have finished; return `finished_jobs` (or raise `TimeoutError`)."""
        self._wait_for(lambda text: len(_finished_jobs(text)) >= count, timeout, f"finish {count} job(s)")
        return self.finished_jobs()

    def _wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.log()):
            if self.process.poll() is not None:
                raise RuntimeError(f"the trollflow2 launcher exited ({self.process.returncode}) before it could "
                                   f"{what}; its log, {self.log_file}, ends with:\n{_tail(self.log())}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the trollflow2 launcher did not {what} within {timeout:.0f} s; its log, "
                                   f"{self.log_file}, ends with:\n{_tail(self.log())}")
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> int:
        """Ask the launcher to stop (SIGTERM: it finishes the current job), kill it after ``timeout`` seconds.

        Returns the launcher's exit status; no process of its session is left behind.
        """
        if self.process is None:
            return 0
        with suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        with suppress(ProcessLookupError):  # the job processes and multiprocessing's manager, if any outlived it
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait(timeout=10)

    def __enter__(self) -> Launcher:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _finished_jobs(log: str) -> list[int | None]:
    """Files produced by each finished job of a launcher log, None for a failed job."""
    finished = []
    for job in log.split(_JOB_START)[1:]:
        end = _JOB_END.search(job)
        if end is None:  # still running
            break
        finished.append(int(end[1]) if end[1] else None)
    return finished


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])
