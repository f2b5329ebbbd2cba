#include "cpu_features.h"
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

// XCR0 via inline assembly: the _xgetbv intrinsic needs -mxsave for the whole file.
static unsigned long long read_xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static bool bit(unsigned int word, int n) { return (word >> n) & 1u; }

void emo_cpu_features_read(struct emo_cpu_features *out) {
    memset(out, 0, sizeof *out);
    unsigned int a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned int highest = a;
    memcpy(out->vendor, &b, 4);
    memcpy(out->vendor + 4, &d, 4);
    memcpy(out->vendor + 8, &c, 4);
    if (highest < 1 || !__get_cpuid(1, &a, &b, &c, &d)) return;
    bool osxsave = bit(c, 27);
    unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
    bool ymm_saved = (xcr0 & 0x6) == 0x6;          // SSE and AVX state
    bool zmm_saved = (xcr0 & 0xe6) == 0xe6;        // plus opmask and both ZMM halves
    out->avx = ymm_saved && bit(c, 28);
    out->fma = ymm_saved && bit(c, 12);
    if (highest < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    out->avx2 = ymm_saved && bit(b, 5);
    out->avx512f = zmm_saved && bit(b, 16);
    out->avx512dq = zmm_saved && bit(b, 17);
    out->avx512cd = zmm_saved && bit(b, 28);
    out->avx512bw = zmm_saved && bit(b, 30);
    out->avx512vl = zmm_saved && bit(b, 31);
}
#else
void emo_cpu_features_read(struct emo_cpu_features *out) { memset(out, 0, sizeof *out); }
#endif
