#include "guarded_read.h"
#include "crc32c.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

// The jump target of this thread's guarded read, or NULL outside one.
static _Thread_local sigjmp_buf *active_guard;
static struct sigaction previous_action;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static void on_bus_error(int signal, siginfo_t *info, void *context) {
    (void)signal; (void)info; (void)context;
    sigjmp_buf *guard = active_guard;
    if (guard != NULL) {
        active_guard = NULL;
        siglongjmp(*guard, 1);
    }
    // Not a guarded read: restore what was there before; returning re-runs the faulting access under it.
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
    memcpy(destination, source, length);
    active_guard = NULL;
    return 0;
}

int emo_guarded_crc32c(uint32_t crc, const void *data, size_t length, uint32_t *result) {
    pthread_once(&install_once, install_handler);
    sigjmp_buf guard;
    if (sigsetjmp(guard, 1) != 0) return -1;
    active_guard = &guard;
    uint32_t value = crc32c_extend(crc, data, length);
    active_guard = NULL;
    *result = value;
    return 0;
}
