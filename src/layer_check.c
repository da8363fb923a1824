/*
 * The program the build links once per layer, with every object of that
 * layer and nothing but the layers below it (see the top-level
 * meson.build). It is never run: that it links is the check that no layer
 * calls a layer above it.
 */
int main(void)
{
	return 0;
}
