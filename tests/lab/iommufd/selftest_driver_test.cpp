// iommufd_backend against the kernel's iommufd selftest driver: mock devices
// stand in for hardware, and the driver's own checks (MD_CHECK_MAP,
// MD_CHECK_IOTLB, DIRTY, TRIGGER_IOPF) confirm what the kernel did.
#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>

#include "iommufd_backend/fault_queue.hpp"
#include "iommufd_backend/guest_ram_mapper.hpp"
#include "iommufd_backend/hw_info.hpp"
#include "iommufd_backend/hwpt.hpp"
#include "iommufd_backend/ioas.hpp"
#include "iommufd_backend/ioctl_error.hpp"
#include "iommufd_backend/selftest_device.hpp"
#include "iommufd_backend/viommu.hpp"
#include "lab_support.hpp"

namespace iommufd_lab {
namespace {

using namespace iommufd_backend;

constexpr std::uint64_t kAperture = MOCK_APERTURE_START;  // 16 MiB: where the mock domain maps
const std::uint64_t kPage = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
const std::uint64_t kMockPte = kPage / 2;  // MOCK_IO_PAGE_SIZE of the selftest driver

class SelftestDriver : public FdLeakCheck {
  protected:
    void SetUp() override {
        FdLeakCheck::SetUp();
        if (const auto reason = selftest_driver_unavailable())
            IOMMUFD_LAB_SKIP_OR_FAIL("selftest", *reason);
    }
};

TEST_F(SelftestDriver, MapCheckUnmapThroughMockDomain) {
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());

    // Attaching the mock device narrows the IOAS to the mock aperture.
    const IovaRanges ranges = ioas.iova_ranges();
    ASSERT_EQ(ranges.ranges.size(), 1u);
    EXPECT_EQ(ranges.ranges[0].start, MOCK_APERTURE_START);
    EXPECT_EQ(ranges.ranges[0].last, MOCK_APERTURE_LAST);

    auto buffer = anonymous_pages(16);
    EXPECT_EQ(ioas.map(buffer.bytes(), kAperture), kAperture);
    SelftestDevice::check_map(iommufd, device.hwpt_id(), kAperture, buffer.bytes());

    // A kernel-chosen IOVA lands inside the aperture and maps too.
    auto second = anonymous_pages(4);
    const std::uint64_t chosen = ioas.map(second.bytes(), std::nullopt, DmaAccess::Read);
    EXPECT_GE(chosen, MOCK_APERTURE_START);
    EXPECT_LE(chosen + second.size() - 1, MOCK_APERTURE_LAST);
    SelftestDevice::check_map(iommufd, device.hwpt_id(), chosen, second.bytes());

    EXPECT_EQ(ioas.unmap(kAperture, buffer.size()), buffer.size());
    // The driver agrees the pages are gone.
    EXPECT_THROW(SelftestDevice::check_map(iommufd, device.hwpt_id(), kAperture, buffer.bytes()),
                 IoctlError);
    EXPECT_EQ(ioas.unmap_all(), second.size());
}

TEST_F(SelftestDriver, CopyIntoASecondIoas) {
    const auto iommufd = IommuFd::open();
    Ioas source = Ioas::allocate(iommufd);
    Ioas target = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, target.id());
    auto buffer = anonymous_pages(8);
    source.map(buffer.bytes(), kAperture);
    EXPECT_EQ(target.copy_from(source, kAperture, buffer.size(), kAperture + 0x100000),
              kAperture + 0x100000);
    SelftestDevice::check_map(iommufd, device.hwpt_id(), kAperture + 0x100000, buffer.bytes());
}

TEST_F(SelftestDriver, AllowIovasRefusesANarrowingAttach) {
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    const IovaRange low[] = {{0, 0xfffff}};  // below the mock aperture
    ioas.allow_iovas(low);
    EXPECT_THROW(SelftestDevice::create(iommufd, ioas.id()), IoctlError);
    ioas.allow_iovas({});  // cleared: now it attaches
    EXPECT_NO_THROW(SelftestDevice::create(iommufd, ioas.id()));
}

