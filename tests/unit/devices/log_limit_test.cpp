#include "devices/log_limit.hpp"

#include <gtest/gtest.h>

#include <string>

namespace devices {
namespace {

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t count = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
    return count;
}

TEST(LogLimit, FirstFewInFullThenPowersOfTwo) {
    LogLimit limit;
    ::testing::internal::CaptureStderr();
    for (int i = 1; i <= 1000; ++i) limit.warn("event {}", i);
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(limit.count(), 1000u);
    // 1-5, then 8, 16, ..., 512.
    EXPECT_EQ(count_of(log, "vmm: warn: event"), 5u + 7u) << log;
    EXPECT_NE(log.find("event 5 (further ones are logged at every power of two)"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("event 512 (512 times so far)"), std::string::npos) << log;
    EXPECT_EQ(log.find("event 6\n"), std::string::npos) << log;
}

TEST(LogLimit, EachLimitCountsOnItsOwn) {
    LogLimit first;
    LogLimit second;
    ::testing::internal::CaptureStderr();
    for (int i = 0; i < 5; ++i) first.warn("first");
    second.warn("second");
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(count_of(log, "first"), 5u);
    EXPECT_EQ(count_of(log, "second"), 1u);
}

}  // namespace
}  // namespace devices
