/* cpumix: a CoreMark-like integer workload for comparing VMMs.
 *
 * Not a row of the bench: a static riscv64 program that the side-by-side
 * runs outside the bench (docs/benchmark-log.md) start in a guest, or under
 * skiff-isa-run and qemu-riscv64 in user mode. Its work is the kind a
 * public CPU benchmark of the CoreMark sort spends its time on, short
 * blocks ending in data-dependent branches:
 *   - a linked list of LIST_NODES nodes built, merge-sorted by key, walked
 *     and filtered, and sorted back by position;
 *   - an int16 MAT_N x MAT_N matrix product with a bit-field fold of the
 *     products;
 *   - a byte state machine (a small number scanner) over TEXT_LEN bytes;
 *   - CRC-16 computed bit by bit over every result.
 * Each iteration perturbs its inputs from the previous CRC, so no work can
 * be hoisted out of the loop. The final line, "cpumix N crc XXXX", must be
 * the same under every VMM and on real hardware.
 *
 * usage: cpumix [ITERATIONS]   (default 1000)
 * build: riscv64-linux-gnu-gcc -O2 -static -o cpumix cpumix.c
 *        (bench/meson.build does this when the cross compiler exists) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define LIST_NODES 400
#define MAT_N 24
#define TEXT_LEN 2048

/* ---- CRC-16 (reflected polynomial 0xA001), one bit at a time ---- */

static uint16_t crc_byte(uint8_t b, uint16_t crc)
{
    for (int i = 0; i < 8; i++) {
        unsigned mix = (b ^ crc) & 1;
        crc >>= 1;
        b >>= 1;
        if (mix)
            crc ^= 0xA001;
    }
    return crc;
}

static uint16_t crc_u16(uint16_t v, uint16_t crc)
{
    crc = crc_byte((uint8_t)v, crc);
    return crc_byte((uint8_t)(v >> 8), crc);
}

static uint16_t crc_u32(uint32_t v, uint16_t crc)
{
    crc = crc_u16((uint16_t)v, crc);
    return crc_u16((uint16_t)(v >> 16), crc);
}

/* ---- a small pseudo-random generator (xorshift32) ---- */

static uint32_t rng_state;

static uint32_t rng(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}

/* ---- linked list ---- */

struct node {
    struct node *next;
    int16_t key;    /* what the first sort orders by */
    int16_t pos;    /* position when built: the second sort restores it */
    int32_t value;
};

static struct node pool[LIST_NODES];

static struct node *list_build(void)
{
    struct node *head = NULL;
    for (int i = LIST_NODES - 1; i >= 0; i--) {
        struct node *n = &pool[i];
        uint32_t r = rng();
        n->key = (int16_t)(r & 0x3ff) - 512;
        n->pos = (int16_t)i;
        n->value = (int32_t)(r >> 10);
        n->next = head;
        head = n;
    }
    return head;
}

/* Bottom-up merge sort of a list, in runs of doubling width: no recursion,
 * each step a compare and a pointer update. by_key selects the key. */
static struct node *list_sort(struct node *head, int by_key)
{
    for (int width = 1;; width *= 2) {
        struct node *p = head, *tail = NULL;
        int merges = 0;
        head = NULL;
        while (p) {
            struct node *q = p;
            int psize = 0, qsize = width;
            merges++;
            while (psize < width && q) {
                psize++;
                q = q->next;
            }
            while (psize > 0 || (qsize > 0 && q)) {
                struct node *e;
                if (psize == 0) {
                    e = q; q = q->next; qsize--;
                } else if (qsize == 0 || !q) {
                    e = p; p = p->next; psize--;
                } else {
                    int pk = by_key ? p->key : p->pos;
                    int qk = by_key ? q->key : q->pos;
                    if (pk <= qk) {
                        e = p; p = p->next; psize--;
                    } else {
                        e = q; q = q->next; qsize--;
                    }
                }
                if (tail)
                    tail->next = e;
                else
                    head = e;
                tail = e;
            }
            p = q;
        }
        tail->next = NULL;
        if (merges <= 1)
            return head;
    }
}

/* Walks the list: sums the values of keys in a window, counts and unlinks
 * (into a second list, appended back at the end) those with a given low
 * bit pattern, finds the first node whose key passes a threshold. */
static uint16_t list_work(struct node **headp, int16_t lo, int16_t hi, uint16_t crc)
{
    struct node *head = *headp, *prev = NULL, *removed = NULL;
    int32_t sum = 0;
    int found = -1, count = 0;
    for (struct node *n = head; n;) {
        struct node *next = n->next;
        if (n->key >= lo && n->key < hi)
            sum += n->value & 0xffff;
        if (found < 0 && n->key > hi)
            found = n->pos;
        if ((n->value & 7) == 5) {
            count++;
            if (prev)
                prev->next = next;
            else
                head = next;
            n->next = removed;
            removed = n;
        } else {
            prev = n;
        }
        n = next;
    }
    if (prev)
        prev->next = removed;
    else
        head = removed;
    *headp = head;
    crc = crc_u32((uint32_t)sum, crc);
    crc = crc_u16((uint16_t)found, crc);
    return crc_u16((uint16_t)count, crc);
}

