#ifndef STUB_prop_proplib_h
#define STUB_prop_proplib_h
#include <stdbool.h>
#include <stdint.h>
typedef struct _prop_dictionary *prop_dictionary_t;
typedef void *prop_object_t;
prop_dictionary_t prop_dictionary_create(void);
bool prop_dictionary_set_string(prop_dictionary_t, const char *, const char *);
bool prop_dictionary_set(prop_dictionary_t, const char *, prop_object_t);
bool prop_dictionary_get_string(prop_dictionary_t, const char *, const char **);
bool prop_dictionary_get_int32(prop_dictionary_t, const char *, int32_t *);
prop_object_t prop_dictionary_get(prop_dictionary_t, const char *);
void prop_object_release(prop_object_t);
int prop_dictionary_sendrecv_ioctl(prop_dictionary_t, int, unsigned long, prop_dictionary_t *);
int prop_dictionary_recv_ioctl(int, unsigned long, prop_dictionary_t *);
#define __UNCONST(a) ((void *)(uintptr_t)(const void *)(a))
size_t strlcpy(char *, const char *, size_t);
#define SO_RERROR 0x4000
#undef PF_ROUTE
#define PF_ROUTE 34
#endif
