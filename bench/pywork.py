"""A pure-Python CPU workload for the bench's python row (bench/python_row.py).

Usage: python3 pywork.py ROUNDS [REPEAT]

Does ROUNDS rounds of fixed work, REPEAT times over (default 1), and prints
"pywork ROUNDS REPEAT CHECKSUM": the checksum of one pass of ROUNDS rounds,
the same on every system and every Python 3 (each repeat must give the same
one, or the script exits with status 1).  The work is what a bytecode
interpreter spends its time on in ordinary programs: many small function
and method calls, a small class hierarchy with overridden methods, dict and
list building and lookups, string slicing, joining, splitting and
formatting, integer and float arithmetic, sorting with and without key
functions, and a generator.  It imports nothing, so Debian's python3-minimal
is enough; nothing depends on hash order (no iteration over sets of strings)
and floats only pass through + - * / (no libm), so the checksum does not
depend on the host or the interpreter build.
"""

import sys

MASK = (1 << 64) - 1


class Rng:
    """A 64-bit linear congruential generator (Knuth's MMIX constants)."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK
        return self.state >> 33

    def below(self, n):
        return self.next() % n


# ------------------------------------------------------------------ shapes
class Shape:
    sides = 0

    def __init__(self, name):
        self.name = name

    def area(self):
        raise NotImplementedError

    def perimeter(self):
        raise NotImplementedError

    def describe(self):
        return f"{self.name}:{self.sides}:{self.area():.3f}"


class Rect(Shape):
    sides = 4

    def __init__(self, name, w, h):
        super().__init__(name)
        self.w = w
        self.h = h

    def area(self):
        return self.w * self.h

    def perimeter(self):
        return 2.0 * (self.w + self.h)


class Square(Rect):
    def __init__(self, name, s):
        super().__init__(name, s, s)

    def describe(self):
        return "sq-" + super().describe()


class Triangle(Shape):
    sides = 3

    def __init__(self, name, a, b, c):
        super().__init__(name)
        self.a, self.b, self.c = a, b, c

    def perimeter(self):
        return self.a + self.b + self.c

    def area(self):
        # Heron's formula squared: no square root (no libm).
        s = self.perimeter() / 2.0
        return s * (s - self.a) * (s - self.b) * (s - self.c)


class Ellipse(Shape):
    PI = 3.141592653589793

    def __init__(self, name, a, b):
        super().__init__(name)
        self.a, self.b = a, b

    def area(self):
        return self.PI * self.a * self.b

    def perimeter(self):
        # Ramanujan's first approximation without its square root.
        return self.PI * (3.0 * (self.a + self.b) - (self.a + 3.0 * self.b) * 0.5)


def make_shape(rng, i):
    kind = rng.below(4)
    x = 1.0 + rng.below(1000) / 37.0
    y = 1.0 + rng.below(1000) / 53.0
    if kind == 0:
        return Rect(f"r{i}", x, y)
    if kind == 1:
        return Square(f"s{i}", x)
    if kind == 2:
        a, b = min(x, y), max(x, y)
        return Triangle(f"t{i}", a, b, (a + b) * 0.75)
    return Ellipse(f"e{i}", x, y)


def shapes_part(rng):
    shapes = [make_shape(rng, i) for i in range(300)]
    shapes.sort(key=lambda s: (s.sides, s.area()))
    total = 0.0
    for s in shapes:
        total += s.area() - s.perimeter() * 0.5
    names = [s.describe() for s in shapes[::17]]
    return int(total * 1000.0) & MASK, "|".join(names)


# ------------------------------------------------------------------ words
LETTERS = "etaoinshrdlucmfwypvbgkjqxz"


def make_word(rng):
    n = 2 + rng.below(7)
    return "".join(LETTERS[rng.below(26) // (1 + rng.below(3))] for _ in range(n))


def words_part(rng):
    text = " ".join(make_word(rng) for _ in range(1500))
    counts = {}
    for w in text.split():
        counts[w] = counts.get(w, 0) + 1
    by_len = {}
    for w in counts:
        by_len.setdefault(len(w), []).append(w)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    line = ",".join(f"{w}={c}" for w, c in top)
    caps = text[:400].title().replace(" ", "").swapcase()
    vowels = sum(1 for ch in text if ch in "aeiou")
    h = 0
    for k in sorted(by_len):
        h = (h * 31 + k * len(by_len[k])) & MASK
    return h ^ vowels ^ len(counts), line + caps[:40]


# ------------------------------------------------------------------ integers
def gcd(a, b):
    return a if b == 0 else gcd(b, a % b)


def collatz(n):
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def primes_below(n):
    sieve = [True] * n
    sieve[0] = sieve[1] = False
    i = 2
    while i * i < n:
        if sieve[i]:
            sieve[i * i::i] = [False] * len(range(i * i, n, i))
        i += 1
    return [i for i, p in enumerate(sieve) if p]


def ints_part(rng):
    h = 0
    for _ in range(200):
        a, b = rng.next(), rng.next()
        h = (h * 1000003 + gcd(a, b) + collatz(1 + (a & 1023))) & MASK
    h ^= fib(16)
    ps = primes_below(4000)
    h = (h + sum(ps[::7]) * len(ps)) & MASK
    big = 1
    for p in ps[:60]:
        big *= p
    return (h ^ (big % 1000000007) ^ (big >> 300)) & MASK


# ------------------------------------------------------------------ floats
def floats_part(rng):
    # A few steps of the Mandelbrot iteration over a small grid, and a
    # Horner polynomial: plain double arithmetic.
    inside = 0
    for iy in range(24):
        ci = -1.2 + iy * 0.1
        for ix in range(32):
            cr = -2.0 + ix * 0.08
            zr = zi = 0.0
            n = 0
            while n < 40 and zr * zr + zi * zi <= 4.0:
                zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci
                n += 1
            inside += n
    coeffs = [rng.below(100) / 7.0 - 7.0 for _ in range(12)]
    acc = 0.0
    for k in range(400):
        x = k / 400.0
        y = 0.0
        for c in coeffs:
            y = y * x + c
        acc += y
    return (inside * 65537 + int(acc * 1e6)) & MASK


# ------------------------------------------------------------------ records
def records(rng, n):
    """A generator of small dict records, as parsed data would look."""
    for i in range(n):
        yield {"id": i, "group": "g" + str(rng.below(12)), "score": rng.below(10000),
               "tags": [LETTERS[rng.below(26)] for _ in range(rng.below(4))]}


def records_part(rng):
    groups = {}
    for r in records(rng, 800):
        g = groups.setdefault(r["group"], {"n": 0, "sum": 0, "tags": []})
        g["n"] += 1
        g["sum"] += r["score"]
        g["tags"].extend(r["tags"])
    rows = sorted(((k, v["n"], v["sum"] // v["n"], "".join(sorted(v["tags"]))[:8])
                   for k, v in groups.items()), key=lambda t: (t[2], t[0]))
    return "/".join(f"{k}:{n}:{avg}:{t}" for k, n, avg, t in rows)


# ------------------------------------------------------------------ driver
def one_round(i):
    rng = Rng(1 + i)
    h = 0
    sh, names = shapes_part(rng)
    wh, wline = words_part(rng)
    strs = [names, wline, records_part(rng)]
    for v in (sh, wh, ints_part(rng), floats_part(rng)):
        h = ((h ^ v) * 0x100000001B3) & MASK
    for s in strs:
        for ch in s:
            h = ((h ^ ord(ch)) * 0x100000001B3) & MASK
    return h


def run(rounds):
    h = 0xCBF29CE484222325
    for i in range(rounds):
        h = ((h ^ one_round(i)) * 0x100000001B3) & MASK
    return h


def main(argv):
    if len(argv) not in (2, 3) or not all(a.isdigit() and int(a) > 0 for a in argv[1:]):
        print("usage: pywork.py ROUNDS [REPEAT]", file=sys.stderr)
        return 2
    rounds = int(argv[1])
    repeat = int(argv[2]) if len(argv) == 3 else 1
    first = run(rounds)
    for _ in range(repeat - 1):
        if run(rounds) != first:
            print("pywork: a repeat gave another checksum", file=sys.stderr)
            return 1
    print(f"pywork {rounds} {repeat} {first:016x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
