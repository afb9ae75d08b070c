// LD_PRELOAD shim for the integration tests: the Nth pthread_create() of the
// process (N from VMM_TEST_FAIL_THREAD_CREATE, counting from 1) fails with
// EAGAIN. It injects into `vmm` a host error after its first vCPU thread
// runs, a path no input can reach (root is exempt from RLIMIT_NPROC).
#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>

namespace {

using CreateFunction = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);

std::atomic<int> calls{0};

int fail_at() {
    static const int call = [] {
        const char* value = std::getenv("VMM_TEST_FAIL_THREAD_CREATE");
        return value != nullptr ? std::atoi(value) : 0;
    }();
    return call;
}

}  // namespace

// noexcept as glibc declares it for C++.
extern "C" int pthread_create(pthread_t* thread, const pthread_attr_t* attributes,
                              void* (*start)(void*), void* argument) noexcept {
    if (calls.fetch_add(1) + 1 == fail_at()) return EAGAIN;
    // The next definition: glibc's, or a sanitizer's interceptor before it.
    static const auto next = reinterpret_cast<CreateFunction>(::dlsym(RTLD_NEXT, "pthread_create"));
    if (next == nullptr) return ENOSYS;
    return next(thread, attributes, start, argument);
}