static uint16_t bench_list(uint16_t crc)
{
    struct node *head = list_build();
    head = list_sort(head, 1);
    for (struct node *n = head; n; n = n->next)
        crc = crc_u16((uint16_t)n->key, crc);
    crc = list_work(&head, (int16_t)(-100 + (crc & 63)), (int16_t)(200 + (crc >> 10)), crc);
    head = list_sort(head, 0);
    /* Positions are a permutation of 0..N-1: sorted back they must count up. */
    int16_t expect = 0;
    for (struct node *n = head; n; n = n->next, expect++)
        if (n->pos != expect)
            crc ^= 0x5555;
    return crc;
}

/* ---- int16 matrix product ---- */

static int16_t mat_a[MAT_N][MAT_N], mat_b[MAT_N][MAT_N];
static int32_t mat_c[MAT_N][MAT_N];

static uint16_t bench_matrix(uint16_t crc)
{
    int16_t bias = (int16_t)(crc & 0xff);
    for (int i = 0; i < MAT_N; i++)
        for (int j = 0; j < MAT_N; j++) {
            uint32_t r = rng();
            mat_a[i][j] = (int16_t)((r & 0x7ff) - 0x400 + bias);
            mat_b[i][j] = (int16_t)(((r >> 12) & 0x7ff) - 0x400);
        }
    for (int i = 0; i < MAT_N; i++)
        for (int j = 0; j < MAT_N; j++) {
            int32_t acc = 0;
            for (int k = 0; k < MAT_N; k++)
                acc += (int32_t)mat_a[i][k] * mat_b[k][j];
            mat_c[i][j] = acc;
        }
    /* Fold: a bit field of each product, with a data-dependent branch. */
    int32_t fold = 0;
    for (int i = 0; i < MAT_N; i++)
        for (int j = 0; j < MAT_N; j++) {
            int32_t field = (mat_c[i][j] >> 4) & 0x7f;
            if (field > 63)
                fold += field;
            else
                fold -= field >> 1;
        }
    return crc_u32((uint32_t)fold, crc);
}

/* ---- a byte state machine: a number scanner ---- */

enum state { S_START, S_SIGN, S_INT, S_DOT, S_FRAC, S_EXP, S_EXPSIGN, S_EXPNUM, S_BAD, S_COUNT };

static uint8_t text[TEXT_LEN];

static void text_fill(void)
{
    static const char alphabet[] = "0123456789+-.eE,, x";
    for (int i = 0; i < TEXT_LEN; i++)
        text[i] = (uint8_t)alphabet[rng() % (sizeof alphabet - 1)];
}

static enum state step(enum state s, uint8_t c)
{
    int digit = c >= '0' && c <= '9';
    switch (s) {
    case S_START:
        if (digit) return S_INT;
        if (c == '+' || c == '-') return S_SIGN;
        if (c == '.') return S_DOT;
        return S_BAD;
    case S_SIGN:
        if (digit) return S_INT;
        if (c == '.') return S_DOT;
        return S_BAD;
    case S_INT:
        if (digit) return S_INT;
        if (c == '.') return S_DOT;
        if (c == 'e' || c == 'E') return S_EXP;
        return S_BAD;
    case S_DOT:
    case S_FRAC:
        if (digit) return S_FRAC;
        if (c == 'e' || c == 'E') return S_EXP;
        return S_BAD;
    case S_EXP:
        if (digit) return S_EXPNUM;
        if (c == '+' || c == '-') return S_EXPSIGN;
        return S_BAD;
    case S_EXPSIGN:
    case S_EXPNUM:
        if (digit) return S_EXPNUM;
        return S_BAD;
    default:
        return S_BAD;
    }
}

static uint16_t bench_scan(uint16_t crc)
{
    unsigned final[S_COUNT] = {0}, moves = 0;
    enum state s = S_START;
    /* Perturb a few bytes each iteration so the walk changes. */
    for (int k = 0; k < 8; k++)
        text[rng() % TEXT_LEN] = (uint8_t)("0123456789.e,-"[rng() % 14]);
    for (int i = 0; i < TEXT_LEN; i++) {
        uint8_t c = text[i];
        if (c == ',' || c == ' ') {
            final[s]++;
            s = S_START;
            continue;
        }
        enum state next = step(s, c);
        if (next != s)
            moves++;
        s = next;
    }
    final[s]++;
    for (int i = 0; i < S_COUNT; i++)
        crc = crc_u16((uint16_t)final[i], crc);
    return crc_u32(moves, crc);
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    if (iterations <= 0) {
        fprintf(stderr, "usage: cpumix [ITERATIONS > 0]\n");
        return 2;
    }
    rng_state = 0x2545F491u;
    text_fill();
    uint16_t crc = 0;
    for (long it = 0; it < iterations; it++) {
        rng_state ^= crc;
        if (rng_state == 0)
            rng_state = 1;
        crc = bench_list(crc);
        crc = bench_matrix(crc);
        crc = bench_scan(crc);
    }
    printf("cpumix %ld crc %04x\n", iterations, crc);
    return 0;
}
