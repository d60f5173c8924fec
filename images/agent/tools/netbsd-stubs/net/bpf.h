#ifndef STUB_net_bpf_h
#define STUB_net_bpf_h
#define BIOCSETIF 4UL
#endif