TEST_F(SelftestDriver, OptionsGetAndSet) {
    {
        // RLIMIT_MODE is global and only changes while the iommufd holds no
        // object; root in L1 has the CAP_SYS_RESOURCE it needs.
        const auto iommufd = IommuFd::open();
        EXPECT_FALSE(iommufd.rlimit_per_process());
        iommufd.set_rlimit_per_process(true);
        EXPECT_TRUE(iommufd.rlimit_per_process());
        Ioas ioas = Ioas::allocate(iommufd);
        try {
            iommufd.set_rlimit_per_process(false);
            ADD_FAILURE() << "RLIMIT_MODE changed with an IOAS alive";
        } catch (const IoctlError& error) {
            EXPECT_EQ(error.error_number(), EBUSY) << error.what();
        }
    }
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    EXPECT_TRUE(ioas.huge_pages());
    ioas.set_huge_pages(false);
    EXPECT_FALSE(ioas.huge_pages());
}

TEST_F(SelftestDriver, HwInfoOfMockDevice) {
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    const HwInfo info = HwInfo::query(iommufd, device.dev_id());
    EXPECT_EQ(info.type(), IOMMU_HW_INFO_TYPE_SELFTEST) << info.describe();
    ASSERT_TRUE(info.selftest());
    EXPECT_EQ(info.selftest()->test_reg, IOMMU_HW_INFO_SELFTEST_REGVAL);
    EXPECT_TRUE(info.can_nest());
    EXPECT_TRUE(info.dirty_tracking());
    std::printf("hw info: %s\n", info.describe().c_str());

    SelftestDevice no_dirty =
        SelftestDevice::create(iommufd, ioas.id(), MOCK_FLAGS_DEVICE_NO_DIRTY);
    EXPECT_FALSE(HwInfo::query(iommufd, no_dirty.dev_id()).dirty_tracking());
}

TEST_F(SelftestDriver, NestParentNestedAndInvalidate) {
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    Hwpt parent = Hwpt::allocate_paging(iommufd, device.dev_id(), ioas.id(), {.nest_parent = true});
    EXPECT_TRUE(parent.nest_parent());
    Hwpt nested = Hwpt::allocate_nested(iommufd, device.dev_id(), parent,
                                        HwptData::selftest(IOMMU_TEST_IOTLB_DEFAULT));
    EXPECT_EQ(nested.kind(), Hwpt::Kind::Nested);
    for (std::uint32_t i = 0; i < MOCK_NESTED_DOMAIN_IOTLB_NUM; ++i) {
        SelftestDevice::check_iotlb(iommufd, nested.id(), i, IOMMU_TEST_IOTLB_DEFAULT);
    }

    // An empty array only checks the data type.
    EXPECT_EQ(nested.invalidate(std::span<const iommu_hwpt_invalidate_selftest>()), 0u);

    std::array<iommu_hwpt_invalidate_selftest, 1> one{};
    one[0].iotlb_id = 0;
    EXPECT_EQ(nested.invalidate(one), 1u);
    SelftestDevice::check_iotlb(iommufd, nested.id(), 0, 0);
    SelftestDevice::check_iotlb(iommufd, nested.id(), 1, IOMMU_TEST_IOTLB_DEFAULT);

    // Partial completion: entry 1 has a bad IOTLB id; entry 0 is done, 2 is not.
    std::array<iommu_hwpt_invalidate_selftest, 3> batch{};
    batch[0].iotlb_id = 1;
    batch[1].iotlb_id = MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1;
    batch[2].iotlb_id = 2;
    try {
        nested.invalidate(batch);
        FAIL() << "the bad entry was accepted";
    } catch (const InvalidateError& error) {
        EXPECT_EQ(error.handled(), 1u) << error.what();
        EXPECT_EQ(error.requested(), 3u);
        EXPECT_EQ(error.error_number(), EINVAL);
        std::printf("partial invalidation: %s\n", error.what());
    }
    SelftestDevice::check_iotlb(iommufd, nested.id(), 1, 0);
    SelftestDevice::check_iotlb(iommufd, nested.id(), 2, IOMMU_TEST_IOTLB_DEFAULT);

    std::array<iommu_hwpt_invalidate_selftest, 1> all{};
    all[0].flags = IOMMU_TEST_INVALIDATE_FLAG_ALL;
    EXPECT_EQ(nested.invalidate(all), 1u);
    for (std::uint32_t i = 0; i < MOCK_NESTED_DOMAIN_IOTLB_NUM; ++i) {
        SelftestDevice::check_iotlb(iommufd, nested.id(), i, 0);
    }

    // Invalidation is for nested HWPTs; the parent refuses it.
    EXPECT_THROW(parent.invalidate(one), IoctlError);

    // Attach the device to the nested HWPT: now it is busy, and so is the parent.
    EXPECT_EQ(device.replace(nested.id()), nested.id());
    try {
        nested.destroy();
        FAIL();
    } catch (const IoctlError& error) {
        EXPECT_EQ(error.error_number(), EBUSY);
    }
    EXPECT_THROW(parent.destroy(), IoctlError);
    device.replace(ioas.id());
    nested.destroy();
    parent.destroy();
}

