/* Tests for src/outputs/tlslink.c against an OpenSSL server in the same
 * process over a Unix socket pair (no network): the handshake with
 * mutual TLS, plaintext acknowledged only with the whole ciphertext of
 * its records (the peer's unacknowledged bytes given as outq), nothing
 * before the server showed it accepted us (its session ticket), a
 * refused name with the verify error, and a second connection resuming
 * the session the server gave. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/ssl.h>

#include "testcert.h"
#include "tmpdir.h"

#include "ctd/base/tlsfile.h"
#include "ctd/outputs/tlslink.h"

#define DATA 40000

struct fixture {
	char dir[TMPDIR_MAX];
	SSL_CTX *server_ctx, *client_ctx;
	int fd[2];
	SSL *server;
	uint8_t data[DATA];
};

static SSL_CTX *server_ctx(const char *dir)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char path[160];

	snprintf(path, sizeof(path), "%s/server.pem", dir);
	assert_int_equal(SSL_CTX_use_certificate_file(ctx, path, SSL_FILETYPE_PEM), 1);
	snprintf(path, sizeof(path), "%s/server.key", dir);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM), 1);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	assert_int_equal(SSL_CTX_load_verify_locations(ctx, path, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
			   SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"t", 1);
	return ctx;
}

static int setup(void **state)
{
	static struct fixture f;
	char ca[128], cert[128], key[128], why[256];
	struct ctd_tls_files files = { ca, cert, key };
	const struct ctd_owner none = CTD_OWNER_NONE;

	tmpdir_make(f.dir, "tlslink");
	testcert_make(f.dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", f.dir);
	snprintf(cert, sizeof(cert), "%s/client.pem", f.dir);
	snprintf(key, sizeof(key), "%s/client.key", f.dir);
	assert_int_equal(ctd_tlsfile_client_ctx(&files, &none, &f.client_ctx,
						why, sizeof(why)), 0);
	f.server_ctx = server_ctx(f.dir);
	for (size_t i = 0; i < DATA; i++)
		f.data[i] = (uint8_t)(i * 7);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	SSL_CTX_free(f->server_ctx);
	SSL_CTX_free(f->client_ctx);
	tmpdir_remove(f->dir);
	return 0;
}

static void connect_pair(struct fixture *f)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
				    f->fd), 0);
	f->server = SSL_new(f->server_ctx);
	SSL_set_fd(f->server, f->fd[1]);
	SSL_set_accept_state(f->server);
}

static void close_pair(struct fixture *f)
{
	SSL_free(f->server);
	close(f->fd[0]);
	close(f->fd[1]);
}

/* Both sides' handshakes, turn about; returns the client's last result. */
static int handshake(struct fixture *f, struct ctd_tlslink *l)
{
	int r = -EAGAIN;

	for (int i = 0; i < 50 && r == -EAGAIN; i++) {
		r = ctd_tlslink_handshake(l);
		SSL_do_handshake(f->server);
	}
	return r;
}

/* What the server reads, up to n bytes. */
static size_t server_read(struct fixture *f, uint8_t *buf, size_t n)
{
	size_t got = 0;
	int r;

	for (int i = 0; i < 200 && got < n; i++)
		if ((r = SSL_read(f->server, buf + got, (int)(n - got))) > 0)
			got += (size_t)r;
	return got;
}

static struct ctd_tlslink *link_to(struct fixture *f, const char *name)
{
	struct ctd_tlslink *l;

	assert_int_equal(ctd_tlslink_new(name, &l), 0);
	ctd_tlslink_set_ctx(l, f->client_ctx);
	return l;
}

static void test_acknowledged_by_whole_records(void **state)
{
	struct fixture *f = *state;
	struct ctd_tlslink *l = link_to(f, "127.0.0.1");
	static uint8_t got[DATA];
	size_t took;
	uint64_t wire;

	connect_pair(f);
	assert_int_equal(ctd_tlslink_start(l, f->fd[0]), 0);
	assert_int_equal(handshake(f, l), 0);
	assert_int_equal(ctd_tlslink_write(l, f->data, DATA, &took), 0);
	assert_int_equal(took, DATA);
	wire = ctd_tlslink_wire_bytes(l);
	/* The server's TCP took it all, but it has not shown it accepted
	 * our certificate yet: nothing is acknowledged. */
	assert_false(ctd_tlslink_accepted(l));
	assert_int_equal(ctd_tlslink_unacked(l, 0), DATA);
	assert_int_equal(server_read(f, got, DATA), DATA);
	assert_memory_equal(got, f->data, DATA);
	/* Its tickets came with the handshake's end. */
	assert_int_equal(ctd_tlslink_pull(l), 0);
	assert_true(ctd_tlslink_accepted(l));
	/* Nothing acknowledged, then all but the last byte: the last
	 * record's plaintext (DATA - 2 * 16384) is still out. */
	assert_int_equal(ctd_tlslink_unacked(l, wire), DATA);
	assert_int_equal(ctd_tlslink_unacked(l, 1), DATA - 2 * 16384);
	assert_int_equal(ctd_tlslink_unacked(l, 0), 0);
	ctd_tlslink_stop(l);
	close_pair(f);

	/* The next connection resumes the session. */
	connect_pair(f);
	assert_int_equal(ctd_tlslink_start(l, f->fd[0]), 0);
	assert_int_equal(handshake(f, l), 0);
	assert_true(ctd_tlslink_resumed(l));
	assert_int_equal(ctd_tlslink_write(l, f->data, 100, &took), 0);
	assert_int_equal(server_read(f, got, 100), 100);
	ctd_tlslink_free(l);
	close_pair(f);
}

static void test_wrong_name_refused(void **state)
{
	struct fixture *f = *state;
	struct ctd_tlslink *l = link_to(f, "collector.example");

	connect_pair(f);
	assert_int_equal(ctd_tlslink_start(l, f->fd[0]), 0);
	assert_int_equal(handshake(f, l), -EPROTO);
	assert_non_null(strstr(ctd_tlslink_why(l), "hostname mismatch"));
	assert_non_null(strstr(ctd_tlslink_why(l), "CN=localhost"));
	assert_non_null(strstr(ctd_tlslink_why(l), "collector.example"));
	ctd_tlslink_free(l);
	close_pair(f);
}

/* A collector that closes: the link says so, nothing acknowledged. */
static void test_closed_by_peer(void **state)
{
	struct fixture *f = *state;
	struct ctd_tlslink *l = link_to(f, "localhost");

	connect_pair(f);
	assert_int_equal(ctd_tlslink_start(l, f->fd[0]), 0);
	assert_int_equal(handshake(f, l), 0);
	SSL_shutdown(f->server);
	assert_int_equal(ctd_tlslink_pull(l), -ECONNRESET);
	ctd_tlslink_free(l);
	close_pair(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_acknowledged_by_whole_records),
		cmocka_unit_test(test_wrong_name_refused),
		cmocka_unit_test(test_closed_by_peer),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
