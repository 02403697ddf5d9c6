/* Tests for src/filter.c: each criterion alone (protocol, prefixes to
 * keep and to ignore in both families and at odd prefix lengths, TCP
 * state, zone, mark/mask, network namespace), all together, "any" clearing one, and the
 * texts it refuses. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <linux/netfilter/nf_conntrack_tcp.h>

#include "ctd/flows/filter.h"
#include "ctd/flows/record.h"
#include "ctd/kernel/ctevent.h"

static char err[200];

static struct ctd_record rec(int family, uint8_t proto, const char *src,
			     const char *dst)
{
	struct ctd_record r;

	memset(&r, 0, sizeof(r));
	r.family = (uint8_t)family;
	r.proto = proto;
	assert_int_equal(inet_pton(family, src, r.tuple[CTD_DIR_ORIG].src), 1);
	assert_int_equal(inet_pton(family, dst, r.tuple[CTD_DIR_ORIG].dst), 1);
	return r;
}

static void set(struct ctd_filter *f, enum ctd_filter_key k, const char *text)
{
	if (ctd_filter_set(f, k, text, err, sizeof(err)) != 0)
		fail_msg("%s: %s", text, err);
}

static void test_empty_matches_all(void **state)
{
	struct ctd_filter *f = ctd_filter_new();
	struct ctd_record r = rec(AF_INET, IPPROTO_UDP, "10.0.0.1", "10.0.0.2");

	(void)state;
	assert_false(ctd_filter_active(f));
	assert_true(ctd_filter_match(f, &r));
	ctd_filter_free(f);
}

static void test_proto(void **state)
{
	struct ctd_filter *f = ctd_filter_new();
	struct ctd_record udp = rec(AF_INET, IPPROTO_UDP, "10.0.0.1", "10.0.0.2");
	struct ctd_record gre = rec(AF_INET, 47, "10.0.0.1", "10.0.0.2");
	struct ctd_record tcp = rec(AF_INET6, IPPROTO_TCP, "::1", "::2");

	(void)state;
	set(f, CTD_FILTER_PROTO, "tcp,47");
	assert_true(ctd_filter_active(f));
	assert_false(ctd_filter_match(f, &udp));
	assert_true(ctd_filter_match(f, &gre));
	assert_true(ctd_filter_match(f, &tcp));
	set(f, CTD_FILTER_PROTO, "any");
	assert_true(ctd_filter_match(f, &udp));
	assert_false(ctd_filter_active(f));
	ctd_filter_free(f);
}

static void test_prefixes(void **state)
{
	struct ctd_filter *f = ctd_filter_new();
	struct ctd_record in4 = rec(AF_INET, IPPROTO_UDP, "10.1.2.3", "192.0.2.9");
	struct ctd_record out4 = rec(AF_INET, IPPROTO_UDP, "11.0.0.1", "192.0.2.9");
	struct ctd_record edge = rec(AF_INET, IPPROTO_UDP, "172.31.255.255", "192.0.2.9");
	struct ctd_record beyond = rec(AF_INET, IPPROTO_UDP, "172.32.0.0", "192.0.2.9");
	struct ctd_record in6 = rec(AF_INET6, IPPROTO_UDP, "2001:db8:1::5", "2001:db8::9");
	struct ctd_record out6 = rec(AF_INET6, IPPROTO_UDP, "2001:db9::5", "2001:db8::9");

	(void)state;
	set(f, CTD_FILTER_SRC, "10.0.0.0/8,172.16.0.0/12,2001:db8::/32");
	assert_true(ctd_filter_match(f, &in4));
	assert_false(ctd_filter_match(f, &out4));
	assert_true(ctd_filter_match(f, &edge));
	assert_false(ctd_filter_match(f, &beyond));
	assert_true(ctd_filter_match(f, &in6));
	assert_false(ctd_filter_match(f, &out6));
	/* An IPv4 prefix never matches an IPv6 address with the same bytes. */
	set(f, CTD_FILTER_SRC, "32.1.13.184/32");
	assert_false(ctd_filter_match(f, &in6));
	set(f, CTD_FILTER_SRC, "any");
	set(f, CTD_FILTER_IGNORE_SRC, "10.1.2.3");
	set(f, CTD_FILTER_IGNORE_DST, "2001:db8::/120");
	assert_false(ctd_filter_match(f, &in4));
	assert_true(ctd_filter_match(f, &out4));
	assert_false(ctd_filter_match(f, &in6));
	set(f, CTD_FILTER_DST, "192.0.2.0/25");
	assert_true(ctd_filter_match(f, &out4));
	assert_false(ctd_filter_match(f, &out6));
	ctd_filter_free(f);
}

