/* Tests for src/control/listsort.c: ctd -l lines as ctd_textfmt_flow
 * writes them, sorted by bytes, packets and age, largest first, ties and
 * lines without counters in their order, "# end" last; bad key names. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/control/listsort.h"
#include "ctd/flows/record.h"
#include "ctd/format/textfmt.h"

#define NOW_NS 1795536000000000000ULL

/* A UDP flow from port sport, age_s old, with the given counters; flags
 * 0 leaves the counters out (no nf_conntrack_acct). */
static void flow_line(FILE *f, uint16_t sport, uint64_t age_s,
		      uint64_t packets, uint64_t bytes, unsigned flags)
{
	struct ctd_record rec;
	char buf[CTD_TEXT_MAX];
	size_t n;

	memset(&rec, 0, sizeof(rec));
	rec.nsid = CTD_NSID_SELF;
	rec.family = AF_INET;
	rec.proto = IPPROTO_UDP;
	inet_pton(AF_INET, "10.0.0.1", rec.tuple[CTD_DIR_ORIG].src);
	inet_pton(AF_INET, "10.0.0.2", rec.tuple[CTD_DIR_ORIG].dst);
	inet_pton(AF_INET, "10.0.0.2", rec.tuple[CTD_DIR_REPLY].src);
	inet_pton(AF_INET, "10.0.0.1", rec.tuple[CTD_DIR_REPLY].dst);
	rec.tuple[CTD_DIR_ORIG].sport = rec.tuple[CTD_DIR_REPLY].dport = sport;
	rec.tuple[CTD_DIR_ORIG].dport = rec.tuple[CTD_DIR_REPLY].sport = 53;
	rec.flags = flags;
	rec.start_ns = NOW_NS - age_s * 1000000000ULL;
	rec.end_ns = NOW_NS;
	rec.cnt[CTD_DIR_ORIG] = (struct ctd_counters){ packets, bytes };
	rec.cnt[CTD_DIR_REPLY] = (struct ctd_counters){ 1, 10 };
	n = ctd_textfmt_flow(&rec, buf, sizeof(buf));
	assert_true(n > 0);
	fwrite(buf, 1, n, f);
}

/* The source ports of the sorted listing, in order, as "p,p,...". */
static void sorted_ports(const char *text, enum ctd_listsort_key key,
			 char *ret, size_t cap)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	assert_int_equal(ctd_listsort_print(text, strlen(text), key, f), 0);
	fclose(f);
	ret[0] = '\0';
	for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
		const char *p = strstr(l, "10.0.0.1:");

		strncat(ret, p ? p + 9 : l, cap - strlen(ret) - 2);
		*strchrnul(ret, ' ') = '\0';
		strcat(ret, ",");
	}
	assert_true(len > 0 && out != NULL);
	free(out);
}

static void test_sort(void **state)
{
	char *text = NULL, got[256];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	flow_line(f, 1001, 5, 10, 100, CTD_REC_COUNTERS);
	flow_line(f, 1002, 50, 2, 5000, CTD_REC_COUNTERS);
	flow_line(f, 1003, 1, 0, 0, 0);                 /* no counters */
	flow_line(f, 1004, 20, 30, 100, CTD_REC_COUNTERS); /* ties 1001 */
	fputs("# end\n", f);
	fclose(f);
	sorted_ports(text, CTD_LISTSORT_BYTES, got, sizeof(got));
	assert_string_equal(got, "1002,1001,1004,1003,#,");
	sorted_ports(text, CTD_LISTSORT_PACKETS, got, sizeof(got));
	assert_string_equal(got, "1004,1001,1002,1003,#,");
	sorted_ports(text, CTD_LISTSORT_AGE, got, sizeof(got));
	assert_string_equal(got, "1002,1004,1001,1003,#,");
	free(text);
}

static void test_parse(void **state)
{
	enum ctd_listsort_key key;

	(void)state;
	assert_int_equal(ctd_listsort_parse("bytes", &key), 0);
	assert_int_equal(key, CTD_LISTSORT_BYTES);
	assert_int_equal(ctd_listsort_parse("age", &key), 0);
	assert_int_equal(key, CTD_LISTSORT_AGE);
	assert_int_equal(ctd_listsort_parse("size", &key), -EINVAL);
	assert_int_equal(ctd_listsort_parse("", &key), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
