#ifndef STUB_sys_drvctlio_h
#define STUB_sys_drvctlio_h
#include <sys/types.h>
#define DRVCTLDEV "/dev/drvctl"
struct devdetachargs { char devname[16]; };
#define DRVDETACHDEV 1UL
#define DRVGETEVENT 2UL
#define DRVCTLCOMMAND 3UL
#endif