TEST_F(SelftestDriver, IopfFaultReadAndAnswer) {
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    FaultQueue faults = FaultQueue::allocate(iommufd);
    Hwpt parent = Hwpt::allocate_paging(iommufd, device.dev_id(), ioas.id(), {.nest_parent = true});
    Hwpt iopf_hwpt = Hwpt::allocate_nested(iommufd, device.dev_id(), parent,
                                           HwptData::selftest(IOMMU_TEST_IOTLB_DEFAULT), &faults);
    device.replace(iopf_hwpt.id());

    base::UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
    ASSERT_TRUE(epoll.valid());
    epoll_event event{};
    event.events = EPOLLIN;
    ASSERT_EQ(::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, faults.fd(), &event), 0);
    EXPECT_EQ(::epoll_wait(epoll.get(), &event, 1, 0), 0) << "readable before any fault";
    EXPECT_TRUE(faults.read_pending().empty()) << "read must not block when empty";

    const std::uint32_t perm = IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE;
    device.trigger_iopf(/*pasid=*/1, /*grpid=*/2, perm, 0xdeadb000);

    ASSERT_EQ(::epoll_wait(epoll.get(), &event, 1, 1000), 1) << "no EPOLLIN after the fault";
    const auto groups = faults.read_pending();
    ASSERT_EQ(groups.size(), 1u);
    ASSERT_EQ(groups[0].faults.size(), 1u);
    const iommu_hwpt_pgfault& fault = groups[0].faults[0];
    EXPECT_EQ(fault.dev_id, device.dev_id());
    EXPECT_EQ(fault.pasid, 1u);
    EXPECT_EQ(fault.grpid, 2u);
    EXPECT_EQ(fault.perm, perm);
    EXPECT_EQ(fault.addr, 0xdeadb000u);
    EXPECT_TRUE(fault.flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE);
    EXPECT_TRUE(fault.flags & IOMMU_PGFAULT_FLAGS_PASID_VALID);
    std::printf("fault: dev %u pasid %u grpid %u perm %#x addr %#llx cookie %u\n", fault.dev_id,
                fault.pasid, fault.grpid, fault.perm, static_cast<unsigned long long>(fault.addr),
                fault.cookie);

    // The kernel accepts the answer once; the same cookie again is unknown.
    EXPECT_NO_THROW(faults.respond(groups[0], PageResponse::Success));
    try {
        faults.respond(groups[0], PageResponse::Success);
        FAIL() << "a second response with the same cookie was accepted";
    } catch (const IoctlError& error) {
        EXPECT_EQ(error.error_number(), EINVAL) << error.what();
    }
    EXPECT_TRUE(faults.read_pending().empty());

    // A fault object in use cannot be destroyed. The kernel needs the fd
    // closed first, so the refused queue is closed for good, but it still
    // owns the object and says so.
    const std::uint32_t fault_id = faults.id();
    try {
        faults.destroy();
        FAIL() << "a fault queue used by a HWPT was destroyed";
    } catch (const IoctlError& error) {
        EXPECT_EQ(error.error_number(), EBUSY) << error.what();
        EXPECT_EQ(error.param("fault"), fault_id);
        EXPECT_NE(std::string(error.what()).find("call destroy() again"), std::string::npos)
            << error.what();
    }
    EXPECT_EQ(faults.id(), fault_id);
    EXPECT_EQ(faults.fd(), -1);
    try {
        faults.read_pending();
        FAIL() << "read_pending on a queue whose fd was closed";
    } catch (const base::Error& error) {
        EXPECT_NE(std::string(error.what()).find("closed by a destroy() the kernel refused"),
                  std::string::npos)
            << error.what();
    }
    EXPECT_THROW(faults.respond(groups[0], PageResponse::Success), base::Error);

    // Once no HWPT uses it, the retried destroy() frees it, and only then is
    // another destroy() a misuse.
    device.replace(ioas.id());
    iopf_hwpt.destroy();
    EXPECT_NO_THROW(faults.destroy());
    EXPECT_EQ(faults.id(), 0u);
    try {
        faults.destroy();
        FAIL();
    } catch (const base::Error& error) {
        EXPECT_NE(std::string(error.what()).find("destroyed or moved from"), std::string::npos)
            << error.what();
    }
    EXPECT_THROW(iommufd.destroy(fault_id, "fault"), IoctlError);  // ENOENT: really gone
}

