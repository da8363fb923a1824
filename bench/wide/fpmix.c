/* fpmix: a floating-point workload for bench/wide.py (a VMM's FP path
 * beside QEMU's), written for this project.
 *
 * Each iteration does three small kernels of the kinds FP programs spend
 * their time in:
 *   - one step of a 16-body gravity simulation in double precision (every
 *     pair: a difference, a sqrt and a division; then a position update);
 *   - single precision y = a*x + y and a dot product over 512 floats (the
 *     shape of BLAS level 1);
 *   - the escape counts of one row of a 64 x 48 Mandelbrot grid (at most
 *     256 rounds of a complex square per point, a compare per round).
 * The bodies stay bound and the vectors are renormalised, so the numbers
 * neither overflow nor turn subnormal whatever the iteration count.
 *
 * Usage: fpmix ITERATIONS.  It prints one line with a checksum of the
 * final state, which is the same on every RISC-V system that rounds as
 * IEEE 754 says (both VMMs must print the same).  Built static by
 * bench/wide.py with riscv64-linux-gnu-gcc -O2.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODIES 16
#define VLEN 512
#define MW 64
#define MH 48
#define MAXIT 256

struct body { double x, y, z, vx, vy, vz, m; };

static struct body bodies[BODIES];
static float xs[VLEN], ys[VLEN];

static uint64_t rng = 0x9e3779b97f4a7c15u;

/* xorshift64: the same start on every system. */
static double rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void setup(void)
{
    for (int i = 0; i < BODIES; i++) {
        struct body *b = &bodies[i];
        b->x = rnd() * 2 - 1;
        b->y = rnd() * 2 - 1;
        b->z = rnd() * 2 - 1;
        b->vx = (rnd() - 0.5) * 0.1;
        b->vy = (rnd() - 0.5) * 0.1;
        b->vz = (rnd() - 0.5) * 0.1;
        b->m = 0.5 + rnd();
    }
    for (int i = 0; i < VLEN; i++) {
        xs[i] = (float)(rnd() - 0.5);
        ys[i] = (float)(rnd() - 0.5);
    }
}

static void nbody_step(double dt)
{
    for (int i = 0; i < BODIES; i++) {
        struct body *a = &bodies[i];
        for (int j = i + 1; j < BODIES; j++) {
            struct body *b = &bodies[j];
            double dx = a->x - b->x, dy = a->y - b->y, dz = a->z - b->z;
            /* The softening term keeps close passes finite. */
            double d2 = dx * dx + dy * dy + dz * dz + 0.01;
            double mag = dt / (d2 * sqrt(d2));
            a->vx -= dx * b->m * mag;
            a->vy -= dy * b->m * mag;
            a->vz -= dz * b->m * mag;
            b->vx += dx * a->m * mag;
            b->vy += dy * a->m * mag;
            b->vz += dz * a->m * mag;
        }
    }
    for (int i = 0; i < BODIES; i++) {
        struct body *b = &bodies[i];
        b->x += dt * b->vx;
        b->y += dt * b->vy;
        b->z += dt * b->vz;
    }
}

static double energy(void)
{
    double e = 0;
    for (int i = 0; i < BODIES; i++) {
        struct body *a = &bodies[i];
        e += 0.5 * a->m * (a->vx * a->vx + a->vy * a->vy + a->vz * a->vz);
        for (int j = i + 1; j < BODIES; j++) {
            struct body *b = &bodies[j];
            double dx = a->x - b->x, dy = a->y - b->y, dz = a->z - b->z;
            e -= a->m * b->m / sqrt(dx * dx + dy * dy + dz * dz + 0.01);
        }
    }
    return e;
}

/* y = a*x + y, then the dot product x.y; y is scaled back to unit length
 * when it grows, so the loop can run any number of times. */
static float axpy_dot(float a)
{
    float dot = 0;
    for (int i = 0; i < VLEN; i++)
        ys[i] = a * xs[i] + ys[i];
    for (int i = 0; i < VLEN; i++)
        dot += xs[i] * ys[i];
    float norm = 0;
    for (int i = 0; i < VLEN; i++)
        norm += ys[i] * ys[i];
    if (norm > 4.0f) {
        float s = 1.0f / sqrtf(norm);
        for (int i = 0; i < VLEN; i++)
            ys[i] *= s;
    }
    return dot;
}

static uint32_t mandel_row(int row)
{
    uint32_t sum = 0;
    double ci = -1.2 + 2.4 * row / MH;
    for (int col = 0; col < MW; col++) {
        double cr = -2.1 + 2.8 * col / MW;
        double zr = 0, zi = 0;
        int n = 0;
        while (n < MAXIT && zr * zr + zi * zi <= 4.0) {
            double t = zr * zr - zi * zi + cr;
            zi = 2 * zr * zi + ci;
            zr = t;
            n++;
        }
        sum += (uint32_t)n * (uint32_t)(col + 1);
    }
    return sum;
}

/* The exact bits of a double, folded into the checksum. */
static uint64_t bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s ITERATIONS\n", argv[0]);
        return 2;
    }
    long iters = strtol(argv[1], NULL, 10);
    setup();
    uint64_t sum = 0;
    double dots = 0;
    for (long it = 0; it < iters; it++) {
        nbody_step(0.001);
        dots += axpy_dot((it & 1) ? -0.25f : 0.5f);
        sum = sum * 31 + mandel_row((int)(it % MH));
    }
    sum ^= bits(energy()) ^ (bits(dots) << 1);
    printf("fpmix %ld iterations: checksum %016llx\n", iters, (unsigned long long)sum);
    return 0;
}
