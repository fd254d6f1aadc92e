/* The shape of src/aio, read from the objects' symbols: no file calls back
 * into a file that calls it (no import cycle), and only init.c and the
 * backends themselves name a backend (the rest go through struct kq_backend). */
#include "kqt.h"

TestSuite(layers, .timeout = 60);

enum { MAXMOD = 64, MAXSYM = 1024 };

static char mods[MAXMOD][64];
static int nmods;
static struct {
	char name[96];
	int mod;
} defs[MAXSYM], uses[4 * MAXSYM];
static int ndefs, nuses;
static int edge[MAXMOD][MAXMOD];
static char why[MAXMOD][MAXMOD][96]; /* one symbol behind each edge */

static int mod_of(const char *path, const char *obj)
{
	char m[128];
	snprintf(m, sizeof m, "%s", path + strlen(obj) + 1);
	size_t n = strlen(m);
	if (n < 3 || strcmp(m + n - 2, ".o"))
		return -1;
	m[n - 2] = 0;
	/* An object whose source is gone (a file renamed since the last build). */
	char src[512];
	snprintf(src, sizeof src, "%s/src/aio/%s.c", getenv("KQAIO_SRC"), m);
	if (access(src, F_OK))
		return -1;
	for (int i = 0; i < nmods; i++)
		if (!strcmp(mods[i], m))
			return i;
	cr_assert_lt(nmods, MAXMOD);
	snprintf(mods[nmods], sizeof mods[nmods], "%s", m);
	return nmods++;
}

static void read_symbols(void)
{
	const char *b = getenv("KQAIO_BUILD"), *s = getenv("KQAIO_SRC");
	cr_assert(b && s, "KQAIO_BUILD and KQAIO_SRC are not set (run through make check)");
	char obj[512], cmd[1024];
	snprintf(obj, sizeof obj, "%s/obj/src/aio", b);
	snprintf(cmd, sizeof cmd, "find %s -name '*.o' | sort | xargs nm -A", obj);
	FILE *p = popen(cmd, "r");
	cr_assert(p);
	char line[1024];
	while (fgets(line, sizeof line, p)) {
		/* "path: addr T name" or "path:  U name" */
		char *colon = strstr(line, ".o:");
		if (!colon)
			continue;
		colon[2] = 0;
		int m = mod_of(line, obj);
		if (m < 0)
			continue;
		char a[96], t[96], name[96];
		int k = sscanf(colon + 3, "%95s %95s %95s", a, t, name);
		if (k == 2 && !strcmp(a, "U")) {
			cr_assert_lt(nuses, 4 * MAXSYM);
			memcpy(uses[nuses].name, t, sizeof t);
			uses[nuses++].mod = m;
		} else if (k == 3 && strchr("TDBRVW", t[0])) {
			cr_assert_lt(ndefs, MAXSYM);
			memcpy(defs[ndefs].name, name, sizeof name);
			defs[ndefs++].mod = m;
		}
	}
	cr_assert_eq(pclose(p), 0, "nm failed");
	cr_assert_gt(nmods, 10, "found %d objects under %s", nmods, obj);
	for (int u = 0; u < nuses; u++)
		for (int d = 0; d < ndefs; d++)
			if (uses[u].mod != defs[d].mod && !strcmp(uses[u].name, defs[d].name)) {
				edge[uses[u].mod][defs[d].mod] = 1;
				memcpy(why[uses[u].mod][defs[d].mod], uses[u].name,
				       sizeof why[0][0]);
			}
}

static int color[MAXMOD], stack[MAXMOD], depth;

/* Depth first; on a back edge, the cycle is stack[from the target]. */
static int find_cycle(int v, char *out, size_t len)
{
	color[v] = 1;
	stack[depth++] = v;
	for (int w = 0; w < nmods; w++) {
		if (!edge[v][w])
			continue;
		if (color[w] == 1) {
			int i = 0;
			while (stack[i] != w)
				i++;
			size_t o = 0;
			for (; i < depth; i++) {
				int nx = i + 1 < depth ? stack[i + 1] : w;
				o += (size_t)snprintf(out + o, len - o, "%s -(%s)-> ",
						      mods[stack[i]], why[stack[i]][nx]);
				if (o >= len)
					return 1;
			}
			snprintf(out + o, len - o, "%s", mods[w]);
			return 1;
		}
		if (!color[w] && find_cycle(w, out, len))
			return 1;
	}
	color[v] = 2;
	depth--;
	return 0;
}

Test(layers, no_import_cycle_in_src_aio)
{
	read_symbols();
	char cycle[2048] = "";
	for (int v = 0; v < nmods; v++)
		if (!color[v] && find_cycle(v, cycle, sizeof cycle))
			cr_assert_fail("a cycle: %s", cycle);
}

static int is_backend(int m)
{
	return !strncmp(mods[m], "backend/", 8);
}

Test(layers, only_init_names_a_backend)
{
	read_symbols();
	for (int v = 0; v < nmods; v++)
		for (int w = 0; w < nmods; w++)
			if (edge[v][w] && is_backend(w) && !is_backend(v))
				cr_assert(!strcmp(mods[v], "init"), "%s calls %s's %s", mods[v],
					  mods[w], why[v][w]);
}
