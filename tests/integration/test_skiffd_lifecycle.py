"""skiffd and the `skiff` VM commands through a VM's whole life, with tiny
hand-made guests (rvimage.py) instead of Linux, so each start takes well
under a second: one that spins forever, one that echoes its UART.

- a definition whose kernel is not a RISC-V Image is refused when it is
  created (so one that is accepted boots: the spinning one starts);
- `skiff create --start` through a `--vmm` wrapper (which logs that it ran),
  `pause` (the process stops using CPU) and `resume` (it uses CPU again),
  `kill`, `start`, `stop` on a guest that cannot be asked (exit status 2,
  said on stderr), `rm` refused while running, `rm -f`, and DELETE of a
  running VM through the API;
- a second `skiff console` takes the console over from the first;
- a second skiffd on the same state directory is refused (its lock);
- after a restart, a pid file naming a live process that is not the VM
  (a reused PID: wrong start time, or the right one but another program)
  is not adopted, and that process is left alone;
- a VMM that does not answer (stopped with SIGSTOP) is listed as
  `unresponsive`, and as running again once it continues; skiffd ends on
  SIGTERM while a call it passed to such a VMM waits (the call is told);
- DELETE of a VM while its start is under way, and while skiffd waits for
  its snapshot;
- a PATCH /drives swap passed through to a running VM is kept in its
  definition: a restarted skiffd lists the new file, and the VM's next
  start opens it (not the old one).

The helpers are test_skiffd.py's (as test_ctrl_alt_del.py uses test_api.py's).
"""
import json
import os
import signal
import subprocess
import time

import pexpect
import pytest

import rvimage
from conftest import wait_for
from test_skiffd import (action, console_log, curl, daemons, fails, for_vmm, get, ok,  # noqa: F401
                         pid_alive, short_root, skiff, skiffd_bin)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-guests")
    imgs = {"spin": rvimage.image(rvimage.prog_spin()),
            "echo": rvimage.image(rvimage.prog_uart_echo()),
            "zeros": bytes(4096)}
    for name, blob in imgs.items():
        (d / name).write_bytes(blob)
    return {name: d / name for name in imgs}


