"""The guest CPU workloads, as shell command lines for busybox sh.

The same command lines run inside the guest (busybox-static from the guest
image) and natively on the host (Debian's busybox package), so "native" is
the same program doing the same work on the physical CPU.  Every tool is
called as `busybox APPLET`, so neither side picks up another implementation.

Times come from the clock of the machine the command runs on: /proc/uptime
read just before and just after the command (10 ms resolution, which is
plenty for workloads that take seconds).  In a guest that is the guest's own
clock, as a person timing a command inside the VM would see it.

Test data is generated inside the guest (no disk or shared folder needed):
a seeded busybox awk writes a block (~270 KB for 32 MiB) of English-like words and
numbers, and the data file is that block repeated with a different letter
and digit rotation (busybox tr) in every copy, cut to the requested size.
It is deterministic (the same bytes everywhere, checked by its SHA-256), it
compresses like text (about 2.6:1 with gzip -9), and no two copies are
equal, so bzip2's 900 KB blocks cannot shortcut on repeats.
"""

WORDS = (
    "the of and to in is was that for it with as his on be at by had are but from or "
    "have an they which one you were all we her she there would their will when who "
    "him been has more if no out so said what up its about than into them can only "
    "other time new some could these two may first then do any like my now over such "
    "our man me even most made after also did many before must through back years "
    "where much your way well down should because each just those people how too "
    "little state good very make world still see own men work long get here between "
    "both life being under never day same another know while last us might great old "
    "year off come since against go came right used take three"
)

SEED_MAX = 270000       # largest seed block; 130 distinct rotations of it cover 33 MiB
SEED_MIN = 16384


def gen_data(d, size):
    """Shell command: write `size` bytes of test data to d/data.  The seed
    is 1/32 of the data, at least 16 KiB, at most 270000 bytes (so small
    data sets, as in --quick, are quick to make)."""
    seed = min(SEED_MAX, max(SEED_MIN, -(-size // 32)))
    copies = -(-size // seed)
    if copies > 130:    # lcm(26, 10): the number of distinct rotations
        raise ValueError(f"data size {size} too large (at most {130 * SEED_MAX} bytes)")
    awk = ("BEGIN { srand(7); n = split(\"%s\", w, \" \"); "
           "while (b < %d) { l = \"\"; for (j = 0; j < 9; j++) l = l w[int(rand()*n)+1] \" \"; "
           "l = l int(rand()*1000000); print l; b += length(l) + 1 } }") % (WORDS, seed)
    return (f"mkdir -p {d} && busybox awk '{awk}' > {d}/seed && "
            f"a=abcdefghijklmnopqrstuvwxyz; g=0123456789; i=0; "
            f"while [ $i -lt {copies} ]; do k=$((i%26)); m=$((i%10)); "
            f"busybox tr \"a-z0-9\" \"${{a:k}}${{a:0:k}}${{g:m}}${{g:0:m}}\" < {d}/seed; i=$((i+1)); done "
            f"| busybox head -c {size} > {d}/data && busybox rm {d}/seed")


def timed(cmd):
    """Wrap a command so it prints '@@T <uptime before> <uptime after> <status>'."""
    return ("read _t0 _x </proc/uptime; " + cmd +
            "; _rc=$?; read _t1 _x </proc/uptime; echo \"@@T $_t0 $_t1 $_rc\"")


def parse_timed(out):
    """(seconds, exit status, the rest of the output) from a timed() run."""
    for line in out.splitlines():
        if line.startswith("@@T "):
            t0, t1, rc = line.split()[1:4]
            rest = out.replace(line, "").strip()
            return float(t1) - float(t0), int(rc), rest
    raise ValueError(f"no timing line in output: {out[-300:]!r}")


class Workload:
    """One timed command and an optional untimed check that prints a value
    which must be the same on every system (output size, digest, result).

    passes > 1 runs the command that many times back to back inside one
    timed sample (cmd), so that a short workload's sample is seconds
    of host CPU rather than a fraction of one; the rows divide the sample by
    passes, so the table still shows one pass."""

    def __init__(self, key, label, cmd, check=None, passes=1):
        self.key = key
        self.label = label
        self.one = cmd          # function d -> shell command of one pass
        self.check = check      # function d -> shell command printing one value
        self.passes = passes

    def cmd(self, d):
        """The timed shell command: `passes` passes of the workload."""
        if self.passes == 1:
            return self.one(d)
        return (f"_p=0; while [ $_p -lt {self.passes} ]; do {self.one(d)} || break; "
                f"_p=$((_p+1)); done; [ $_p -eq {self.passes} ]")


def cpu_workloads(awk_steps):
    """The Guest CPU row's workloads.  sha256sum (0.2 s natively, under
    1 s in skiff) and the awk loop run several passes per sample so that
    every sample is seconds of host CPU on each side."""
    return [
        Workload("gzip", "busybox gzip -9",
                 lambda d: f"busybox gzip -9 -c {d}/data > {d}/out",
                 lambda d: f"busybox wc -c < {d}/out; busybox rm -f {d}/out"),
        Workload("sha256", "busybox sha256sum",
                 lambda d: f"busybox sha256sum {d}/data > {d}/out",
                 lambda d: f"busybox cut -d' ' -f1 {d}/out; busybox rm -f {d}/out", passes=4),
        Workload("bzip2", "busybox bzip2 -9",
                 lambda d: f"busybox bzip2 -9 -c {d}/data > {d}/out",
                 lambda d: f"busybox wc -c < {d}/out; busybox rm -f {d}/out"),
        # Midpoint rule for the integral of 4/(1+x^2) over [0,1] (= pi): awk
        # does all arithmetic in double precision.  Only + - * / are used;
        # Debian's host busybox is built without awk's libm functions.
        Workload("awk_fp", f"busybox awk FP ({awk_steps} steps, pi by midpoint rule)",
                 lambda d: ("busybox awk 'BEGIN { n = %d; h = 1 / n; s = 0; "
                            "for (i = 0; i < n; i++) { x = (i + 0.5) * h; s += 4 / (1 + x * x) } "
                            "printf \"%%.12f\\n\", s * h }' > %s/out") % (awk_steps, d),
                 lambda d: f"busybox cat {d}/out; busybox rm -f {d}/out", passes=2),
    ]


def parallel_sha256(jobs):
    """`jobs` sha256sum processes over the same file at once; the check is
    the number of distinct digests (must be 1) and the digest."""
    return Workload(
        f"sha256x{jobs}", f"{jobs} parallel busybox sha256sum",
        lambda d: (f"i=0; while [ $i -lt {jobs} ]; do busybox sha256sum {d}/data > {d}/par.$i & "
                   f"i=$((i+1)); done; wait"),
        lambda d: (f"busybox cat {d}/par.* | busybox cut -d' ' -f1 | busybox sort -u | "
                   f"busybox tr '\\n' ' '; busybox rm -f {d}/par.*"))
