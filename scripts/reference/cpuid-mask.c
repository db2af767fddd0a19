/* Hides AVX-512, AVX512-VNNI, AVX-VNNI and AMX from every CPUID the process executes, so that
 * libraries which pick their kernels at run time (ONNX Runtime's MLAS, oneDNN, numpy) take the
 * paths they take on an AVX2-only CPU. Used by avx2-only.sh; never part of the build.
 *
 * How: the kernel's CPUID faulting (x86-64 Linux, `cpuid_fault` in /proc/cpuinfo) makes every
 * CPUID instruction raise SIGSEGV; the handler below runs the real CPUID with faulting briefly
 * off, clears the feature bits, writes the registers back and steps over the instruction. The
 * setting is per thread and inherited by threads created later, so it is made in a constructor,
 * before the program starts its thread pools.
 *
 *   gcc -O2 -shared -fPIC -o cpuid-mask.so cpuid-mask.c
 *   LD_PRELOAD=./cpuid-mask.so program ...
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* Leaf 7, subleaf 0: EBX AVX512F/DQ/IFMA/PF/ER/CD/BW/VL. */
#define L7_EBX ((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31))
/* ECX: AVX512_VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ. */
#define L7_ECX ((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14))
/* EDX: AVX512_4VNNIW, 4FMAPS, VP2INTERSECT, AMX-BF16, AVX512_FP16, AMX-TILE, AMX-INT8. */
#define L7_EDX ((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25))
/* Leaf 7, subleaf 1: EAX AVX-VNNI, AVX512_BF16. */
#define L7S1_EAX ((1u << 4) | (1u << 5))

static volatile sig_atomic_t masked_calls;

static long set_cpuid(int on) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, on); }

static void on_segv(int sig, siginfo_t *info, void *ctx) {
    (void)info;
    ucontext_t *uc = ctx;
    greg_t *r = uc->uc_mcontext.gregs;
    const uint8_t *ip = (const uint8_t *)r[REG_RIP];
    if (ip[0] != 0x0f || ip[1] != 0xa2) { /* a real fault: let it kill the process */
        signal(sig, SIG_DFL);
        return;
    }
    unsigned leaf = (unsigned)r[REG_RAX], sub = (unsigned)r[REG_RCX], a, b, c, d;
    set_cpuid(1);
    __cpuid_count(leaf, sub, a, b, c, d);
    set_cpuid(0);
    if (leaf == 7 && sub == 0) {
        b &= ~L7_EBX;
        c &= ~L7_ECX;
        d &= ~L7_EDX;
    } else if (leaf == 7 && sub == 1) {
        a &= ~L7S1_EAX;
    }
    r[REG_RAX] = a;
    r[REG_RBX] = b;
    r[REG_RCX] = c;
    r[REG_RDX] = d;
    r[REG_RIP] += 2;
    masked_calls++;
}

__attribute__((constructor)) static void install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0 || set_cpuid(0) != 0) {
        fprintf(stderr, "cpuid-mask: this CPU or kernel has no CPUID faulting; nothing hidden\n");
        if (getenv("CPUID_MASK_REQUIRED")) _exit(3);
    }
}

__attribute__((destructor)) static void report(void) {
    if (getenv("CPUID_MASK_VERBOSE")) fprintf(stderr, "cpuid-mask: %d CPUID calls answered\n", (int)masked_calls);
}
