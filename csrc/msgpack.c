/* msgpack.c: MessagePack (the spec at github.com/msgpack/msgpack) to and
 * from Lua values, the one mechanism Socket.IO's Redis adapter and msgpack
 * parser need; lua/lws/msgpack.lua is the policy around it. Kinds survive
 * both ways: arrays vs maps (by the metatables the codec is made with),
 * integers vs floats (math.type), text vs binary (a tagged table). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define MP_MAX_DEPTH 1000
#define MP_BUFFER_MT "lws.msgpack.buffer"
#define MP_KEEP (1 << 20)   /* a reused encode buffer shrinks back above this */

/* The codec's upvalues: the values it maps nil, arrays, maps and binary to */
enum { UP_NULL = 1, UP_ARRAY, UP_OBJECT, UP_BINARY, UP_BUFFER };

struct mpbuf {
	unsigned char *p;
	size_t len, cap;
};

static int
mpbuf_gc(lua_State *L)
{
	struct mpbuf *b = luaL_checkudata(L, 1, MP_BUFFER_MT);

	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	return 0;
}

static unsigned char *
mpbuf_room(lua_State *L, struct mpbuf *b, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 256;
		unsigned char *p;

		while (cap - b->len < n) {
			if (cap > ((size_t)-1) / 2)
				luaL_error(L, "msgpack: value too large");
			cap *= 2;
		}
		p = realloc(b->p, cap);
		if (!p)
			luaL_error(L, "msgpack: out of memory");
		b->p = p;
		b->cap = cap;
	}
	return b->p + b->len;
}

static void
put(lua_State *L, struct mpbuf *b, const void *src, size_t n)
{
	memcpy(mpbuf_room(L, b, n), src, n);
	b->len += n;
}

/* a type byte followed by an n-byte big-endian number */
static void
put_be(lua_State *L, struct mpbuf *b, unsigned char type, uint64_t v, int n)
{
	unsigned char *p = mpbuf_room(L, b, (size_t)n + 1);
	int i;

	p[0] = type;
	for (i = n; i >= 1; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
	b->len += (size_t)n + 1;
}

/* the smallest form, as notepack.io (Node's Socket.IO) writes it */
static void
put_integer(lua_State *L, struct mpbuf *b, lua_Integer i)
{
	if (i >= 0) {
		uint64_t u = (uint64_t)i;

		if (u < 0x80)
			put_be(L, b, (unsigned char)u, 0, 0);
		else if (u < 0x100)
			put_be(L, b, 0xcc, u, 1);
		else if (u < 0x10000)
			put_be(L, b, 0xcd, u, 2);
		else if (u < 0x100000000ull)
			put_be(L, b, 0xce, u, 4);
		else
			put_be(L, b, 0xcf, u, 8);
	} else if (i >= -0x20) {
		put_be(L, b, (unsigned char)(i & 0xff), 0, 0);
	} else if (i >= -0x80) {
		put_be(L, b, 0xd0, (uint64_t)i, 1);
	} else if (i >= -0x8000) {
		put_be(L, b, 0xd1, (uint64_t)i, 2);
	} else if (i >= -0x80000000ll) {
		put_be(L, b, 0xd2, (uint64_t)i, 4);
	} else {
		put_be(L, b, 0xd3, (uint64_t)i, 8);
	}
}

static void
put_header(lua_State *L, struct mpbuf *b, size_t n, unsigned char fix, unsigned char fixmax,
	   unsigned char t8, unsigned char t16, unsigned char t32)
{
	if (fix && n < fixmax)
		put_be(L, b, (unsigned char)(fix | n), 0, 0);
	else if (t8 && n < 0x100)
		put_be(L, b, t8, n, 1);
	else if (n < 0x10000)
		put_be(L, b, t16, n, 2);
	else if (n <= 0xffffffffu)
		put_be(L, b, t32, n, 4);
	else
		luaL_error(L, "msgpack: more than 2^32-1 bytes or entries");
}

static void
put_str(lua_State *L, struct mpbuf *b, const char *s, size_t n, int binary)
{
	if (binary)
		put_header(L, b, n, 0, 0, 0xc4, 0xc5, 0xc6);
	else
		put_header(L, b, n, 0xa0, 32, 0xd9, 0xda, 0xdb);
	put(L, b, s, n);
}

static void encode_value(lua_State *L, struct mpbuf *b, int idx, int depth);

/* does the metatable of the table at idx equal upvalue up? */
static int
has_mt(lua_State *L, int idx, int up)
{
	int r;

	if (!lua_getmetatable(L, idx))
		return 0;
	r = lua_rawequal(L, -1, lua_upvalueindex(up));
	lua_pop(L, 1);
	return r;
}

/* a map whose metatable lists its keys in order (__keys) */
static int
ordered(lua_State *L, int idx)
{
	int r;

	if (!lua_getmetatable(L, idx))
		return 0;
	r = lua_getfield(L, -1, "__keys") == LUA_TTABLE;
	lua_pop(L, 2);
	return r;
}

/* 1..n present and nothing else: a plain table written as an array */
static int
plain_array(lua_State *L, int idx, lua_Integer *n)
{
	lua_Integer len = (lua_Integer)lua_rawlen(L, idx), count = 0, i;

	if (len == 0)
		return 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (++count > len) {
			lua_pop(L, 1);
			return 0;
		}
	}
	if (count != len)
		return 0;
	for (i = 1; i <= len; i++) {
		int t = lua_rawgeti(L, idx, i);

		lua_pop(L, 1);
		if (t == LUA_TNIL)
			return 0;
	}
	*n = len;
	return 1;
}