TEST_F(SelftestDriver, PagingHwptWithFaultsNeeds613) {
    ASSERT_TRUE(running_lab_kernel_612());
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    FaultQueue faults = FaultQueue::allocate(iommufd);
    // 6.12's iommufd_hwpt_paging_alloc() has no FAULT_ID_VALID in its
    // valid_flags (6.13 added it): EOPNOTSUPP, before any driver is asked.
    expect_unsupported(
        [&] { Hwpt::allocate_paging(iommufd, device.dev_id(), ioas.id(), {}, &faults); },
        "6.12 took a fault queue on a paging HWPT",
        {.error_number = EOPNOTSUPP,
         .feature = Feature::PagingHwptFaults,
         .params = {{"fault", faults.id()}, {"flags", IOMMU_HWPT_FAULT_ID_VALID}},
         .says = "IOMMU_HWPT_FAULT_ID_VALID (paging HWPT) (I/O page faults on a paging (not "
                 "nested) HWPT) needs Linux 6.13 or newer; this kernel is 6.12.",
         .log_as = "paging HWPT + fault"});
    // The same queue on a nested HWPT is fine on 6.12 (IopfFaultReadAndAnswer).
}

TEST_F(SelftestDriver, PasidCapableHwptNeeds615) {
    ASSERT_TRUE(running_lab_kernel_612());
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    expect_unsupported(
        [&] { Hwpt::allocate_paging(iommufd, device.dev_id(), ioas.id(), {.pasid = true}); },
        "6.12 took IOMMU_HWPT_ALLOC_PASID",
        {.error_number = EOPNOTSUPP,
         .feature = Feature::PasidAttach,
         .params = {{"flags", IOMMU_HWPT_ALLOC_PASID}},
         .says = "needs Linux 6.15 or newer; this kernel is 6.12.",
         .log_as = "PASID HWPT"});
}

TEST_F(SelftestDriver, NestedDataOfOtherDriversReachesTheMockDriver) {
    ASSERT_TRUE(running_lab_kernel_612());
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    Hwpt parent = Hwpt::allocate_paging(iommufd, device.dev_id(), ioas.id(), {.nest_parent = true});

    // VT-d stage-1 data: 6.12 knows the type, so iommufd passes the 24 bytes
    // to the driver, and the mock driver takes only its own type.
    try {
        Hwpt::allocate_nested(iommufd, device.dev_id(), parent,
                              HwptData::vtd_s1(0x10000000, 48, IOMMU_VTD_S1_WPE));
        FAIL() << "the selftest driver took VT-d stage-1 data";
    } catch (const UnsupportedError& error) {
        FAIL() << "VT-d stage-1 nesting is 6.7, not missing on 6.12: " << error.what();
    } catch (const IoctlError& error) {
        const std::string text = error.what();
        EXPECT_EQ(error.error_number(), EOPNOTSUPP) << text;
        EXPECT_EQ(error.param("data_type"), static_cast<std::uint64_t>(IOMMU_HWPT_DATA_VTD_S1));
        EXPECT_EQ(error.param("data_len"), sizeof(iommu_hwpt_vtd_s1));
        EXPECT_EQ(error.param("parent hwpt"), parent.id());
        std::printf("VT-d stage-1 on the mock: %s\n", text.c_str());
    }

    // SMMUv3 STE data: type 2 is unknown to 6.12 (6.13), so the error names
    // the feature and the version.
    expect_unsupported(
        [&] {
            Hwpt::allocate_nested(iommufd, device.dev_id(), parent, HwptData::arm_smmuv3(0x1, 0x0));
        },
        "6.12 took SMMUv3 nested data",
        {.error_number = EOPNOTSUPP,
         .feature = Feature::ArmSmmuV3Nesting,
         .params = {{"data_type", IOMMU_HWPT_DATA_ARM_SMMUV3},
                    {"data_len", sizeof(iommu_hwpt_arm_smmuv3)}},
         .says = "IOMMU_HWPT_DATA_ARM_SMMUV3 (ARM SMMUv3 nested translation) needs Linux 6.13 or "
                 "newer; this kernel is 6.12.",
         .log_as = "SMMUv3 STE on 6.12"});
}

