"""Fleet access across a real fleet (issue 6): 20 berthd daemons, each in its
own network namespace with its own address on a test bridge (e2e/fleet.py),
one CA, a registry in the host namespace.  Enrollment with tokens, fan-out
(ps, exec, run -d, pull) and one host dying mid-run, roles (a viewer cannot
exec, not even with a handcrafted WebSocket upgrade), revocation closing an
open exec stream, replayed/expired tokens, expired client certs, protected
contexts and BERTH_CONTEXT_BUNDLE with a read-only empty HOME.

Needs root, iproute2, nsenter, docker-registry, skopeo and the busybox test
image.  Everything (daemons, containers, namespaces, bridge, registry) is
removed at the end of the module, also when a test fails."""

import os

import pytest

from conftest import Berth, mktemp_dir
from fleet import FLEET_SIZE, Fleet, tools_missing
from test_containers import TEST_IMAGE, missing

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the fleet needs root")


@pytest.fixture(scope="module")
def fleet(no_stray_daemons):
    why = tools_missing()
    if why:
        missing(why)
    if not TEST_IMAGE.is_file():
        missing(f"test image {TEST_IMAGE} not built")
    f = Fleet()
    try:
        f.setup(TEST_IMAGE)
        yield f
    finally:
        f.teardown()


def netns_inode(pid):
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def test_fleet_hosts_each_in_own_namespace_and_reachable(fleet):
    print(f"fleet of {FLEET_SIZE} up in {fleet.setup_seconds:.2f}s")
    inodes = {netns_inode(h.proc.pid) for h in fleet.hosts}
    assert len(inodes) == FLEET_SIZE and netns_inode(os.getpid()) not in inodes
    for h in fleet.hosts:
        v = fleet.cli.json("-c", h.name, "version", "--format", "json")
        assert v["Server"]["Version"], v
