#include "framing.h"

#include <string.h>

static uint32_t crc_table[256];
static int crc_ready;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
	crc_ready = 1;
}

uint32_t ps_crc32c(const uint8_t *p, size_t n)
{
	if (!crc_ready)
		crc_init();
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++)
		c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

size_t ps_cobs_encode(const uint8_t *in, size_t n, uint8_t *out)
{
	size_t code_at = 0, o = 1;
	uint8_t code = 1;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == 0) {
			out[code_at] = code;
			code_at = o++;
			code = 1;
			continue;
		}
		out[o++] = in[i];
		if (++code == 0xFF) {
			out[code_at] = code;
			/* A full block at the very end needs no empty block after it. */
			if (i + 1 == n)
				return o;
			code_at = o++;
			code = 1;
		}
	}
	out[code_at] = code;
	return o;
}

long ps_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	size_t i = 0, o = 0;
	while (i < n) {
		uint8_t code = in[i++];
		if (code == 0 || i + code - 1 > n)
			return -1;
		for (uint8_t k = 1; k < code; k++) {
			if (o >= cap)
				return -1;
			out[o++] = in[i++];
		}
		/* A code below 255 implies a zero, except at the very end. */
		if (code < 0xFF && i < n) {
			if (o >= cap)
				return -1;
			out[o++] = 0;
		}
	}
	return (long)o;
}

size_t ps_frame_encode(const uint8_t *payload, size_t n, uint8_t *out)
{
	uint8_t tmp[PS_MAX_PAYLOAD + 4];
	if (n == 0 || n > PS_MAX_PAYLOAD)
		return 0; /* a frame carries 1..MAX_PAYLOAD bytes */
	memcpy(tmp, payload, n);
	uint32_t crc = ps_crc32c(payload, n);
	tmp[n] = crc & 0xFF;
	tmp[n + 1] = (crc >> 8) & 0xFF;
	tmp[n + 2] = (crc >> 16) & 0xFF;
	tmp[n + 3] = (crc >> 24) & 0xFF;
	size_t len = ps_cobs_encode(tmp, n + 4, out);
	out[len++] = 0;
	return len;
}

void ps_splitter_init(struct ps_splitter *s, ps_payload_cb cb, void *ctx)
{
	memset(s, 0, sizeof *s);
	s->cb = cb;
	s->ctx = ctx;
}

static void finish(struct ps_splitter *s)
{
	uint8_t dec[PS_MAX_PAYLOAD + 4];
	if (s->len == 0)
		return; /* resynchronising delimiter */
	long n = ps_cobs_decode(s->buf, s->len, dec, sizeof dec);
	if (n < 5) {
		s->corrupt++;
		return;
	}
	uint32_t want = (uint32_t)dec[n - 4] | (uint32_t)dec[n - 3] << 8 |
			(uint32_t)dec[n - 2] << 16 | (uint32_t)dec[n - 1] << 24;
	if (ps_crc32c(dec, (size_t)n - 4) != want) {
		s->corrupt++;
		return;
	}
	s->cb(s->ctx, dec, (size_t)n - 4);
}

void ps_splitter_feed(struct ps_splitter *s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == 0) {
			/* An oversize frame counts once its end is seen, as the host's receiver does. */
			if (s->skipping) {
				s->skipping = 0;
				s->oversize++;
			} else {
				finish(s);
			}
			s->len = 0;
			continue;
		}
		if (s->skipping) {
			s->skipped_bytes++;
			continue;
		}
		if (s->len == sizeof s->buf) {
			s->skipped_bytes += s->len + 1;
			s->len = 0;
			s->skipping = 1;
			continue;
		}
		s->buf[s->len++] = p[i];
	}
}