TEST_F(SelftestDriver, VtdInvalidationArrayReachesTheMockDriver) {
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    Hwpt parent = Hwpt::allocate_paging(iommufd, device.dev_id(), ioas.id(), {.nest_parent = true});
    Hwpt nested = Hwpt::allocate_nested(iommufd, device.dev_id(), parent,
                                        HwptData::selftest(IOMMU_TEST_IOTLB_DEFAULT));
    // Two VT-d entries on the mock's nested HWPT: iommufd hands the array to
    // mock_domain_cache_invalidate_user(), which refuses any type but its own
    // (EINVAL, none handled) and leaves its IOTLB alone.
    std::array<iommu_hwpt_vtd_s1_invalidate, 2> entries{};
    entries[0] = {
        .addr = 0x10000000, .npages = 1, .flags = IOMMU_VTD_INV_FLAGS_LEAF, .__reserved = 0};
    entries[1] = {.addr = 0x20000000, .npages = 16, .flags = 0, .__reserved = 0};
    try {
        nested.invalidate(entries);
        FAIL() << "the selftest driver took VT-d invalidation entries";
    } catch (const InvalidateError& error) {
        const std::string text = error.what();
        EXPECT_EQ(error.error_number(), EINVAL) << text;
        EXPECT_EQ(error.handled(), 0u) << text;
        EXPECT_EQ(error.requested(), 2u) << text;
        EXPECT_EQ(error.param("data_type"),
                  static_cast<std::uint64_t>(IOMMU_HWPT_INVALIDATE_DATA_VTD_S1));
        EXPECT_EQ(error.param("entry_len"), sizeof(iommu_hwpt_vtd_s1_invalidate));
        std::printf("VT-d invalidation on the mock: %s\n", text.c_str());
    }
    for (std::uint32_t i = 0; i < MOCK_NESTED_DOMAIN_IOTLB_NUM; ++i) {
        SelftestDevice::check_iotlb(iommufd, nested.id(), i, IOMMU_TEST_IOTLB_DEFAULT);
    }
}

TEST_F(SelftestDriver, ViommuNeeds613) {
    ASSERT_TRUE(running_lab_kernel_612());
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    Hwpt parent = Hwpt::allocate_paging(iommufd, device.dev_id(), ioas.id(), {.nest_parent = true});
    // IOMMUFD_CMD_VIOMMU_ALLOC (0x90) is past 6.12's ioctl table, which hands
    // it to the VFIO compat layer: ENOTTY.
    expect_unsupported(
        [&] { Viommu::allocate(iommufd, device.dev_id(), parent, IOMMU_VIOMMU_TYPE_ARM_SMMUV3); },
        "6.12 allocated a vIOMMU",
        {.error_number = ENOTTY,
         .feature = Feature::Viommu,
         .params = {{"dev", device.dev_id()},
                    {"parent hwpt", parent.id()},
                    {"type", IOMMU_VIOMMU_TYPE_ARM_SMMUV3}},
         .says = "IOMMU_VIOMMU_ALLOC (vIOMMU and vDEVICE objects) needs Linux 6.13 or newer; this "
                 "kernel is 6.12.",
         .ioctl = "IOMMU_VIOMMU_ALLOC",
         .log_as = "vIOMMU"});

    // What the library refuses before asking: a parent that is no nesting
    // parent, and a HWPT that is gone.
    Hwpt plain = Hwpt::allocate_paging(iommufd, device.dev_id(), ioas.id());
    try {
        Viommu::allocate(iommufd, device.dev_id(), plain, IOMMU_VIOMMU_TYPE_ARM_SMMUV3);
        FAIL();
    } catch (const IoctlError& error) {
        FAIL() << "reached the kernel: " << error.what();
    } catch (const base::Error& error) {
        EXPECT_NE(std::string(error.what()).find("not a nesting parent"), std::string::npos)
            << error.what();
    }
    Hwpt moved = std::move(parent);
    EXPECT_THROW(Viommu::allocate(iommufd, device.dev_id(), parent, IOMMU_VIOMMU_TYPE_ARM_SMMUV3),
                 base::Error);  // NOLINT(bugprone-use-after-move): the point of the check
}

