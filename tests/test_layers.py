"""The build's layer rule can fail: every build links each layer's objects
with nothing but the layers below it (layer-check-LAYER, top-level
meson.build; docs/architecture.md, "Layers"). Here an object that calls up
from the monitor into the VMM (vm_create) is put into layer-check-monitor's
own link command: the link must stop on that undefined reference, while the
same command without it links. So an upward call in src/monitor would stop
every build the same way."""
import os
import shlex
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, os.environ.get("SKIFF_BUILD", "build"))

UPCALL = """
/* In the monitor's place: a call up into the VMM. */
struct vm;
struct vm *vm_create(const void *cfg, const void *console, char *err, unsigned long errlen);
void *layer_test_upcall(void) { return vm_create(0, 0, 0, 0); }
"""


def link_command(layer):
    r = subprocess.run(["ninja", "-C", BUILD, "-t", "commands", f"layer-check-{layer}"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    args = shlex.split(r.stdout.strip().splitlines()[-1])
    assert "-o" in args, args
    return args


def relink(args, out, extra=()):
    a = list(args)
    a[a.index("-o") + 1] = str(out)
    return subprocess.run(a + list(extra), cwd=BUILD, capture_output=True, text=True)


def test_upward_call_fails_to_link(tmp_path):
    if not os.path.exists(os.path.join(BUILD, "build.ninja")):
        pytest.fail(f"no build in {BUILD}", pytrace=False)
    args = link_command("monitor")
    ok = relink(args, tmp_path / "plain")
    assert ok.returncode == 0, "layer-check-monitor's own link failed:\n" + ok.stderr
    src = tmp_path / "upcall.c"
    src.write_text(UPCALL)
    obj = tmp_path / "upcall.o"
    subprocess.run([args[0], "-c", str(src), "-o", str(obj)], check=True)
    # Linked whole, like the layer's own objects.
    bad = relink(args, tmp_path / "with-upcall",
                 ["-Wl,--whole-archive", str(obj), "-Wl,--no-whole-archive"])
    assert bad.returncode != 0, "a call from the monitor up into the VMM linked"
    assert "undefined reference to `vm_create'" in bad.stderr, bad.stderr