def tiny_def(vm_id, kernel, **extra):
    d = {"id": vm_id, "boot-source": {"kernel_image_path": str(kernel)},
         "machine-config": {"vcpu_count": 1, "mem_size_mib": 128}}
    d.update(extra)
    return d


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (/proc/PID/stat fields 14, 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_over(pid, seconds):
    """Host CPU seconds the process uses over a window of `seconds`."""
    t0 = cpu_seconds(pid)
    time.sleep(seconds)
    return cpu_seconds(pid) - t0


def state(d, vm):
    return get(d.sock, f"/vms/{vm}")["state"]


def test_a_kernel_that_is_not_an_image_is_refused_at_create(daemons, short_root, images, skiff_bin):
    d = daemons(short_root)
    zeros = str(images["zeros"])
    msg = fails(d.sock, "POST", "/vms", tiny_def("z", images["zeros"]),
                "boot-source.kernel_image_path", zeros, "not a RISC-V Image")
    r = skiff(skiff_bin, d, "create", "--kernel", zeros, check=False)
    assert r.returncode == 1 and "not a RISC-V Image" in r.stderr and zeros in r.stderr, r.stderr
    assert get(d.sock, "/vms") == [], msg
    # What is accepted starts.
    ok(d.sock, "POST", "/vms", tiny_def("s", images["spin"]), status=201)
    action(d.sock, "s", "InstanceStart")
    assert state(d, "s") == "running"
    action(d.sock, "s", "InstanceStop")


def test_lifecycle_through_the_cli(daemons, short_root, images, skiff_bin):
    log = short_root / "vmm-wrapper.log"
    wrapper = short_root / "vmm-wrapper"
    wrapper.write_text(f"#!/bin/sh\necho \"$*\" >> {log}\nexec {skiff_bin} \"$@\"\n")
    wrapper.chmod(0o755)
    d = daemons(short_root, extra=["--vmm", wrapper])

    vm = skiff(skiff_bin, d, "create", "--name", "life", "--kernel", images["spin"], "--mem", "128M",
               "--start").stdout.strip()
    st = get(d.sock, "/vms/life")
    assert st["id"] == vm and st["state"] == "running" and pid_alive(st["pid"]), st
    pid = st["pid"]
    # --vmm: skiffd ran the wrapper, which ran skiff.
    assert log.read_text().startswith(f"run --id {vm} "), log.read_text()

    # pause: the spinning hart stops, so the process all but stops using
    # CPU; resume: it spins (uses CPU) again.
    skiff(skiff_bin, d, "pause", "life")
    assert state(d, "life") == "paused" and get(d.sock, "/vms/life/")["state"] == "Paused"
    paused = cpu_over(pid, 2.0)
    assert paused < 0.1, f"the paused VM used {paused:.2f} s of host CPU in 2 s"
    skiff(skiff_bin, d, "resume", "life")
    assert state(d, "life") == "running"
    t0 = cpu_seconds(pid)
    assert wait_for(lambda: cpu_seconds(pid) - t0 >= 0.5, 30, 0.1), \
        f"the resumed VM used only {cpu_seconds(pid) - t0:.2f} s of host CPU in 30 s"

    # kill: at once; skiffd records that it stopped it.
    skiff(skiff_bin, d, "kill", "life")
    st = get(d.sock, "/vms/life")
    assert st["state"] == "stopped" and st["last_exit"]["stopped"] and not pid_alive(pid), st

    # start again: a new process.
    skiff(skiff_bin, d, "start", "life")
    st = get(d.sock, "/vms/life")
    assert st["state"] == "running" and st["pid"] != pid and pid_alive(st["pid"]), st
    pid = st["pid"]
    assert log.read_text().count(f"run --id {vm} ") == 2

    # stop: this guest has no keyboard driver, so it cannot be asked to
    # shut down; skiff says so, stops it at once and exits 2.
    r = skiff(skiff_bin, d, "stop", "-t", "5", "life", check=False)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "life: the guest cannot be asked to shut down" in r.stderr and "stopping it at once" in r.stderr, \
        r.stderr
    st = get(d.sock, "/vms/life")
    assert st["state"] == "stopped" and st["last_exit"]["stopped"] and not pid_alive(pid), st

    # rm: refused while running; rm -f stops it first.
    skiff(skiff_bin, d, "start", "life")
    pid = get(d.sock, "/vms/life")["pid"]
    r = skiff(skiff_bin, d, "rm", "life", check=False)
    assert r.returncode == 1 and "stop it first" in r.stderr, r.stderr
    assert state(d, "life") == "running"
    skiff(skiff_bin, d, "rm", "-f", "life")
    assert get(d.sock, "/vms") == [] and not (d.state / "vms" / vm).exists()
    deadline = time.monotonic() + 15
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid), "rm -f left the VM's process running"

    # DELETE of a running VM through the API stops and removes it.
    ok(d.sock, "POST", "/vms", tiny_def("gone", images["spin"]), status=201)
    action(d.sock, "gone", "InstanceStart")
    pid = get(d.sock, "/vms/gone")["pid"]
    ok(d.sock, "DELETE", "/vms/gone")
    assert get(d.sock, "/vms") == [] and not (d.state / "vms" / "gone").exists()
    deadline = time.monotonic() + 15
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid), "DELETE left the VM's process running"


def test_second_console_takes_over(daemons, short_root, images, skiff_bin):
    d = daemons(short_root)
    ok(d.sock, "POST", "/vms", tiny_def("echo", images["echo"]), status=201)
    action(d.sock, "echo", "InstanceStart")
    env = dict(os.environ, SKIFF_SOCKET=str(d.sock))
    first = pexpect.spawn(skiff_bin, ["console", "echo"], env=env, encoding="utf-8",
                          codec_errors="replace", timeout=30)
    second = None
    try:
        first.expect_exact("attached to echo")
        first.send("first-client-says")
        first.expect_exact("first-client-says")          # the guest echoed it
        second = pexpect.spawn(skiff_bin, ["console", "echo"], env=env, encoding="utf-8",
                               codec_errors="replace", timeout=30)
        second.expect_exact("attached to echo")
        first.expect_exact("another console client attached")
        first.expect(pexpect.EOF)
        second.send("second-client-says")
        second.expect_exact("second-client-says")
        second.send("\x01x")
        second.expect_exact("detached; the VM keeps running")
        second.expect(pexpect.EOF)
    finally:
        first.close(force=True)
        if second:
            second.close(force=True)
    assert first.exitstatus == 1, (first.exitstatus, first.signalstatus)
    assert second.exitstatus == 0, (second.exitstatus, second.signalstatus)
    assert state(d, "echo") == "running"
    log = console_log(d, "echo")
    assert "first-client-says" in log and "second-client-says" in log, log[-500:]
    action(d.sock, "echo", "InstanceStop")


