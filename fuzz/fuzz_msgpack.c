/* fuzz_msgpack.c: csrc/msgpack.c's decoder and encoder in a Lua state.
 * decode must accept exactly what an independent whole-input reference
 * (below, from the msgpack spec plus our rules) accepts; whatever it
 * accepts must encode without error, decode again, and come back equal
 * (kinds, metatables, integer vs float, NaN), and that second encoding
 * must be a fixed point of decode + encode.
 * Input: the bytes to decode. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int msgpack_open(lua_State *L);

#define CHECK(c, what)                                                                 \
	do {                                                                           \
		if (!(c)) {                                                            \
			fprintf(stderr, "CHECK(%s) failed: %s\n", #c, what);           \
			abort();                                                       \
		}                                                                      \
	} while (0)

#define MAX_DEPTH 1000

struct ref {
	const uint8_t *p;
	size_t len, pos;
};

static int
ref_take(struct ref *r, uint64_t n, const uint8_t **out)
{
	if (n > r->len - r->pos)
		return 0;
	*out = r->p + r->pos;
	r->pos += (size_t)n;
	return 1;
}

static int
ref_uint(struct ref *r, int n, uint64_t *v)
{
	const uint8_t *p;
	int i;

	if (!ref_take(r, (uint64_t)n, &p))
		return 0;
	*v = 0;
	for (i = 0; i < n; i++)
		*v = *v << 8 | p[i];
	return 1;
}

/* kind of the value just skipped, for the map key rule */
enum { K_OTHER, K_NIL, K_NAN };

static int ref_value(struct ref *r, int depth, int *kind);

static int
ref_items(struct ref *r, uint64_t n, int depth, int map)
{
	uint64_t i;
	int kind;

	if (depth >= MAX_DEPTH)
		return 0;
	for (i = 0; i < n; i++) {
		if (!ref_value(r, depth + 1, &kind))
			return 0;
		if (map && (kind == K_NIL || kind == K_NAN))
			return 0;
		if (map && !ref_value(r, depth + 1, &kind))
			return 0;
	}
	return 1;
}

/* ext: (type 0, 1 byte) is undefined; type -1 with 4, 8 or 12 bytes a
 * timestamp; nothing else */
static int
ref_ext(struct ref *r, uint64_t n, int *kind)
{
	const uint8_t *t, *d;

	if (!ref_take(r, 1, &t) || !ref_take(r, n, &d))
		return 0;
	if (t[0] == 0 && n == 1) {
		*kind = K_NIL;
		return 1;
	}
	return t[0] == 0xff && (n == 4 || n == 8 || n == 12);
}

static int
ref_value(struct ref *r, int depth, int *kind)
{
	const uint8_t *p;
	uint64_t v;
	uint8_t c;

	*kind = K_OTHER;
	if (!ref_take(r, 1, &p))
		return 0;
	c = p[0];
	if (c <= 0x7f || c >= 0xe0 || c == 0xc2 || c == 0xc3)
		return 1;
	if (c >= 0xa0 && c <= 0xbf)
		return ref_take(r, c - 0xa0u, &p);
	if (c >= 0x90 && c <= 0x9f)
		return ref_items(r, c - 0x90u, depth, 0);
	if (c >= 0x80 && c <= 0x8f)
		return ref_items(r, c - 0x80u, depth, 1);
	switch (c) {
	case 0xc0:
		*kind = K_NIL;
		return 1;
	case 0xc4: return ref_uint(r, 1, &v) && ref_take(r, v, &p);
	case 0xc5: return ref_uint(r, 2, &v) && ref_take(r, v, &p);
	case 0xc6: return ref_uint(r, 4, &v) && ref_take(r, v, &p);
	case 0xc7: return ref_uint(r, 1, &v) && ref_ext(r, v, kind);
	case 0xc8: return ref_uint(r, 2, &v) && ref_ext(r, v, kind);
	case 0xc9: return ref_uint(r, 4, &v) && ref_ext(r, v, kind);
	case 0xca: {
		float f;
		uint32_t u;

		if (!ref_uint(r, 4, &v))
			return 0;
		u = (uint32_t)v;
		memcpy(&f, &u, 4);
		if (isnan(f))
			*kind = K_NAN;
		return 1;
	}
	case 0xcb: {
		double d;

		if (!ref_uint(r, 8, &v))
			return 0;
		memcpy(&d, &v, 8);
		if (isnan(d))
			*kind = K_NAN;
		return 1;
	}
	case 0xcc: case 0xd0: return ref_take(r, 1, &p);
	case 0xcd: case 0xd1: return ref_take(r, 2, &p);
	case 0xce: case 0xd2: return ref_take(r, 4, &p);
	case 0xcf: case 0xd3: return ref_take(r, 8, &p);
	case 0xd4: return ref_ext(r, 1, kind);
	case 0xd5: return ref_ext(r, 2, kind);
	case 0xd6: return ref_ext(r, 4, kind);
	case 0xd7: return ref_ext(r, 8, kind);
	case 0xd8: return ref_ext(r, 16, kind);
	case 0xd9: return ref_uint(r, 1, &v) && ref_take(r, v, &p);
	case 0xda: return ref_uint(r, 2, &v) && ref_take(r, v, &p);
	case 0xdb: return ref_uint(r, 4, &v) && ref_take(r, v, &p);
	case 0xdc: return ref_uint(r, 2, &v) && ref_items(r, v, depth, 0);
	case 0xdd: return ref_uint(r, 4, &v) && ref_items(r, v, depth, 0);
	case 0xde: return ref_uint(r, 2, &v) && ref_items(r, v, depth, 1);
	case 0xdf: return ref_uint(r, 4, &v) && ref_items(r, v, depth, 1);
	default: return 0;   /* 0xc1 */
	}
}

