// iommufd_backend against a real VFIO cdev device: QEMU's emulated NVMe
// behind QEMU's intel-iommu, bound to vfio-pci in L1 (tests/lab/scenarios/
// iommufd-vfio.sh). The DMA test has the controller fetch an Identify command
// from, and write its answer to, memory mapped through our IOAS: real DMA
// translated by the (emulated) VT-d page tables iommufd programmed.
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "iommufd_backend/fault_queue.hpp"
#include "iommufd_backend/hw_info.hpp"
#include "iommufd_backend/hwpt.hpp"
#include "iommufd_backend/ioas.hpp"
#include "iommufd_backend/ioctl_error.hpp"
#include "iommufd_backend/vfio_device.hpp"
#include "lab_support.hpp"

namespace iommufd_lab {
namespace {

using namespace iommufd_backend;

// NVMe controller registers (BAR0), NVMe base spec 3.1.
constexpr std::uint64_t kCap = 0x00, kVs = 0x08, kCc = 0x14, kCsts = 0x1c, kAqa = 0x24, kAsq = 0x28,
                        kAcq = 0x30, kDoorbells = 0x1000;
constexpr std::uint64_t kDmaIova =
    0x10000000;  // 256 MiB: ordinary RAM-like IOVA, far from the MSI window

class VfioNvme : public FdLeakCheck {
  protected:
    void SetUp() override {
        FdLeakCheck::SetUp();
        const auto bdf = vfio_pci_device();
        if (!bdf) IOMMUFD_LAB_SKIP_OR_FAIL("vfio", "no PCI device is bound to vfio-pci");
        if (::access("/dev/iommu", F_OK) != 0) IOMMUFD_LAB_SKIP_OR_FAIL("vfio", "no /dev/iommu");
        bdf_ = *bdf;
    }

