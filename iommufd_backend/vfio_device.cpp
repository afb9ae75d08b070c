#include "iommufd_backend/vfio_device.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "base/checked_math.hpp"
#include "iommufd_backend/ioctl.hpp"
#include "iommufd_backend/struct_revisions.hpp"

namespace iommufd_backend {

bool VfioDeviceInfo::is_pci() const {
    return (flags & VFIO_DEVICE_FLAGS_PCI) != 0;
}
bool VfioDeviceInfo::can_reset() const {
    return (flags & VFIO_DEVICE_FLAGS_RESET) != 0;
}
bool VfioRegionInfo::readable() const {
    return (flags & VFIO_REGION_INFO_FLAG_READ) != 0;
}
bool VfioRegionInfo::writable() const {
    return (flags & VFIO_REGION_INFO_FLAG_WRITE) != 0;
}
bool VfioRegionInfo::mappable() const {
    return (flags & VFIO_REGION_INFO_FLAG_MMAP) != 0;
}

VfioDevice VfioDevice::open(const std::string& cdev_path) {
    const int fd = ::open(cdev_path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        const int error = errno;
        throw base::SystemError(
            error,
            error == ENOENT
                ? fmt::format(
                      "cannot open VFIO device {} (no such cdev: is the device bound to "
                      "vfio-pci and the kernel built with CONFIG_VFIO_DEVICE_CDEV, Linux 6.6+?)",
                      cdev_path)
                : fmt::format("cannot open VFIO device {}", cdev_path));
    }
    return VfioDevice(base::UniqueFd(fd), cdev_path);
}

std::string VfioDevice::cdev_path_of_pci(const std::string& bdf) {
    const std::string directory = "/sys/bus/pci/devices/" + bdf + "/vfio-dev";
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(directory.c_str()), ::closedir);
    if (!dir) {
        base::throw_errno(
            "PCI device {} has no VFIO cdev ({}): bind it to vfio-pci first "
            "(driver_override + drivers_probe)",
            bdf, directory);
    }
    while (const dirent* entry = ::readdir(dir.get())) {
        if (std::strncmp(entry->d_name, "vfio", 4) == 0)
            return std::string("/dev/vfio/devices/") + entry->d_name;
    }
    throw base::Error("PCI device {} has an empty {}: no VFIO cdev", bdf, directory);
}

VfioDevice VfioDevice::open_pci(const std::string& bdf) {
    VfioDevice device = open(cdev_path_of_pci(bdf));
    device.name_ = fmt::format("{} ({})", device.name_, bdf);
    return device;
}

VfioDevice::VfioDevice(VfioDevice&& other) noexcept
    : fd_(std::move(other.fd_)),
      name_(std::move(other.name_)),
      iommufd_(std::exchange(other.iommufd_, std::nullopt)),
      dev_id_(std::exchange(other.dev_id_, std::nullopt)),
      attached_pt_(std::exchange(other.attached_pt_, std::nullopt)),
      regions_(std::exchange(other.regions_, {})) {}

VfioDevice& VfioDevice::operator=(VfioDevice&& other) noexcept {
    if (this != &other) {
        // Closing our fd first detaches and unbinds this device.
        fd_ = std::move(other.fd_);
        name_ = std::move(other.name_);
        iommufd_ = std::exchange(other.iommufd_, std::nullopt);
        dev_id_ = std::exchange(other.dev_id_, std::nullopt);
        attached_pt_ = std::exchange(other.attached_pt_, std::nullopt);
        regions_ = std::exchange(other.regions_, {});
    }
    return *this;
}

VfioDevice VfioDevice::adopt(base::UniqueFd fd, std::string name) {
    if (!fd.valid()) throw base::Error("VfioDevice::adopt({}): not a file descriptor", name);
    return VfioDevice(std::move(fd), std::move(name));
}

std::uint32_t VfioDevice::dev_id() const {
    require_bound("dev_id");
    return *dev_id_;
}

void VfioDevice::require_bound(const char* operation) const {
    if (!fd_.valid())
        throw base::Error("{} on VFIO device {}: the device was closed or moved from", operation,
                          name_);
    if (!dev_id_) {
        throw base::Error(
            "{} on VFIO device {}: the device is not bound to an iommufd yet (call bind() first)",
            operation, name_);
    }
}

