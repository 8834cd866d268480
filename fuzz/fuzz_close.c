/* fuzz_close.c: proto_close_payload on arbitrary bytes against the rules of
 * RFC 6455 5.5.1 and 7.4 re-derived here (0 and *code only for acceptable
 * payloads, else 1002 or 1007, *code untouched), and
 * proto_close_code_sendable against the registry written out as a list. */
#include <limits.h>
#include <string.h>

#include "../csrc/proto.h"
#include "ref.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 6455 7.4.1 and the IANA registry: 1004 is reserved, 1005 and 1006
 * are for reporting only, 1015 (TLS failure) must not be sent, 1016-2999
 * are unassigned; 3000-3999 registered and 4000-4999 private use. */
static int
ref_code_ok(unsigned long code)
{
	static const unsigned defined[] = {
		1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
	};
	size_t i;

	for (i = 0; i < sizeof(defined) / sizeof(defined[0]); i++)
		if (code == defined[i])
			return 1;
	return code >= 3000 && code <= 4999;
}

/* What receiving this Close payload must produce: 0 with *code set, or
 * the code to fail the connection with. */
static int
ref_close(const unsigned char *p, size_t len, uint16_t *code)
{
	unsigned c;

	if (len == 0) {
		*code = 1005;   /* 7.1.5: no status code present */
		return 0;
	}
	if (len == 1)
		return 1002;    /* half a status code */
	if (len > 125)
		return 1002;    /* 5.5: control frame payloads are at most 125 bytes */
	c = p[0] * 256u + p[1];
	if (!ref_code_ok(c))
		return 1002;
	if (!ref_utf8_valid(p + 2, len - 2))
		return 1007;    /* 8.1: reason must be UTF-8 */
	*code = (uint16_t)c;
	return 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const unsigned long big[] = {
		65535, 65536, 65536 + 1000, 65536 + 3000, 0x7fffffffu, 0x80000000u,
		UINT_MAX - 1, UINT_MAX,
	};
	unsigned long c;
	size_t i;

	(void)argc, (void)argv;
	/* small enough to check every value once */
	for (c = 0; c <= 70000; c++)
		CHECK(proto_close_code_sendable((unsigned)c) == ref_code_ok(c),
		      "proto_close_code_sendable(%lu) = %d", c,
		      proto_close_code_sendable((unsigned)c));
	for (i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		CHECK(proto_close_code_sendable((unsigned)big[i]) == ref_code_ok(big[i]),
		      "proto_close_code_sendable(%lu)", big[i]);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint16_t unset = 0xabcd;   /* not a valid code, so never a result */
	uint16_t code = unset, want_code = unset;
	int r, want;

	r = proto_close_payload(data, size, &code);
	want = ref_close(data, size, &want_code);
	CHECK(r == 0 || r == 1002 || r == 1007, "returned %d (len %zu)", r, size);
	CHECK(r == want, "returned %d, reference %d (len %zu)", r, want, size);
	if (r == 0)
		CHECK(code == want_code, "code %u, reference %u", code, want_code);
	else
		CHECK(code == unset, "failed with %d but wrote code %u", r, code);

	/* the leading bytes as a code from Lua (any unsigned value) */
	if (size >= 4) {
		unsigned u;

		memcpy(&u, data, sizeof(u));
		CHECK(proto_close_code_sendable(u) == ref_code_ok(u),
		      "proto_close_code_sendable(%u)", u);
	}
	return 0;
}
