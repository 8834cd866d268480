/* crypt.c: one mechanism, checking a password against a crypt(3) hash
 * (bcrypt's "$2b$", "$2a$", "$2y$" and the other methods Debian's libxcrypt
 * knows), for lua/lws/socketio/admin.lua's basic authentication; the policy
 * (which hashes are accepted, who asks) is there.
 *
 *   core.crypt_check(password, hash) -> true | false
 *
 * false also for a password with a NUL byte (crypt(3) would see only its
 * start) and for a hash libxcrypt refuses. The comparison of the computed
 * hash with the stored one takes the same time wherever they differ. */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

static int
same_text(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char diff = (unsigned char)(alen != blen);
	size_t i, n = alen < blen ? alen : blen;

	for (i = 0; i < n; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

static int
l_crypt_check(lua_State *L)
{
	size_t plen, hlen;
	const char *password = luaL_checklstring(L, 1, &plen);
	const char *hash = luaL_checklstring(L, 2, &hlen);
	struct crypt_data *data;
	const char *out;
	int ok = 0;

	/* a hash crypt(3) can take: no NUL inside, shorter than its output */
	if (memchr(password, 0, plen) || memchr(hash, 0, hlen) || hlen == 0 ||
	    hlen >= CRYPT_OUTPUT_SIZE) {
		lua_pushboolean(L, 0);
		return 1;
	}
	/* about 32 KiB: on the heap, not the stack of a Lua call */
	data = calloc(1, sizeof(*data));
	if (!data)
		return luaL_error(L, "crypt_check: out of memory");
	out = crypt_rn(password, hash, data, (int)sizeof(*data));
	/* NULL, or a failure token starting with '*', when the hash is refused */
	if (out && out[0] != '*')
		ok = same_text(out, strlen(out), hash, hlen);
	explicit_bzero(data, sizeof(*data));
	free(data);
	lua_pushboolean(L, ok);
	return 1;
}

int
crypt_open(lua_State *L)
{
	lua_pushcfunction(L, l_crypt_check);
	lua_setfield(L, -2, "crypt_check");
	return 0;
}