std::uint32_t VfioDevice::bind(const IommuFd& iommufd) {
    if (!fd_.valid())
        throw base::Error("VFIO_DEVICE_BIND_IOMMUFD on VFIO device {}: the device was closed",
                          name_);
    if (dev_id_) {
        throw base::Error("VFIO_DEVICE_BIND_IOMMUFD on VFIO device {}: already bound (dev {})",
                          name_, *dev_id_);
    }
    vfio_device_bind_iommufd cmd{};
    cmd.iommufd = iommufd.fd();
    cmd.argsz = size_for(cmd, sizeof(cmd)).size;
    // Safe: reads the iommufd number (kept open by iommufd_ below) and writes out_devid.
    if (const int error = ioctl_errno(fd_.get(), VFIO_DEVICE_BIND_IOMMUFD, &cmd); error != 0) {
        std::vector<Param> params{{"vfio fd", static_cast<std::uint64_t>(fd_.get())},
                                  {"iommufd", static_cast<std::uint64_t>(iommufd.fd())}};
        // With argsz and flags right, vfio_df_open()'s "opened already" is
        // the one EINVAL left: the cdev path opens a device once at a time.
        if (error == EINVAL) {
            throw IoctlError("VFIO_DEVICE_BIND_IOMMUFD", error, std::move(params),
                             "the device is already open and bound through another VFIO fd (a "
                             "cdev device is opened by one fd at a time)");
        }
        throw_ioctl_error("VFIO_DEVICE_BIND_IOMMUFD", error, Feature::VfioDeviceCdev,
                          std::move(params));
    }
    iommufd_ = iommufd;
    dev_id_ = cmd.out_devid;
    cache_region_infos();
    return cmd.out_devid;
}

void VfioDevice::cache_region_infos() {
    vfio_device_info info{};
    info.argsz = sizeof(info);
    // Safe: the kernel writes at most argsz = sizeof(info) bytes. A failure
    // leaves the cache empty: region_info() then asks the kernel each time.
    if (ioctl_errno(fd_.get(), VFIO_DEVICE_GET_INFO, &info) != 0) return;
    regions_.assign(info.num_regions, std::nullopt);
    for (std::uint32_t index = 0; index < info.num_regions; ++index) {
        vfio_region_info region{};
        region.argsz = sizeof(region);
        region.index = index;
        // Safe: as above. A refused index (e.g. the VGA region of a non-VGA
        // device) stays nullopt.
        if (ioctl_errno(fd_.get(), VFIO_DEVICE_GET_REGION_INFO, &region) == 0)
            regions_[index] = VfioRegionInfo{index, region.flags, region.size, region.offset};
    }
}

std::uint32_t VfioDevice::attach(std::uint32_t pt_id) {
    require_bound("VFIO_DEVICE_ATTACH_IOMMUFD_PT");
    vfio_device_attach_iommufd_pt_v615 cmd{};
    cmd.pt_id = pt_id;
    cmd.argsz = size_for(cmd, IOMMUFD_OFFSETOFEND(vfio_device_attach_iommufd_pt_v615, pt_id)).size;
    // Safe: reads/writes argsz bytes of `cmd`; attaching only changes where the device DMAs.
    checked_ioctl(fd_.get(), VFIO_DEVICE_ATTACH_IOMMUFD_PT, cmd, "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
                  Feature::VfioDeviceCdev, [&] {
                      return std::vector<Param>{{"dev", *dev_id_}, {"pt", pt_id}};
                  });
    attached_pt_ = cmd.pt_id;
    return cmd.pt_id;
}

void VfioDevice::detach() {
    require_bound("VFIO_DEVICE_DETACH_IOMMUFD_PT");
    vfio_device_detach_iommufd_pt_v615 cmd{};
    cmd.argsz = size_for(cmd, IOMMUFD_OFFSETOFEND(vfio_device_detach_iommufd_pt_v615, flags)).size;
    // Safe: reads argsz bytes of `cmd`; afterwards the device's DMA is blocked.
    checked_ioctl(fd_.get(), VFIO_DEVICE_DETACH_IOMMUFD_PT, cmd, "VFIO_DEVICE_DETACH_IOMMUFD_PT",
                  Feature::VfioDeviceCdev, [&] {
                      return std::vector<Param>{{"dev", *dev_id_}};
                  });
    attached_pt_.reset();
}

