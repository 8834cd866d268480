/* msgbuf.c: one message payload, allocated once with the LWS_PRE headroom
 * lws_write needs, and shared by every send queue it is pushed onto
 * (broadcast encodes once). Freed when the last queue releases it. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

struct msgbuf *
msgbuf_new(const void *p, size_t len, int binary)
{
	struct msgbuf *m = malloc(sizeof(*m) + LWS_PRE + len);

	if (!m)
		return NULL;
	m->refs = 1;
	m->binary = (uint8_t)!!binary;
	m->droppable = 0;
	m->key = NULL;
	m->len = len;
	if (len)
		memcpy(m->data + LWS_PRE, p, len);
	return m;
}

int
msgbuf_set_key(struct msgbuf *m, const char *key, size_t klen)
{
	m->key = malloc(klen + 1);
	if (!m->key)
		return -1;
	memcpy(m->key, key, klen);
	m->key[klen] = '\0';
	return 0;
}

void
msgbuf_unref(struct msgbuf *m)
{
	if (m && --m->refs == 0) {
		free(m->key);
		free(m);
	}
}