static void test_state_zone_mark(void **state)
{
	struct ctd_filter *f = ctd_filter_new();
	struct ctd_record t = rec(AF_INET, IPPROTO_TCP, "10.0.0.1", "10.0.0.2");
	struct ctd_record u = rec(AF_INET, IPPROTO_UDP, "10.0.0.1", "10.0.0.2");

	(void)state;
	set(f, CTD_FILTER_TCP_STATE, "ESTABLISHED,time_wait");
	t.flags |= CTD_REC_TCPSTATE;
	t.tcp_state = TCP_CONNTRACK_TIME_WAIT;
	assert_true(ctd_filter_match(f, &t));
	t.tcp_state = TCP_CONNTRACK_SYN_SENT;
	assert_false(ctd_filter_match(f, &t));
	assert_true(ctd_filter_match(f, &u));     /* not TCP: not judged */
	set(f, CTD_FILTER_TCP_STATE, "any");
	set(f, CTD_FILTER_ZONE, "0,7");
	u.zone = 7;
	assert_true(ctd_filter_match(f, &u));
	u.zone = 8;
	assert_false(ctd_filter_match(f, &u));
	set(f, CTD_FILTER_ZONE, "any");
	set(f, CTD_FILTER_MARK, "0x10/0xf0");
	u.mark = 0x1234519;
	assert_true(ctd_filter_match(f, &u));
	u.mark = 0x20;
	assert_false(ctd_filter_match(f, &u));
	set(f, CTD_FILTER_MARK, "42");
	u.mark = 42;
	assert_true(ctd_filter_match(f, &u));
	u.mark = 43;
	assert_false(ctd_filter_match(f, &u));
	ctd_filter_free(f);
}

static void test_bad_texts(void **state)
{
	static const struct {
		enum ctd_filter_key key;
		const char *text;
	} bad[] = {
		{ CTD_FILTER_PROTO, "tcp,xyz" }, { CTD_FILTER_PROTO, "256" },
		{ CTD_FILTER_PROTO, "," }, { CTD_FILTER_PROTO, "" },
		{ CTD_FILTER_SRC, "10.0.0.0/33" }, { CTD_FILTER_SRC, "::/129" },
		{ CTD_FILTER_SRC, "10.0.0" }, { CTD_FILTER_DST, "host.example" },
		{ CTD_FILTER_TCP_STATE, "OPEN" }, { CTD_FILTER_ZONE, "65536" },
		{ CTD_FILTER_ZONE, "-1" }, { CTD_FILTER_MARK, "0x10/" },
		{ CTD_FILTER_MARK, "0x1ffffffff" }, { CTD_FILTER_MARK, "ten" },
	};
	struct ctd_filter *f = ctd_filter_new();
	struct ctd_record u = rec(AF_INET, IPPROTO_UDP, "10.0.0.1", "10.0.0.2");

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ctd_filter_set(f, bad[i].key, bad[i].text, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted %s", bad[i].text);
		assert_non_null(strstr(err, "or any"));
		/* A refused text leaves no half-set criterion behind. */
		assert_true(ctd_filter_match(f, &u));
	}
	ctd_filter_free(f);
}