TEST_F(SelftestDriver, DirtyTrackingRoundTrip) {
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    Hwpt hwpt =
        Hwpt::allocate_paging(iommufd, device.dev_id(), ioas.id(), {.dirty_tracking = true});
    device.replace(hwpt.id());

    constexpr std::size_t kPages = 64;
    auto buffer = anonymous_pages(kPages);
    ioas.map(buffer.bytes(), kAperture);
    hwpt.set_dirty_tracking(true);

    // The device "writes" pages 0, 2 and 37: mark their mock PTEs dirty.
    const std::uint64_t length = kPages * kPage;
    std::vector<std::uint64_t> marks(Hwpt::dirty_bitmap_words(length, kMockPte) + 1, 0);
    for (std::uint64_t page : {0u, 2u, 37u}) {
        const std::uint64_t pte = page * (kPage / kMockPte);
        marks[pte / 64] |= std::uint64_t{1} << (pte % 64);
    }
    EXPECT_EQ(SelftestDevice::mark_dirty(iommufd, hwpt.id(), kAperture, length, kMockPte, marks),
              3u);

    std::vector<std::uint64_t> bitmap(Hwpt::dirty_bitmap_words(length, kPage), 0);
    hwpt.read_dirty(kAperture, length, kPage, bitmap, /*keep_dirty=*/true);
    EXPECT_EQ(bitmap[0], (1ull << 0) | (1ull << 2) | (1ull << 37));
    std::fill(bitmap.begin(), bitmap.end(), 0);
    hwpt.read_dirty(kAperture, length, kPage, bitmap);  // reads and clears
    EXPECT_EQ(bitmap[0], (1ull << 0) | (1ull << 2) | (1ull << 37));
    std::fill(bitmap.begin(), bitmap.end(), 0);
    hwpt.read_dirty(kAperture, length, kPage, bitmap);
    EXPECT_EQ(bitmap[0], 0u) << "dirty bits survived a clearing read";

    // A failed read: by the uAPI contract the dirty state is unknown after
    // any failure, and the error tells the caller to restart.
    try {
        hwpt.read_dirty(kAperture + kMockPte, length - kPage, kPage, bitmap);
        FAIL() << "a read not aligned to its page size succeeded";
    } catch (const UnsupportedError& error) {
        FAIL() << "dirty tracking is 6.7: " << error.what();
    } catch (const IoctlError& error) {
        EXPECT_EQ(error.error_number(), EINVAL) << error.what();
        EXPECT_NE(std::string(error.what()).find("the dirty state is unknown now"),
                  std::string::npos)
            << error.what();
    }

    hwpt.set_dirty_tracking(false);
    ioas.unmap_all();
    device.replace(ioas.id());

    // A device without dirty tracking cannot get such a HWPT.
    SelftestDevice no_dirty =
        SelftestDevice::create(iommufd, ioas.id(), MOCK_FLAGS_DEVICE_NO_DIRTY);
    EXPECT_THROW(
        Hwpt::allocate_paging(iommufd, no_dirty.dev_id(), ioas.id(), {.dirty_tracking = true}),
        IoctlError);
}