std::uint32_t VfioDevice::attach_pasid(std::uint32_t pasid, std::uint32_t pt_id) {
    require_bound("VFIO_DEVICE_ATTACH_IOMMUFD_PT(pasid)");
    vfio_device_attach_iommufd_pt_v615 cmd{};
    cmd.flags = VFIO_DEVICE_ATTACH_PASID;
    cmd.pt_id = pt_id;
    cmd.pasid = pasid;
    const ChosenSize size =
        size_for(cmd, IOMMUFD_OFFSETOFEND(vfio_device_attach_iommufd_pt_v615, pasid));
    cmd.argsz = size.size;
    // Safe: reads/writes argsz bytes of `cmd`; attaching only changes where the device DMAs.
    checked_ioctl(fd_.get(), VFIO_DEVICE_ATTACH_IOMMUFD_PT, cmd,
                  "VFIO_DEVICE_ATTACH_IOMMUFD_PT(pasid)", size.feature, [&] {
                      return std::vector<Param>{{"dev", *dev_id_}, {"pasid", pasid}, {"pt", pt_id}};
                  });
    return cmd.pt_id;
}

void VfioDevice::detach_pasid(std::uint32_t pasid) {
    require_bound("VFIO_DEVICE_DETACH_IOMMUFD_PT(pasid)");
    vfio_device_detach_iommufd_pt_v615 cmd{};
    cmd.flags = VFIO_DEVICE_DETACH_PASID;
    cmd.pasid = pasid;
    const ChosenSize size =
        size_for(cmd, IOMMUFD_OFFSETOFEND(vfio_device_detach_iommufd_pt_v615, pasid));
    cmd.argsz = size.size;
    // Safe: reads argsz bytes of `cmd`; afterwards the device's DMA is blocked.
    checked_ioctl(fd_.get(), VFIO_DEVICE_DETACH_IOMMUFD_PT, cmd,
                  "VFIO_DEVICE_DETACH_IOMMUFD_PT(pasid)", size.feature, [&] {
                      return std::vector<Param>{{"dev", *dev_id_}, {"pasid", pasid}};
                  });
}

VfioDeviceInfo VfioDevice::info() const {
    require_bound("VFIO_DEVICE_GET_INFO");
    vfio_device_info cmd{};
    // The fixed part only: capability chains (argsz grows) are not needed here.
    cmd.argsz = sizeof(cmd);
    // Safe: the kernel writes at most argsz = sizeof(cmd) bytes.
    checked_ioctl(fd_.get(), VFIO_DEVICE_GET_INFO, cmd, "VFIO_DEVICE_GET_INFO",
                  Feature::VfioDeviceCdev, [&] {
                      return std::vector<Param>{{"dev", *dev_id_}};
                  });
    return {cmd.flags, cmd.num_regions, cmd.num_irqs};
}

VfioRegionInfo VfioDevice::region_info(std::uint32_t index) const {
    require_bound("VFIO_DEVICE_GET_REGION_INFO");
    if (index < regions_.size() && regions_[index]) return *regions_[index];
    return query_region_info(index);
}

VfioRegionInfo VfioDevice::query_region_info(std::uint32_t index) const {
    vfio_region_info cmd{};
    cmd.argsz = sizeof(cmd);
    cmd.index = index;
    // Safe: the kernel writes at most argsz = sizeof(cmd) bytes.
    checked_ioctl(fd_.get(), VFIO_DEVICE_GET_REGION_INFO, cmd, "VFIO_DEVICE_GET_REGION_INFO",
                  Feature::VfioDeviceCdev, [&] {
                      return std::vector<Param>{{"dev", *dev_id_}, {"region", index}};
                  });
    return {index, cmd.flags, cmd.size, cmd.offset};
}