def test_state_directory_lock(daemons, short_root, skiffd_bin):
    d = daemons(short_root)
    r = subprocess.run([skiffd_bin, "--socket", str(short_root / "other.sock"), "--state-dir", str(d.state)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "skiffd.lock" in r.stderr and "another skiffd is using this state directory" in r.stderr, r.stderr
    assert not (short_root / "other.sock").exists()
    assert get(d.sock, "/")["app_name"] == "skiffd"


def proc_starttime(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[19])


def test_reused_pid_is_not_adopted(daemons, short_root, images):
    d = daemons(short_root)
    for vm in ("a", "b"):
        ok(d.sock, "POST", "/vms", tiny_def(vm, images["spin"]), status=201)
        action(d.sock, vm, "InstanceStart")
    pids = {vm: get(d.sock, f"/vms/{vm}")["pid"] for vm in ("a", "b")}
    d.kill9()
    # Both VMs end while no skiffd watches; their pid files stay behind.
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while any(pid_alive(p) for p in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    # Another process now has a PID the files could name: `a`'s file names
    # it with the old start time, `b`'s with its own start time (only its
    # command line differs).
    other = subprocess.Popen(["sleep", "600"])
    try:
        old = (d.state / "vms" / "a" / "pid").read_text().split()
        (d.state / "vms" / "a" / "pid").write_text(f"{other.pid} {old[1]} {old[2]}\n")
        (d.state / "vms" / "b" / "pid").write_text(f"{other.pid} {proc_starttime(other.pid)} {old[2]}\n")
        d.start()
        for vm in ("a", "b"):
            st = get(d.sock, f"/vms/{vm}")
            assert st["state"] == "stopped" and st["pid"] is None, st
            assert st["last_exit"]["known"] is False, st
            assert not (d.state / "vms" / vm / "pid").exists()
        assert other.poll() is None, "skiffd did something to a process that is not its VM"
        # And they start normally.
        action(d.sock, "a", "InstanceStart")
        assert state(d, "a") == "running"
        action(d.sock, "a", "InstanceStop")
    finally:
        other.kill()
        other.wait()


def test_unresponsive_vmm(daemons, short_root, images):
    d = daemons(short_root)
    ok(d.sock, "POST", "/vms", tiny_def("stuck", images["spin"]), status=201)
    action(d.sock, "stuck", "InstanceStart")
    pid = get(d.sock, "/vms/stuck")["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        st = get(d.sock, "/vms/stuck")
        assert st["state"] == "unresponsive" and st["pid"] == pid, st
        listed = {v["id"]: v["state"] for v in get(d.sock, "/vms")}
        assert listed == {"stuck": "unresponsive"}, listed
    finally:
        os.kill(pid, signal.SIGCONT)
    assert state(d, "stuck") == "running"
    action(d.sock, "stuck", "InstanceStop")
    assert state(d, "stuck") == "stopped"


def unix_sockets_named(pid, suffix):
    """How many Unix sockets in the network namespace of process `pid` are
    bound to a path ending in `suffix` (/proc/PID/net/unix): a listener, and
    each connection made to it, accepted or still waiting in its queue."""
    with open(f"/proc/{pid}/net/unix") as f:
        return sum(1 for line in f.readlines()[1:] if line.split()[-1].endswith(suffix))


def test_skiffd_ends_while_a_proxied_call_waits(daemons, short_root, images):
    """SIGTERM ends skiffd while a request it passed to a VM waits for an
    answer that does not come (the VMM stopped with SIGSTOP; an agent call
    may wait 11 minutes): the request is answered 503, saying skiffd is
    ending, and skiffd exits; the VM keeps running."""
    d = daemons(short_root)
    ok(d.sock, "POST", "/vms", tiny_def("held", images["spin"]), status=201)
    action(d.sock, "held", "InstanceStart")
    pid = get(d.sock, "/vms/held")["pid"]
    # Only the listener is left (the VMM closes the connections of skiffd's
    # earlier probes on its own time).
    assert wait_for(lambda: unix_sockets_named(pid, "api.sock") == 1, 60, 0.05)
    os.kill(pid, signal.SIGSTOP)
    try:
        call = subprocess.Popen(["curl", "-sS", "--unix-socket", str(d.sock), "-X", "GET",
                                 "http://localhost/vms/held/agent", "-w", "\n%{http_code}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # skiffd's call to the VM's API is in its accept queue.
        assert wait_for(lambda: unix_sockets_named(pid, "api.sock") >= 2, 60, 0.05)
        d.p.send_signal(signal.SIGTERM)
        out, errs = call.communicate(timeout=120)
        text, _, code = out.rpartition("\n")
        assert code == "503" and "skiffd is ending" in text, (code, text, errs)
        assert d.p.wait(60) == 0, d.log_text()
        assert pid_alive(pid)
    finally:
        os.kill(pid, signal.SIGCONT)
    d.log.close()
    d.start()
    assert state(d, "held") == "running"
    action(d.sock, "held", "InstanceStop")


def curl_bg(sock, method, path, body=None):
    """A call left running: communicate() gives (text, status)."""
    cmd = ["curl", "-sS", "--unix-socket", str(sock), "-X", method, f"http://localhost{path}",
           "-w", "\n%{http_code}"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def answer(call, timeout=120):
    out, errs = call.communicate(timeout=timeout)
    text, _, code = out.rpartition("\n")
    return int(code or 0), text, errs


def signal_pending(pid, sig):
    """Whether `sig` waits for process `pid` (/proc/PID/status ShdPnd)."""
    with open(f"/proc/{pid}/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("ShdPnd:"))
    return bool(mask & (1 << (sig - 1)))


def test_delete_while_starting(daemons, short_root, images, skiff_bin):
    """DELETE of a VM whose start is under way (its VMM, through a --vmm
    wrapper, has not begun to serve yet): the start is told the VM was
    stopped, the DELETE succeeds, nothing of the VM is left, and skiffd
    serves on."""
    began = short_root / "began"
    wrapper = short_root / "slow-vmm"
    # Waits for a file nobody makes: only the DELETE's SIGTERM ends it.
    wrapper.write_text(f"#!/bin/sh\necho $$ > {began}\nwhile [ ! -e {short_root}/never ]; do "
                       f"sleep 0.05; done\nexec {skiff_bin} \"$@\"\n")
    wrapper.chmod(0o755)
    d = daemons(short_root, extra=["--vmm", wrapper])
    ok(d.sock, "POST", "/vms", tiny_def("slow", images["spin"]), status=201)
    start = curl_bg(d.sock, "PUT", "/vms/slow/actions", {"action_type": "InstanceStart"})
    assert wait_for(lambda: began.exists() and began.read_text().strip(), 60, 0.05)
    pid = int(began.read_text())
    ok(d.sock, "DELETE", "/vms/slow")
    code, text, errs = answer(start)
    assert code == 400 and ("stopped while it started" in text or "deleted" in text), (code, text, errs)
    assert not pid_alive(pid)
    fails(d.sock, "GET", "/vms/slow", None, "no VM with the id or name `slow`")
    assert not (d.state / "vms" / "slow").exists()
    assert get(d.sock, "/vms") == []
    # skiffd serves on: a new VM of the same id starts (through the real VMM).
    wrapper.write_text(f"#!/bin/sh\nexec {skiff_bin} \"$@\"\n")
    ok(d.sock, "POST", "/vms", tiny_def("slow", images["spin"]), status=201)
    action(d.sock, "slow", "InstanceStart")
    assert state(d, "slow") == "running", (get(d.sock, "/vms/slow").get("last_exit"), console_log(d, "slow")[-2000:], d.log_text()[-1500:])
    ok(d.sock, "DELETE", "/vms/slow")


def test_delete_while_snapshotting(daemons, short_root, images):
    """DELETE of a VM while skiffd waits for its snapshot (the VMM stopped
    with SIGSTOP and the snapshot call in its API's queue): once the VMM
    continues, the DELETE succeeds, the snapshot either finished first or
    is answered that the VM was deleted, no VMM is left and skiffd serves
    on."""
    d = daemons(short_root)
    ok(d.sock, "POST", "/vms", tiny_def("snap", images["spin"]), status=201)
    action(d.sock, "snap", "InstanceStart")
    st = get(d.sock, "/vms/snap")
    pid, outer = st["pid"], d.vm_pids()["snap"]
    assert wait_for(lambda: unix_sockets_named(pid, "api.sock") == 1, 60, 0.05)
    os.kill(pid, signal.SIGSTOP)
    try:
        snap = curl_bg(d.sock, "PUT", "/vms/snap/snapshot", {"dir": str(short_root / "s")})
        assert wait_for(lambda: unix_sockets_named(pid, "api.sock") >= 2, 60, 0.05)
        delete = curl_bg(d.sock, "DELETE", "/vms/snap")
        # The DELETE has told the VMM to end (it cannot while stopped).
        assert wait_for(lambda: signal_pending(outer, signal.SIGTERM) or
                        signal_pending(pid, signal.SIGTERM), 60, 0.05)
    finally:
        os.kill(pid, signal.SIGCONT)
    code, text, errs = answer(delete)
    assert code == 204, (code, text, errs)
    code, text, errs = answer(snap)
    assert code == 204 or (code == 400 and "deleted" in text), (code, text, errs)
    assert wait_for(lambda: not pid_alive(pid) and not pid_alive(outer), 60, 0.1)
    fails(d.sock, "GET", "/vms/snap", None, "no VM with the id or name `snap`")
    assert get(d.sock, "/vms") == []


def open_files(pid):
    """The paths a process has open (/proc/PID/fd)."""
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def test_a_drive_swapped_in_a_running_vm_stays_in_its_definition(daemons, short_root, images):
    d = daemons(short_root)
    old, new = short_root / "old.raw", short_root / "new.raw"
    old.write_bytes(b"O" * 65536)
    new.write_bytes(b"N" * 65536)
    for_vmm(old)
    for_vmm(new)
    drive = {"drive_id": "d", "path_on_host": str(old), "is_root_device": False,
             "is_read_only": False, "format": "raw"}
    ok(d.sock, "POST", "/vms", tiny_def("dr", images["spin"], drives=[drive]), status=201)
    action(d.sock, "dr", "InstanceStart")
    pid = get(d.sock, "/vms/dr")["pid"]
    assert str(old) in open_files(pid), open_files(pid)
    ok(d.sock, "PATCH", "/vms/dr/drives/d", {"drive_id": "d", "path_on_host": str(new)})
    files = open_files(pid)
    assert str(new) in files and str(old) not in files, f"the VM did not swap the file: {files}"

    def defined():
        live = get(d.sock, "/vms/dr")["config"]["drives"]
        stored = json.loads((d.state / "vms" / "dr" / "vm.json").read_text())["config"]["drives"]
        return [(e["drive_id"], e["path_on_host"]) for e in live + stored]
    assert defined() == [("d", str(new))] * 2, defined()
    # A restarted skiffd reads the definition from its state directory.
    d.kill9()
    d.start()
    assert defined() == [("d", str(new))] * 2, defined()
    # The VM's next start opens the new file.
    action(d.sock, "dr", "InstanceStop")
    action(d.sock, "dr", "InstanceStart")
    pid = get(d.sock, "/vms/dr")["pid"]
    files = open_files(pid)
    assert str(new) in files and str(old) not in files, f"the restarted VM opened {files}"
    action(d.sock, "dr", "InstanceStop")


def test_a_vmm_started_by_an_older_skiffd_is_adopted(daemons, short_root, images, skiff_bin):
    """A skiffd from before run/ put a VM's sockets beside its vm.json: a
    VMM it started is still adopted (and reached there) after an upgrade."""
    d = daemons(short_root)
    ok(d.sock, "POST", "/vms", tiny_def("old", images["spin"]), status=201)
    d.kill9()
    vdir = d.state / "vms" / "old"
    vmm = subprocess.Popen([skiff_bin, "run", "--id", "old", "--api-sock", vdir / "api.sock",
                            "--kernel", images["spin"], "--mem", "128"], start_new_session=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: (vdir / "api.sock").exists(), 30, 0.1)
        (vdir / "pid").write_text(f"{vmm.pid} {proc_starttime(vmm.pid)} {int(time.time())}\n")
        d.start()
        st = get(d.sock, "/vms/old")
        assert st["state"] == "running" and st["pid"] == vmm.pid, st
        assert get(d.sock, "/vms/old/")["state"] == "Running"
        assert "started by an older skiffd" in d.log_text()
        action(d.sock, "old", "InstanceStop")
        assert vmm.wait(15) is not None and not (vdir / "api.sock").exists()
    finally:
        vmm.kill()
        vmm.wait()
