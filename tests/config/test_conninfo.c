/* Tests for src/config/conninfo.c: passwords hidden in both of libpq's
 * syntaxes (bare, quoted with escapes, URI user:password@ and query
 * parameters), everything else copied as written, a short buffer cut
 * with its NUL; and ctd -t -v's view of the postgresql setting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/outputs/outputs.h"
#include "ctd/config/config.h"
#include "ctd/config/conninfo.h"

static void masks(const char *in, const char *want)
{
	char buf[512];

	assert_int_equal(ctd_conninfo_mask(in, buf, sizeof(buf)), strlen(want));
	assert_string_equal(buf, want);
}

static void test_keywords(void **state)
{
	(void)state;
	masks("host=/run/pg dbname=flows", "host=/run/pg dbname=flows");
	masks("host=db password=s3cret user=ctd",
	      "host=db password=(hidden) user=ctd");
	masks("password = 'a b\\' c' dbname=x", "password = (hidden) dbname=x");
	masks("sslpassword=k\\ ey host=h", "sslpassword=(hidden) host=h");
	masks("  password=x", "  password=(hidden)");
	masks("application_name='pass word' user=u",
	      "application_name='pass word' user=u");
	masks("password=", "password=(hidden)");
	masks("junk", "junk");
}

static void test_uri(void **state)
{
	(void)state;
	masks("postgresql://ctd:s3cret@db.example:5432/flows",
	      "postgresql://ctd:(hidden)@db.example:5432/flows");
	masks("postgres://ctd@db/flows?sslmode=require&password=x&a=b",
	      "postgres://ctd@db/flows?sslmode=require&password=(hidden)&a=b");
	masks("postgresql:///flows?host=/run/pg",
	      "postgresql:///flows?host=/run/pg");
	masks("postgresql://db/x:y@z", "postgresql://db/x:y@z");
}

static void test_short_buffer(void **state)
{
	char buf[16];

	(void)state;
	assert_int_equal(ctd_conninfo_mask("password=secret host=h", buf,
					   sizeof(buf)), 24);
	assert_string_equal(buf, "password=(hidde");
	assert_int_equal(ctd_conninfo_mask("x", buf, 0), 1);
}

/* ctd -t -v writes every setting: the password must not be there. */
static void test_config_write_hides(void **state)
{
	struct ctd_config c;
	char err[256], *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	ctd_config_init(&c, ctd_output_settings);
	assert_int_equal(ctd_config_set(&c, "postgresql",
		"host=/tmp dbname=f password=s3cret", err, sizeof(err)), 0);
	assert_int_equal(ctd_config_get(&c, "postgresql", err, sizeof(err)), 0);
	assert_string_equal(err, "host=/tmp dbname=f password=(hidden)");
	f = open_memstream(&text, &len);
	ctd_config_write(&c, f);
	fclose(f);
	assert_null(strstr(text, "s3cret"));
	assert_non_null(strstr(text,
		"postgresql              \"host=/tmp dbname=f password=(hidden)\""));
	free(text);
	assert_int_equal(ctd_config_set(&c, "postgresql", "none", err,
					sizeof(err)), 0);
	assert_int_equal(ctd_config_get(&c, "postgresql", err, sizeof(err)), 0);
	assert_string_equal(err, "none");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keywords),
		cmocka_unit_test(test_uri),
		cmocka_unit_test(test_short_buffer),
		cmocka_unit_test(test_config_write_hides),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
