"""Every response body of the per-VM API against Firecracker's spec
(fc_schema.py): a VMM that is not started, answering each operation of the
spec, good requests and bad; the started VM's answers are checked in
test_snapshot.py on its restored guest, which has every device.

Also the operations without a meaning here (cpu-config, hotplug/memory,
pmem) answer a clear 400, and GET /vm/config has no null anywhere."""
import re
import subprocess

import pytest

from conftest import wait_for
from fc_schema import OPERATIONS, call


@pytest.fixture
def fresh(skiff_bin, tmp_path):
    sock = tmp_path / "api.sock"
    p = subprocess.Popen([skiff_bin, "run", "--api-sock", str(sock), "--id", "spec"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert wait_for(lambda: sock.exists() or p.poll() is not None, 20, 0.05) and sock.exists()
    yield sock
    p.kill()
    p.wait()


def test_not_started(fresh, tmp_path, default_guest):
    sock = fresh
    seen = set()

    def c(method, path, body=None, status=None):
        st, js = call(sock, method, path, body)
        if status is not None:
            assert st == status, f"{method} {path}: {st} {js}"
        for (m, pat) in OPERATIONS:
            if m == method and re.fullmatch(pat, path):
                seen.add((m, pat))
        return js

    info = c("GET", "/", status=200)
    assert info["state"] == "Not started" and info["id"] == "spec"
    c("GET", "/version", status=200)
    c("GET", "/machine-config", status=200)
    c("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256}, status=204)
    c("PATCH", "/machine-config", {"vcpu_count": 0}, status=400)
    c("PATCH", "/machine-config", {"mem_size_mib": 300}, status=204)
    cfg = c("GET", "/vm/config", status=200)
    assert "null" not in str(cfg).lower().replace("'", '"'), cfg
    assert "boot-source" not in cfg and "vsock" not in cfg and "balloon" not in cfg, cfg
    c("PUT", "/boot-source", {"kernel_image_path": str(default_guest.kernel)}, status=204)
    c("PUT", "/boot-source", {}, status=400)
    c("PUT", "/drives/d0", {"drive_id": "d0", "is_root_device": False, "path_on_host": "/nonexistent",
                            "is_read_only": True}, status=400)
    c("PATCH", "/drives/d0", {"drive_id": "d0"}, status=400)
    c("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "backend": "user"}, status=204)
    c("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0"}, status=400)
    c("PUT", "/vsock", {"guest_cid": 1, "uds_path": str(tmp_path / "v.sock")}, status=400)
    c("PUT", "/balloon", {"amount_mib": 0, "deflate_on_oom": True, "stats_polling_interval_s": 1},
      status=204)
    c("GET", "/balloon", status=200)
    c("PATCH", "/balloon", {"amount_mib": 1}, status=400)
    c("GET", "/balloon/statistics", status=400)
    c("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 2}, status=400)
    c("PATCH", "/balloon/hinting/start", {"acknowledge_on_stop": True}, status=400)
    c("PATCH", "/balloon/hinting/stop", status=400)
    c("GET", "/balloon/hinting/status", status=400)
    c("PUT", "/logger", {"level": "Nonsense"}, status=400)
    c("PUT", "/metrics", {}, status=400)
    c("PUT", "/actions", {"action_type": "FlushMetrics"}, status=400)
    c("PATCH", "/vm", {"state": "Paused"}, status=400)
    c("PUT", "/snapshot/create", {"snapshot_path": "/x", "mem_file_path": "/y"}, status=400)
    c("PUT", "/snapshot/load", {"snapshot_path": str(tmp_path / "none"),
                                "mem_backend": {"backend_type": "File", "backend_path": "/y"}},
      status=400)
    c("PUT", "/serial", {"serial_out_path": str(tmp_path / "serial.out")}, status=204)
    c("GET", "/mmds", status=404)
    c("PUT", "/mmds", {"a": {"b": "c"}}, status=204)
    c("PATCH", "/mmds", {"a": {"d": "e"}}, status=204)
    assert c("GET", "/mmds", status=200) == {"a": {"b": "c", "d": "e"}}
    c("PUT", "/mmds", [1], status=400)
    c("PUT", "/mmds/config", {"network_interfaces": ["nope"]}, status=400)
    c("PUT", "/mmds/config", {"network_interfaces": ["eth0"], "ipv4_address": "10.0.0.1"}, status=400)
    c("PUT", "/mmds/config", {"version": "V2", "network_interfaces": ["eth0"]}, status=204)
    assert c("GET", "/vm/config", status=200)["mmds-config"]["version"] == "V2"
    c("PUT", "/serial", {"rate_limiter": {"size": "x"}}, status=400)
    c("PUT", "/entropy", {"rate_limiter": {"bandwidth": {"size": "x"}}}, status=400)
    c("PUT", "/entropy", {"rate_limiter": {}, "extra": 1}, status=400)
    assert "entropy" not in c("GET", "/vm/config", status=200)
    c("PUT", "/entropy", {}, status=204)
    assert c("GET", "/vm/config", status=200)["entropy"] == {}
    c("PUT", "/entropy", {"rate_limiter": {"ops": {"size": 10, "refill_time": 100}}}, status=204)
    assert c("GET", "/vm/config", status=200)["entropy"] == \
        {"rate_limiter": {"ops": {"size": 10, "one_time_burst": 0, "refill_time": 100}}}
    # No meaning here: a clear refusal.
    assert "RISC-V" in c("PUT", "/cpu-config", {"kvm_capabilities": []}, status=400)["fault_message"]
    assert "not supported" in c("PUT", "/hotplug/memory", {"total_size_mib": 1024},
                                status=400)["fault_message"]
    c("PATCH", "/hotplug/memory", {"requested_size_mib": 0}, status=400)
    c("GET", "/hotplug/memory", status=400)
    assert "virtio-pmem" in c("PUT", "/pmem/p0", {"id": "p0", "path_on_host": "/x"},
                              status=400)["fault_message"]
    c("PATCH", "/pmem/p0", {"id": "p0"}, status=400)
    cfg = c("GET", "/vm/config", status=200)
    assert cfg["machine-config"]["mem_size_mib"] == 300 and "null" not in str(cfg)
    # Every operation of the spec was asked.
    missing = set(OPERATIONS) - seen
    assert not missing, f"operations not exercised: {sorted(missing)}"
