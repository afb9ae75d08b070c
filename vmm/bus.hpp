// One address-space dispatcher used twice: for port I/O and for MMIO.
// Ranges are validated on insert (non-empty, no overflow, no overlap). A
// lookup hands out shared ownership, so a device stays alive for the whole
// access even if another thread removes or moves it meanwhile (a BAR move).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>

namespace vmm {

class BusDevice {
public:
    virtual ~BusDevice() = default;
    // `offset` is relative to the start of the range the device was inserted
    // at; `data` is 1 to 8 bytes (larger for string I/O is split by the caller).
    // Guest-controlled: implementations must accept any offset/size.
    virtual void read(std::uint64_t offset, std::span<std::uint8_t> data) = 0;
    virtual void write(std::uint64_t offset, std::span<const std::uint8_t> data) = 0;
};

class Bus {
public:
    explicit Bus(std::string name) : name_(std::move(name)) {}

    // Throws base::Error on an empty, overflowing or overlapping range.
    void insert(std::shared_ptr<BusDevice> device, std::uint64_t base, std::uint64_t size);
    // Returns false when no range starts at `base`.
    bool remove(std::uint64_t base);

    // Dispatch one guest access. Returns false when no device claims the
    // address, in which case a read has been filled with all-ones bytes, as
    // an unclaimed PCI/ISA access reads on real hardware.
    bool read(std::uint64_t address, std::span<std::uint8_t> data) const;
    bool write(std::uint64_t address, std::span<const std::uint8_t> data) const;

    const std::string& name() const { return name_; }

private:
    struct Range {
        std::uint64_t size;
        std::shared_ptr<BusDevice> device;
    };
    // The device and the offset inside it, if some range covers [address, +length).
    std::pair<std::shared_ptr<BusDevice>, std::uint64_t> find(std::uint64_t address,
                                                             std::uint64_t length) const;

    std::string name_;
    mutable std::shared_mutex mutex_;
    std::map<std::uint64_t, Range> ranges_;  // keyed by base address
};

}  // namespace vmm
