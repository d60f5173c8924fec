#ifndef STUB_net_if_dl_h
#define STUB_net_if_dl_h
struct sockaddr_dl { unsigned char sdl_len, sdl_family; unsigned short sdl_index; unsigned char sdl_type, sdl_nlen, sdl_alen, sdl_slen; char sdl_data[12]; };
#define CLLADDR(s) ((const char *)((s)->sdl_data + (s)->sdl_nlen))
#define AF_LINK 18
#endif