VfioIrqInfo VfioDevice::irq_info(std::uint32_t index) const {
    require_bound("VFIO_DEVICE_GET_IRQ_INFO");
    vfio_irq_info cmd{};
    cmd.argsz = sizeof(cmd);
    cmd.index = index;
    // Safe: the kernel writes at most argsz = sizeof(cmd) bytes.
    checked_ioctl(fd_.get(), VFIO_DEVICE_GET_IRQ_INFO, cmd, "VFIO_DEVICE_GET_IRQ_INFO",
                  Feature::VfioDeviceCdev, [&] {
                      return std::vector<Param>{{"dev", *dev_id_}, {"irq index", index}};
                  });
    return {index, cmd.flags, cmd.count};
}

void VfioDevice::read_region(std::uint32_t index, std::uint64_t offset,
                             std::span<std::uint8_t> out) const {
    const VfioRegionInfo region = region_info(index);
    if (!region.readable() || !base::range_within(offset, out.size(), region.size)) {
        throw base::Error(
            "read of {} bytes at {:#x} of region {} of VFIO device {}: outside the region "
            "({:#x} bytes{})",
            out.size(), offset, index, name_, region.size,
            region.readable() ? "" : ", not readable");
    }
    // Safe: pread into `out`, at most out.size() bytes, from the device fd at
    // the region's offset; VFIO routes it to config space or the BAR.
    const ssize_t done =
        ::pread(fd_.get(), out.data(), out.size(), static_cast<off_t>(region.offset + offset));
    if (done != static_cast<ssize_t>(out.size())) {
        // Saved before the Param vector below allocates (and may clobber errno).
        const int error = done < 0 ? errno : EIO;
        throw IoctlError("pread(vfio region)", error,
                         {{"dev", *dev_id_},
                          {"region", index},
                          hex_param("offset", offset),
                          {"bytes", out.size()}});
    }
}

void VfioDevice::write_region(std::uint32_t index, std::uint64_t offset,
                              std::span<const std::uint8_t> in) const {
    const VfioRegionInfo region = region_info(index);
    if (!region.writable() || !base::range_within(offset, in.size(), region.size)) {
        throw base::Error(
            "write of {} bytes at {:#x} of region {} of VFIO device {}: outside the region "
            "({:#x} bytes{})",
            in.size(), offset, index, name_, region.size,
            region.writable() ? "" : ", not writable");
    }
    // Safe: pwrite of `in` into the device fd at the region's offset.
    const ssize_t done =
        ::pwrite(fd_.get(), in.data(), in.size(), static_cast<off_t>(region.offset + offset));
    if (done != static_cast<ssize_t>(in.size())) {
        // Saved before the Param vector below allocates (and may clobber errno).
        const int error = done < 0 ? errno : EIO;
        throw IoctlError("pwrite(vfio region)", error,
                         {{"dev", *dev_id_},
                          {"region", index},
                          hex_param("offset", offset),
                          {"bytes", in.size()}});
    }
}

std::uint64_t VfioDevice::read(std::uint32_t index, std::uint64_t offset, unsigned width) const {
    if (width != 1 && width != 2 && width != 4 && width != 8) {
        throw base::Error("register read of width {} on VFIO device {}: width must be 1, 2, 4 or 8",
                          width, name_);
    }
    std::uint8_t bytes[8] = {};
    read_region(index, offset, std::span<std::uint8_t>(bytes, width));
    std::uint64_t value = 0;
    for (unsigned i = 0; i < width; ++i) value |= std::uint64_t{bytes[i]} << (8 * i);
    return value;
}

void VfioDevice::write(std::uint32_t index, std::uint64_t offset, unsigned width,
                       std::uint64_t value) const {
    if (width != 1 && width != 2 && width != 4 && width != 8) {
        throw base::Error(
            "register write of width {} on VFIO device {}: width must be 1, 2, 4 or 8", width,
            name_);
    }
    std::uint8_t bytes[8] = {};
    for (unsigned i = 0; i < width; ++i) bytes[i] = static_cast<std::uint8_t>(value >> (8 * i));
    write_region(index, offset, std::span<const std::uint8_t>(bytes, width));
}

std::uint64_t VfioDevice::read_config(std::uint64_t offset, unsigned width) const {
    return read(VFIO_PCI_CONFIG_REGION_INDEX, offset, width);
}

