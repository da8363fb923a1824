"""skiffd's VMs in cgroup v2 (issue 12), without booting a guest.

- With --cgroup DIR (here a directory standing in for a delegated cgroup,
  its cgroup.controllers offering cpu, io, memory and pids): skiffd moves
  itself into DIR/skiffd, enables the controllers for DIR's children, and a
  started VM gets DIR/vm-ID with cpu.max from its cpu_quota, memory.max =
  RAM + 256 MiB + 64 MiB per vCPU, pids.max, and io.max on the whole disk
  its rate-limited image lives on; the VMM wrote itself into its
  cgroup.procs before exec. (The kernel's side of those files is the
  kernel's; this checks what skiffd asks of it.)
- With skiffd's default on this host: where skiffd's own cgroup is usable
  the VMM runs in its vm-ID cgroup (/proc/PID/cgroup), else skiffd's log
  says why not and that the in-process quota stays.
"""
import os
import time
from pathlib import Path

import pytest

import rvimage
from test_skiffd import curl, daemons, for_vmm, get, ok, short_root, skiffd_bin  # noqa: F401 (fixtures)

MiB = 1 << 20


def whole_disk(path):
    st = os.stat(path)
    mj, mn = os.major(st.st_dev), os.minor(st.st_dev)
    sysd = Path(f"/sys/dev/block/{mj}:{mn}")
    if (sysd / "partition").exists():
        return (sysd.resolve().parent / "dev").read_text().strip()
    return f"{mj}:{mn}"


def spin_vm(tmp_path, vm_id, **machine):
    k = tmp_path / "Image"
    k.write_bytes(rvimage.image(rvimage.prog_spin()))
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(MiB)
    for_vmm(disk)
    return {"id": vm_id, "boot-source": {"kernel_image_path": str(k)},
            "machine-config": {"vcpu_count": 2, "mem_size_mib": 128, **machine},
            "drives": [{"drive_id": "d", "path_on_host": str(disk), "is_root_device": False,
                        "is_read_only": False, "format": "raw",
                        "rate_limiter": {"bandwidth": {"size": 2 * MiB, "refill_time": 1000},
                                         "ops": {"size": 300, "refill_time": 1000}}}]}, disk


def test_each_vm_in_its_own_cgroup(daemons, short_root, tmp_path):
    cg = tmp_path / "cgroup"
    cg.mkdir()
    (cg / "cgroup.controllers").write_text("cpu io memory pids\n")
    d = daemons(short_root, mem_limit="2G", extra=["--cgroup", cg])
    assert f"each VM gets its own cgroup under {cg}" in d.log_text()
    assert (cg / "skiffd" / "cgroup.procs").read_text() == "0"
    assert (cg / "cgroup.subtree_control").read_text() == "+cpu +memory +pids +io"
    body, disk = spin_vm(tmp_path, "cg1", cpu_quota=0.5)
    ok(d.sock, "POST", "/vms", body, status=201)
    ok(d.sock, "PUT", "/vms/cg1/actions", {"action_type": "InstanceStart"})
    vmcg = cg / "vm-cg1"
    try:
        assert (vmcg / "cgroup.procs").read_text() == "0"   # the VMM, before exec
        assert (vmcg / "cpu.max").read_text() == "50000 100000"
        assert (vmcg / "memory.max").read_text() == str((128 + 256 + 2 * 64) * MiB)
        assert (vmcg / "pids.max").read_text() == "512"
        assert (vmcg / "io.max").read_text() == \
            f"{whole_disk(disk)} rbps={2 * MiB} wbps={2 * MiB} riops=300 wiops=300"
    finally:
        ok(d.sock, "PUT", "/vms/cg1/actions", {"action_type": "InstanceStop"})


def test_default_cgroup_or_why_not(daemons, short_root, tmp_path):
    d = daemons(short_root, mem_limit="2G")
    log = d.log_text()
    if "cgroup: not used:" in log:
        assert "in-process CPU quota" in log
        return
    assert "each VM gets its own cgroup under" in log, log
    body, _ = spin_vm(tmp_path, "cg2", cpu_quota=0.5)
    ok(d.sock, "POST", "/vms", body, status=201)
    ok(d.sock, "PUT", "/vms/cg2/actions", {"action_type": "InstanceStart"})
    try:
        pid = get(d.sock, "/vms/cg2")["pid"]
        with open(f"/proc/{pid}/cgroup") as f:
            line = [l for l in f.read().splitlines() if l.startswith("0::")][0]
        assert line.endswith("/vm-cg2"), line
    finally:
        ok(d.sock, "PUT", "/vms/cg2/actions", {"action_type": "InstanceStop"})
