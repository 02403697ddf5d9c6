/* Tests for src/base/tlsfile.c on real files: a private key others may
 * read is refused with its mode, a link to it too; a CA bundle, a
 * certificate and its key make a client context; a key that is not the
 * certificate's, an encrypted key (no one to type a passphrase), a
 * bundle without a certificate, half a client identity are refused
 * with the file named. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "testcert.h"
#include "tmpdir.h"

#include "ctd/base/tlsfile.h"

struct fixture {
	char dir[TMPDIR_MAX];
	char ca[128], otherca[128], cert[128], key[128], why[512];
};

static int setup(void **state)
{
	static struct fixture f;

	tmpdir_make(f.dir, "tlsfile");
	testcert_make(f.dir);
	snprintf(f.ca, sizeof(f.ca), "%s/ca.pem", f.dir);
	snprintf(f.otherca, sizeof(f.otherca), "%s/otherca.pem", f.dir);
	snprintf(f.cert, sizeof(f.cert), "%s/client.pem", f.dir);
	snprintf(f.key, sizeof(f.key), "%s/client.key", f.dir);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tmpdir_remove(f->dir);
	return 0;
}

static void test_key_mode(void **state)
{
	struct fixture *f = *state;
	const struct ctd_owner none = CTD_OWNER_NONE;
	char link[160];

	assert_int_equal(ctd_tlsfile_check_key(f->key, &none, f->why,
					       sizeof(f->why)), 0);
	chmod(f->key, 0640);
	assert_int_equal(ctd_tlsfile_check_key(f->key, &none, f->why,
					       sizeof(f->why)), -EACCES);
	assert_non_null(strstr(f->why, "(mode 0640)"));
	assert_non_null(strstr(f->why, f->key));
	chmod(f->key, 0600);
	/* A link a user could have put there is not followed. */
	snprintf(link, sizeof(link), "%s/link.key", f->dir);
	assert_int_equal(symlink(f->key, link), 0);
	assert_int_equal(ctd_tlsfile_check_key(link, &none, f->why,
					       sizeof(f->why)), -ELOOP);
	assert_non_null(strstr(f->why, "symbolic link"));
	unlink(link);
	snprintf(link, sizeof(link), "%s/missing.key", f->dir);
	assert_int_equal(ctd_tlsfile_check_key(link, &none, f->why,
					       sizeof(f->why)), -ENOENT);
}

static int client_ctx(struct fixture *f, const char *ca, const char *cert,
		      const char *key)
{
	struct ctd_tls_files files = { ca, cert, key };
	const struct ctd_owner none = CTD_OWNER_NONE;
	struct ssl_ctx_st *ctx = NULL;
	int r = ctd_tlsfile_client_ctx(&files, &none, &ctx, f->why,
				       sizeof(f->why));

	assert_true((r == 0) == (ctx != NULL));
	ctd_tlsfile_ctx_free(ctx);
	return r;
}

static void test_client_context(void **state)
{
	struct fixture *f = *state;
	char server_key[128];

	assert_int_equal(client_ctx(f, f->ca, "", ""), 0);
	assert_int_equal(client_ctx(f, f->ca, f->cert, f->key), 0);
	/* The server's key does not go with the client's certificate. */
	snprintf(server_key, sizeof(server_key), "%s/server.key", f->dir);
	assert_int_equal(client_ctx(f, f->ca, f->cert, server_key), -EINVAL);
	assert_non_null(strstr(f->why, server_key));
	assert_int_equal(client_ctx(f, f->ca, f->cert, ""), -EINVAL);
	assert_int_equal(client_ctx(f, f->ca, "", f->key), -EINVAL);
	/* A bundle without a certificate: the key file is no CA. */
	assert_int_equal(client_ctx(f, f->key, "", ""), -EINVAL);
	assert_non_null(strstr(f->why, "no certificate"));
	chmod(f->key, 0644);
	assert_int_equal(client_ctx(f, f->ca, f->cert, f->key), -EACCES);
	chmod(f->key, 0600);
}

/* The metrics endpoint's: its certificate and key, the scrapers' CA. */
static void test_server_context(void **state)
{
	struct fixture *f = *state;
	const struct ctd_owner none = CTD_OWNER_NONE;
	char cert[128], key[128];
	struct ctd_tls_files files = { f->ca, cert, key };
	struct ssl_ctx_st *ctx = NULL;

	snprintf(cert, sizeof(cert), "%s/server.pem", f->dir);
	snprintf(key, sizeof(key), "%s/server.key", f->dir);
	assert_int_equal(ctd_tlsfile_server_ctx(&files, &none, &ctx, f->why,
						sizeof(f->why)), 0);
	ctd_tlsfile_ctx_free(ctx);
	files.key = "";
	assert_int_equal(ctd_tlsfile_server_ctx(&files, &none, &ctx, f->why,
						sizeof(f->why)), -EINVAL);
	assert_non_null(strstr(f->why, "certificate and key"));
}

/* An encrypted key would need a passphrase typed on a terminal. */
static void test_encrypted_key_refused(void **state)
{
	struct fixture *f = *state;
	char enc[160];
	EVP_PKEY *k;
	FILE *in = fopen(f->key, "r"), *out;

	assert_non_null(in);
	k = PEM_read_PrivateKey(in, NULL, NULL, NULL);
	fclose(in);
	assert_non_null(k);
	snprintf(enc, sizeof(enc), "%s/enc.key", f->dir);
	assert_non_null(out = fopen(enc, "w"));
	fchmod(fileno(out), 0600);
	assert_int_equal(PEM_write_PrivateKey(out, k, EVP_aes_128_cbc(),
		(unsigned char *)"secret", 6, NULL, NULL), 1);
	fclose(out);
	EVP_PKEY_free(k);
	assert_int_equal(client_ctx(f, f->ca, f->cert, enc), -EINVAL);
	assert_non_null(strstr(f->why, enc));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_mode),
		cmocka_unit_test(test_client_context),
		cmocka_unit_test(test_encrypted_key_refused),
		cmocka_unit_test(test_server_context),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
