/* tlsfile: PEM files into OpenSSL contexts, read safely (tlsfile.h).
 *
 * OpenSSL's own loaders (SSL_CTX_use_PrivateKey_file, load_verify_locations)
 * open paths with fopen: they would follow a symbolic link a local user
 * put in a directory ctd reads as root. So each file is opened with
 * safefile, read whole (bounded), and handed to OpenSSL as a memory BIO.
 * Encrypted keys are refused: there is nobody to type a passphrase. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "ctd/base/tlsfile.h"

/* OpenSSL's most recent reason, for a why line. */
static const char *ssl_reason(char *buf, size_t cap)
{
	unsigned long e = ERR_peek_last_error();

	if (!e)
		return "no reason given";
	ERR_error_string_n(e, buf, cap);
	ERR_clear_error();
	return buf;
}

static int fail(char *why, size_t cap, int err, const char *path,
		const char *what)
{
	char reason[256];

	snprintf(why, cap, "%s: %s%s", path, what,
		 err == -EPROTO ? ssl_reason(reason, sizeof(reason)) : "");
	return err == -EPROTO ? -EINVAL : err;
}

static int read_all(int fd, char *buf, size_t cap, size_t *ret_len)
{
	size_t len = 0;
	ssize_t n;

	while ((n = read(fd, buf + len, cap - len)) > 0)
		if ((len += (size_t)n) == cap)
			return -EFBIG;
	if (n < 0)
		return -errno;
	*ret_len = len;
	return 0;
}

/* The file's bytes as a memory BIO (which copies nothing: buf stays
 * the caller's until the BIO is freed). */
static int open_pem(const char *path, const struct ctd_owner *owner,
		    char *buf, BIO **ret, char *why, size_t cap)
{
	size_t len = 0;
	int fd = ctd_safefile_open(path, O_RDONLY, 0, CTD_SAFE_REGULAR, owner);
	int r;

	if (fd < 0)
		return fail(why, cap, fd, path, ctd_safefile_strerror(fd));
	r = read_all(fd, buf, CTD_TLSFILE_MAX, &len);
	close(fd);
	if (r < 0)
		return fail(why, cap, r, path, r == -EFBIG ? "larger than 1 MiB" :
			    strerror(-r));
	*ret = BIO_new_mem_buf(buf, (int)len);
	return *ret ? 0 : fail(why, cap, -ENOMEM, path, "out of memory");
}

int ctd_tlsfile_check_key(const char *path, const struct ctd_owner *owner,
			  char *why, size_t cap)
{
	int fd = ctd_safefile_open(path, O_RDONLY, 0, CTD_SAFE_REGULAR, owner);
	struct stat st;

	if (fd < 0)
		return fail(why, cap, fd, path, ctd_safefile_strerror(fd));
	if (fstat(fd, &st) < 0) {
		close(fd);
		return fail(why, cap, -errno, path, strerror(errno));
	}
	close(fd);
	if (st.st_mode & 077) {
		snprintf(why, cap, "%s: a private key readable by others "
			 "(mode %04o): chmod 600 it", path,
			 (unsigned)(st.st_mode & 07777));
		return -EACCES;
	}
	return 0;
}

/* Every certificate of the bundle joins the context's trust store. */
static int load_ca(SSL_CTX *ctx, BIO *bio, const char *path, char *why,
		   size_t cap)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	X509 *x;
	int n = 0;

	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		int ok = X509_STORE_add_cert(store, x);

		X509_free(x);
		if (!ok)
			return fail(why, cap, -EPROTO, path, "");
		n++;
	}
	ERR_clear_error();    /* the end of the bundle reads as an error */
	return n ? 0 : fail(why, cap, -EINVAL, path, "no certificate in it");
}

/* The first certificate is ours, those after it its chain. */
static int load_cert(SSL_CTX *ctx, BIO *bio, const char *path, char *why,
		     size_t cap)
{
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

	if (!x || SSL_CTX_use_certificate(ctx, x) != 1) {
		X509_free(x);
		return fail(why, cap, -EPROTO, path, "");
	}
	X509_free(x);
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			return fail(why, cap, -EPROTO, path, "");
		}
	ERR_clear_error();
	return 0;
}

/* No passphrase prompt: a daemon has no terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf, (void)size, (void)rwflag, (void)arg;
	return -1;
}

static int load_key(SSL_CTX *ctx, BIO *bio, const char *path, char *why,
		    size_t cap)
{
	EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	int ok = k && SSL_CTX_use_PrivateKey(ctx, k) == 1 &&
		 SSL_CTX_check_private_key(ctx) == 1;

	EVP_PKEY_free(k);
	return ok ? 0 : fail(why, cap, -EPROTO, path, "");
}

typedef int loader(SSL_CTX *, BIO *, const char *, char *, size_t);

static int load(SSL_CTX *ctx, loader *fn, const char *path,
		const struct ctd_owner *owner, char *why, size_t cap)
{
	char *buf = malloc(CTD_TLSFILE_MAX);
	BIO *bio = NULL;
	int r = buf ? open_pem(path, owner, buf, &bio, why, cap) : -ENOMEM;

	if (r == 0)
		r = fn(ctx, bio, path, why, cap);
	BIO_free(bio);
	free(buf);
	return r;
}

static int load_own(SSL_CTX *ctx, const struct ctd_tls_files *f,
		    const struct ctd_owner *owner, char *why, size_t cap)
{
	int r;

	if (!*f->cert && !*f->key)
		return 0;
	if (!*f->cert || !*f->key) {
		snprintf(why, cap, "a client certificate needs its key and a "
			 "key its certificate");
		return -EINVAL;
	}
	r = ctd_tlsfile_check_key(f->key, owner, why, cap);
	if (r == 0)
		r = load(ctx, load_cert, f->cert, owner, why, cap);
	return r ? r : load(ctx, load_key, f->key, owner, why, cap);
}

/* The CA, then our own certificate and key (a server must have them)
 * into ctx; ctx is freed when any fails, else handed back in ret. */
static int fill(SSL_CTX *ctx, const struct ctd_tls_files *f,
		const struct ctd_owner *owner, bool server, SSL_CTX **ret,
		char *why, size_t cap)
{
	int r = load(ctx, load_ca, f->ca, owner, why, cap);

	if (r == 0 && server && (!*f->cert || !*f->key)) {
		snprintf(why, cap, "a server needs its certificate and key");
		r = -EINVAL;
	}
	if (r == 0)
		r = load_own(ctx, f, owner, why, cap);
	if (r < 0) {
		SSL_CTX_free(ctx);
		return r;
	}
	*ret = ctx;
	return 0;
}

int ctd_tlsfile_client_ctx(const struct ctd_tls_files *f,
			   const struct ctd_owner *owner,
			   SSL_CTX **ret, char *why, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return fail(why, cap, -ENOMEM, "TLS", "out of memory");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return fill(ctx, f, owner, false, ret, why, cap);
}

/* Scrapers must show a certificate of the client CA: the endpoint's
 * only access control off loopback. */
int ctd_tlsfile_server_ctx(const struct ctd_tls_files *f,
			   const struct ctd_owner *owner,
			   SSL_CTX **ret, char *why, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		return fail(why, cap, -ENOMEM, "TLS", "out of memory");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
			   SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	/* Sessions may be resumed: without an id context OpenSSL refuses
	 * a resumption when it verifies clients. */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"ctd", 3);
	return fill(ctx, f, owner, true, ret, why, cap);
}

void ctd_tlsfile_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}
