#include "guarded_read.h"
#include "crc32c.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

// The jump target of this thread's guarded read, or NULL outside one. Volatile: only the signal handler
// reads it, so an optimiser would otherwise drop the store before the read as dead (it did, at -O2).
static _Thread_local sigjmp_buf *volatile active_guard;
static struct sigaction previous_action;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static void on_bus_error(int number, siginfo_t *info, void *context) {
    (void)context;
    sigjmp_buf *guard = active_guard;
    // A fault of a guarded read (not a SIGBUS sent by kill, whose si_code is not positive).
    if (guard != NULL && info != NULL && info->si_code > 0) {
        active_guard = NULL;
        siglongjmp(*guard, 1);
    }
    // A fault outside a guarded read re-runs under what was there before (the Swift runtime's crash report)
    // when this returns. A SIGBUS sent by another process ends the process as by default, raised again once
    // this handler returns (a handler that only reports a fault would let it go on).
    if (info == NULL || info->si_code <= 0) {
        signal(SIGBUS, SIG_DFL);
        raise(number);
        return;
    }
    sigaction(SIGBUS, &previous_action, NULL);
}

static void install_handler(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_bus_error;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, &previous_action);
}

int emo_guarded_copy(void *destination, const void *source, size_t length) {
    pthread_once(&install_once, install_handler);
    sigjmp_buf guard;
    // Saving the signal mask: the handler runs with SIGBUS blocked, and the jump must unblock it.
    if (sigsetjmp(guard, 1) != 0) return -1;
    active_guard = &guard;
    atomic_signal_fence(memory_order_seq_cst);
    memcpy(destination, source, length);
    atomic_signal_fence(memory_order_seq_cst);
    active_guard = NULL;
    return 0;
}

int emo_guarded_crc32c(uint32_t crc, const void *data, size_t length, uint32_t *result) {
    pthread_once(&install_once, install_handler);
    sigjmp_buf guard;
    if (sigsetjmp(guard, 1) != 0) return -1;
    active_guard = &guard;
    atomic_signal_fence(memory_order_seq_cst);
    uint32_t value = crc32c_extend(crc, data, length);
    atomic_signal_fence(memory_order_seq_cst);
    active_guard = NULL;
    *result = value;
    return 0;
}
