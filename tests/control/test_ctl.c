/* Tests for the control socket's request parser (src/ctl.c): a request
 * is one printable line, or for the metrics endpoint an HTTP request
 * ending in an empty line; anything longer than the limit or not text is
 * refused, and a partial request asks for more. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/control/ctl.h"

static int parse(const char *s, bool http, char *line)
{
	return ctd_ctl_request_parse(s, strlen(s), http, line, 64);
}

static void test_line(void **state)
{
	char line[64];

	(void)state;
	assert_int_equal(parse("stats json\n", false, line), 1);
	assert_string_equal(line, "stats json");
	assert_int_equal(parse("top\r\n", false, line), 1);
	assert_string_equal(line, "top");
	assert_int_equal(parse("flo", false, line), 0);
	assert_int_equal(parse("", false, line), 0);
	assert_int_equal(parse("\n", false, line), 1);
	assert_string_equal(line, "");
}

static void test_in_place(void **state)
{
	char buf[64] = "flows json\nmore";

	(void)state;
	assert_int_equal(ctd_ctl_request_parse(buf, strlen(buf), false, buf,
					       sizeof(buf)), 1);
	assert_string_equal(buf, "flows json");
}

static void test_refused(void **state)
{
	char big[CTD_CTL_MAX_REQUEST + 8], line[64];

	(void)state;
	assert_int_equal(ctd_ctl_request_parse("st\0ats\n", 7, false, line, 64),
			 -EBADMSG);
	assert_int_equal(parse("stats\x01\n", false, line), -EBADMSG);
	assert_int_equal(parse("caf\xc3\xa9\n", false, line), -EBADMSG);
	memset(big, 'x', sizeof(big));
	assert_int_equal(ctd_ctl_request_parse(big, CTD_CTL_MAX_REQUEST - 1,
					       false, line, 64), -EMSGSIZE);
	assert_int_equal(ctd_ctl_request_parse(big, CTD_CTL_MAX_REQUEST - 2,
					       false, line, 64), 0);
	big[CTD_CTL_MAX_REQUEST + 2] = '\n';
	assert_int_equal(ctd_ctl_request_parse(big, sizeof(big), false, line,
					       64), -EMSGSIZE);
	/* Bytes after the request are not looked at. */
	assert_int_equal(ctd_ctl_request_parse("top\n\x01", 5, false, line, 64),
			 1);
}

static void test_http(void **state)
{
	char line[64];

	(void)state;
	assert_int_equal(parse("GET /metrics HTTP/1.0\r\nHost: x\r\n", true,
			       line), 0);
	assert_int_equal(parse("GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n",
			       true, line), 1);
	assert_string_equal(line, "GET /metrics HTTP/1.0");
	assert_int_equal(parse("GET /metrics\n\n", true, line), 1);
	assert_string_equal(line, "GET /metrics");
	assert_int_equal(parse("GET /\x7f\r\n\r\n", true, line), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line),
		cmocka_unit_test(test_in_place),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_http),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
