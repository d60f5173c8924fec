#ifndef STUB_net_route_h
#define STUB_net_route_h
struct rt_msghdr { unsigned short rtm_msglen; unsigned char rtm_version, rtm_type; };
#define RTM_VERSION 4
#define RTM_IFANNOUNCE 0x10
#endif
