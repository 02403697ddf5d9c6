/* Tests for src/format/pgcopy.c: a record's COPY text row column by
 * column (IPv4 and IPv6 tuples in inet text, counters, times, the end
 * reason), NULL for counters a record lacks and for an unknown start,
 * a namespace label escaped (backslash, tab, newline, other controls)
 * with UTF-8 kept and bytes that are not UTF-8 replaced, and the worst
 * case within CTD_PGCOPY_ROW_MAX. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "ctd/flows/record.h"
#include "ctd/format/pgcopy.h"

static void make(struct ctd_record *r, int family, const char *src,
		 const char *dst)
{
	memset(r, 0, sizeof(*r));
	r->flags = CTD_REC_COUNTERS;
	r->family = (uint8_t)family;
	r->proto = 17;
	r->id = 4130295734u;
	r->start_ns = 1795536579852123456ull;
	r->end_ns = 1795536580378000000ull;
	r->nsid = -1;     /* CTD_NSID_SELF: ctd's own namespace */
	assert_int_equal(inet_pton(family, src, r->tuple[0].src), 1);
	assert_int_equal(inet_pton(family, dst, r->tuple[0].dst), 1);
	assert_int_equal(inet_pton(family, dst, r->tuple[1].src), 1);
	assert_int_equal(inet_pton(family, src, r->tuple[1].dst), 1);
	r->tuple[0].sport = 40001;
	r->tuple[0].dport = 53;
	r->tuple[1].sport = 53;
	r->tuple[1].dport = 40001;
	r->cnt[0] = (struct ctd_counters){ 1, 38 };
	r->cnt[1] = (struct ctd_counters){ 2, 96 };
	r->mark = 4294967295u;
	r->zone = 7;
}

static const char *row(const struct ctd_record *r, char *buf)
{
	size_t n = ctd_pgcopy_row(r, buf);

	assert_true(n < CTD_PGCOPY_ROW_MAX);
	buf[n] = '\0';
	return buf;
}

static void test_ipv4(void **state)
{
	char buf[CTD_PGCOPY_ROW_MAX + 1];
	struct ctd_record r;

	(void)state;
	make(&r, AF_INET, "10.0.0.1", "192.0.2.53");
	assert_string_equal(row(&r, buf),
		"4130295734\t1795536579852123456\t\t2\t17\t"
		"10.0.0.1\t192.0.2.53\t40001\t53\t"
		"192.0.2.53\t10.0.0.1\t53\t40001\t"
		"1\t38\t2\t96\t1795536579852\t1795536580378\tdestroy\t7\t"
		"4294967295\n");
}

static void test_ipv6_nulls(void **state)
{
	char buf[CTD_PGCOPY_ROW_MAX + 1];
	struct ctd_record r;

	(void)state;
	make(&r, AF_INET6, "2001:db8::1", "::ffff:192.0.2.1");
	r.flags = 0;          /* no nf_conntrack_acct: no counters */
	r.start_ns = 0;       /* start unknown */
	r.end_reason = CTD_END_EXPIRED;
	assert_string_equal(row(&r, buf),
		"4130295734\t0\t\t10\t17\t"
		"2001:db8::1\t::ffff:192.0.2.1\t40001\t53\t"
		"::ffff:192.0.2.1\t2001:db8::1\t53\t40001\t"
		"\\N\t\\N\t\\N\t\\N\t\\N\t1795536580378\texpired\t7\t"
		"4294967295\n");
}

/* The netns column is the third. */
static const char *netns_col(struct ctd_record *r, const char *name,
			     char *buf)
{
	char *col, *end;

	r->nsid = 3;
	memset(r->netns, 0, sizeof(r->netns));
	memcpy(r->netns, name, strlen(name));
	row(r, buf);
	col = strchr(strchr(buf, '\t') + 1, '\t') + 1;
	end = strchr(col, '\t');
	*end = '\0';
	return col;
}

static void test_escaping(void **state)
{
	char buf[CTD_PGCOPY_ROW_MAX + 1];
	struct ctd_record r;

	(void)state;
	make(&r, AF_INET, "10.0.0.1", "10.0.0.2");
	assert_string_equal(netns_col(&r, "blue", buf), "blue");
	assert_string_equal(netns_col(&r, "a\\b\tc\nd\re\x01\x7f", buf),
			    "a\\\\b\\x09c\\x0ad\\x0de\\x01\\x7f");
	/* \. alone on a line would end COPY's data: never written as such. */
	assert_string_equal(netns_col(&r, "\\.", buf), "\\\\.");
	/* UTF-8 kept; a stray byte, an overlong form, a surrogate, a cut
	 * sequence each become '?'. */
	assert_string_equal(netns_col(&r, "gr\xc3\xbcn-\xe2\x82\xac", buf),
			    "gr\xc3\xbcn-\xe2\x82\xac");
	assert_string_equal(netns_col(&r, "a\xff" "b\xc0\xaf" "c\xed\xa0\x80"
				      "d\xe2\x82", buf), "a?b??c???d??");
	/* No name: nsid:N. */
	r.netns[0] = '\0';
	row(&r, buf);
	assert_non_null(strstr(buf, "\tnsid:3\t"));
}

/* The longest row fits: 47 control bytes (4 each), four IPv6
 * addresses at their longest, every number at its widest. */
static void test_worst_case(void **state)
{
	char buf[CTD_PGCOPY_ROW_MAX + 1];
	struct ctd_record r;

	(void)state;
	make(&r, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
	     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
	memset(r.tuple[1].src, 0xff, 16);
	memset(r.tuple[1].dst, 0xfe, 16);
	r.nsid = -2147483647;
	memset(r.netns, 0x01, sizeof(r.netns) - 1);
	r.netns[sizeof(r.netns) - 1] = '\0';
	for (int d = 0; d < 2; d++)
		r.cnt[d] = (struct ctd_counters){ UINT64_MAX, UINT64_MAX / 2 };
	r.start_ns = r.end_ns = UINT64_MAX;
	r.end_reason = CTD_END_NETNS_GONE;
	r.id = UINT32_MAX;
	row(&r, buf);
	assert_non_null(strstr(buf, "\t-1\t"));   /* > INT64_MAX, as SQLite */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_ipv6_nulls),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_worst_case),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
