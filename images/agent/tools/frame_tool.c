/* Test helper: the agent's framing code on stdin/stdout, so host tests can
 * compare it byte for byte with the TypeScript codec.
 *   frame_tool encode   in: records [u32 LE length][payload]; out: frames
 *   frame_tool decode   in: a framed stream; out: records [u32 LE length][payload],
 *                       then "corrupt=N oversize=M skipped=K" on stderr */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/framing.h"

static void put_record(void *ctx, const uint8_t *p, size_t n)
{
	(void)ctx;
	uint8_t len[4] = {n & 0xFF, (n >> 8) & 0xFF, (n >> 16) & 0xFF, (n >> 24) & 0xFF};
	fwrite(len, 1, 4, stdout);
	fwrite(p, 1, n, stdout);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "encode") == 0) {
		static uint8_t payload[PS_MAX_PAYLOAD + 1], out[PS_MAX_ENCODED + 1];
		uint8_t len[4];
		while (fread(len, 1, 4, stdin) == 4) {
			size_t n = len[0] | len[1] << 8 | len[2] << 16 | (size_t)len[3] << 24;
			if (n > PS_MAX_PAYLOAD) {
				fprintf(stderr, "frame_tool: payload of %zu bytes exceeds %d\n", n, PS_MAX_PAYLOAD);
				return 1;
			}
			if (fread(payload, 1, n, stdin) != n) {
				fprintf(stderr, "frame_tool: short record\n");
				return 1;
			}
			fwrite(out, 1, ps_frame_encode(payload, n, out), stdout);
		}
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "decode") == 0) {
		static struct ps_splitter s;
		uint8_t buf[65536];
		size_t n;
		ps_splitter_init(&s, put_record, NULL);
		while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
			ps_splitter_feed(&s, buf, n);
		fprintf(stderr, "corrupt=%llu oversize=%llu skipped=%llu\n", (unsigned long long)s.corrupt,
				(unsigned long long)s.oversize, (unsigned long long)s.skipped_bytes);
		return 0;
	}
	fprintf(stderr, "usage: frame_tool encode|decode\n");
	return 2;
}