    std::string bdf_;
};

// Polls `condition` for up to `timeout`.
template <typename Condition>
bool wait_for(Condition&& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return condition();
}

TEST_F(VfioNvme, OpenBindAttachInspectDetach) {
    const auto iommufd = IommuFd::open();
    VfioDevice device = VfioDevice::open_pci(bdf_);
    EXPECT_FALSE(device.bound());
    const std::uint32_t dev_id = device.bind(iommufd);
    EXPECT_TRUE(device.bound());
    EXPECT_EQ(device.dev_id(), dev_id);

    // The IOMMU behind it: QEMU's VT-d, caching mode, no nesting, no dirty bits.
    const HwInfo hw = HwInfo::query(iommufd, dev_id);
    std::printf("hw info: %s\n", hw.describe().c_str());
    ASSERT_EQ(hw.type(), IOMMU_HW_INFO_TYPE_INTEL_VTD);
    ASSERT_TRUE(hw.vtd());
    EXPECT_NE(hw.vtd()->cap, 0u);
    EXPECT_NE(hw.vtd()->ecap, 0u);
    EXPECT_TRUE(hw.vtd()->caching_mode());
    EXPECT_TRUE(hw.vtd()->interrupt_remapping());
    EXPECT_TRUE(hw.vtd()->queued_invalidation());
    EXPECT_GE(hw.vtd()->max_guest_address_width(), 39u);

    Ioas ioas = Ioas::allocate(iommufd);
    const std::uint32_t hwpt_id = device.attach(ioas.id());
    EXPECT_NE(hwpt_id, ioas.id()) << "attaching to an IOAS yields the auto-created paging HWPT";
    EXPECT_EQ(device.attached_pt(), hwpt_id);

    // The VT-d interrupt window is reserved in the IOAS now.
    const IovaRanges ranges = ioas.iova_ranges();
    ASSERT_FALSE(ranges.ranges.empty());
    for (const auto& range : ranges.ranges) {
        EXPECT_FALSE(range.start <= 0xfee00000 && 0xfee00000 <= range.last)
            << "MSI window inside allowed range [" << range.start << ", " << range.last << "]";
    }
    EXPECT_EQ(ranges.alignment, 4096u);

    auto buffer = anonymous_pages(16);
    EXPECT_EQ(ioas.map(buffer.bytes(), kDmaIova), kDmaIova);

    const VfioDeviceInfo info = device.info();
    EXPECT_TRUE(info.is_pci());
    EXPECT_GE(info.num_regions, static_cast<std::uint32_t>(VFIO_PCI_CONFIG_REGION_INDEX + 1));
    EXPECT_GE(info.num_irqs, static_cast<std::uint32_t>(VFIO_PCI_MSIX_IRQ_INDEX + 1));

    // PCI config space: QEMU's NVMe (Red Hat vendor id 0x1b36, device 0x0010), class 01:08:02.
    EXPECT_EQ(device.read_config(0x00, 2), 0x1b36u);
    EXPECT_EQ(device.read_config(0x02, 2), 0x0010u);
    EXPECT_EQ(device.read_config(0x09, 1), 0x02u);
    EXPECT_EQ(device.read_config(0x0a, 2), 0x0108u);

    // BAR0: the NVMe registers.
    const VfioRegionInfo bar0 = device.region_info(VFIO_PCI_BAR0_REGION_INDEX);
    EXPECT_GE(bar0.size, 0x2000u);
    EXPECT_TRUE(bar0.readable());
    const std::uint64_t cap = device.read(VFIO_PCI_BAR0_REGION_INDEX, kCap, 8);
    const std::uint32_t vs =
        static_cast<std::uint32_t>(device.read(VFIO_PCI_BAR0_REGION_INDEX, kVs, 4));
    std::printf("NVMe CAP %#llx VS %u.%u, BAR0 %#llx bytes, %u regions, %u irq indexes\n",
                static_cast<unsigned long long>(cap), vs >> 16, (vs >> 8) & 0xff,
                static_cast<unsigned long long>(bar0.size), info.num_regions, info.num_irqs);
    EXPECT_NE(cap, 0u);
    EXPECT_GE(vs >> 16, 1u);
    EXPECT_GT(cap & 0xffff, 0u);  // MQES

    const VfioIrqInfo msix = device.irq_info(VFIO_PCI_MSIX_IRQ_INDEX);
    EXPECT_GE(msix.count, 1u);

    // Out-of-region accesses are refused before reaching the device.
    EXPECT_THROW(device.read(VFIO_PCI_BAR0_REGION_INDEX, bar0.size - 2, 4), base::Error);

    EXPECT_EQ(ioas.unmap(kDmaIova, buffer.size()), buffer.size());
    device.detach();
    EXPECT_FALSE(device.attached_pt());
}

TEST_F(VfioNvme, ControllerDoesDmaThroughOurIoas) {
    const auto iommufd = IommuFd::open();
    VfioDevice device = VfioDevice::open_pci(bdf_);
    device.bind(iommufd);
    Ioas ioas = Ioas::allocate(iommufd);
    device.attach(ioas.id());

    // Page 0: admin submission queue, page 1: admin completion queue, page 2: Identify data.
    auto dma = anonymous_pages(3);
    std::memset(dma.data(), 0, dma.size());
    ioas.map(dma.bytes(), kDmaIova);
    const std::uint64_t sq_iova = kDmaIova, cq_iova = kDmaIova + 0x1000,
                        data_iova = kDmaIova + 0x2000;
    std::uint8_t* sq = dma.data();
    std::uint8_t* cq = dma.data() + 0x1000;
    const std::uint8_t* data = dma.data() + 0x2000;

    constexpr std::uint32_t bar = VFIO_PCI_BAR0_REGION_INDEX;
    // Memory space + bus master on.
    const std::uint64_t command = device.read_config(0x04, 2);
    device.write(VFIO_PCI_CONFIG_REGION_INDEX, 0x04, 2, command | 0x6);

    const std::uint64_t cap = device.read(bar, kCap, 8);
    const auto timeout =
        std::chrono::milliseconds(500 * std::max<std::uint64_t>(1, (cap >> 24) & 0xff) + 1000);
    const unsigned doorbell_stride = 4u << ((cap >> 32) & 0xf);

    // Disable, program the admin queues, enable.
    device.write(bar, kCc, 4, 0);
    ASSERT_TRUE(wait_for([&] { return (device.read(bar, kCsts, 4) & 1) == 0; }, timeout))
        << "CSTS.RDY stuck at 1";
    device.write(bar, kAqa, 4, (1u << 16) | 1u);  // 2-entry admin SQ and CQ
    device.write(bar, kAsq, 4, sq_iova & 0xffffffff);
    device.write(bar, kAsq + 4, 4, sq_iova >> 32);
    device.write(bar, kAcq, 4, cq_iova & 0xffffffff);
    device.write(bar, kAcq + 4, 4, cq_iova >> 32);
    device.write(bar, kCc, 4, (4u << 20) | (6u << 16) | 1u);  // IOCQES 16 B, IOSQES 64 B, EN
    ASSERT_TRUE(wait_for([&] { return (device.read(bar, kCsts, 4) & 3) == 1; }, timeout))
        << "controller did not become ready, CSTS " << device.read(bar, kCsts, 4);

    // Identify Controller (opcode 0x06, CNS 1), data to data_iova.
    constexpr std::uint16_t kCid = 0x1234;
    const std::uint32_t dw0 = 0x06u | (std::uint32_t{kCid} << 16);
    std::memcpy(sq + 0, &dw0, 4);
    std::memcpy(sq + 24, &data_iova, 8);
    const std::uint32_t cns = 1;
    std::memcpy(sq + 40, &cns, 4);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    device.write(bar, kDoorbells, 4, 1);  // SQ0 tail = 1

    std::uint32_t dw3 = 0;
    const bool completed = wait_for(
        [&] {
            std::atomic_thread_fence(std::memory_order_seq_cst);
            // Safe: cq is our page-aligned DMA page; dword 3 of entry 0 is 4-byte aligned.
            dw3 = *reinterpret_cast<const volatile std::uint32_t*>(cq + 12);
            return (dw3 >> 16) & 1;  // phase tag of the first pass is 1
        },
        timeout);
    ASSERT_TRUE(completed) << "no completion: the controller could not DMA through the IOAS";
    EXPECT_EQ(dw3 & 0xffff, kCid);
    EXPECT_EQ(dw3 >> 17, 0u) << "Identify failed with status " << (dw3 >> 17);
    device.write(bar, kDoorbells + doorbell_stride, 4, 1);  // CQ0 head = 1

    const std::uint16_t vid = static_cast<std::uint16_t>(data[0] | (data[1] << 8));
    const std::string model(reinterpret_cast<const char*>(data + 24), 40);
    std::printf("Identify via DMA: PCI vendor %#x, model '%s'\n", vid, model.c_str());
    EXPECT_EQ(vid, 0x1b36);
    EXPECT_EQ(model.rfind("QEMU NVMe Ctrl", 0), 0u);

    device.write(bar, kCc, 4, 0);
    EXPECT_TRUE(wait_for([&] { return (device.read(bar, kCsts, 4) & 1) == 0; }, timeout));
    device.write(VFIO_PCI_CONFIG_REGION_INDEX, 0x04, 2, command);
    device.detach();
    ioas.unmap_all();
}

// Runs `call`, which must fail in the kernel with exactly `error_number` as a
// plain IoctlError (6.12 has the feature, the IOMMU does not), and returns
// the message.
template <typename Call>
std::string expect_plain_ioctl_error(Call&& call, int error_number) {
    try {
        call();
        ADD_FAILURE() << "succeeded";
    } catch (const UnsupportedError& error) {
        ADD_FAILURE() << "reported as missing from the kernel: " << error.what();
    } catch (const IoctlError& error) {
        EXPECT_EQ(error.error_number(), error_number) << error.what();
        return error.what();
    }
    return {};
}

TEST_F(VfioNvme, ExplicitHwptsAndWhatVtdCannotDo) {
    ASSERT_TRUE(running_lab_kernel_612());
    const auto iommufd = IommuFd::open();
    VfioDevice device = VfioDevice::open_pci(bdf_);
    const std::uint32_t dev_id = device.bind(iommufd);
    Ioas ioas = Ioas::allocate(iommufd);
    const HwInfo hw = HwInfo::query(iommufd, dev_id);

    Hwpt hwpt = Hwpt::allocate_paging(iommufd, dev_id, ioas.id());
    EXPECT_EQ(device.attach(hwpt.id()), hwpt.id());
    EXPECT_THROW(hwpt.destroy(), IoctlError);                  // attached: EBUSY
    const std::uint32_t auto_hwpt = device.attach(ioas.id());  // replace
    EXPECT_NE(auto_hwpt, hwpt.id());
    hwpt.destroy();

    // QEMU's intel-iommu as the lab configures it (legacy mode, caching mode)
    // has neither scalable-mode nesting (ecap SMTS+NEST) nor second-stage
    // A/D bits (SSADS), and hw info says so.
    EXPECT_FALSE(hw.can_nest()) << hw.describe();
    EXPECT_FALSE(hw.dirty_tracking()) << hw.describe();
    EXPECT_FALSE(hw.nested_data_type());
    // So 6.12 refuses both with EOPNOTSUPP: nesting in the VT-d driver
    // (nested_supported()), dirty tracking in iommufd already
    // (IOMMU_CAP_DIRTY_TRACKING). Both are 6.7 uAPI: plain errors, no version hint.
    std::string text = expect_plain_ioctl_error(
        [&] { Hwpt::allocate_paging(iommufd, dev_id, ioas.id(), {.nest_parent = true}); },
        EOPNOTSUPP);
    EXPECT_NE(text.find("flags 0x1"), std::string::npos) << text;
    std::printf("NEST_PARENT on VT-d: %s\n", text.c_str());
    text = expect_plain_ioctl_error(
        [&] { Hwpt::allocate_paging(iommufd, dev_id, ioas.id(), {.dirty_tracking = true}); },
        EOPNOTSUPP);
    EXPECT_NE(text.find("flags 0x2"), std::string::npos) << text;

    // Without a nesting parent there is no VT-d stage-1 HWPT: the library
    // refuses the nested allocation before the kernel (which would only say
    // EINVAL) ...
    Hwpt plain = Hwpt::allocate_paging(iommufd, dev_id, ioas.id());
    try {
        Hwpt::allocate_nested(iommufd, dev_id, plain, HwptData::vtd_s1(0x10000000, 48, 0));
        FAIL() << "a VT-d stage-1 HWPT on a plain parent";
    } catch (const IoctlError& error) {
        FAIL() << "reached the kernel: " << error.what();
    } catch (const base::Error& error) {
        EXPECT_NE(std::string(error.what()).find("IOMMU_HWPT_DATA_VTD_S1"), std::string::npos)
            << error.what();
        EXPECT_NE(std::string(error.what()).find("not a nesting parent"), std::string::npos)
            << error.what();
    }
    // ... and the VT-d stage-1 invalidation of a paging HWPT finds no nested
    // HWPT of that id (iommufd_get_hwpt_nested(): ENOENT), none handled.
    const std::array<iommu_hwpt_vtd_s1_invalidate, 1> flush{
        {{.addr = kDmaIova, .npages = 1, .flags = IOMMU_VTD_INV_FLAGS_LEAF, .__reserved = 0}}};
    try {
        plain.invalidate(flush);
        FAIL() << "invalidated a paging HWPT";
    } catch (const InvalidateError& error) {
        EXPECT_EQ(error.error_number(), ENOENT) << error.what();
        EXPECT_EQ(error.handled(), 0u);
        EXPECT_EQ(error.requested(), 1u);
        EXPECT_EQ(error.param("data_type"),
                  static_cast<std::uint64_t>(IOMMU_HWPT_INVALIDATE_DATA_VTD_S1));
    }

    // A fault queue on a paging HWPT: 6.13 (iommufd core, whatever the IOMMU).
    FaultQueue faults = FaultQueue::allocate(iommufd);
    expect_unsupported([&] { Hwpt::allocate_paging(iommufd, dev_id, ioas.id(), {}, &faults); },
                       "6.12 took a fault queue on a paging HWPT",
                       {.error_number = EOPNOTSUPP, .feature = Feature::PagingHwptFaults});

    // PASID attach: 6.12's vfio_df_ioctl_attach_pt() refuses any flag with
    // EINVAL, which for a 6.15 feature means "this kernel lacks it".
    expect_unsupported([&] { device.attach_pasid(1, ioas.id()); }, "6.12 attached a PASID",
                       {.error_number = EINVAL,
                        .feature = Feature::PasidAttach,
                        .params = {{"pasid", 1}, {"pt", ioas.id()}},
                        .says = "IOMMU_HWPT_ALLOC_PASID/VFIO_DEVICE_ATTACH_PASID (PASID-capable "
                                "HWPTs attached to one PASID of a device) needs Linux 6.15 or "
                                "newer; this kernel is 6.12.",
                        .ioctl = "VFIO_DEVICE_ATTACH_IOMMUFD_PT(pasid)",
                        .log_as = "PASID attach"});
    expect_unsupported([&] { device.detach_pasid(1); }, "6.12 detached a PASID",
                       {.error_number = EINVAL, .feature = Feature::PasidAttach});
    // The refused PASID calls left the RID attachment alone.
    EXPECT_EQ(device.attached_pt(), auto_hwpt);
    device.detach();
}

TEST_F(VfioNvme, Bar0MappedMatchesPread) {
    const auto iommufd = IommuFd::open();
    VfioDevice device = VfioDevice::open_pci(bdf_);
    device.bind(iommufd);
    Ioas ioas = Ioas::allocate(iommufd);
    device.attach(ioas.id());
    constexpr std::uint32_t bar = VFIO_PCI_BAR0_REGION_INDEX;
    const VfioRegionInfo bar0 = device.region_info(bar);
    ASSERT_TRUE(bar0.mappable()) << "vfio-pci offers BAR0 (16 KiB, page aligned) for mmap";
    ASSERT_TRUE(bar0.readable() && bar0.writable());

    const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const base::MappedRegion registers = device.map_region(bar, 0, page);
    ASSERT_EQ(registers.size(), page);
    // Safe: 4-byte aligned loads inside the mapped page; volatile, as each is
    // an MMIO read of the (emulated) controller.
    auto mmio32 = [&](std::uint64_t offset) {
        return *reinterpret_cast<const volatile std::uint32_t*>(registers.data() + offset);
    };
    const std::uint64_t cap_mapped = mmio32(kCap) | (std::uint64_t{mmio32(kCap + 4)} << 32);
    EXPECT_EQ(cap_mapped, device.read(bar, kCap, 8));
    EXPECT_EQ(mmio32(kVs), device.read(bar, kVs, 4));
    EXPECT_NE(cap_mapped, 0u);
    std::printf("BAR0 mmap: CAP %#llx VS %#x (same as pread)\n",
                static_cast<unsigned long long>(cap_mapped), mmio32(kVs));

    // Writable too (the region allows it): with the controller disabled, AQA
    // is a plain read/write register; a store through the mapping reads back
    // through pread.
    const auto timeout = std::chrono::milliseconds(500 * ((cap_mapped >> 24) & 0xff) + 1000);
    device.write(bar, kCc, 4, 0);
    ASSERT_TRUE(wait_for([&] { return (device.read(bar, kCsts, 4) & 1) == 0; }, timeout));
    const std::uint64_t aqa = device.read(bar, kAqa, 4);
    *reinterpret_cast<volatile std::uint32_t*>(registers.data() + kAqa) = 0x001f001f;
    EXPECT_EQ(device.read(bar, kAqa, 4), 0x001f001fu);
    device.write(bar, kAqa, 4, aqa);
    EXPECT_EQ(mmio32(kAqa), aqa);

    // What map_region refuses before mmap: config space (not mappable), past
    // the end, and nothing at all.
    try {
        device.map_region(VFIO_PCI_CONFIG_REGION_INDEX, 0, page);
        FAIL() << "mapped PCI config space";
    } catch (const base::Error& error) {
        EXPECT_NE(std::string(error.what()).find("not mappable"), std::string::npos)
            << error.what();
    }
    EXPECT_THROW(device.map_region(bar, bar0.size, page), base::Error);
    EXPECT_THROW(device.map_region(bar, 0, 0), base::Error);
    device.detach();
}

TEST_F(VfioNvme, ResetAndInterrupts) {
    const auto iommufd = IommuFd::open();
    VfioDevice device = VfioDevice::open_pci(bdf_);
    device.bind(iommufd);
    Ioas ioas = Ioas::allocate(iommufd);
    device.attach(ioas.id());
    const VfioDeviceInfo info = device.info();
    if (info.can_reset()) {
        EXPECT_NO_THROW(device.reset());
    } else {
        std::printf("device has no reset method\n");
    }
    base::UniqueFd eventfd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    ASSERT_TRUE(eventfd.valid());
    const int fds[] = {eventfd.get()};
    EXPECT_NO_THROW(device.set_irq_eventfds(VFIO_PCI_MSIX_IRQ_INDEX, 0, fds));
    EXPECT_NO_THROW(device.disable_irqs(VFIO_PCI_MSIX_IRQ_INDEX));
    device.detach();
}

TEST_F(VfioNvme, BadInput) {
    const auto iommufd = IommuFd::open();
    VfioDevice device = VfioDevice::open_pci(bdf_);
    // Before bind: a clear library error, not EINVAL.
    EXPECT_THROW(device.attach(1), base::Error);
    const std::uint32_t dev_id = device.bind(iommufd);
    EXPECT_THROW(device.bind(iommufd), base::Error);  // twice
    try {
        device.attach(9999);
        ADD_FAILURE();
    } catch (const IoctlError& error) {
        EXPECT_EQ(error.error_number(), ENOENT) << error.what();
        EXPECT_EQ(error.param("pt"), 9999u);
        EXPECT_EQ(error.param("dev"), dev_id);
        std::printf("  ok: %s\n", error.what());
    }
    // A second fd of a device that is open and bound already: 6.12's
    // vfio_df_open() lets the cdev path open a device once (EINVAL).
    {
        VfioDevice second = VfioDevice::open_pci(bdf_);
        try {
            second.bind(iommufd);
            FAIL() << "a second bind of the same device was accepted";
        } catch (const IoctlError& error) {
            const std::string text = error.what();
            EXPECT_EQ(error.error_number(), EINVAL) << text;
            EXPECT_EQ(error.ioctl(), "VFIO_DEVICE_BIND_IOMMUFD");
            EXPECT_EQ(error.param("vfio fd"), static_cast<std::uint64_t>(second.fd()));
            EXPECT_NE(text.find("failed: Invalid argument [EINVAL]. the device is already open "
                                "and bound through another VFIO fd"),
                      std::string::npos)
                << text;
            std::printf("  ok: %s\n", text.c_str());
        }
        EXPECT_FALSE(second.bound());
    }

    // A moved-from device is unbound and closed; the new owner has it all.
    VfioDevice moved = std::move(device);
    EXPECT_FALSE(device.bound());  // NOLINT(bugprone-use-after-move): what a move leaves
    EXPECT_THROW(device.dev_id(), base::Error);
    EXPECT_THROW(device.read_config(0x00, 2), base::Error);
    EXPECT_TRUE(moved.bound());
    EXPECT_EQ(moved.dev_id(), dev_id);
    EXPECT_EQ(moved.read_config(0x00, 2), 0x1b36u);

    // A device "fd" that is not open (as after a close behind the library's back).
    VfioDevice stale = VfioDevice::adopt(never_open_fd(), "stale");
    try {
        stale.bind(iommufd);
        FAIL() << "bound a device through an fd that is not open";
    } catch (const IoctlError& error) {
        EXPECT_EQ(error.error_number(), EBADF) << error.what();
        EXPECT_NE(std::string(error.what()).find("the file descriptor is not open"),
                  std::string::npos)
            << error.what();
    }
}

}  // namespace
}  // namespace iommufd_lab
