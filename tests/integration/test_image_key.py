"""The guest image's key (guest/build-image.sh's manifest): what decides
whether a built image is current.

A profile's own settings are in its key, as they stand after it and the
profiles it sources ran; the other files in guest/profiles/ are not, so a
new profile (bench/wide.py's bench-wide) leaves every other cache's default
image current instead of making it rebuild.

Runs the builder's --print-manifest on a copy of guest/ with the package
lists guest/build-image.sh left in the user's cache (--offline: no network,
no build; a few seconds).
"""
import os
import shutil
import subprocess

from conftest import REPO_ROOT


def manifest(guest, profile):
    r = subprocess.run([str(guest / "build-image.sh"), "--offline", "--print-manifest",
                        "--profile", profile], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_key_is_the_profile_not_the_directory(tmp_path, default_guest):
    # The agent's sources outside guest/ are part of the key: copy them along.
    guest = tmp_path / "guest"
    shutil.copytree(os.path.join(REPO_ROOT, "guest"), guest, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(REPO_ROOT, "src", "base"), tmp_path / "src" / "base")
    profiles = guest / "profiles"
    (profiles / "child.conf").write_text('. "$(dirname "${BASH_SOURCE[0]}")/default.conf"\n')
    default, child = manifest(guest, "default"), manifest(guest, "child")
    assert "settings-sha256 " in default

    # Another profile, and a comment in this one's file: nothing to rebuild.
    (profiles / "zz-new.conf").write_text('. "$(dirname "${BASH_SOURCE[0]}")/default.conf"\n'
                                          "PACKAGES+=(strace)\n")
    with open(profiles / "default.conf", "a") as f:
        f.write("# a comment\n")
    assert manifest(guest, "default") == default
    assert manifest(guest, "child") == child

    # A setting the manifest shows nowhere else: both the profile that says
    # it and the one that sources it are stale.
    with open(profiles / "default.conf", "a") as f:
        f.write("PRUNE+=(usr/share/zz)\n")
    assert manifest(guest, "default") != default
    assert manifest(guest, "child") != child
