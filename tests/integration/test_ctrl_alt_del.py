"""SendCtrlAltDel through the per-VM API, as a Firecracker user sends it.

skiff's board has no i8042, so the action presses Ctrl+Alt+Del on a
virtio-input keyboard (src/virtio/input.c). Linux's VT keyboard handler turns
the keys into ctrl_alt_del(); busybox init has turned the kernel's own
Ctrl+Alt+Del reboot off, so the kernel signals init, which runs the inittab's
`ctrlaltdel` action: in the default guest a clean poweroff. The checks:

- the guest's driver sees the keyboard as configured (name, bus and ids in
  /proc/bus/input/devices, and the VT keyboard handler bound to it);
- `PUT /actions {"action_type": "SendCtrlAltDel"}` answers 204, the guest
  runs its shutdown and powers off, and the VMM exits with status 0 and
  removes its socket;
- keys sent while the VM is paused wait, and are acted on after resume;
- a guest that never loaded the virtio-input driver gets a 400 that says
  the guest cannot be asked, and keeps running.

The VMM process is driven exactly as in test_api.py (whose helpers are used
here): `skiff run --api-sock PATH`, curl on the socket, the console on the
process's stdout and stdin.
"""
import os
import re
import time

from conftest import BOOT_TIMEOUT, READY
from test_api import curl, fails, get, guest_instructions, ok, wait_socket  # noqa: F401 (helpers)
from test_api import short_tmp, vmm_factory  # noqa: F401 (fixtures, named by NAME_PREFIX)

# How long the guest may take from the keys to the VMM's exit.
SHUTDOWN_TIMEOUT = 120
# The fixtures' socket directories and console logs: /tmp/skiff-cad-*, cad-NAME.log.
NAME_PREFIX = "cad"


def configure_and_start(sock, guest, vcpus, boot_args="console=ttyS0", metrics=None):
    ok(sock, "PUT", "/boot-source", {"kernel_image_path": str(guest.kernel),
                                     "initrd_path": str(guest.initrd),
                                     "boot_args": boot_args})
    ok(sock, "PUT", "/machine-config", {"vcpu_count": vcpus, "mem_size_mib": 256})
    if metrics:
        ok(sock, "PUT", "/metrics", {"metrics_path": str(metrics)})
    ok(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
    assert get(sock, "/")["state"] == "Running"


def test_send_ctrl_alt_del_powers_off(vmm_factory, default_guest, short_tmp):
    sock = short_tmp / "cad.sock"
    metrics = short_tmp / "metrics.json"
    v = vmm_factory("poweroff", "--api-sock", sock)
    wait_socket(v, sock)
    configure_and_start(sock, default_guest, 2, metrics=metrics)
    v.wait_output(re.escape(READY), BOOT_TIMEOUT, what=f"'{READY}' on the console")
    v.wait_output(r"# ", 60, what="the shell prompt")

    # The guest's virtio-input driver found the keyboard, with the identity
    # the config space gives, and the VT keyboard handler took it.
    mark = len(v.output())
    v.type("cat /proc/bus/input/devices; echo INPUT_$((40+2))\n")
    v.wait_output(r"INPUT_42", 60, start=mark, what="the input device list")
    devs = v.output()[mark:]
    assert 'N: Name="skiff keyboard"' in devs, devs
    assert re.search(r"I: Bus=0006 Vendor=736b Product=0001 Version=0001", devs), devs
    assert re.search(r"H: Handlers=[^\r\n]*\bkbd\b", devs), devs

    # Paused: the keys wait in the device; the guest's harts retire no
    # instruction (the VMM's counters), so nothing happens in the guest.
    ok(sock, "PATCH", "/vm", {"state": "Paused"})
    mark = len(v.output())
    code, _, raw = curl(sock, "PUT", "/actions", '{"action_type":"SendCtrlAltDel"}')
    assert code == 204 and raw == "", f"SendCtrlAltDel while paused: {code} {raw}"
    first = guest_instructions(sock, metrics)
    time.sleep(1)
    assert guest_instructions(sock, metrics) == first, "the guest's harts ran while paused"
    assert v.p.poll() is None, f"the VMM exited while paused:\n{v.stderr()}"
    assert "going down" not in v.output()[mark:], v.tail()
    ok(sock, "PATCH", "/vm", {"state": "Resumed"})

    # Resumed: the guest reads the keys, init runs the ctrlaltdel action
    # (poweroff), the guest powers off and the VMM ends cleanly.
    status = v.wait_exit(SHUTDOWN_TIMEOUT)
    out = v.output()[mark:]
    assert status == 0, f"skiff exited with {status}\n--- stderr ---\n{v.stderr()}\n--- console ---\n{out[-3000:]}"
    assert "The system is going down NOW!" in out, out[-3000:]
    assert re.search(r"reboot: Power down", out), out[-3000:]
    assert "reboot: Restarting" not in out, "Ctrl+Alt+Del rebooted instead of shutting down"
    assert not os.path.exists(sock), "the socket file was left behind"


def test_send_ctrl_alt_del_straight_away(vmm_factory, default_guest, short_tmp):
    """The Firecracker sequence with nothing in between: boot, wait for the
    guest, SendCtrlAltDel, exit."""
    sock = short_tmp / "cad2.sock"
    v = vmm_factory("straight", "--api-sock", sock)
    wait_socket(v, sock)
    configure_and_start(sock, default_guest, 1)
    v.wait_output(re.escape(READY), BOOT_TIMEOUT, what=f"'{READY}' on the console")
    v.wait_output(r"# ", 60, what="the shell prompt")
    mark = len(v.output())
    ok(sock, "PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    assert v.wait_exit(SHUTDOWN_TIMEOUT) == 0, v.stderr()
    out = v.output()[mark:]
    assert "The system is going down NOW!" in out and "reboot: Power down" in out, out[-3000:]


def test_send_ctrl_alt_del_without_driver(vmm_factory, default_guest, short_tmp):
    """A guest whose init is a bare shell never loads virtio-input: the
    action is refused with a 400 and the guest keeps running."""
    sock = short_tmp / "cad3.sock"
    v = vmm_factory("nodriver", "--api-sock", sock)
    wait_socket(v, sock)
    configure_and_start(sock, default_guest, 1, "console=ttyS0 rdinit=/usr/bin/sh")
    v.wait_output(r"Run /usr/bin/sh as init process", BOOT_TIMEOUT, what="the kernel starting the shell")
    mark = len(v.output())
    v.type("echo SHELL_$((40+2))\n")
    v.wait_output(r"SHELL_42", 120, start=mark, what="the bare shell answering")

    msg = fails(sock, "PUT", "/actions", {"action_type": "SendCtrlAltDel"},
                "SendCtrlAltDel", "cannot ask the guest to shut down")
    assert "virtio-input" in msg or "No such device" in msg, msg
    assert v.p.poll() is None, v.stderr()
    mark = len(v.output())
    v.type("echo STILL_$((40+2))\n")
    v.wait_output(r"STILL_42", 60, start=mark, what="the shell after the refused action")
    assert get(sock, "/")["state"] == "Running"
    v.p.terminate()
    assert v.wait_exit(30) == 0
