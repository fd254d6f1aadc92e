/* The engine's global state: data only, so that every layer may use it. */
#include "aio/aio.h"

struct kq_aio kq_aio = {.lock = PTHREAD_MUTEX_INITIALIZER, .epfd = -1};
uint32_t kq_epoch = 1;
struct kq_config kq_config;
