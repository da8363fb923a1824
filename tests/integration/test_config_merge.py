"""A config file and command-line device options together, booted and used
(docs/skiff-run.md, "Config files"): `--disk`, `--net` and `--share` add to
the file's drives, interfaces and shares (under ids of their own); `--vsock`
and `--balloon` replace the file's sections; the other options (here
`--cpu-quota`) apply over the file. One boot of the default guest with the API on a socket:
GET /vm/config shows the merge, and the guest sees it: both disks with their
own bytes, both NICs, both shares mounted with their files, the command
line's vsock (a guest program, run from a share, connects to the host
through it; the file's socket is never made) and the command line's balloon
target (the guest's driver inflates to it).

Shares and vsock configured through the API (PUT /shares, PUT /vsock) are
used in test_api.py's getting-started sequence.
"""
import json
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import pytest

from conftest import Guest, wait_for
from test_api import get

MiB = 1 << 20


@pytest.fixture(scope="module")
def merged(skiff_bin, default_guest, console_log_dir, guest_tools, tmp_path_factory):
    work = tmp_path_factory.mktemp("merge")
    socks = Path(tempfile.mkdtemp(prefix="skiff-merge-"))   # short: sun_path
    files = {"a": work / "a.raw", "b": work / "b.raw", "cfg_share": work / "cfgshare",
             "cli_share": work / "clishare", "file_vsock": socks / "file.vsock",
             "cli_vsock": socks / "cli.vsock", "api": socks / "api.sock"}
    files["a"].write_bytes(b"A" * MiB)
    files["b"].write_bytes(b"B" * MiB)
    files["cfg_share"].mkdir()
    shutil.copy(guest_tools / "vsock_tool", files["cfg_share"] / "vsock_tool")
    files["cli_share"].mkdir()
    (files["cli_share"] / "note.txt").write_text("from the command line's share\n")
    cfg = work / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(default_guest.kernel),
                        "initrd_path": str(default_guest.initrd)},
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
        "drives": [{"drive_id": "disk1", "path_on_host": str(files["a"]), "is_root_device": False,
                    "is_read_only": True, "format": "raw"}],
        "network-interfaces": [{"iface_id": "eth0", "backend": "user"}],
        "shares": [{"tag": "cfg", "path_on_host": str(files["cfg_share"]), "is_read_only": True}],
        "vsock": {"guest_cid": 3, "uds_path": str(files["file_vsock"])},
        "balloon": {"amount_mib": 0, "deflate_on_oom": True, "stats_polling_interval_s": 5},
    }))
    g = Guest(skiff_bin, ["--config-file", cfg, "--api-sock", files["api"],
                          "--disk", f"{files['b']},ro,format=raw", "--net", "user",
                          "--share", f"{files['cli_share']},tag=cli",
                          "--vsock", f"cid=5,uds={files['cli_vsock']}",
                          "--balloon=target=48", "--cpu-quota", "1"],
              console_log_dir / "config-merge.log", name="config-merge")
    try:
        g.wait_ready()
        g.files = files
        yield g
    finally:
        g.close()
        shutil.rmtree(socks, ignore_errors=True)


def test_configuration_shows_the_merge(merged):
    f = merged.files
    cfg = get(f["api"], "/vm/config")
    assert [d["path_on_host"] for d in cfg["drives"]] == [str(f["a"]), str(f["b"])], cfg["drives"]
    # The option's disk gets an id of its own beside the file's `disk1`.
    assert [d["drive_id"] for d in cfg["drives"]] == ["disk1", "disk2"], cfg["drives"]
    assert len(cfg["network-interfaces"]) == 2, cfg["network-interfaces"]
    assert [(s["tag"], s["path_on_host"]) for s in cfg["shares"]] == \
        [("cfg", str(f["cfg_share"])), ("cli", str(f["cli_share"]))], cfg["shares"]
    assert cfg["vsock"] == dict(cfg["vsock"], guest_cid=5, uds_path=str(f["cli_vsock"])), cfg["vsock"]
    # The option's balloon replaces the file's whole.
    assert cfg["balloon"]["amount_mib"] == 48, cfg["balloon"]
    assert cfg["balloon"]["deflate_on_oom"] is False, cfg["balloon"]
    assert cfg["balloon"].get("stats_polling_interval_s", 0) == 0, cfg["balloon"]
    # Every VM option applies over the file, --cpu-quota too.
    assert cfg["machine-config"]["vcpu_count"] == 1, cfg["machine-config"]
    assert cfg["machine-config"].get("cpu_quota") == 1.0, cfg["machine-config"]


def test_guest_sees_both_disks_nics_and_shares(merged):
    head = "dd if=/dev/{} bs=4096 count=1 iflag=direct 2>/dev/null | head -c 4"
    assert merged.run(head.format("vda")) == "AAAA"
    assert merged.run(head.format("vdb")) == "BBBB"
    merged.run("ip link show eth0 && ip link show eth1")
    assert merged.run("cat /mnt/cli/note.txt") == "from the command line's share"
    merged.run("test -x /mnt/cfg/vsock_tool")


def test_vsock_is_the_command_lines(merged):
    """The guest connects to the host (CID 2) through the command line's
    vsock device; the config file's socket was never made."""
    f = merged.files
    assert not f["file_vsock"].exists(), "the config file's vsock socket exists: it was not replaced"
    port = 5100
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(f"{f['cli_vsock']}_{port}")
    srv.listen(1)
    got = {}

    def take():
        srv.settimeout(60)
        c, _ = srv.accept()
        c.settimeout(60)
        data = b""
        while chunk := c.recv(65536):
            data += chunk
        got["data"] = data
        c.close()
    th = threading.Thread(target=take)
    th.start()
    merged.run(f"echo over-the-merged-vsock | /mnt/cfg/vsock_tool send 2 {port}", timeout=120)
    th.join(60)
    srv.close()
    assert got.get("data") == b"over-the-merged-vsock\n", got


def test_balloon_is_the_command_lines(merged):
    api = merged.files["api"]
    actual = wait_for(lambda: get(api, "/balloon")["actual_mib"] >= 48, 60, 1)
    assert actual, f"the balloon did not inflate to the command line's 48 MiB: {get(api, '/balloon')}"
    assert merged.poweroff() == 0
