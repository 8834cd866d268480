/*
 * c_broadcast: the plain-C broadcast server the benchmarks compare against.
 * Every message received from any client goes to every connected client,
 * the sender included, in the style of lws's minimal-ws-server-ring: a
 * list of live pss, a ring of pending messages per connection, one
 * lws_write per WRITEABLE, and laggards culled when their ring is full.
 *
 *   c_broadcast --port N     (0 = any free port; binds 127.0.0.1)
 */

#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Per-connection rings of pointers to one shared message, rather than the
 * example's single shared ring: with one ring, each consume by an oldest
 * tail walks every connection, which is quadratic at 1,000 receivers.
 */
#define RING_DEPTH 1024

struct bmsg {
	unsigned int refs;      /* rings still holding it */
	size_t len;
	int binary;
	unsigned char buf[];    /* LWS_PRE headroom, then the payload */
};

struct pss {
	struct pss *pss_list;
	struct lws *wsi;
	struct lws_ring *ring;  /* of struct bmsg *, waiting to go out */
	unsigned char *rx;      /* message being reassembled from chunks */
	size_t rx_len, rx_cap;
	unsigned int culled:1;
};

struct vhd {
	struct pss *pss_list;   /* linked-list of live pss */
};

static volatile sig_atomic_t interrupted;
static unsigned long received, written;    /* reported at exit */

static void
bmsg_unref(struct bmsg *m)
{
	if (!--m->refs)
		free(m);
}

static void
destroy_element(void *el)
{
	bmsg_unref(*(struct bmsg **)el);
}

static int
rx_append(struct pss *pss, const void *in, size_t len)
{
	if (!len)
		return 0;
	if (pss->rx_len + len > pss->rx_cap) {
		size_t cap = pss->rx_cap ? pss->rx_cap : 1024;
		unsigned char *p;

		while (cap < pss->rx_len + len)
			cap *= 2;
		p = realloc(pss->rx, cap);
		if (!p)
			return -1;
		pss->rx = p;
		pss->rx_cap = cap;
	}
	memcpy(pss->rx + pss->rx_len, in, len);
	pss->rx_len += len;

	return 0;
}

static void
broadcast(struct vhd *vhd, const unsigned char *data, size_t len, int binary)
{
	struct bmsg *m = malloc(sizeof(*m) + LWS_PRE + len);

	if (!m) {
		lwsl_user("OOM: dropping\n");
		return;
	}
	/* one copy for everyone; server-side lws_write only touches LWS_PRE */
	m->refs = 1;
	m->len = len;
	m->binary = binary;
	memcpy(m->buf + LWS_PRE, data, len);

	lws_start_foreach_llp_safe(struct pss **, ppss, vhd->pss_list, pss_list) {
		struct pss *p = *ppss;

		if (!lws_ring_get_count_free_elements(p->ring)) {
			lwsl_user("Killing lagging client %p\n", p->wsi);
			/* we may kill the wsi we came in on, so defer the close */
			lws_set_timeout(p->wsi, PENDING_TIMEOUT_LAGGING,
					LWS_TO_KILL_ASYNC);
			p->culled = 1;
			lws_ll_fwd_remove(struct pss, pss_list, p, vhd->pss_list);
			continue;
		}
		m->refs++;
		lws_ring_insert(p->ring, &m, 1);
		lws_callback_on_writable(p->wsi);
	} lws_end_foreach_llp_safe(ppss);

	bmsg_unref(m);
}

