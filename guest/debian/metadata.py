#!/usr/bin/python3
"""Writes image.json, the metadata of a skiff system image (guest/debian/
create.sh, step 8), into the image directory DIR, which already holds
disk.qcow2, Image and initrd.cpio.gz.  The package list ("name version", one
a line, in installation order) comes on standard input.

`skiff image ls`, `skiff run --image` and `skiff create --image` read it:

  format        "skiff-image 1"
  name, suite, codename, archive      what the image was made from
  disk, disk_format, size             the qcow2 file and its virtual size
  kernel, initrd, cmdline             how to boot it (files beside image.json)
  kernel_release, packages            the kernel and every package installed
  ssh_key       the public key authorised for root (its file name) or null
  created       creation date, UTC, ISO 8601
  create_seconds   how long the creation took
  sha256        of disk.qcow2, Image and initrd.cpio.gz as created (the disk
                changes once the image is booted without --ephemeral)

usage: metadata.py DIR --name N --suite S --codename C --archive URI
                   --kernel-release R --size BYTES --minimal yes|no
                   --ssh-key FILE --seconds N < packages
"""
import argparse
import datetime
import hashlib
import json
import os
import sys

# systemd.firstboot=off: no questions (locale, time zone, root password) on
# the console at a VM's first boot.
CMDLINE = "console=ttyS0 root=/dev/vda rw quiet systemd.firstboot=off"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    for opt in ("name", "suite", "codename", "archive", "kernel-release", "minimal", "ssh-key"):
        ap.add_argument("--" + opt, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--seconds", type=int, required=True)
    a = ap.parse_args(argv)
    packages = []
    for line in sys.stdin.read().splitlines():
        words = line.split()
        if len(words) == 2:
            packages.append({"name": words[0], "version": words[1]})
    files = {"disk": "disk.qcow2", "kernel": "Image", "initrd": "initrd.cpio.gz"}
    for f in files.values():
        if not os.path.isfile(os.path.join(a.dir, f)):
            print(f"metadata.py: {f} is missing in {a.dir}", file=sys.stderr)
            return 1
    meta = {
        "format": "skiff-image 1",
        "name": a.name,
        "suite": a.suite,
        "codename": a.codename,
        "archive": a.archive,
        "minimal": a.minimal == "yes",
        "disk": files["disk"],
        "disk_format": "qcow2",
        "size": a.size,
        "kernel": files["kernel"],
        "initrd": files["initrd"],
        "cmdline": CMDLINE,
        "kernel_release": a.kernel_release,
        "packages": packages,
        "ssh_key": os.path.basename(a.ssh_key) if a.ssh_key else None,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "create_seconds": a.seconds,
        "sha256": {f: sha256(os.path.join(a.dir, f)) for f in files.values()},
    }
    tmp = os.path.join(a.dir, ".image.json.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    os.replace(tmp, os.path.join(a.dir, "image.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