/* NEW and UPDATE events (the lines of ctd -f) by what they carry. */
static void test_events(void **state)
{
	struct ctd_filter *f = ctd_filter_new();
	struct ctd_event ev;

	(void)state;
	memset(&ev, 0, sizeof(ev));
	ev.type = CTD_EV_NEW;
	ev.family = AF_INET;
	ev.proto = IPPROTO_TCP;
	ev.zone = 3;
	assert_int_equal(inet_pton(AF_INET, "10.1.2.3", ev.tuple[CTD_DIR_ORIG].src), 1);
	assert_int_equal(inet_pton(AF_INET, "192.0.2.9", ev.tuple[CTD_DIR_ORIG].dst), 1);
	assert_true(ctd_filter_match_event(f, &ev, NULL));
	set(f, CTD_FILTER_SRC, "10.0.0.0/8");
	set(f, CTD_FILTER_ZONE, "3");
	assert_true(ctd_filter_match_event(f, &ev, NULL));
	set(f, CTD_FILTER_TCP_STATE, "ESTABLISHED");
	assert_false(ctd_filter_match_event(f, &ev, NULL));  /* no state given */
	ev.have |= CTD_HAVE_TCPSTATE;
	ev.tcp_state = TCP_CONNTRACK_SYN_SENT;
	assert_false(ctd_filter_match_event(f, &ev, NULL));
	ev.tcp_state = TCP_CONNTRACK_ESTABLISHED;
	assert_true(ctd_filter_match_event(f, &ev, NULL));
	set(f, CTD_FILTER_MARK, "0x10/0xf0");
	assert_false(ctd_filter_match_event(f, &ev, NULL));
	ev.have |= CTD_HAVE_MARK;
	ev.mark = 0x13;
	assert_true(ctd_filter_match_event(f, &ev, NULL));
	set(f, CTD_FILTER_IGNORE_DST, "192.0.2.0/24");
	assert_false(ctd_filter_match_event(f, &ev, NULL));
	ctd_filter_free(f);
}

/* Namespaces by the name records show: "self" for ctd's own, the
 * /run/netns name, "nsid:N" for one without a name. */
static void test_netns(void **state)
{
	struct ctd_filter *f = ctd_filter_new();
	struct ctd_record own = rec(AF_INET, IPPROTO_UDP, "10.0.0.1", "10.0.0.2");
	struct ctd_record red = own, anon = own;
	struct ctd_event ev;

	(void)state;
	own.nsid = CTD_NSID_SELF;
	red.nsid = 3;
	strcpy(red.netns, "red");
	anon.nsid = 7;
	set(f, CTD_FILTER_NETNS, "red,self");
	assert_true(ctd_filter_active(f));
	assert_true(ctd_filter_match(f, &own));
	assert_true(ctd_filter_match(f, &red));
	assert_false(ctd_filter_match(f, &anon));
	set(f, CTD_FILTER_NETNS, "nsid:7");
	assert_false(ctd_filter_match(f, &red));
	assert_true(ctd_filter_match(f, &anon));
	set(f, CTD_FILTER_NETNS, "any");
	set(f, CTD_FILTER_IGNORE_NETNS, "self,red");
	assert_false(ctd_filter_match(f, &own));
	assert_false(ctd_filter_match(f, &red));
	assert_true(ctd_filter_match(f, &anon));
	/* ctd -f: the event's namespace by the name it is given. */
	memset(&ev, 0, sizeof(ev));
	ev.type = CTD_EV_NEW;
	ev.family = AF_INET;
	ev.proto = IPPROTO_UDP;
	ev.nsid = 3;
	assert_false(ctd_filter_match_event(f, &ev, "red"));
	assert_true(ctd_filter_match_event(f, &ev, "blue"));
	assert_true(ctd_filter_match_event(f, &ev, NULL));    /* nsid:3 */
	ev.nsid = CTD_NSID_SELF;
	assert_false(ctd_filter_match_event(f, &ev, NULL));
	ctd_filter_free(f);
}

static void test_netns_bad(void **state)
{
	static const char *const bad[] = {
		"", ",", "a/b", "..", ".",
		"a-name-longer-than-the-47-bytes-records-can-carry",
	};
	struct ctd_filter *f = ctd_filter_new();
	char many[1024] = "n0";

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ctd_filter_set(f, CTD_FILTER_NETNS, bad[i], err,
						sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "namespace names"));
	for (int i = 1; i <= 64; i++)    /* 65 names: one too many */
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
			 ",n%d", i);
	assert_int_equal(ctd_filter_set(f, CTD_FILTER_IGNORE_NETNS, many, err,
					sizeof(err)), -EINVAL);
	*strrchr(many, ',') = '\0';
	set(f, CTD_FILTER_IGNORE_NETNS, many);
	assert_true(ctd_filter_active(f));
	ctd_filter_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_matches_all),
		cmocka_unit_test(test_proto),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_state_zone_mark),
		cmocka_unit_test(test_bad_texts),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_netns),
		cmocka_unit_test(test_netns_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
