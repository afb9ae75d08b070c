// virtio-blk (virtio 1.2, 5.2) over a BlockBackend: read, write, flush
// (durable: fdatasync), discard, write-zeroes, GET_ID, read-only disks and
// several request queues, all served by the device's worker thread.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "devices/log_limit.hpp"
#include "devices/virtio/blk/block_backend.hpp"
#include "devices/virtio/blk/block_request.hpp"
#include "devices/virtio/virtio_device.hpp"

namespace devices::virtio {

inline constexpr unsigned kBlkFeatureSegMax = 2;
inline constexpr unsigned kBlkFeatureRo = 5;
inline constexpr unsigned kBlkFeatureBlkSize = 6;
inline constexpr unsigned kBlkFeatureFlush = 9;
inline constexpr unsigned kBlkFeatureTopology = 10;
inline constexpr unsigned kBlkFeatureMq = 12;
inline constexpr unsigned kBlkFeatureDiscard = 13;
inline constexpr unsigned kBlkFeatureWriteZeroes = 14;

struct BlockDeviceOptions {
    std::string serial;  // up to 20 bytes, returned by GET_ID
    std::uint16_t queues = 1;
    std::uint16_t queue_size = 256;
};

class VirtioBlk : public VirtioDevice {
  public:
    static constexpr std::size_t kConfigSize = 60;

    VirtioBlk(std::unique_ptr<BlockBackend> backend, BlockDeviceOptions options);

    std::string name() const override { return "virtio-blk"; }
    std::uint16_t device_type() const override { return kDeviceBlock; }
    std::uint32_t pci_class_code() const override {
        return 0x010000;
    }  // as QEMU: SCSI storage class
    std::uint64_t device_features() const override;
    std::uint16_t queue_count() const override { return options_.queues; }
    std::uint16_t queue_max_size() const override { return options_.queue_size; }
    std::size_t config_size() const override { return kConfigSize; }
    void read_config(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void activate(VirtioContext& context) override;
    void queue_notified(VirtioContext& context, std::uint16_t index) override;

  private:
    std::unique_ptr<BlockBackend> backend_;
    BlockDeviceOptions options_;
    BlockLimits limits_;
    std::array<std::uint8_t, kConfigSize> config_{};
    bool discard_ = false;
    bool write_zeroes_ = false;
    LogLimit io_errors_;
};

}  // namespace devices::virtio
