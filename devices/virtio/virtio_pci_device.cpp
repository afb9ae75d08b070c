#include "devices/virtio/virtio_pci_device.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "base/error.hpp"
#include "base/event_fd.hpp"
#include "vmm/log.hpp"

namespace devices::virtio {

namespace {

// struct virtio_pci_common_cfg field offsets (4.1.4.3), plus the 1.2
// additions that make it 64 bytes (read as zero: not offered).
enum CommonField : std::uint16_t {
    kDeviceFeatureSelect = 0x00,
    kDeviceFeature = 0x04,
    kDriverFeatureSelect = 0x08,
    kDriverFeature = 0x0c,
    kConfigMsixVector = 0x10,
    kNumQueues = 0x12,
    kDeviceStatus = 0x14,
    kConfigGeneration = 0x15,
    kQueueSelect = 0x16,
    kQueueSize = 0x18,
    kQueueMsixVector = 0x1a,
    kQueueEnable = 0x1c,
    kQueueNotifyOff = 0x1e,
    kQueueDesc = 0x20,
    kQueueDriver = 0x28,
    kQueueDevice = 0x30,
    kQueueNotifyData = 0x38,
    kQueueReset = 0x3a,
    kAdminQueueIndex = 0x3c,
    kAdminQueueNum = 0x3e,
};

struct FieldSpan {
    std::uint16_t offset;
    std::uint8_t size;
};

constexpr std::array<FieldSpan, 20> kCommonFields{{
    {kDeviceFeatureSelect, 4}, {kDeviceFeature, 4},    {kDriverFeatureSelect, 4},
    {kDriverFeature, 4},       {kConfigMsixVector, 2}, {kNumQueues, 2},
    {kDeviceStatus, 1},        {kConfigGeneration, 1}, {kQueueSelect, 2},
    {kQueueSize, 2},           {kQueueMsixVector, 2},  {kQueueEnable, 2},
    {kQueueNotifyOff, 2},      {kQueueDesc, 8},        {kQueueDriver, 8},
    {kQueueDevice, 8},         {kQueueNotifyData, 2},  {kQueueReset, 2},
    {kAdminQueueIndex, 2},     {kAdminQueueNum, 2},
}};

const FieldSpan* find_field(std::uint64_t offset) {
    for (const auto& field : kCommonFields) {
        if (offset >= field.offset && offset < field.offset + field.size) return &field;
    }
    return nullptr;
}

// The features every device gets from the transport.
constexpr std::uint64_t kTransportFeatures = feature_bit(kFeatureVersion1) |
                                             feature_bit(kFeatureEventIdx) |
                                             feature_bit(kFeatureIndirectDesc);

// struct virtio_pci_cap without its first two bytes (ID and next pointer).
std::vector<std::uint8_t> virtio_cap_body(std::uint8_t type, std::uint8_t bar, std::uint32_t offset,
                                          std::uint32_t length, std::size_t extra) {
    std::vector<std::uint8_t> body(14 + extra, 0);
    body[0] = static_cast<std::uint8_t>(16 + extra);  // cap_len, including ID and next
    body[1] = type;
    body[2] = bar;
    std::memcpy(&body[6], &offset, 4);
    std::memcpy(&body[10], &length, 4);
    return body;
}

std::uint64_t merge_bytes(std::uint64_t value, std::size_t at, std::span<const std::uint8_t> data) {
    for (std::size_t i = 0; i < data.size(); ++i) {
        const unsigned shift = 8 * static_cast<unsigned>(at + i);
        value = (value & ~(std::uint64_t{0xff} << shift)) | (std::uint64_t{data[i]} << shift);
    }
    return value;
}

}  // namespace

VirtioPciDevice::VirtioPciDevice(std::unique_ptr<VirtioDevice> device,
                                 const vmm::GuestMemory& memory,
                                 std::shared_ptr<pci::MsiRouter> router)
    : device_(std::move(device)),
      memory_(memory),
      router_(std::move(router)),
      hypervisor_(router_ != nullptr ? &router_->hypervisor() : nullptr),
      name_(device_->name()),
      queue_count_(device_->queue_count()),
      offered_features_(device_->device_features() | kTransportFeatures),
      config_(pci::PciIdentity{
          .vendor_id = kPciVendorId,
          .device_id = static_cast<std::uint16_t>(kPciModernDeviceIdBase + device_->device_type()),
          .class_code = device_->pci_class_code(),
          .revision = 1,  // non-transitional (4.1.2.1)
          .subsystem_vendor_id = kPciVendorId,
          .subsystem_id = 0x40,  // >= 0x40: a modern-only device
          .interrupt_pin = 1}) {
    if (queue_count_ == 0 || queue_count_ > kMaxQueues ||
        device_->config_size() > kDeviceConfigMax) {
        throw base::Error("{}: {} queues and {} bytes of config are not supported", name_,
                          queue_count_, device_->config_size());
    }
    config_.add_bar({kBarRegisters, pci::BarKind::Mmio64, kBarRegistersSize, true});
    config_.add_bar({kBarMsix, pci::BarKind::Mmio32, kBarMsixSize, false});
    // One vector for configuration changes and one per queue.
    msix_ = std::make_unique<pci::Msix>(router_, static_cast<std::uint16_t>(queue_count_ + 1),
                                        kBarMsix, 0, kBarMsix, kMsixPbaOffset);
    msix_->set_bus_master(false);  // the command register starts at 0
    msix_->add_capability(config_);

    auto add_virtio_cap = [this](std::vector<std::uint8_t> body,
                                 std::vector<std::uint8_t> writable = {}) {
        return config_.add_capability(pci::kCapabilityVendor, body, writable);
    };
    add_virtio_cap(virtio_cap_body(kPciCapCommonCfg, kBarRegisters, kCommonOffset, kCommonSize, 0));
    auto notify = virtio_cap_body(kPciCapNotifyCfg, kBarRegisters, kNotifyOffset,
                                  kNotifyMultiplier * queue_count_, 4);
    std::memcpy(&notify[14], &kNotifyMultiplier, 4);
    add_virtio_cap(notify);
    add_virtio_cap(virtio_cap_body(kPciCapIsrCfg, kBarRegisters, kIsrOffset, 4, 0));
    if (device_->config_size() > 0) {
        add_virtio_cap(virtio_cap_body(kPciCapDeviceCfg, kBarRegisters, kDeviceConfigOffset,
                                       static_cast<std::uint32_t>(device_->config_size()), 0));
    }
    // VIRTIO_PCI_CAP_PCI_CFG: a window into the BARs through config space;
    // the driver picks bar/offset/length and then accesses pci_cfg_data.
    std::vector<std::uint8_t> writable(18, 0);
    writable[2] = 0xff;                                            // bar
    std::fill(writable.begin() + 6, writable.begin() + 18, 0xff);  // offset, length, data
    pci_cfg_cap_ = add_virtio_cap(virtio_cap_body(kPciCapPciCfg, 0, 0, 0, 4), writable);

    queues_.resize(queue_count_);
    queue_vectors_ = std::make_unique<std::atomic<std::uint16_t>[]>(queue_count_);
    for (std::uint16_t i = 0; i < queue_count_; ++i) {
        queues_[i].size = device_->queue_max_size();
        queue_vectors_[i] = kMsiNoVector;
        kick_fds_.push_back(base::make_eventfd("{} queue {}", name_, i));
        base::UniqueFd relay;
        if (device_->queue_offloaded(i)) {
            relay = base::make_eventfd("{} queue {} interrupts", name_, i);
        }
        call_relays_.push_back(std::move(relay));
    }
    shared_vectors_.assign(queue_count_, kMsiNoVector);
}

VirtioPciDevice::~VirtioPciDevice() {
    std::lock_guard lock(mutex_);
    worker_.reset();
    if (registers_address_) register_ioeventfds(*registers_address_, false);
}

std::vector<pci::BarInfo> VirtioPciDevice::bars() const {
    return config_.bars();
}

void VirtioPciDevice::attached(std::uint8_t /*slot*/, std::uint32_t intx_gsi) {
    std::lock_guard lock(mutex_);
    intx_gsi_ = intx_gsi;
}

// ---- config space -------------------------------------------------------

void VirtioPciDevice::config_read(std::uint16_t offset, std::span<std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    config_read_locked(offset, data);
}

void VirtioPciDevice::config_read_locked(std::uint16_t offset, std::span<std::uint8_t> data) {
    config_.read(offset, data);
    if (pci::overlaps(offset, data.size(), pci::kStatus, 1)) {
        // Status.Interrupt: INTx pending, whether or not INTx Disable masks it.
        auto& status = data[pci::kStatus - offset];
        status = static_cast<std::uint8_t>((status & ~pci::kStatusInterrupt) |
                                           (isr_.load() != 0 ? pci::kStatusInterrupt : 0));
    }
    const std::uint16_t window = pci_cfg_cap_ + 16;
    if (pci_cfg_cap_ != 0 && offset == window && data.size() <= 4) {
        pci_cfg_window_access(false, data);
    }
}

void VirtioPciDevice::config_write(std::uint16_t offset, std::span<const std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    config_.write(offset, data);
    if (pci::overlaps(offset, data.size(), pci::kCommand, 2)) command_written_locked();
    const std::uint16_t msix_control = msix_->capability_offset() + 2;
    if (pci::overlaps(offset, data.size(), msix_control, 2)) {
        msix_locked([&] { msix_->control_written(config_); });
        if (!msix_->enabled() && shares_vectors_locked()) {
            fail_locked("MSI-X was disabled while the host kernel runs its queues");
        }
    }
    const std::uint16_t window = pci_cfg_cap_ + 16;
    if (pci_cfg_cap_ != 0 && offset == window && data.size() <= 4) {
        std::array<std::uint8_t, 4> bytes{};
        std::copy(data.begin(), data.end(), bytes.begin());
        pci_cfg_window_access(true, std::span(bytes).first(data.size()));
    }
}

void VirtioPciDevice::pci_cfg_window_access(bool is_write, std::span<std::uint8_t> data) {
    // 4.1.4.9: the access goes to cap.bar at cap.offset for cap.length
    // bytes (1, 2 or 4, naturally aligned); anything else does nothing.
    const std::uint8_t bar = config_.read8(pci_cfg_cap_ + 4);
    const std::uint32_t offset = config_.read32(pci_cfg_cap_ + 8);
    const std::uint32_t length = config_.read32(pci_cfg_cap_ + 12);
    if ((length != 1 && length != 2 && length != 4) || length > data.size() ||
        offset % length != 0) {
        return;
    }
    auto window = data.first(length);
    if (is_write) {
        bar_write_locked(bar, offset, window);
    } else {
        bar_read_locked(bar, offset, window);
    }
}

// ---- BARs ------------------------------------------------------------------

void VirtioPciDevice::bar_read(std::uint8_t index, std::uint64_t offset,
                               std::span<std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    bar_read_locked(index, offset, data);
}

void VirtioPciDevice::bar_write(std::uint8_t index, std::uint64_t offset,
                                std::span<const std::uint8_t> data) {
    // Notifications are the hot path when no ioeventfd catches them (no
    // KVM, or an access size KVM does not match): no lock needed.
    if (index == kBarRegisters && offset >= kNotifyOffset &&
        offset < kNotifyOffset + kNotifyMultiplier * queue_count_) {
        base::signal_eventfd(kick_fds_[(offset - kNotifyOffset) / kNotifyMultiplier].get());
        return;
    }
    std::lock_guard lock(mutex_);
    bar_write_locked(index, offset, data);
}

void VirtioPciDevice::bar_read_locked(std::uint8_t index, std::uint64_t offset,
                                      std::span<std::uint8_t> data) {
    std::fill(data.begin(), data.end(), 0);
    if (index == kBarMsix) {
        if (offset < msix_->table_size_bytes()) {
            msix_->table_read(offset, data);
        } else if (offset >= kMsixPbaOffset) {
            msix_->pba_read(offset - kMsixPbaOffset, data);
        }
        return;
    }
    if (index != kBarRegisters) return;
    if (offset < kCommonOffset + kCommonSize) {
        common_read(offset - kCommonOffset, data);
    } else if (offset == kIsrOffset && !data.empty()) {
        // Reading the ISR clears it and deasserts INTx (4.1.4.5).
        std::lock_guard intx(intx_mutex_);
        data[0] = isr_.exchange(0);
        update_intx_locked();
    } else if (offset >= kDeviceConfigOffset && offset < kDeviceConfigOffset + kDeviceConfigMax) {
        const std::uint64_t at = offset - kDeviceConfigOffset;
        if (at + data.size() <= device_->config_size()) device_->read_config(at, data);
    }
}

void VirtioPciDevice::bar_write_locked(std::uint8_t index, std::uint64_t offset,
                                       std::span<const std::uint8_t> data) {
    if (index == kBarMsix) {
        if (offset < msix_->table_size_bytes()) {
            msix_locked([&] { msix_->table_write(offset, data); });
        }
        return;  // the PBA is read-only
    }
    if (index != kBarRegisters) return;
    if (offset < kCommonOffset + kCommonSize) {
        common_write(offset - kCommonOffset, data);
    } else if (offset >= kDeviceConfigOffset && offset < kDeviceConfigOffset + kDeviceConfigMax) {
        const std::uint64_t at = offset - kDeviceConfigOffset;
        if (at + data.size() <= device_->config_size()) device_->write_config(at, data);
    } else if (offset >= kNotifyOffset &&
               offset < kNotifyOffset + kNotifyMultiplier * queue_count_) {
        base::signal_eventfd(kick_fds_[(offset - kNotifyOffset) / kNotifyMultiplier].get());
    }
}

void VirtioPciDevice::bar_moved(std::uint8_t index, std::optional<std::uint64_t> old_address,
                                std::optional<std::uint64_t> new_address) {
    if (index != kBarRegisters) return;
    std::lock_guard lock(mutex_);
    if (old_address) register_ioeventfds(*old_address, false);
    registers_address_ = new_address;
    if (new_address) register_ioeventfds(*new_address, true);
}

void VirtioPciDevice::register_ioeventfds(std::uint64_t bar_address, bool assign) {
    if (hypervisor_ == nullptr) return;
    for (std::uint16_t i = 0; i < queue_count_; ++i) {
        const std::uint64_t address = bar_address + kNotifyOffset + kNotifyMultiplier * i;
        // Linux notifies with a 16-bit write of the queue index; other
        // sizes still work, through bar_write().
        try {
            if (assign) {
                hypervisor_->assign_ioeventfd(kick_fds_[i].get(), address, 2);
            } else {
                hypervisor_->deassign_ioeventfd(kick_fds_[i].get(), address, 2);
            }
        } catch (const base::Error& error) {
            vmm::log::warn("{}: queue {} notifications fall back to MMIO exits: {}", name_, i,
                           error.what());
        }
    }
}

// ---- common configuration --------------------------------------------------

std::uint64_t VirtioPciDevice::common_read_field(std::uint16_t field) {
    const bool valid_queue = queue_select_ < queue_count_;
    const QueueRegisters none{};
    const QueueRegisters& queue = valid_queue ? queues_[queue_select_] : none;
    switch (field) {
        case kDeviceFeatureSelect:
            return device_feature_select_;
        case kDeviceFeature:
            return device_feature_select_ < 2
                       ? (offered_features_ >> (32 * device_feature_select_)) & 0xffff'ffff
                       : 0;
        case kDriverFeatureSelect:
            return driver_feature_select_;
        case kDriverFeature:
            return driver_feature_select_ < 2
                       ? (driver_features_ >> (32 * driver_feature_select_)) & 0xffff'ffff
                       : 0;
        case kConfigMsixVector:
            return config_vector_.load();
        case kNumQueues:
            return queue_count_;
        case kDeviceStatus:
            return status_.load();
        case kConfigGeneration:
            return config_generation_;
        case kQueueSelect:
            return queue_select_;
        case kQueueSize:
            return queue.size;  // 0 for a queue that does not exist
        case kQueueMsixVector:
            return valid_queue ? queue_vectors_[queue_select_].load() : kMsiNoVector;
        case kQueueEnable:
            return queue.enabled ? 1 : 0;
        case kQueueNotifyOff:
            return valid_queue ? queue_select_ : 0;
        case kQueueDesc:
            return queue.desc;
        case kQueueDriver:
            return queue.driver;
        case kQueueDevice:
            return queue.device;
        default:
            return 0;
    }
}

void VirtioPciDevice::common_write_field(std::uint16_t field, std::uint64_t value) {
    const std::uint8_t status = status_.load();
    const bool queue_writable = queue_select_ < queue_count_ && !queues_[queue_select_].enabled &&
                                (status & kStatusDriverOk) == 0;
    switch (field) {
        case kDeviceFeatureSelect:
            device_feature_select_ = static_cast<std::uint32_t>(value);
            break;
        case kDriverFeatureSelect:
            driver_feature_select_ = static_cast<std::uint32_t>(value);
            break;
        case kDriverFeature:
            // Features are frozen once FEATURES_OK was accepted (3.1.1).
            if (driver_feature_select_ < 2 && (status & kStatusFeaturesOk) == 0) {
                const unsigned shift = 32 * driver_feature_select_;
                driver_features_ = (driver_features_ & ~(std::uint64_t{0xffff'ffff} << shift)) |
                                   ((value & 0xffff'ffff) << shift);
            }
            break;
        case kConfigMsixVector: {
            const auto vector = static_cast<std::uint16_t>(value);
            // An unmappable vector reads back as NO_VECTOR (4.1.5.1.2).
            config_vector_ = vector < msix_->vector_count() ? vector : kMsiNoVector;
            break;
        }
        case kDeviceStatus:
            write_status(static_cast<std::uint8_t>(value));
            break;
        case kQueueSelect:
            queue_select_ = static_cast<std::uint16_t>(value);
            break;
        case kQueueSize: {
            // Must be a power of two no larger than the maximum; anything
            // else is kept and refused at DRIVER_OK (NEEDS_RESET).
            if (queue_writable) queues_[queue_select_].size = static_cast<std::uint16_t>(value);
            break;
        }
        case kQueueMsixVector:
            if (queue_select_ < queue_count_) {
                const auto vector = static_cast<std::uint16_t>(value);
                queue_vectors_[queue_select_] =
                    vector < msix_->vector_count() ? vector : kMsiNoVector;
                const std::uint16_t shared = shared_vectors_[queue_select_];
                if (shared != kMsiNoVector && queue_vectors_[queue_select_] != shared) {
                    fail_locked(fmt::format(
                        "queue {} changed its MSI-X vector while the host kernel runs it",
                        queue_select_));
                }
            }
            break;
        case kQueueEnable:
            // Only 1 may be written (4.1.4.3.2); queue addresses are frozen from then on.
            if (queue_writable && value == 1) queues_[queue_select_].enabled = true;
            break;
        case kQueueDesc:
            if (queue_writable) queues_[queue_select_].desc = value;
            break;
        case kQueueDriver:
            if (queue_writable) queues_[queue_select_].driver = value;
            break;
        case kQueueDevice:
            if (queue_writable) queues_[queue_select_].device = value;
            break;
        default:
            break;  // read-only fields
    }
}

void VirtioPciDevice::common_read(std::uint64_t offset, std::span<std::uint8_t> data) {
    const FieldSpan* field = find_field(offset);
    if (field == nullptr || offset + data.size() > field->offset + field->size) return;
    const std::uint64_t value = common_read_field(field->offset);
    const std::size_t at = offset - field->offset;
    for (std::size_t i = 0; i < data.size(); ++i) {
        data[i] = static_cast<std::uint8_t>(value >> (8 * (at + i)));
    }
}

void VirtioPciDevice::common_write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    // A write must stay inside one field; a partial write (the two halves of
    // a 64-bit queue address) merges into the current value.
    const FieldSpan* field = find_field(offset);
    if (field == nullptr || data.empty() || offset + data.size() > field->offset + field->size)
        return;
    const std::uint64_t current = common_read_field(field->offset);
    common_write_field(field->offset, merge_bytes(current, offset - field->offset, data));
}

// ---- status, activation and reset ------------------------------------------

void VirtioPciDevice::write_status(std::uint8_t value) {
    if (value == 0) {
        reset_locked();
        return;
    }
    const std::uint8_t current = status_.load();
    // The driver must not clear a status bit other than by a reset (2.1.1).
    // Taking such a write would let it clear DRIVER_OK and set it again,
    // starting a second worker on a device whose first one still runs.
    const auto cleared = static_cast<std::uint8_t>(current & ~value & ~kStatusNeedsReset);
    if (cleared != 0) {
        fail_locked(fmt::format("the driver cleared status bits {:#x} without a reset", cleared));
        return;
    }
    // NEEDS_RESET is the device's to set.
    auto next = static_cast<std::uint8_t>(value & ~kStatusNeedsReset);
    if ((next & kStatusFeaturesOk) && !(current & kStatusFeaturesOk)) {
        // Refuse what was not offered, and the legacy interface (3.1.1).
        const bool subset = (driver_features_ & ~offered_features_) == 0;
        const bool modern = (driver_features_ & feature_bit(kFeatureVersion1)) != 0;
        if (!subset || !modern) {
            refusals_.warn("{}: driver features {:#x} refused (offered {:#x})", name_,
                           driver_features_, offered_features_);
            next = static_cast<std::uint8_t>(next & ~kStatusFeaturesOk);
        }
    }
    // An OR, not a store: the worker may be setting NEEDS_RESET right now.
    const std::uint8_t old = status_.fetch_or(next);
    if ((next & kStatusDriverOk) && !(old & kStatusDriverOk)) {
        if (!(next & kStatusFeaturesOk)) {
            fail_locked("DRIVER_OK without FEATURES_OK");
            return;
        }
        maybe_activate_locked();
    }
}

void VirtioPciDevice::command_written_locked() {
    const std::uint16_t command = config_.command();
    {
        std::lock_guard intx(intx_mutex_);
        intx_disabled_ = (command & pci::kCommandIntxDisable) != 0;
        update_intx_locked();
    }
    const bool bus_master = (command & pci::kCommandBusMaster) != 0;
    if (bus_master == bus_master_) return;
    bus_master_ = bus_master;
    if (!bus_master) {
        // MSI-X first: from here on interrupts only set pending bits, so
        // neither the worker's last ones nor the failure's are sent.
        msix_locked([&] { msix_->set_bus_master(false); });
        if (worker_) fail_locked("bus mastering was disabled while the device ran");
        return;
    }
    msix_locked([&] { msix_->set_bus_master(true); });
    maybe_activate_locked();  // a DRIVER_OK that came first
}

void VirtioPciDevice::maybe_activate_locked() {
    const std::uint8_t status = status_.load();
    const bool ready =
        (status & kStatusDriverOk) && (status & kStatusFeaturesOk) && !(status & kStatusNeedsReset);
    if (ready && bus_master_ && !worker_) activate_locked();
}

void VirtioPciDevice::activate_locked() {
    // Never two workers on one device: the old one is joined first.
    worker_.reset();
    std::vector<std::optional<Virtqueue>> queues(queue_count_);
    std::vector<std::optional<OffloadedQueue>> offloaded(queue_count_);
    std::vector<DeviceWorker::InterruptRelay> relays;
    const bool event_idx = (driver_features_ & feature_bit(kFeatureEventIdx)) != 0;
    const bool indirect = (driver_features_ & feature_bit(kFeatureIndirectDesc)) != 0;
    std::vector<int> kick_fds;
    try {
        for (std::uint16_t i = 0; i < queue_count_; ++i) {
            kick_fds.push_back(kick_fds_[i].get());
            const auto& q = queues_[i];
            if (!q.enabled) continue;
            if (q.size > device_->queue_max_size()) {
                throw VirtqueueError("queue {} size {} exceeds the maximum {}", i, q.size,
                                     device_->queue_max_size());
            }
            const QueueConfig config{q.size, q.desc, q.driver, q.device};
            // Validates an offloaded queue's rings too: the kernel gets only
            // rings that lie in guest RAM.
            queues[i].emplace(memory_, config, event_idx, indirect);
            if (device_->queue_offloaded(i)) {
                queues[i].reset();
                offloaded[i] =
                    OffloadedQueue{config, kick_fds_[i].get(), offloaded_call_fd_locked(i, relays)};
            }
        }
        worker_ = std::make_unique<DeviceWorker>(
            name_, *device_, memory_, driver_features_, std::move(queues), std::move(kick_fds),
            std::move(offloaded), std::move(relays),
            [this](std::uint16_t queue) { interrupt_queue(queue); },
            [this](const std::string& why) { device_failed(why); });
    } catch (const std::exception& error) {
        // Bad rings (the guest's doing), or no thread, eventfd or epoll for
        // the worker (the host's): either way this device, not the VM, stops.
        unshare_vectors_locked();
        device_failed(error.what());
    }
}

int VirtioPciDevice::offloaded_call_fd_locked(std::uint16_t queue,
                                              std::vector<DeviceWorker::InterruptRelay>& relays) {
    const std::uint16_t vector = queue_vectors_[queue].load();
    if (msix_->enabled() && vector != kMsiNoVector) {
        shared_vectors_[queue] = vector;
        return msix_->share_eventfd(vector);
    }
    relays.push_back({call_relays_[queue].get(), queue});
    return call_relays_[queue].get();
}

bool VirtioPciDevice::shares_vectors_locked() const {
    return std::any_of(shared_vectors_.begin(), shared_vectors_.end(),
                       [](std::uint16_t vector) { return vector != kMsiNoVector; });
}

// Every vector back to lazy routing: the kernel no longer writes them.
void VirtioPciDevice::unshare_vectors_locked() {
    msix_->unshare_eventfds();
    shared_vectors_.assign(queue_count_, kMsiNoVector);
}

void VirtioPciDevice::fail_locked(const std::string& why) {
    // A failed device does nothing until the driver resets it; in
    // particular the kernel must not go on running offloaded queues.
    if (worker_) {
        worker_.reset();
        device_->reset();
    }
    unshare_vectors_locked();
    device_failed(why);
}

template <typename Fn>
void VirtioPciDevice::msix_locked(Fn&& fn) {
    try {
        fn();
    } catch (const pci::MsiRouteError& error) {
        fail_locked(error.what());
    }
}

void VirtioPciDevice::reset_locked() {
    // Joining the worker lets an in-flight request finish: a reset never
    // races with a device writing guest memory. The worker stops between
    // requests, so this waits for one request at most.
    worker_.reset();
    device_->reset();
    unshare_vectors_locked();
    status_ = 0;
    {
        std::lock_guard intx(intx_mutex_);
        isr_ = 0;
        update_intx_locked();
    }
    device_feature_select_ = driver_feature_select_ = 0;
    driver_features_ = 0;
    queue_select_ = 0;
    config_vector_ = kMsiNoVector;
    for (std::uint16_t i = 0; i < queue_count_; ++i) {
        queues_[i] = QueueRegisters{};
        queues_[i].size = device_->queue_max_size();
        queue_vectors_[i] = kMsiNoVector;
        // Drop kicks (and relayed interrupts) of the previous life of the queue.
        base::drain_eventfd(kick_fds_[i].get());
        if (call_relays_[i]) base::drain_eventfd(call_relays_[i].get());
    }
}

// ---- interrupts (worker thread) --------------------------------------------

void VirtioPciDevice::update_intx_locked() {
    const bool level = isr_.load() != 0 && !intx_disabled_;
    if (level == intx_line_) return;
    if (hypervisor_ != nullptr && intx_gsi_) hypervisor_->set_irq_line(*intx_gsi_, level);
    intx_line_ = level;
}

void VirtioPciDevice::raise_intx(std::uint8_t isr_bits) {
    // One lock with the ISR read: otherwise a read that clears the ISR
    // between our OR and our assert leaves the line high with nothing
    // pending, and a level-triggered guest storms on it.
    std::lock_guard intx(intx_mutex_);
    isr_.fetch_or(isr_bits);
    update_intx_locked();
}

void VirtioPciDevice::interrupt_queue(std::uint16_t queue) {
    const std::uint16_t vector = queue < queue_count_ ? queue_vectors_[queue].load() : kMsiNoVector;
    if (msix_->enabled()) {
        if (vector != kMsiNoVector) msix_->signal(vector);
        return;
    }
    raise_intx(1);
}

void VirtioPciDevice::interrupt_config() {
    if (msix_->enabled()) {
        const std::uint16_t vector = config_vector_.load();
        if (vector != kMsiNoVector) msix_->signal(vector);
        return;
    }
    raise_intx(2);
}

void VirtioPciDevice::device_failed(const std::string& why) {
    const std::uint8_t old = status_.fetch_or(kStatusNeedsReset);
    if (old & kStatusNeedsReset) return;
    // A guest can fail its device on every reset: rate-limited.
    failures_.warn("{}: {}; the device needs a reset", name_, why);
    try {
        interrupt_config();
    } catch (const std::exception& error) {
        // The driver finds NEEDS_RESET when it next reads the status.
        failures_.warn("{}: no configuration interrupt: {}", name_, error.what());
    }
}

}  // namespace devices::virtio
