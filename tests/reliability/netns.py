"""A second network host for a worker: a network namespace joined to this one by a veth pair.

A process started with ``prefix`` (``ip netns exec <name> …``) has only the namespace's end of the
pair: it reaches the servers that listen on ``outside`` (this host's end) across the pair, as a
worker on another machine would across a wire. ``cut()`` drops every packet in both directions
(a ``pfifo`` queue of length 0 on both ends: no reset, no ICMP, no error to either side; TCP retries
and connects hang, as on a partitioned network); ``restore()`` heals it and TCP delivers what it
was retrying. Made as root; ``unavailable()`` says why not where the machine cannot.

Names carry the test process's pid, so two xdist workers never clash; namespaces left by dead
test processes are removed first.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess

PREFIX = "segsync-"
LEFT = re.compile(rf"^{PREFIX}(\d+)\b")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def unavailable() -> str | None:
    """None if this process may make namespaces and veth pairs, else the reason."""
    if os.geteuid() != 0:
        return "a network namespace with a veth pair needs root (ip netns add)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"no '{tool}' command (iproute2): cannot make or cut a veth pair"
    return None


def remove_abandoned() -> None:
    """Namespaces of test processes that are gone (and with them their veth pairs)."""
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        found = LEFT.match(line)
        if found and not os.path.exists(f"/proc/{found.group(1)}"):
            _ip("netns", "del", f"{PREFIX}{found.group(1)}", check=False)


class NetworkHost:
    def __init__(self) -> None:
        pid = os.getpid()
        self.name = f"{PREFIX}{pid}"
        self.outside_link = f"ss{pid}o"  # at most 15 characters (IFNAMSIZ)
        self.inside_link = f"ss{pid}i"
        # a /30 of 10.0.0.0/8 per pid (pids stay below 2**22)
        base = ipaddress.IPv4Address("10.0.0.0") + (pid % 2**22) * 4
        self.outside = str(base + 1)
        self.inside = str(base + 2)
        self.prefix = ["ip", "netns", "exec", self.name]
        self.is_cut = False

    def create(self) -> NetworkHost:
        remove_abandoned()
        _ip("netns", "del", self.name, check=False)  # a leftover of this pid
        _ip("link", "del", self.outside_link, check=False)
        try:
            _ip("netns", "add", self.name)
            _ip("link", "add", self.outside_link, "type", "veth", "peer", "name", self.inside_link)
            _ip("link", "set", self.inside_link, "netns", self.name)
            _ip("addr", "add", f"{self.outside}/30", "dev", self.outside_link)
            _ip("link", "set", self.outside_link, "up")
            _ip("-n", self.name, "addr", "add", f"{self.inside}/30", "dev", self.inside_link)
            _ip("-n", self.name, "link", "set", self.inside_link, "up")
            _ip("-n", self.name, "link", "set", "lo", "up")
            self.cut()  # proves that tc can cut here (else the test cannot run) ...
            self.restore()  # ... and starts healed
        except BaseException:
            self.remove()
            raise
        return self

    def cut(self) -> None:
        for netns in ([], ["-n", self.name]):
            link = self.inside_link if netns else self.outside_link
            self._tc(*netns, "qdisc", "replace", "dev", link, "root", "pfifo", "limit", "0")
        self.is_cut = True

    def restore(self) -> None:
        for netns in ([], ["-n", self.name]):
            link = self.inside_link if netns else self.outside_link
            self._tc(*netns, "qdisc", "del", "dev", link, "root")
        self.is_cut = False

    def remove(self) -> None:
        """The namespace and the pair (deleting one end deletes the other); never fails."""
        _ip("link", "del", self.outside_link, check=False)
        _ip("netns", "del", self.name, check=False)

    @staticmethod
    def _tc(*args: str) -> None:
        result = subprocess.run(["tc", *args], capture_output=True, text=True, timeout=30, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"tc {' '.join(args)}: {result.stderr.strip()}")