static int
callback_broadcast(struct lws *wsi, enum lws_callback_reasons reason,
		   void *user, void *in, size_t len)
{
	struct pss *pss = (struct pss *)user;
	struct vhd *vhd = (struct vhd *)lws_protocol_vh_priv_get(
				lws_get_vhost(wsi), lws_get_protocol(wsi));
	struct bmsg *const *pm;
	int m;

	switch (reason) {
	case LWS_CALLBACK_PROTOCOL_INIT:
		vhd = lws_protocol_vh_priv_zalloc(lws_get_vhost(wsi),
				lws_get_protocol(wsi), sizeof(struct vhd));
		if (!vhd)
			return -1;
		break;

	case LWS_CALLBACK_ESTABLISHED:
		pss->ring = lws_ring_create(sizeof(struct bmsg *), RING_DEPTH,
					    destroy_element);
		if (!pss->ring)
			return 1;
		pss->wsi = wsi;
		/* add ourselves to the list of live pss held in the vhd */
		lws_ll_fwd_insert(pss, pss_list, vhd->pss_list);
		break;

	case LWS_CALLBACK_CLOSED:
		/* remove our closing pss from the list of live pss */
		lws_ll_fwd_remove(struct pss, pss_list, pss, vhd->pss_list);
		if (pss->ring)
			lws_ring_destroy(pss->ring);    /* unrefs what is left */
		pss->ring = NULL;
		free(pss->rx);
		pss->rx = NULL;
		break;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (pss->culled)
			break;
		pm = lws_ring_get_element(pss->ring, NULL);
		if (!pm)
			break;

		/* notice we allowed for LWS_PRE in the payload already */
		m = lws_write(wsi, (*pm)->buf + LWS_PRE, (*pm)->len,
			      (*pm)->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
		if (m < (int)(*pm)->len) {
			lwsl_err("ERROR %d writing to ws socket\n", m);
			return -1;
		}
		written++;
		lws_ring_consume(pss->ring, NULL, NULL, 1);  /* unrefs it */

		/* more to do for us? */
		if (lws_ring_get_element(pss->ring, NULL))
			lws_callback_on_writable(wsi);
		break;

	case LWS_CALLBACK_RECEIVE:
		/* a message may arrive in several chunks: relay it whole */
		if (rx_append(pss, in, len)) {
			lwsl_err("OOM: closing\n");
			return -1;
		}
		if (!lws_is_final_fragment(wsi))
			break;
		received++;
		broadcast(vhd, pss->rx, pss->rx_len, lws_frame_is_binary(wsi));
		pss->rx_len = 0;
		break;

	default:
		break;
	}

	return 0;
}

/* first protocol, so ws upgrades without a subprotocol land here */
static struct lws_protocols protocols[] = {
	{ "broadcast", callback_broadcast, sizeof(struct pss), 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 } /* terminator */
};

static void
sigint_handler(int sig)
{
	(void)sig;
	interrupted = 1;
}

int
main(int argc, const char **argv)
{
	struct lws_context_creation_info info;
	struct lws_context *context;
	const char *p;
	int n = 0, port = 0;

	if ((p = lws_cmdline_option(argc, argv, "--port")))
		port = atoi(p);

	signal(SIGINT, sigint_handler);
	signal(SIGTERM, sigint_handler);
	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

	memset(&info, 0, sizeof info); /* otherwise uninitialized garbage */
	info.port = port;
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	/*
	 * Without DISABLE_IPV6, lws 4.1.6 binds an IPv6 socket and parses an
	 * IPv4 iface into the wrong sockaddr field: it listens on [::]:port,
	 * every interface. IPv4 only, it binds 127.0.0.1 as asked.
	 */
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 |
		       LWS_SERVER_OPTION_DISABLE_IPV6;

	context = lws_create_context(&info);
	if (!context) {
		fprintf(stderr, "c_broadcast: lws init failed\n");
		return 1;
	}

	/* port 0 asks the kernel for a free port; tell the runner which */
	port = lws_get_vhost_listen_port(lws_get_vhost_by_name(context, "default"));
	printf("listening on ws://127.0.0.1:%d/\n", port);
	fflush(stdout);

	while (n >= 0 && !interrupted)
		n = lws_service(context, 0);

	lws_context_destroy(context);
	fprintf(stderr, "c_broadcast: %lu messages received, %lu frames written\n",
		received, written);

	return 0;
}