static void
encode_array(lua_State *L, struct mpbuf *b, int idx, lua_Integer n, int depth)
{
	lua_Integer i;

	put_header(L, b, (size_t)n, 0x90, 16, 0, 0xdc, 0xdd);
	for (i = 1; i <= n; i++) {
		lua_rawgeti(L, idx, i);
		encode_value(L, b, lua_gettop(L), depth + 1);
		lua_pop(L, 1);
	}
}

/* a map key, for sorting: numbers, then strings (bytewise), then the rest
 * in next()'s order */
struct mpkey {
	int rank;
	lua_Number num;
	const char *str;
	size_t len;
	lua_Integer at;   /* its index in the table of keys */
};

static int
mpkey_cmp(const void *pa, const void *pb)
{
	const struct mpkey *a = pa, *b = pb;

	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	if (a->rank == 0 && a->num != b->num)
		return a->num < b->num ? -1 : 1;
	if (a->rank == 1) {
		int c = memcmp(a->str, b->str, a->len < b->len ? a->len : b->len);

		if (c || a->len != b->len)
			return c ? c : (a->len < b->len ? -1 : 1);
	}
	return a->at < b->at ? -1 : a->at > b->at;
}

/* keys in the order of the metatable's __keys list when it has one (so a
 * map can be written byte for byte as Node writes it), else sorted, so the
 * same table always gives the same bytes (as lws.json) */
static void
encode_map(lua_State *L, struct mpbuf *b, int idx, int depth)
{
	size_t count = 0;
	int top = lua_gettop(L), keys = 0;

	if (lua_getmetatable(L, idx) && lua_getfield(L, -1, "__keys") == LUA_TTABLE)
		keys = lua_gettop(L);
	if (keys) {
		lua_Integer i, n = (lua_Integer)lua_rawlen(L, keys);

		for (i = 1; i <= n; i++) {
			lua_rawgeti(L, keys, i);
			if (lua_rawget(L, idx) != LUA_TNIL)
				count++;
			lua_pop(L, 1);
		}
		put_header(L, b, count, 0x80, 16, 0, 0xde, 0xdf);
		for (i = 1; i <= n; i++) {
			lua_rawgeti(L, keys, i);
			lua_pushvalue(L, -1);
			if (lua_rawget(L, idx) != LUA_TNIL) {
				encode_value(L, b, lua_gettop(L) - 1, depth + 1);
				encode_value(L, b, lua_gettop(L), depth + 1);
			}
			lua_pop(L, 2);
		}
	} else {
		struct mpkey *k;
		int list;
		size_t i;

		lua_pushnil(L);
		while (lua_next(L, idx)) {
			lua_pop(L, 1);
			count++;
		}
		put_header(L, b, count, 0x80, 16, 0, 0xde, 0xdf);
		if (count > 0x7fffffff)
			luaL_error(L, "msgpack: a map too large");
		/* the keys in a table (which keeps their strings alive) and their
		 * sort records in GC-owned memory: an error cannot leak either */
		lua_createtable(L, (int)count, 0);
		list = lua_gettop(L);
		k = lua_newuserdatauv(L, count * sizeof(*k) + 1, 0);
		i = 0;
		lua_pushnil(L);
		while (lua_next(L, idx)) {
			lua_pop(L, 1);
			lua_pushvalue(L, -1);
			lua_rawseti(L, list, (lua_Integer)i + 1);
			k[i].at = (lua_Integer)i + 1;
			k[i].str = NULL;
			k[i].len = 0;
			k[i].num = 0;
			if (lua_type(L, -1) == LUA_TNUMBER) {
				k[i].rank = 0;
				k[i].num = lua_tonumber(L, -1);
			} else if (lua_type(L, -1) == LUA_TSTRING) {
				k[i].rank = 1;
				k[i].str = lua_tolstring(L, -1, &k[i].len);
			} else {
				k[i].rank = 2;
			}
			i++;
		}
		qsort(k, count, sizeof(*k), mpkey_cmp);
		for (i = 0; i < count; i++) {
			lua_rawgeti(L, list, k[i].at);
			lua_pushvalue(L, -1);
			lua_rawget(L, idx);
			encode_value(L, b, lua_gettop(L) - 1, depth + 1);
			encode_value(L, b, lua_gettop(L), depth + 1);
			lua_pop(L, 2);
		}
	}
	lua_settop(L, top);
}

