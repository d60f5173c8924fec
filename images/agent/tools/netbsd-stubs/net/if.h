#ifndef STUB_net_if_h
#define STUB_net_if_h
#include <sys/socket.h>
#define IFNAMSIZ 16
#define IFF_UP 0x1
#undef SIOCGIFFLAGS
#define SIOCGIFFLAGS 5UL
#undef SIOCSIFFLAGS
#define SIOCSIFFLAGS 6UL
struct ifreq { char ifr_name[IFNAMSIZ]; short ifr_flags; };
struct if_data { unsigned long ifi_opackets, ifi_ipackets, ifi_obytes, ifi_ibytes; };
struct if_announcemsghdr { unsigned short ifan_msglen; unsigned char ifan_version, ifan_type; unsigned short ifan_index; char ifan_name[IFNAMSIZ]; unsigned short ifan_what; };
#define IFAN_ARRIVAL 0
#define IFAN_DEPARTURE 1
#endif
