// Shared helpers of the iommufd lab tests: feature detection with
// "skip unless required", fd-leak checking, page-aligned memory, and the
// checks of a call that the running kernel is too old for.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/mapped_region.hpp"
#include "base/unique_fd.hpp"
#include "iommufd_backend/ioctl_error.hpp"
#include "iommufd_backend/iommu_fd.hpp"

namespace iommufd_lab {

// Open fds of this process (/proc/self/fd entries).
int open_fd_count();

// Whether the environment variable IOMMUFD_LAB_REQUIRE (comma separated)
// names `feature` ("selftest", "vfio"): then a missing feature is a failure.
bool required(const std::string& feature);

// Why the selftest driver cannot be used here, or nullopt when it can
// (/dev/iommu opens and IOMMU_TEST_CMD is known).
std::optional<std::string> selftest_driver_unavailable();

// The PCI address of a device bound to vfio-pci: IOMMUFD_LAB_VFIO_BDF, or the
// first one under /sys/bus/pci/drivers/vfio-pci. nullopt when none.
std::optional<std::string> vfio_pci_device();

// An fd number that can never be open: INT_MAX is above the kernel's largest
// possible fd (fs.nr_open is capped below 2^31 - 64), so calls on it fail with
// EBADF, and closing it (the UniqueFd's destructor) cannot close anyone else's
// fd -- unlike a number we closed ourselves, which the next open() may reuse.
base::UniqueFd never_open_fd();

// Success when the running kernel is Linux 6.12.y, the lab kernel whose exact
// answers the tests assert; otherwise a failure saying to update them.
::testing::AssertionResult running_lab_kernel_612();

// `pages` pages of anonymous read-write memory, touched so they exist.
base::MappedRegion anonymous_pages(std::size_t pages);

// A memfd of `size` bytes and a MAP_SHARED mapping of it.
struct Memfd {
    base::UniqueFd fd;
    base::MappedRegion mapping;
};
Memfd make_memfd(std::uint64_t size, const char* name = "iommufd-lab");

// How a call must fail on a kernel that lacks its feature: an
// UnsupportedError with this errno and feature, each of `params` among the
// call's params, `says` in its text and, unless empty, this ioctl name.
struct Unsupported {
    int error_number;
    iommufd_backend::Feature feature;
    std::vector<iommufd_backend::Param> params = {};
    std::string_view says = {};
    std::string_view ioctl = {};
    // Prints "LOG_AS: <the error's text>" so that the lab's results keep the
    // exact line a user would read; nullptr: nothing is printed.
    const char* log_as = nullptr;
};

// Runs `call`, which must fail as `expected` says; `if_accepted` is the
// failure when it succeeds instead.
template <typename Call>
void expect_unsupported(Call&& call, std::string_view if_accepted, const Unsupported& expected) {
    try {
        call();
        ADD_FAILURE() << if_accepted;
    } catch (const iommufd_backend::UnsupportedError& error) {
        const std::string text = error.what();
        EXPECT_EQ(error.error_number(), expected.error_number) << text;
        EXPECT_EQ(error.feature(), expected.feature) << text;
        if (!expected.ioctl.empty()) {
            EXPECT_EQ(error.ioctl(), expected.ioctl) << text;
        }
        for (const auto& param : expected.params) {
            EXPECT_EQ(error.param(param.name), param.value) << param.name << ": " << text;
        }
        EXPECT_NE(text.find(expected.says), std::string::npos) << text;
        if (expected.log_as != nullptr) std::printf("%s: %s\n", expected.log_as, text.c_str());
    }
}

// Fixture base: checks that a test leaves no fd open.
class FdLeakCheck : public ::testing::Test {
  protected:
    void SetUp() override { fds_before_ = open_fd_count(); }
    void TearDown() override {
        EXPECT_EQ(open_fd_count(), fds_before_) << "the test leaked (or closed) file descriptors";
    }

  private:
    int fds_before_ = 0;
};

}  // namespace iommufd_lab

// Skips the test (or fails it when `feature` is required) with `reason`.
#define IOMMUFD_LAB_SKIP_OR_FAIL(feature, reason)                                     \
    do {                                                                              \
        if (::iommufd_lab::required(feature))                                         \
            FAIL() << "required feature " << (feature) << " is absent: " << (reason); \
        GTEST_SKIP() << (reason);                                                     \
    } while (0)