static void
encode_value(lua_State *L, struct mpbuf *b, int idx, int depth)
{
	size_t n;
	const char *s;

	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		put_be(L, b, 0xc0, 0, 0);
		break;
	case LUA_TBOOLEAN:
		put_be(L, b, lua_toboolean(L, idx) ? 0xc3 : 0xc2, 0, 0);
		break;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx)) {
			put_integer(L, b, lua_tointeger(L, idx));
		} else {
			double d = (double)lua_tonumber(L, idx);
			uint64_t u;

			memcpy(&u, &d, sizeof(u));
			put_be(L, b, 0xcb, u, 8);   /* always float 64: a float stays a float */
		}
		break;
	case LUA_TSTRING:
		s = lua_tolstring(L, idx, &n);
		put_str(L, b, s, n, 0);
		break;
	case LUA_TTABLE: {
		lua_Integer len;

		if (lua_rawequal(L, idx, lua_upvalueindex(UP_NULL))) {
			put_be(L, b, 0xc0, 0, 0);
			break;
		}
		if (depth >= MP_MAX_DEPTH)
			luaL_error(L, "msgpack: nesting deeper than %d (a cycle?)", MP_MAX_DEPTH);
		luaL_checkstack(L, 8, "msgpack: nesting too deep");
		if (has_mt(L, idx, UP_BINARY)) {
			if (lua_getfield(L, idx, "data") != LUA_TSTRING)
				luaL_error(L, "msgpack: a binary value without its data string");
			s = lua_tolstring(L, -1, &n);
			put_str(L, b, s, n, 1);
			lua_pop(L, 1);
		} else if (has_mt(L, idx, UP_ARRAY)) {
			encode_array(L, b, idx, (lua_Integer)lua_rawlen(L, idx), depth);
		} else if (!has_mt(L, idx, UP_OBJECT) && !ordered(L, idx) && plain_array(L, idx, &len)) {
			encode_array(L, b, idx, len, depth);
		} else {
			encode_map(L, b, idx, depth);
		}
		break;
	}
	default:
		luaL_error(L, "msgpack: cannot encode a %s", luaL_typename(L, idx));
	}
}

/* encode(value) -> string; raises on what has no msgpack form */
static int
mp_encode(lua_State *L)
{
	struct mpbuf *b = lua_touserdata(L, lua_upvalueindex(UP_BUFFER));

	luaL_checkany(L, 1);
	lua_settop(L, 1);
	b->len = 0;
	encode_value(L, b, 1, 0);
	lua_pushlstring(L, (const char *)b->p, b->len);
	if (b->cap > MP_KEEP) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	}
	b->len = 0;
	return 1;
}

struct mpin {
	const unsigned char *p;
	size_t len, pos;
	const char *err;   /* set once: the first failure */
	size_t at;
};

static int
fail(struct mpin *in, const char *err, size_t at)
{
	if (!in->err) {
		in->err = err;
		in->at = at;
	}
	return 0;
}

/* n bytes at the cursor, or 0 (truncated) */
static const unsigned char *
take(struct mpin *in, size_t n)
{
	const unsigned char *p;

	if (in->len - in->pos < n) {
		fail(in, "truncated", in->len);
		return NULL;
	}
	p = in->p + in->pos;
	in->pos += n;
	return p;
}

static uint64_t
be(const unsigned char *d, size_t n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | *d++;
	return v;
}

static int
take_be(struct mpin *in, int n, uint64_t *v)
{
	const unsigned char *p = take(in, (size_t)n);

	if (p)
		*v = be(p, (size_t)n);
	return p != NULL;
}

static int decode_value(lua_State *L, struct mpin *in, int depth);

