/* Wire framing of proto/FRAMING.md: COBS(payload || CRC-32C LE) || 0x00. */
#ifndef PS_FRAMING_H
#define PS_FRAMING_H
#include <stddef.h>
#include <stdint.h>

#define PS_MAX_PAYLOAD 4096
#define PS_MAX_ENCODED 4117 /* COBS of MAX_PAYLOAD + 4 CRC bytes, without the delimiter */

uint32_t ps_crc32c(const uint8_t *p, size_t n);

/* COBS-encodes in[0..n) into out (room for n + n/254 + 1 bytes); returns the length. */
size_t ps_cobs_encode(const uint8_t *in, size_t n, uint8_t *out);
/* Decodes one COBS block (no delimiter inside); returns the length, or -1 if malformed. */
long ps_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* Frames a payload: out needs PS_MAX_ENCODED + 1 bytes; returns the bytes written
 * including the 0x00 delimiter, or 0 if the payload is empty or too large. */
size_t ps_frame_encode(const uint8_t *payload, size_t n, uint8_t *out);

/* Incremental receiver: feed bytes, get complete payloads through the callback. */
typedef void (*ps_payload_cb)(void *ctx, const uint8_t *payload, size_t n);
struct ps_splitter {
	uint8_t buf[PS_MAX_ENCODED];
	size_t len;
	int skipping;          /* dropping an oversize frame up to the next 0x00 */
	uint64_t corrupt;      /* frames with bad COBS, short, or bad CRC */
	uint64_t oversize;
	uint64_t skipped_bytes;
	ps_payload_cb cb;
	void *ctx;
};
void ps_splitter_init(struct ps_splitter *s, ps_payload_cb cb, void *ctx);
void ps_splitter_feed(struct ps_splitter *s, const uint8_t *p, size_t n);
#endif
