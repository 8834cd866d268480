/*
 * c_echo: the plain-C echo server the benchmarks compare against, written
 * the way lws's minimal-ws-server-echo is: default poll loop, a ring of
 * received chunks per connection, one lws_write per WRITEABLE, rx flow
 * control when the ring is nearly full. No permessage-deflate.
 *
 *   c_echo --port N     (0 = any free port; binds 127.0.0.1)
 */

#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the example's 4096 entries would cost 96 KiB per connection; 64 is
 * plenty for 16 messages in flight and keeps the idle figure honest */
#define RING_DEPTH 64

struct msg {
	void *payload;          /* malloc'd, LWS_PRE headroom first */
	size_t len;
	char binary, first, final;
};

struct pss {
	struct lws_ring *ring;
	uint32_t tail;
	uint8_t flow_controlled;
};

static volatile sig_atomic_t interrupted;
static unsigned long echoed;    /* whole messages, reported at exit */

static void
destroy_message(void *_msg)
{
	struct msg *msg = _msg;

	free(msg->payload);
	msg->payload = NULL;
	msg->len = 0;
}

static int
callback_echo(struct lws *wsi, enum lws_callback_reasons reason, void *user,
	      void *in, size_t len)
{
	struct pss *pss = (struct pss *)user;
	const struct msg *pmsg;
	struct msg amsg;
	int m, n, flags;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		pss->ring = lws_ring_create(sizeof(struct msg), RING_DEPTH,
					    destroy_message);
		if (!pss->ring)
			return 1;
		pss->tail = 0;
		break;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		pmsg = lws_ring_get_element(pss->ring, &pss->tail);
		if (!pmsg)
			break;

		flags = lws_write_ws_flags(pmsg->binary ? LWS_WRITE_BINARY :
					   LWS_WRITE_TEXT, pmsg->first, pmsg->final);

		/* notice we allowed for LWS_PRE in the payload already */
		m = lws_write(wsi, ((unsigned char *)pmsg->payload) + LWS_PRE,
			      pmsg->len, (enum lws_write_protocol)flags);
		if (m < (int)pmsg->len) {
			lwsl_err("ERROR %d writing to ws socket\n", m);
			return -1;
		}
		if (pmsg->final)
			echoed++;

		/*
		 * No permessage-deflate here, so lws is done with the payload
		 * once lws_write() returns: consume now (the example defers
		 * this to the next WRITEABLE only because of pmd).
		 */
		lws_ring_consume_single_tail(pss->ring, &pss->tail, 1);
		if (lws_ring_get_element(pss->ring, &pss->tail))
			lws_callback_on_writable(wsi);

		if (pss->flow_controlled &&
		    (int)lws_ring_get_count_free_elements(pss->ring) > RING_DEPTH - 5) {
			lws_rx_flow_control(wsi, 1);
			pss->flow_controlled = 0;
		}
		break;

	case LWS_CALLBACK_RECEIVE:
		/* each chunk is echoed as a fragment with the same first/final
		 * flags, so messages split across reads stay whole on the wire */
		amsg.first = (char)lws_is_first_fragment(wsi);
		amsg.final = (char)lws_is_final_fragment(wsi);
		amsg.binary = (char)lws_frame_is_binary(wsi);
		n = (int)lws_ring_get_count_free_elements(pss->ring);
		if (!n) {
			lwsl_user("dropping!\n");
			break;
		}

		amsg.len = len;
		/* notice we over-allocate by LWS_PRE */
		amsg.payload = malloc(LWS_PRE + len);
		if (!amsg.payload) {
			lwsl_user("OOM: dropping\n");
			break;
		}

		memcpy((char *)amsg.payload + LWS_PRE, in, len);
		if (!lws_ring_insert(pss->ring, &amsg, 1)) {
			destroy_message(&amsg);
			lwsl_user("dropping!\n");
			break;
		}
		lws_callback_on_writable(wsi);

		/* stop reading before the ring overflows; TCP pushes back */
		if (n < 3 && !pss->flow_controlled) {
			pss->flow_controlled = 1;
			lws_rx_flow_control(wsi, 0);
		}
		break;

	case LWS_CALLBACK_CLOSED:
		if (pss->ring)
			lws_ring_destroy(pss->ring);
		pss->ring = NULL;
		break;

	default:
		break;
	}

	return 0;
}

/* first protocol, so ws upgrades without a subprotocol land here */
static struct lws_protocols protocols[] = {
	{ "echo", callback_echo, sizeof(struct pss), 65536, 0, NULL, 0 },
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
		fprintf(stderr, "c_echo: lws init failed\n");
		return 1;
	}

	/* port 0 asks the kernel for a free port; tell the runner which */
	port = lws_get_vhost_listen_port(lws_get_vhost_by_name(context, "default"));
	printf("listening on ws://127.0.0.1:%d/\n", port);
	fflush(stdout);

	while (n >= 0 && !interrupted)
		n = lws_service(context, 0);

	lws_context_destroy(context);
	fprintf(stderr, "c_echo: %lu messages echoed\n", echoed);

	return 0;
}