TEST_F(SelftestDriver, GuestRamMapperFollowsMemoryChanges) {
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    constexpr std::uint64_t kMiB = 1 << 20;
    Memfd ram = make_memfd(64 * kMiB);
    auto region = [&](std::uint64_t gpa, std::uint64_t offset, std::uint64_t size) {
        return GuestRamRegion{gpa, size, ram.mapping.data() + offset, ram.fd.get(), offset, true};
    };
    {
        GuestRamMapper mapper(ioas);
        EXPECT_FALSE(mapper.using_map_file()) << "nothing is mapped yet";
        const GuestRamRegion layout[] = {region(kAperture, 0, 16 * kMiB),
                                         region(kAperture + 64 * kMiB, 16 * kMiB, 16 * kMiB)};
        mapper.sync(layout);
        EXPECT_EQ(mapper.mapped_bytes(), 32 * kMiB);
        // 6.12 has no IOMMU_IOAS_MAP_FILE: the mapper fell back to MAP by address.
        ASSERT_TRUE(running_lab_kernel_612());
        EXPECT_FALSE(mapper.using_map_file());
        std::printf("guest RAM mapped with %s\n",
                    mapper.using_map_file() ? "IOMMU_IOAS_MAP_FILE" : "IOMMU_IOAS_MAP");
        SelftestDevice::check_map(iommufd, device.hwpt_id(), kAperture,
                                  std::span<const std::uint8_t>(ram.mapping.data(), 16 * kMiB));

        // The second region grows and a third appears; the first stays mapped.
        const GuestRamRegion grown[] = {region(kAperture, 0, 16 * kMiB),
                                        region(kAperture + 64 * kMiB, 16 * kMiB, 32 * kMiB),
                                        region(kAperture + 256 * kMiB, 48 * kMiB, 16 * kMiB)};
        mapper.sync(grown);
        EXPECT_EQ(mapper.mapped_bytes(), 64 * kMiB);
        SelftestDevice::check_map(
            iommufd, device.hwpt_id(), kAperture + 64 * kMiB,
            std::span<const std::uint8_t>(ram.mapping.data() + 16 * kMiB, 32 * kMiB));
        SelftestDevice::check_map(
            iommufd, device.hwpt_id(), kAperture + 256 * kMiB,
            std::span<const std::uint8_t>(ram.mapping.data() + 48 * kMiB, 16 * kMiB));

        // Overlap is refused before any ioctl.
        EXPECT_THROW(mapper.map(region(kAperture + 8 * kMiB, 0, 16 * kMiB)), base::Error);
    }
    // The mapper's destructor unmapped everything.
    EXPECT_THROW(ioas.unmap(kAperture, 16 * kMiB), IoctlError);
}

TEST_F(SelftestDriver, MapFileNeeds613) {
    ASSERT_TRUE(running_lab_kernel_612());
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    Memfd ram = make_memfd(4 << 20);
    // IOMMUFD_CMD_IOAS_MAP_FILE (0x8f) is past 6.12's ioctl table: ENOTTY.
    expect_unsupported([&] { ioas.map_file(ram.fd.get(), 0, 4 << 20, kAperture); },
                       "6.12 took IOMMU_IOAS_MAP_FILE",
                       {.error_number = ENOTTY,
                        .feature = Feature::IoasMapFile,
                        .params = {{"ioas", ioas.id()}},
                        .says = "IOMMU_IOAS_MAP_FILE (mapping a memfd by file offset) needs Linux "
                                "6.13 or newer; this kernel is 6.12.",
                        .log_as = "map_file"});
}

TEST_F(SelftestDriver, KvmManagedHwptNeedsOurPatches) {
    const auto iommufd = IommuFd::open();
    Ioas ioas = Ioas::allocate(iommufd);
    SelftestDevice device = SelftestDevice::create(iommufd, ioas.id());
    // 6.12's mock driver refuses user data on a paging HWPT: EOPNOTSUPP, the
    // errno that means "unknown data type".
    expect_unsupported([&] { Hwpt::allocate_kvm_managed(iommufd, device.dev_id(), ioas.id(), -1); },
                       "a kernel accepted IOMMU_HWPT_DATA_KVM: update this test with the series",
                       {.error_number = EOPNOTSUPP,
                        .feature = Feature::KvmManagedHwpt,
                        .params = {{"data_type", IOMMU_HWPT_DATA_KVM}},
                        .says = "kernel-patches/",
                        .log_as = "kvm-managed"});
}

}  // namespace
}  // namespace iommufd_lab
