/*
 * The engine tier a unit test runs its harts on, from the environment, so
 * meson can run the same test once per tier: SKIFF_ENGINE is interp, jit
 * or lockstep (the JIT checked against the executor block by block), and
 * SKIFF_JIT_THRESHOLD the runs before a block is translated (the tests set
 * 1, so that even code run once goes through the JIT). Unset: the engine's
 * defaults. A bad value fails the test at once.
 */
#ifndef SKIFF_TESTS_ENGINE_TIER_H
#define SKIFF_TESTS_ENGINE_TIER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

static inline void engine_tier_from_env(struct hart_config *cfg)
{
	const char *e = getenv("SKIFF_ENGINE"), *t = getenv("SKIFF_JIT_THRESHOLD");
	cfg->engine = engine_default_tier();
	if (e && !strcmp(e, "lockstep")) {
		cfg->engine = ENGINE_JIT;
		cfg->jit_lockstep = true;
	} else if (e && engine_tier_parse(e, &cfg->engine)) {
		fprintf(stderr, "SKIFF_ENGINE=%s: not interp, jit or lockstep\n", e);
		exit(2);
	}
	if (t)
		cfg->jit_threshold = (uint32_t)strtoul(t, NULL, 10);
}

#endif
