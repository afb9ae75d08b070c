// Asserting that a loader refuses a request cleanly.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "base/error.hpp"
#include "test_images.hpp"
#include "vmm/boot/linux_loader.hpp"

namespace vmm::test {

// load_kernel must throw a one-line base::Error containing `expected` and
// leave guest memory exactly as it was (all zero).
inline void expect_refused(GuestMemory& memory, const boot::BootRequest& request,
                           const std::string& expected) {
    try {
        boot::load_kernel(memory, request);
        ADD_FAILURE() << "load_kernel accepted the request; expected: " << expected;
    } catch (const base::Error& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find(expected), std::string::npos) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
    EXPECT_TRUE(memory_untouched(memory)) << "guest memory was written before the refusal";
}

}  // namespace vmm::test
