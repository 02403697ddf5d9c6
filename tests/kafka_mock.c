/* kafka_mock: a Kafka cluster for the integration tests, since Debian
 * packages no broker. librdkafka's mock cluster (rdkafka_mock.h) runs
 * BROKERS brokers on loopback that speak the real protocol to any client
 * (ctd, kcat); this program starts one, creates the topic, prints
 * "bootstrap ADDRESSES" and then obeys one command per stdin line:
 *   down | up        all brokers (connections cut, new ones refused)
 *   down N | up N    broker N (1..BROKERS)
 *   quit             (or end of input)
 * answering "ok" or "error: why" to each, so a test can wait for it.
 * Usage: kafka_mock [TOPIC [PARTITIONS [BROKERS]]] */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set_all(rd_kafka_mock_cluster_t *mc, int brokers, int up)
{
	for (int id = 1; id <= brokers; id++) {
		rd_kafka_resp_err_t err = up ? rd_kafka_mock_broker_set_up(mc, id) :
					       rd_kafka_mock_broker_set_down(mc, id);

		if (err)
			return (int)err;
	}
	return 0;
}

static int command(rd_kafka_mock_cluster_t *mc, int brokers, const char *line)
{
	char word[16];
	int id = 0, n = sscanf(line, "%15s %d", word, &id);
	int up = n >= 1 && strcmp(word, "up") == 0;

	if (n < 1 || (!up && strcmp(word, "down") != 0))
		return -1;
	if (n == 1)
		return set_all(mc, brokers, up);
	if (id < 1 || id > brokers)
		return -1;
	return (int)(up ? rd_kafka_mock_broker_set_up(mc, id) :
			  rd_kafka_mock_broker_set_down(mc, id));
}

static void serve(rd_kafka_mock_cluster_t *mc, int brokers)
{
	char line[128];

	while (fgets(line, sizeof(line), stdin)) {
		if (strncmp(line, "quit", 4) == 0)
			break;
		if (command(mc, brokers, line) == 0)
			printf("ok\n");
		else
			printf("error: %s", line);
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	const char *topic = argc > 1 ? argv[1] : "ctd-flows";
	int partitions = argc > 2 ? atoi(argv[2]) : 3;
	int brokers = argc > 3 ? atoi(argv[3]) : 3;
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	rd_kafka_mock_cluster_t *mc;

	if (!rk) {
		fprintf(stderr, "kafka_mock: %s\n", err);
		return 1;
	}
	mc = rd_kafka_mock_cluster_new(rk, brokers);
	if (!mc || rd_kafka_mock_topic_create(mc, topic, partitions,
					      brokers < 3 ? brokers : 3)) {
		fprintf(stderr, "kafka_mock: cannot start the cluster\n");
		return 1;
	}
	printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);
	serve(mc, brokers);
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
