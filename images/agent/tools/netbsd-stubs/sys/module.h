#ifndef STUB_sys_module_h
#define STUB_sys_module_h
typedef enum { MODCTL_LOAD, MODCTL_UNLOAD } modctl_t;
int modctl(int, void *);
#endif
