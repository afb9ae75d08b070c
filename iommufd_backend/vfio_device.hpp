// A VFIO device opened through its cdev (/dev/vfio/devices/vfioN) and bound
// to an iommufd: the passthrough device of the VMM.
//
// Lifecycle: open -> bind(iommufd) -> attach(IOAS or HWPT) -> use regions,
// irqs, reset -> detach -> close (the destructor; closing unbinds). Every
// device ioctl but BIND needs a bound device; calling one before bind() is a
// base::Error naming the device, not a bare EINVAL.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/mapped_region.hpp"
#include "base/unique_fd.hpp"
#include "iommufd_backend/iommu_fd.hpp"

namespace iommufd_backend {

struct VfioDeviceInfo {
    std::uint32_t flags = 0;  // VFIO_DEVICE_FLAGS_*
    std::uint32_t num_regions = 0;
    std::uint32_t num_irqs = 0;

    bool is_pci() const;
    bool can_reset() const;
};

struct VfioRegionInfo {
    std::uint32_t index = 0;
    std::uint32_t flags = 0;  // VFIO_REGION_INFO_FLAG_*
    std::uint64_t size = 0;
    std::uint64_t offset = 0;  // of the region within the device fd

    bool readable() const;
    bool writable() const;
    bool mappable() const;
};

struct VfioIrqInfo {
    std::uint32_t index = 0;
    std::uint32_t flags = 0;  // VFIO_IRQ_INFO_*
    std::uint32_t count = 0;
};

class VfioDevice {
  public:
    // Opens a cdev path such as /dev/vfio/devices/vfio0.
    static VfioDevice open(const std::string& cdev_path);
    // Opens the cdev of PCI device `bdf` ("0000:00:03.0"), which must be bound
    // to vfio-pci (found through /sys/bus/pci/devices/<bdf>/vfio-dev/).
    static VfioDevice open_pci(const std::string& bdf);
    // The cdev path of PCI device `bdf`; throws when it has none.
    static std::string cdev_path_of_pci(const std::string& bdf);
    // Takes a device fd opened elsewhere (e.g. passed in by a management stack).
    static VfioDevice adopt(base::UniqueFd fd, std::string name);

    // A moved-from device is closed and unbound (bound() false, every call a
    // base::Error).
    VfioDevice(VfioDevice&& other) noexcept;
    VfioDevice& operator=(VfioDevice&& other) noexcept;
    VfioDevice(const VfioDevice&) = delete;
    VfioDevice& operator=(const VfioDevice&) = delete;
    ~VfioDevice() = default;  // closing the fd detaches and unbinds

    int fd() const noexcept { return fd_.get(); }
    const std::string& name() const noexcept { return name_; }
    bool bound() const noexcept { return dev_id_.has_value(); }
    // The iommufd device id from bind(): what IOMMU_HWPT_ALLOC, IOMMU_GET_HW_INFO
    // and friends take as dev_id.
    std::uint32_t dev_id() const;

    // VFIO_DEVICE_BIND_IOMMUFD. Once per open device; a device opened and
    // bound through another fd too is refused (EINVAL, explained). Also reads
    // every region's info once (VFIO_DEVICE_GET_REGION_INFO), as it cannot
    // change while the device is open: region accesses then need no ioctl.
    std::uint32_t bind(const IommuFd& iommufd);
    // VFIO_DEVICE_ATTACH_IOMMUFD_PT to an IOAS (the kernel makes or reuses a
    // paging HWPT, whose id is returned) or to a HWPT (returned as is).
    // Attaching again replaces the current attachment.
    std::uint32_t attach(std::uint32_t pt_id);
    // VFIO_DEVICE_DETACH_IOMMUFD_PT: DMA is blocked until the next attach.
    void detach();
    // The same for one PASID of the device (Linux 6.15).
    std::uint32_t attach_pasid(std::uint32_t pasid, std::uint32_t pt_id);
    void detach_pasid(std::uint32_t pasid);
    std::optional<std::uint32_t> attached_pt() const noexcept { return attached_pt_; }

    VfioDeviceInfo info() const;
    // From the cache filled by bind(); an index the kernel refused then (or
    // past num_regions) asks the kernel again, so its error is reported.
    VfioRegionInfo region_info(std::uint32_t index) const;
    VfioIrqInfo irq_info(std::uint32_t index) const;

    // pread/pwrite inside region `index` (bounds-checked against its size).
    void read_region(std::uint32_t index, std::uint64_t offset, std::span<std::uint8_t> out) const;
    void write_region(std::uint32_t index, std::uint64_t offset,
                      std::span<const std::uint8_t> in) const;
    // Little-endian register access of 1, 2, 4 or 8 bytes.
    std::uint64_t read(std::uint32_t index, std::uint64_t offset, unsigned width) const;
    void write(std::uint32_t index, std::uint64_t offset, unsigned width,
               std::uint64_t value) const;
    // PCI config space (VFIO_PCI_CONFIG_REGION_INDEX).
    std::uint64_t read_config(std::uint64_t offset, unsigned width) const;
    // mmap of [offset, +length) of a mappable region, shared with the device,
    // with the access the region allows (PROT_READ if readable, PROT_WRITE if
    // writable: drivers that check refuse more than the region allows). `offset`
    // and `length` must be page aligned (mmap's rule).
    base::MappedRegion map_region(std::uint32_t index, std::uint64_t offset,
                                  std::uint64_t length) const;

    // VFIO_DEVICE_SET_IRQS: route interrupts [start, +eventfds.size()) of irq
    // index `index` to `eventfds` (-1 leaves one unassigned); empty disables
    // the whole index.
    void set_irq_eventfds(std::uint32_t index, std::uint32_t start, std::span<const int> eventfds);
    void disable_irqs(std::uint32_t index);
    // VFIO_DEVICE_SET_IRQS, ACTION_UNMASK with an eventfd: each signal of
    // `eventfd` unmasks interrupt `start` of `index`. For INTx, which VFIO
    // masks when it fires: KVM's resample eventfd goes here.
    void set_irq_unmask_eventfd(std::uint32_t index, std::uint32_t start, int eventfd);

    // VFIO_DEVICE_RESET (function-level or whatever the device supports).
    void reset();

  private:
    VfioDevice(base::UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
    void require_bound(const char* operation) const;
    VfioRegionInfo query_region_info(std::uint32_t index) const;
    void cache_region_infos();

    base::UniqueFd fd_;
    std::string name_;
    std::optional<IommuFd> iommufd_;  // kept open while bound
    std::optional<std::uint32_t> dev_id_;
    std::optional<std::uint32_t> attached_pt_;
    // By region index, filled once by bind() and only read afterwards (so
    // concurrent register accesses from vCPU threads share it safely);
    // nullopt where the kernel refused the query.
    std::vector<std::optional<VfioRegionInfo>> regions_;
};

}  // namespace iommufd_backend
