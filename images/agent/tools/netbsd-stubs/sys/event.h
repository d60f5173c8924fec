#ifndef STUB_sys_event_h
#define STUB_sys_event_h
#include <stdint.h>
#include <stddef.h>
#include <time.h>
struct kevent { uintptr_t ident; uint32_t filter; uint32_t flags; uint32_t fflags; int64_t data; void *udata; };
#define EVFILT_READ 0U
#define EVFILT_WRITE 1U
#define EV_ADD 0x0001U
#define EV_ONESHOT 0x0010U
#define EV_EOF 0x8000U
#define EV_SET(kevp, a, b, c, d, e, f) do { (kevp)->ident = (a); (kevp)->filter = (b); (kevp)->flags = (c); (kevp)->fflags = (d); (kevp)->data = (e); (kevp)->udata = (void *)(f); } while (0)
int kqueue(void);
int kevent(int, const struct kevent *, size_t, struct kevent *, size_t, const struct timespec *);
#endif
