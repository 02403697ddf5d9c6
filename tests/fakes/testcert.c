/* testcert: see testcert.h. P-256 keys (fast to make), certificates
 * valid from an hour ago for a day. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "testcert.h"

struct pair {
	EVP_PKEY *key;
	X509 *cert;
};

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A certificate for cn signed by issuer (self-signed when NULL). */
static struct pair make(const char *cn, const struct pair *issuer,
			const char *san, long serial)
{
	struct pair p = { EVP_EC_gen("P-256"), X509_new() };
	X509_NAME *name = X509_NAME_new();

	assert_non_null(p.key);
	X509_set_version(p.cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(p.cert), serial);
	X509_gmtime_adj(X509_getm_notBefore(p.cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(p.cert), 86400);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(p.cert, name);
	X509_set_issuer_name(p.cert, issuer ? X509_get_subject_name(issuer->cert)
					    : name);
	X509_NAME_free(name);
	X509_set_pubkey(p.cert, p.key);
	if (!issuer)
		add_ext(p.cert, p.cert, NID_basic_constraints, "critical,CA:TRUE");
	if (san)
		add_ext(p.cert, issuer->cert, NID_subject_alt_name, san);
	assert_true(X509_sign(p.cert, issuer ? issuer->key : p.key,
			      EVP_sha256()) > 0);
	return p;
}

static void save(const char *dir, const char *name, const struct pair *p,
		 int with_key)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(PEM_write_X509(f, p->cert), 1);
	fclose(f);
	if (!with_key)
		return;
	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fchmod(fileno(f), 0600), 0);
	assert_int_equal(PEM_write_PrivateKey(f, p->key, NULL, NULL, 0, NULL,
					      NULL), 1);
	fclose(f);
}

static void drop(struct pair *p)
{
	EVP_PKEY_free(p->key);
	X509_free(p->cert);
}

void testcert_make(const char *dir)
{
	struct pair ca = make("test ca", NULL, NULL, 1);
	struct pair other = make("other ca", NULL, NULL, 2);
	struct pair server = make("localhost", &ca, "IP:127.0.0.1,DNS:localhost", 3);
	struct pair client = make("exporter", &ca, "DNS:exporter", 4);

	save(dir, "ca", &ca, 0);
	save(dir, "otherca", &other, 0);
	save(dir, "server", &server, 1);
	save(dir, "client", &client, 1);
	drop(&ca);
	drop(&other);
	drop(&server);
	drop(&client);
}