static int
decode_str(lua_State *L, struct mpin *in, uint64_t n, int binary)
{
	const unsigned char *p = n > in->len ? NULL : take(in, (size_t)n);

	if (!p)
		return fail(in, "truncated", in->len);
	if (binary) {
		lua_createtable(L, 0, 1);
		lua_pushlstring(L, (const char *)p, (size_t)n);
		lua_setfield(L, -2, "data");
		lua_pushvalue(L, lua_upvalueindex(UP_BINARY));
		lua_setmetatable(L, -2);
	} else {
		lua_pushlstring(L, (const char *)p, (size_t)n);
	}
	return 1;
}

static int
decode_array(lua_State *L, struct mpin *in, uint64_t n, int depth)
{
	uint64_t i;

	/* every element takes a byte at least: no table bigger than the input */
	if (n > in->len - in->pos)
		return fail(in, "truncated", in->len);
	lua_createtable(L, (int)n, 0);
	lua_pushvalue(L, lua_upvalueindex(UP_ARRAY));
	lua_setmetatable(L, -2);
	for (i = 1; i <= n; i++) {
		if (!decode_value(L, in, depth + 1))
			return 0;
		lua_rawseti(L, -2, (lua_Integer)i);
	}
	return 1;
}

static int
decode_map(lua_State *L, struct mpin *in, uint64_t n, int depth)
{
	uint64_t i;

	if (n > (in->len - in->pos) / 2)
		return fail(in, "truncated", in->len);
	lua_createtable(L, 0, (int)n);
	lua_pushvalue(L, lua_upvalueindex(UP_OBJECT));
	lua_setmetatable(L, -2);
	for (i = 0; i < n; i++) {
		size_t at = in->pos;

		if (!decode_value(L, in, depth + 1))
			return 0;
		if (lua_rawequal(L, -1, lua_upvalueindex(UP_NULL)) ||
		    (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1)))
			return fail(in, "a map key that is nil or NaN", at);
		if (!decode_value(L, in, depth + 1))
			return 0;
		lua_rawset(L, -3);
	}
	return 1;
}

/* ext: notepack's undefined (fixext 1, type 0) is nil; timestamps (type
 * -1) are milliseconds since the epoch, as Date.getTime() */
static int
decode_ext(lua_State *L, struct mpin *in, uint64_t n, size_t at)
{
	const unsigned char *p = take(in, 1);
	const unsigned char *d;
	int type;
	uint64_t sec, nsec = 0;

	if (!p || n > in->len || !(d = take(in, (size_t)n)))
		return fail(in, "truncated", in->len);
	type = (signed char)p[0];
	if (type == 0 && n == 1) {
		lua_pushvalue(L, lua_upvalueindex(UP_NULL));
		return 1;
	}
	if (type != -1 || (n != 4 && n != 8 && n != 12))
		return fail(in, "unsupported ext type", at);
	if (n == 4) {
		sec = be(d, 4);
	} else if (n == 8) {   /* 30 bits of nanoseconds, 34 of seconds */
		nsec = be(d, 8) >> 34;
		sec = be(d, 8) & 0x3ffffffffull;
	} else {
		nsec = be(d, 4);
		sec = be(d + 4, 8);
	}
	/* seconds are signed in the 12-byte form, and below 2^34 in the others */
	if (nsec % 1000000 == 0 && (int64_t)sec < ((int64_t)1 << 43) && (int64_t)sec > -((int64_t)1 << 43))
		lua_pushinteger(L, (lua_Integer)((int64_t)sec * 1000 + (int64_t)(nsec / 1000000)));
	else
		lua_pushnumber(L, (lua_Number)(int64_t)sec * 1000 + (lua_Number)nsec / 1e6);
	return 1;
}