base::MappedRegion VfioDevice::map_region(std::uint32_t index, std::uint64_t offset,
                                          std::uint64_t length) const {
    const VfioRegionInfo region = region_info(index);
    const char* refusal = nullptr;
    if (!region.mappable()) {
        refusal = "the region is not mappable";
    } else if (!region.readable() && !region.writable()) {
        refusal = "the region allows neither reads nor writes";
    } else if (length == 0 || !base::range_within(offset, length, region.size)) {
        refusal = "empty or outside the region";
    }
    if (refusal != nullptr) {
        throw base::Error("mmap of {:#x} bytes at {:#x} of region {} of VFIO device {}: {}", length,
                          offset, index, name_, refusal);
    }
    // VFIO drivers that check (vfio-platform, device-specific regions) refuse
    // a mapping with more access than the region's flags with EINVAL.
    const int prot = (region.readable() ? PROT_READ : 0) | (region.writable() ? PROT_WRITE : 0);
    // Safe: a new shared mapping of the device's BAR through the VFIO fd,
    // within the region (checked above); owned by the returned MappedRegion.
    return base::MappedRegion::map(length, prot, MAP_SHARED, fd_.get(),
                                   static_cast<off_t>(region.offset + offset));
}

void VfioDevice::set_irq_eventfds(std::uint32_t index, std::uint32_t start,
                                  std::span<const int> eventfds) {
    require_bound("VFIO_DEVICE_SET_IRQS");
    // vfio_irq_set is followed by `count` s32 eventfds.
    std::vector<std::uint8_t> buffer(sizeof(vfio_irq_set) + eventfds.size_bytes());
    vfio_irq_set header{};
    header.argsz = static_cast<std::uint32_t>(buffer.size());
    header.flags = VFIO_IRQ_SET_ACTION_TRIGGER |
                   (eventfds.empty() ? VFIO_IRQ_SET_DATA_NONE : VFIO_IRQ_SET_DATA_EVENTFD);
    header.index = index;
    header.start = start;
    header.count = static_cast<std::uint32_t>(eventfds.size());
    std::memcpy(buffer.data(), &header, sizeof(header));
    if (!eventfds.empty())
        std::memcpy(buffer.data() + sizeof(header), eventfds.data(), eventfds.size_bytes());
    // Safe: `buffer` holds the header plus count s32 fds, argsz bytes in all.
    if (const int error = ioctl_errno(fd_.get(), VFIO_DEVICE_SET_IRQS, buffer.data()); error != 0) {
        throw_ioctl_error("VFIO_DEVICE_SET_IRQS", error, Feature::VfioDeviceCdev,
                          {{"dev", *dev_id_},
                           {"irq index", index},
                           {"start", start},
                           {"count", eventfds.size()}});
    }
}

void VfioDevice::disable_irqs(std::uint32_t index) {
    set_irq_eventfds(index, 0, {});
}

void VfioDevice::set_irq_unmask_eventfd(std::uint32_t index, std::uint32_t start, int eventfd) {
    require_bound("VFIO_DEVICE_SET_IRQS(unmask)");
    // vfio_irq_set followed by one s32 eventfd.
    std::uint8_t buffer[sizeof(vfio_irq_set) + sizeof(std::int32_t)] = {};
    vfio_irq_set header{};
    header.argsz = sizeof(buffer);
    header.flags = VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_DATA_EVENTFD;
    header.index = index;
    header.start = start;
    header.count = 1;
    const std::int32_t fd = eventfd;
    std::memcpy(buffer, &header, sizeof(header));
    std::memcpy(buffer + sizeof(header), &fd, sizeof(fd));
    // Safe: `buffer` holds the header plus one s32 fd, argsz bytes in all.
    if (const int error = ioctl_errno(fd_.get(), VFIO_DEVICE_SET_IRQS, buffer); error != 0) {
        throw_ioctl_error("VFIO_DEVICE_SET_IRQS(unmask)", error, Feature::VfioDeviceCdev,
                          {{"dev", *dev_id_}, {"irq index", index}, {"start", start}});
    }
}

void VfioDevice::reset() {
    require_bound("VFIO_DEVICE_RESET");
    if (const int error = ioctl_errno_noarg(fd_.get(), VFIO_DEVICE_RESET); error != 0) {
        throw_ioctl_error("VFIO_DEVICE_RESET", error, Feature::VfioDeviceCdev, {{"dev", *dev_id_}});
    }
}

}  // namespace iommufd_backend
