// A minimal virtio-pci driver for the transport and device tests: the
// register writes Linux makes (byte-exact, 64-bit queue addresses as two
// dwords), MSI-X programming, and bounded waits.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "devices/virtio/virtio_pci_device.hpp"

namespace devices::virtio::testing {

inline constexpr std::uint64_t kRingFeatures = feature_bit(kFeatureVersion1) |
                                               feature_bit(kFeatureEventIdx) |
                                               feature_bit(kFeatureIndirectDesc);

// MSI data the driver programs into vector v (so routes can be told apart).
inline constexpr std::uint32_t msi_data(std::uint16_t vector) {
    return 0x40u + vector;
}

// Polls `condition` until it holds or `timeout` passes; true if it held.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

// Whether `fd` is readable within `timeout_ms` (0: right now).
inline bool readable(int fd, int timeout_ms = 0) {
    pollfd entry{fd, POLLIN, 0};
    return ::poll(&entry, 1, timeout_ms) == 1;
}

inline void signal_eventfd(int fd) {
    const std::uint64_t one = 1;
    ASSERT_EQ(::write(fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
}

class PciDriver {
  public:
    // Memory decoding and bus mastering on, as Linux's pci_enable_device()
    // and pci_set_master() leave a function before its driver binds.
    explicit PciDriver(VirtioPciDevice& device) : device_(device) {
        set_command(pci::kCommandMemory | pci::kCommandBusMaster);
    }

    void set_command(std::uint16_t command) {
        std::array<std::uint8_t, 2> bytes{};
        std::memcpy(bytes.data(), &command, 2);
        device_.config_write(pci::kCommand, bytes);
    }
    std::uint16_t pci_status() {
        std::array<std::uint8_t, 2> bytes{};
        device_.config_read(pci::kStatus, bytes);
        return static_cast<std::uint16_t>(bytes[0] | bytes[1] << 8);
    }

    template <typename T>
    void write(std::uint64_t offset, T value) {
        std::array<std::uint8_t, sizeof(T)> bytes{};
        std::memcpy(bytes.data(), &value, sizeof(T));
        device_.bar_write(VirtioPciDevice::kBarRegisters, offset, bytes);
    }
    template <typename T>
    T read(std::uint64_t offset) {
        std::array<std::uint8_t, sizeof(T)> bytes{};
        device_.bar_read(VirtioPciDevice::kBarRegisters, offset, bytes);
        T value;
        std::memcpy(&value, bytes.data(), sizeof(T));
        return value;
    }
    std::uint8_t status() { return read<std::uint8_t>(0x14); }
    void set_status(std::uint8_t status) { write<std::uint8_t>(0x14, status); }

    std::uint64_t device_features() {
        write<std::uint32_t>(0x00, 0);
        const std::uint64_t low = read<std::uint32_t>(0x04);
        write<std::uint32_t>(0x00, 1);
        return low | (std::uint64_t{read<std::uint32_t>(0x04)} << 32);
    }
    // Returns the status after FEATURES_OK.
    std::uint8_t negotiate(std::uint64_t features) {
        set_status(0);
        set_status(kStatusAcknowledge);
        set_status(kStatusAcknowledge | kStatusDriver);
        write<std::uint32_t>(0x08, 0);
        write<std::uint32_t>(0x0c, static_cast<std::uint32_t>(features));
        write<std::uint32_t>(0x08, 1);
        write<std::uint32_t>(0x0c, static_cast<std::uint32_t>(features >> 32));
        set_status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
        return status();
    }
    void set_config_vector(std::uint16_t vector) { write<std::uint16_t>(0x10, vector); }
    void select_queue(std::uint16_t index) { write<std::uint16_t>(0x16, index); }
    void set_queue_vector(std::uint16_t index, std::uint16_t vector) {
        select_queue(index);
        write<std::uint16_t>(0x1a, vector);
    }
    void setup_queue(std::uint16_t index, const QueueConfig& config, std::uint16_t vector) {
        select_queue(index);
        write<std::uint16_t>(0x18, config.size);
        write<std::uint16_t>(0x1a, vector);
        // 64-bit addresses as two dword writes, as Linux does.
        for (auto [offset, value] :
             {std::pair{0x20, config.desc_table}, std::pair{0x28, config.avail_ring},
              std::pair{0x30, config.used_ring}}) {
            write<std::uint32_t>(offset, static_cast<std::uint32_t>(value));
            write<std::uint32_t>(offset + 4, static_cast<std::uint32_t>(value >> 32));
        }
        write<std::uint16_t>(0x1c, 1);
    }
    void driver_ok() {
        set_status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
    }
    void kick(std::uint16_t queue) { write<std::uint16_t>(0x3000 + 4u * queue, queue); }

    void set_msix_control(std::uint8_t high_byte) {
        const std::array<std::uint8_t, 2> control{0x00, high_byte};
        device_.config_write(device_.msix().capability_offset() + 2, control);
    }
    // Enables MSI-X and programs every vector, unmasked, with msi_data(v).
    void enable_msix() {
        set_msix_control(0x80);
        for (std::uint16_t v = 0; v < device_.msix().vector_count(); ++v) {
            program_vector(v, msi_data(v), false);
        }
    }
    void disable_msix() { set_msix_control(0x00); }
    void program_vector(std::uint16_t vector, std::uint32_t data, bool masked) {
        std::array<std::uint8_t, 16> entry{};
        const std::uint32_t address = 0xfee0'0000;
        const std::uint32_t control = masked ? 1 : 0;
        std::memcpy(&entry[0], &address, 4);
        std::memcpy(&entry[8], &data, 4);
        std::memcpy(&entry[12], &control, 4);
        device_.bar_write(VirtioPciDevice::kBarMsix, vector * 16u, entry);
    }
    // Linux's way of changing a live vector: mask, rewrite, unmask (one
    // dword store each).
    void mask_vector(std::uint16_t vector, bool masked) {
        const std::uint32_t control = masked ? 1 : 0;
        std::array<std::uint8_t, 4> word{};
        std::memcpy(word.data(), &control, 4);
        device_.bar_write(VirtioPciDevice::kBarMsix, vector * 16u + 12, word);
    }
    void write_vector_data(std::uint16_t vector, std::uint32_t data) {
        std::array<std::uint8_t, 4> word{};
        std::memcpy(word.data(), &data, 4);
        device_.bar_write(VirtioPciDevice::kBarMsix, vector * 16u + 8, word);
    }

    // Consumes one interrupt of vector `v` within `timeout_ms`.
    bool wait_vector(std::uint16_t v, int timeout_ms = 5000) {
        const int fd = device_.msix().vector_eventfd(v);
        if (!readable(fd, timeout_ms)) return false;
        std::uint64_t count;
        return ::read(fd, &count, sizeof(count)) == sizeof(count);
    }

  private:
    VirtioPciDevice& device_;
};

}  // namespace devices::virtio::testing
