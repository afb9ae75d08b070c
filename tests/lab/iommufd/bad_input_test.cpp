// Wrong ids, wrong object types, misaligned and overlapping ranges, closed
// fds and double frees: each is an exception naming the ioctl, the errno and
// the ids involved, never a crash, and no test leaks an fd (FdLeakCheck).
#include <unistd.h>

#include <array>
#include <string>

#include "iommufd_backend/fault_queue.hpp"
#include "iommufd_backend/hwpt.hpp"
#include "iommufd_backend/ioas.hpp"
#include "iommufd_backend/ioctl_error.hpp"
#include "iommufd_backend/selftest_device.hpp"
#include "lab_support.hpp"

namespace iommufd_lab {
namespace {

using namespace iommufd_backend;

constexpr std::uint64_t kAperture = MOCK_APERTURE_START;

class BadInput : public FdLeakCheck {
  protected:
    void SetUp() override {
        FdLeakCheck::SetUp();
        if (const auto reason = selftest_driver_unavailable())
            IOMMUFD_LAB_SKIP_OR_FAIL("selftest", *reason);
    }
};

// Runs `call`, expects an IoctlError with `error_number`, and checks that
// the message names the ioctl and `mention` (an id such as "ioas 9999").
template <typename Call>
void expect_ioctl_error(Call&& call, int error_number, const std::string& ioctl,
                        const std::string& mention) {
    try {
        call();
        ADD_FAILURE() << ioctl << " succeeded";
    } catch (const IoctlError& error) {
        const std::string text = error.what();
        EXPECT_EQ(error.error_number(), error_number) << text;
        EXPECT_EQ(error.ioctl(), ioctl) << text;
        EXPECT_NE(text.find(mention), std::string::npos) << text;
        EXPECT_NE(text.find(errno_name(error_number)), std::string::npos) << text;
        std::printf("  ok: %s\n", text.c_str());
    }
}

TEST_F(BadInput, WrongIds) {
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    expect_ioctl_error([&] { Hwpt::allocate_paging(iommufd, 9999, ioas.id()); }, ENOENT,
                       "IOMMU_HWPT_ALLOC", "dev 9999");
    // A missing pt_id is EINVAL in IOMMU_HWPT_ALLOC (unlike a missing dev_id).
    expect_ioctl_error([&] { Hwpt::allocate_paging(iommufd, device.dev_id(), 9998); }, EINVAL,
                       "IOMMU_HWPT_ALLOC", "ioas 9998");
    expect_ioctl_error([&] { iommufd.destroy(9997, "ioas"); }, ENOENT, "IOMMU_DESTROY",
                       "ioas 9997");
    expect_ioctl_error([&] { iommufd.get_option(IOMMU_OPTION_HUGE_PAGES, 9996); }, ENOENT,
                       "IOMMU_OPTION(get)", "object 9996");
}

TEST_F(BadInput, WrongObjectTypes) {
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    FaultQueue faults = FaultQueue::allocate(iommufd);
    Hwpt paging = Hwpt::allocate_paging(iommufd, device.dev_id(), ioas.id());
    // A fault object where an IOAS or HWPT is expected.
    expect_ioctl_error([&] { Hwpt::allocate_paging(iommufd, device.dev_id(), faults.id()); },
                       EINVAL, "IOMMU_HWPT_ALLOC", "ioas " + std::to_string(faults.id()));
    // An IOAS where a device is expected.
    expect_ioctl_error([&] { Hwpt::allocate_paging(iommufd, ioas.id(), ioas.id()); }, ENOENT,
                       "IOMMU_HWPT_ALLOC", "dev " + std::to_string(ioas.id()));
    // A nested HWPT on a parent that is not a nesting parent: refused by the
    // library with what is wrong (the kernel would only say EINVAL).
    try {
        Hwpt::allocate_nested(iommufd, device.dev_id(), paging, HwptData::selftest(0));
        ADD_FAILURE() << "a nested HWPT on a plain paging parent";
    } catch (const IoctlError& error) {
        ADD_FAILURE() << "reached the kernel: " << error.what();
    } catch (const base::Error& error) {
        const std::string text = error.what();
        EXPECT_NE(text.find("hwpt " + std::to_string(paging.id()) +
                            ": the parent is not a nesting parent"),
                  std::string::npos)
            << text;
        std::printf("  ok: %s\n", text.c_str());
    }
    // Dirty tracking on a HWPT allocated without it.
    expect_ioctl_error([&] { paging.set_dirty_tracking(true); }, EOPNOTSUPP,
                       "IOMMU_HWPT_SET_DIRTY_TRACKING", "hwpt " + std::to_string(paging.id()));
    // Invalidating a paging HWPT (only nested ones have caches of their own).
    try {
        std::array<iommu_hwpt_invalidate_selftest, 1> entry{};
        paging.invalidate(entry);
        ADD_FAILURE() << "invalidating a paging HWPT succeeded";
    } catch (const InvalidateError& error) {
        // iommufd looks the id up as a nested HWPT: ENOENT.
        EXPECT_EQ(error.error_number(), ENOENT) << error.what();
        EXPECT_EQ(error.handled(), 0u) << error.what();
        EXPECT_NE(std::string(error.what()).find("no nested HWPT has this id"), std::string::npos)
            << error.what();
    }
    // Unknown nested data type.
    Hwpt parent = Hwpt::allocate_paging(iommufd, device.dev_id(), ioas.id(), {.nest_parent = true});
    const HwptData bogus =
        HwptData::raw(IOMMU_HWPT_DATA_SELFTEST + 1, {0, 0, 0, 0}, Feature::NestedHwpt, "bogus");
    expect_ioctl_error([&] { Hwpt::allocate_nested(iommufd, device.dev_id(), parent, bogus); },
                       EOPNOTSUPP, "IOMMU_HWPT_ALLOC", "data_type 0xdeae");
}

TEST_F(BadInput, MisalignedAndOverlappingRanges) {
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    auto buffer = anonymous_pages(4);
    const std::span<std::uint8_t> bytes = buffer.bytes();

    expect_ioctl_error([&] { ioas.map(bytes, kAperture + 1); }, EINVAL, "IOMMU_IOAS_MAP",
                       "iova 0x1000001");
    expect_ioctl_error([&] { ioas.map(bytes.subspan(0, 100), kAperture); }, EINVAL,
                       "IOMMU_IOAS_MAP", "length 0x64");
    expect_ioctl_error([&] { ioas.map(bytes.subspan(0, 0), kAperture); }, EINVAL, "IOMMU_IOAS_MAP",
                       "length 0x0");
    // Outside the mock aperture the device can reach (reserved IOVA).
    expect_ioctl_error([&] { ioas.map(bytes, 0); }, EINVAL, "IOMMU_IOAS_MAP", "iova 0x0");

    ioas.map(bytes, kAperture);
    // Overlapping an existing mapping, fully and partly.
    expect_ioctl_error([&] { ioas.map(bytes, kAperture); }, EEXIST, "IOMMU_IOAS_MAP",
                       "iova 0x1000000");
    expect_ioctl_error([&] { ioas.map(bytes, kAperture + 0x2000); }, EEXIST, "IOMMU_IOAS_MAP",
                       "iova 0x1002000");
    // Unmapping part of a mapping would split it.
    expect_ioctl_error([&] { ioas.unmap(kAperture, 0x1000); }, ENOENT, "IOMMU_IOAS_UNMAP",
                       "length 0x1000");
    // Nothing mapped there.
    expect_ioctl_error([&] { ioas.unmap(kAperture + 0x100000, 0x1000); }, ENOENT,
                       "IOMMU_IOAS_UNMAP", "iova 0x1100000");
    // COPY from a source range with nothing mapped.
    Ioas other = Ioas::allocate(iommufd);
    expect_ioctl_error([&] { other.copy_from(ioas, kAperture + 0x100000, 0x1000, kAperture); },
                       ENOENT, "IOMMU_IOAS_COPY", "src_iova 0x1100000");
    EXPECT_EQ(ioas.unmap(kAperture, bytes.size()), bytes.size());
}

TEST_F(BadInput, ClosedFds) {
    // An "iommufd" whose number is not an open fd (as after a close behind the
    // library's back). Not a number we closed ourselves: another open() could
    // reuse it, and the UniqueFd would then close that fd.
    const IommuFd stale = IommuFd::adopt(never_open_fd());
    expect_ioctl_error([&] { Ioas::allocate(stale); }, EBADF, "IOMMU_IOAS_ALLOC",
                       "iommufd " + std::to_string(stale.fd()));
}

TEST_F(BadInput, DoubleFrees) {
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    const std::uint32_t id = ioas.id();
    ioas.destroy();
    // The library refuses a second destroy itself...
    try {
        ioas.destroy();
        FAIL();
    } catch (const base::Error& error) {
        EXPECT_NE(std::string(error.what()).find("destroyed"), std::string::npos) << error.what();
    }
    // ... and using the object afterwards.
    auto buffer = anonymous_pages(1);
    EXPECT_THROW(ioas.map(buffer.bytes(), kAperture), base::Error);
    // The kernel refuses a second IOMMU_DESTROY of the id.
    expect_ioctl_error([&] { iommufd.destroy(id, "ioas"); }, ENOENT, "IOMMU_DESTROY",
                       "ioas " + std::to_string(id));

    FaultQueue faults = FaultQueue::allocate(iommufd);
    faults.destroy();
    EXPECT_THROW(faults.destroy(), base::Error);
    EXPECT_THROW(faults.read_pending(), base::Error);

    FaultQueue first = FaultQueue::allocate(iommufd);
    FaultQueue second = std::move(first);
    EXPECT_EQ(first.id(), 0u);  // NOLINT(bugprone-use-after-move): what a move leaves
    EXPECT_THROW(first.destroy(), base::Error);
    EXPECT_NO_THROW(second.destroy());
}

TEST_F(BadInput, DestroyingObjectsInUse) {
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    expect_ioctl_error([&] { ioas.destroy(); }, EBUSY, "IOMMU_DESTROY",
                       "ioas " + std::to_string(ioas.id()));
    // Still usable after the refused destroy.
    auto buffer = anonymous_pages(1);
    EXPECT_EQ(ioas.map(buffer.bytes(), kAperture), kAperture);
}

TEST_F(BadInput, MovedFromObjectsAreInert) {
    const auto iommufd = IommuFd::open();
    Ioas first = Ioas::allocate(iommufd);
    Ioas second = std::move(first);
    EXPECT_EQ(first.id(), 0u);
    EXPECT_THROW(first.iova_ranges(), base::Error);
    EXPECT_NO_THROW(second.iova_ranges());
}

}  // namespace
}  // namespace iommufd_lab
