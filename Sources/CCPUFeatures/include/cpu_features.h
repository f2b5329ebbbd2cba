#ifndef EMOPIPE_CPU_FEATURES_H
#define EMOPIPE_CPU_FEATURES_H
#include <stdbool.h>

/// The vector instruction sets this CPU has *and* the operating system saves across context
/// switches (XGETBV): a CPU may list AVX-512 while the kernel leaves its registers unsaved,
/// and then the instructions must not be used. All false on other architectures.
struct emo_cpu_features {
    char vendor[13];                 // "GenuineIntel", "AuthenticAMD", …; NUL-terminated
    bool avx, avx2, fma;
    bool avx512f, avx512dq, avx512cd, avx512bw, avx512vl;
};

void emo_cpu_features_read(struct emo_cpu_features *out);

#endif