static const char setup[] =
	"local codec = ...\n"
	"local null, A, O, B = {}, {}, {}, { __name = 'binary' }\n"
	"local enc, dec = codec { null = null, array_mt = A, object_mt = O, binary_mt = B }\n"
	"local function eq(a, b)\n"
	"  if a ~= a then return b ~= b end\n"
	"  if math.type(a) ~= math.type(b) or type(a) ~= type(b) then return false end\n"
	"  if type(a) ~= 'table' then return a == b end\n"
	"  if a == null or b == null then return a == b end\n"
	"  if getmetatable(a) ~= getmetatable(b) then return false end\n"
	"  local na, nb = 0, 0\n"
	"  for k, v in pairs(a) do\n"
	"    na = na + 1\n"
	"    if type(k) ~= 'table' and not eq(v, b[k]) then return false end\n"
	"  end\n"
	"  for _ in pairs(b) do nb = nb + 1 end\n"
	"  return na == nb\n"
	"end\n"
	"local function must(s)\n"
	"  local v, err = dec(s)\n"
	"  if err then error('our own encoding does not decode: ' .. err) end\n"
	"  return v\n"
	"end\n"
	"return function(s)\n"
	"  local v, err = dec(s)\n"
	"  if err then return false end\n"
	"  local e1 = enc(v)\n"
	"  local v2 = must(e1)\n"
	"  assert(eq(v, v2), 'decode(encode(v)) differs from v')\n"
	"  local e2 = enc(v2)\n"
	"  assert(#e2 == #e1, 'the second encoding has another length')\n"
	"  assert(eq(must(e2), v2), 'not a fixed point')\n"
	"  return true\n"
	"end\n";

static lua_State *L;
static int run_ref;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ref r = { data, size, 0 };
	int kind, want, got;

	if (!L) {
		L = luaL_newstate();
		luaL_openlibs(L);
		CHECK(luaL_loadstring(L, setup) == LUA_OK, "setup chunk");
		lua_newtable(L);
		msgpack_open(L);
		lua_getfield(L, -1, "msgpack_codec");
		lua_remove(L, -2);
		CHECK(lua_pcall(L, 1, 1, 0) == LUA_OK, "setup");
		run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	want = ref_value(&r, 0, &kind) && r.pos == size;
	lua_rawgeti(L, LUA_REGISTRYINDEX, run_ref);
	lua_pushlstring(L, (const char *)data, size);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		fprintf(stderr, "%s\n", lua_tostring(L, -1));
		CHECK(0, "the round trip raised");
	}
	got = lua_toboolean(L, -1);
	lua_pop(L, 1);
	CHECK(got == want, want ? "decode refused valid input" : "decode accepted invalid input");
	lua_gc(L, LUA_GCSTEP, 0);
	return 0;
}