static int
decode_value(lua_State *L, struct mpin *in, int depth)
{
	size_t at = in->pos;
	const unsigned char *p;
	uint64_t v;
	unsigned char c;

	if (!lua_checkstack(L, 4))
		return fail(in, "nesting too deep", at);
	if (!(p = take(in, 1)))
		return 0;
	c = *p;
	if (c <= 0x7f) {
		lua_pushinteger(L, c);
		return 1;
	}
	if (c >= 0xe0) {
		lua_pushinteger(L, (lua_Integer)(signed char)c);
		return 1;
	}
	if ((c & 0xe0) == 0xa0)
		return decode_str(L, in, c & 0x1f, 0);
	/* tables as deep as encode writes them */
	if (depth >= MP_MAX_DEPTH && ((c & 0xe0) == 0x80 || (c >= 0xdc && c <= 0xdf)))
		return fail(in, "nesting too deep", at);
	if ((c & 0xf0) == 0x90)
		return decode_array(L, in, c & 0x0f, depth);
	if ((c & 0xf0) == 0x80)
		return decode_map(L, in, c & 0x0f, depth);
	switch (c) {
	case 0xc0:
		lua_pushvalue(L, lua_upvalueindex(UP_NULL));
		return 1;
	case 0xc2:
	case 0xc3:
		lua_pushboolean(L, c == 0xc3);
		return 1;
	case 0xc4: case 0xc5: case 0xc6:
		return take_be(in, 1 << (c - 0xc4), &v) && decode_str(L, in, v, 1);
	case 0xc7: case 0xc8: case 0xc9:
		return take_be(in, 1 << (c - 0xc7), &v) && decode_ext(L, in, v, at);
	case 0xca: {
		float f;
		uint32_t u;

		if (!take_be(in, 4, &v))
			return 0;
		u = (uint32_t)v;
		memcpy(&f, &u, sizeof(f));
		lua_pushnumber(L, (lua_Number)f);
		return 1;
	}
	case 0xcb: {
		double d;

		if (!take_be(in, 8, &v))
			return 0;
		memcpy(&d, &v, sizeof(d));
		lua_pushnumber(L, (lua_Number)d);
		return 1;
	}
	case 0xcc: case 0xcd: case 0xce: case 0xcf:
		if (!take_be(in, 1 << (c - 0xcc), &v))
			return 0;
		if (v > (uint64_t)LUA_MAXINTEGER)
			lua_pushnumber(L, (lua_Number)v);   /* past 2^63-1: a float */
		else
			lua_pushinteger(L, (lua_Integer)v);
		return 1;
	case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
		int n = 1 << (c - 0xd0);

		if (!take_be(in, n, &v))
			return 0;
		if (n < 8 && (v & ((uint64_t)1 << (n * 8 - 1))))
			v |= ~(uint64_t)0 << (n * 8);   /* sign-extend */
		lua_pushinteger(L, (lua_Integer)(int64_t)v);
		return 1;
	}
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
		return decode_ext(L, in, (uint64_t)1 << (c - 0xd4), at);
	case 0xd9: case 0xda: case 0xdb:
		return take_be(in, 1 << (c - 0xd9), &v) && decode_str(L, in, v, 0);
	case 0xdc: case 0xdd:
		return take_be(in, c == 0xdc ? 2 : 4, &v) && decode_array(L, in, v, depth);
	case 0xde: case 0xdf:
		return take_be(in, c == 0xde ? 2 : 4, &v) && decode_map(L, in, v, depth);
	default:   /* 0xc1 */
		return fail(in, "a byte that is no msgpack type", at);
	}
}

/* decode(bytes) -> value | nil, message (the input must be exactly one
 * value) */
static int
mp_decode(lua_State *L)
{
	struct mpin in = { NULL, 0, 0, NULL, 0 };
	int top;

	in.p = (const unsigned char *)luaL_checklstring(L, 1, &in.len);
	lua_settop(L, 1);
	top = lua_gettop(L);
	if (decode_value(L, &in, 0) && in.pos != in.len)
		fail(&in, "bytes after the value", in.pos);
	if (in.err) {
		lua_settop(L, top);
		lua_pushnil(L);
		lua_pushfstring(L, "msgpack: %s at byte %I", in.err, (lua_Integer)in.at);
		return 2;
	}
	return 1;
}

/* codec{ null =, array_mt =, object_mt =, binary_mt = } -> encode, decode:
 * the two functions share the markers as upvalues (lua-cjson's per-instance
 * configuration) and a reused encode buffer */
static int
mp_codec(lua_State *L)
{
	static const char *const keys[] = { "null", "array_mt", "object_mt", "binary_mt" };
	struct mpbuf *b;
	int i;

	luaL_checktype(L, 1, LUA_TTABLE);
	for (i = 0; i < 4; i++) {
		if (lua_getfield(L, 1, keys[i]) != LUA_TTABLE)
			return luaL_error(L, "bad argument #1 to 'msgpack_codec' (%s: table expected)", keys[i]);
	}
	b = lua_newuserdatauv(L, sizeof(*b), 0);
	memset(b, 0, sizeof(*b));
	luaL_setmetatable(L, MP_BUFFER_MT);
	for (i = 0; i < 5; i++)
		lua_pushvalue(L, 2 + i);
	lua_pushcclosure(L, mp_encode, 5);
	for (i = 0; i < 5; i++)
		lua_pushvalue(L, 2 + i);
	lua_pushcclosure(L, mp_decode, 5);
	return 2;
}

int
msgpack_open(lua_State *L)
{
	if (luaL_newmetatable(L, MP_BUFFER_MT)) {
		lua_pushcfunction(L, mpbuf_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	lua_pushcfunction(L, mp_codec);
	lua_setfield(L, -2, "msgpack_codec");
	return 0;
}
