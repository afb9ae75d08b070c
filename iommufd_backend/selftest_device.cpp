#include "iommufd_backend/selftest_device.hpp"

#include "iommufd_backend/ioctl.hpp"
#include "iommufd_backend/struct_revisions.hpp"

namespace iommufd_backend {

namespace {

// IOMMU_TEST_CMD with one op; the kernel only knows it with CONFIG_IOMMUFD_TEST
// (ENOTTY otherwise).
void test_cmd(const IommuFd& iommufd, iommu_test_cmd& cmd, const char* name,
              std::vector<Param> params) {
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    if (const int error = ioctl_errno(iommufd.fd(), IOMMU_TEST_CMD, &cmd); error != 0) {
        throw IoctlError(name, error, std::move(params),
                         error == ENOTTY
                             ? "the kernel has no iommufd selftest driver (CONFIG_IOMMUFD_TEST)"
                             : "");
    }
}

}  // namespace

SelftestDevice SelftestDevice::create(const IommuFd& iommufd, std::uint32_t pt_id,
                                      std::uint32_t device_flags) {
    iommu_test_cmd cmd{};
    cmd.op = IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS;
    cmd.id = pt_id;
    cmd.mock_domain_flags.dev_flags = device_flags;
    test_cmd(iommufd, cmd, "IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS",
             {{"pt", pt_id}, hex_param("dev_flags", device_flags)});
    return SelftestDevice(iommufd, cmd.mock_domain_flags.out_stdev_id,
                          cmd.mock_domain_flags.out_hwpt_id, cmd.mock_domain_flags.out_idev_id);
}

SelftestDevice::SelftestDevice(SelftestDevice&& other) noexcept
    : iommufd_(std::move(other.iommufd_)),
      stdev_id_(std::exchange(other.stdev_id_, 0)),
      hwpt_id_(other.hwpt_id_),
      dev_id_(other.dev_id_) {}

SelftestDevice& SelftestDevice::operator=(SelftestDevice&& other) noexcept {
    if (this != &other) {
        if (stdev_id_ != 0) iommufd_.destroy_noexcept(stdev_id_);
        iommufd_ = std::move(other.iommufd_);
        stdev_id_ = std::exchange(other.stdev_id_, 0);
        hwpt_id_ = other.hwpt_id_;
        dev_id_ = other.dev_id_;
    }
    return *this;
}

SelftestDevice::~SelftestDevice() {
    if (stdev_id_ != 0) iommufd_.destroy_noexcept(stdev_id_);
}

std::uint32_t SelftestDevice::replace(std::uint32_t pt_id) {
    iommu_test_cmd cmd{};
    cmd.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE;
    cmd.id = stdev_id_;
    cmd.mock_domain_replace.pt_id = pt_id;
    test_cmd(iommufd_, cmd, "IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE",
             {{"stdev", stdev_id_}, {"pt", pt_id}});
    hwpt_id_ = cmd.mock_domain_replace.pt_id;
    return hwpt_id_;
}

void SelftestDevice::trigger_iopf(std::uint32_t pasid, std::uint32_t grpid, std::uint32_t perm,
                                  std::uint64_t addr) const {
    iommu_test_cmd cmd{};
    cmd.op = IOMMU_TEST_OP_TRIGGER_IOPF;
    cmd.trigger_iopf.dev_id = dev_id_;
    cmd.trigger_iopf.pasid = pasid;
    cmd.trigger_iopf.grpid = grpid;
    cmd.trigger_iopf.perm = perm;
    cmd.trigger_iopf.addr = addr;
    test_cmd(iommufd_, cmd, "IOMMU_TEST_OP_TRIGGER_IOPF",
             {{"dev", dev_id_}, hex_param("addr", addr)});
}

void SelftestDevice::check_map(const IommuFd& iommufd, std::uint32_t hwpt_id, std::uint64_t iova,
                               std::span<const std::uint8_t> bytes) {
    iommu_test_cmd cmd{};
    cmd.op = IOMMU_TEST_OP_MD_CHECK_MAP;
    cmd.id = hwpt_id;
    cmd.check_map.iova = iova;
    cmd.check_map.length = bytes.size();
    // The kernel pins and compares these pages during the call only.
    cmd.check_map.uptr = reinterpret_cast<std::uintptr_t>(bytes.data());
    test_cmd(iommufd, cmd, "IOMMU_TEST_OP_MD_CHECK_MAP",
             {{"hwpt", hwpt_id}, hex_param("iova", iova), hex_param("length", bytes.size())});
}

void SelftestDevice::check_iotlb(const IommuFd& iommufd, std::uint32_t hwpt_id, std::uint32_t index,
                                 std::uint32_t expected) {
    iommu_test_cmd cmd{};
    cmd.op = IOMMU_TEST_OP_MD_CHECK_IOTLB;
    cmd.id = hwpt_id;
    cmd.check_iotlb.id = index;
    cmd.check_iotlb.iotlb = expected;
    test_cmd(iommufd, cmd, "IOMMU_TEST_OP_MD_CHECK_IOTLB",
             {{"hwpt", hwpt_id}, {"iotlb", index}, hex_param("expected", expected)});
}

std::uint64_t SelftestDevice::mark_dirty(const IommuFd& iommufd, std::uint32_t hwpt_id,
                                         std::uint64_t iova, std::uint64_t length,
                                         std::uint64_t page_size,
                                         std::span<const std::uint64_t> bitmap) {
    if (page_size == 0 || bitmap.size() * 64 < length / page_size) {
        throw base::Error(
            "IOMMU_TEST_OP_DIRTY: bitmap of {} words does not cover {:#x} bytes at page size {:#x}",
            bitmap.size(), length, page_size);
    }
    iommu_test_cmd cmd{};
    cmd.op = IOMMU_TEST_OP_DIRTY;
    cmd.id = hwpt_id;
    cmd.dirty.iova = iova;
    cmd.dirty.length = length;
    cmd.dirty.page_size = page_size;
    // The kernel reads length / page_size bits from here (checked above).
    cmd.dirty.uptr = reinterpret_cast<std::uintptr_t>(bitmap.data());
    test_cmd(iommufd, cmd, "IOMMU_TEST_OP_DIRTY",
             {{"hwpt", hwpt_id}, hex_param("iova", iova), hex_param("length", length)});
    return cmd.dirty.out_nr_dirty;
}

}  // namespace iommufd_backend
