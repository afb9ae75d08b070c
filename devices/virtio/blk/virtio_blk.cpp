#include "devices/virtio/blk/virtio_blk.hpp"

#include <algorithm>
#include <cstring>

#include "base/error.hpp"

namespace devices::virtio {

namespace {

template <typename T>
void put(std::span<std::uint8_t> config, std::size_t offset, T value) {
    std::memcpy(config.data() + offset, &value, sizeof(value));
}

}  // namespace

VirtioBlk::VirtioBlk(std::unique_ptr<BlockBackend> backend, BlockDeviceOptions options)
    : backend_(std::move(backend)), options_(std::move(options)) {
    if (options_.queues == 0 || options_.queues > 16) {
        throw base::Error("virtio-blk: {} queues requested; 1 to 16 are supported",
                          options_.queues);
    }
    if (options_.queue_size < 4 || (options_.queue_size & (options_.queue_size - 1)) != 0) {
        throw base::Error("virtio-blk: queue size {} is not a power of two >= 4",
                          options_.queue_size);
    }
    // struct virtio_blk_config (5.2.4).
    std::span<std::uint8_t> config(config_);
    put<std::uint64_t>(config, 0, backend_->size() / kSectorSize);  // capacity
    // seg_max: a request's data segments, leaving room for header and status
    // so that a chain never exceeds the queue size (2.7.4.2).
    put<std::uint32_t>(config, 12, options_.queue_size - 2u);
    put<std::uint32_t>(config, 20, static_cast<std::uint32_t>(kSectorSize));  // blk_size
    put<std::uint8_t>(config, 24, 3);   // physical_block_exp: 4 KiB physical blocks
    put<std::uint16_t>(config, 26, 8);  // min_io_size, in logical blocks
    put<std::uint16_t>(config, 34, options_.queues);
    put<std::uint32_t>(config, 36, limits_.max_discard_sectors);
    put<std::uint32_t>(config, 40, limits_.max_discard_segments);
    put<std::uint32_t>(config, 44, 8);  // discard_sector_alignment: 4 KiB
    put<std::uint32_t>(config, 48, limits_.max_write_zeroes_sectors);
    put<std::uint32_t>(config, 52, limits_.max_write_zeroes_segments);
    put<std::uint8_t>(config, 56, 1);  // write_zeroes_may_unmap
}

std::uint64_t VirtioBlk::device_features() const {
    std::uint64_t features = feature_bit(kBlkFeatureSegMax) | feature_bit(kBlkFeatureBlkSize) |
                             feature_bit(kBlkFeatureFlush) | feature_bit(kBlkFeatureTopology);
    if (options_.queues > 1) features |= feature_bit(kBlkFeatureMq);
    if (backend_->read_only()) {
        features |= feature_bit(kBlkFeatureRo);
    } else {
        features |= feature_bit(kBlkFeatureDiscard) | feature_bit(kBlkFeatureWriteZeroes);
    }
    return features;
}

void VirtioBlk::read_config(std::uint64_t offset, std::span<std::uint8_t> data) {
    if (offset > config_.size() || data.size() > config_.size() - offset) return;
    std::memcpy(data.data(), config_.data() + offset, data.size());
}

void VirtioBlk::activate(VirtioContext& context) {
    discard_ = context.has_feature(kBlkFeatureDiscard);
    write_zeroes_ = context.has_feature(kBlkFeatureWriteZeroes);
}

void VirtioBlk::queue_notified(VirtioContext& context, std::uint16_t index) {
    Virtqueue* queue = context.queue(index);
    if (queue == nullptr) return;
    serve_in_batches(context, index, *queue, [&](const DescriptorChain& chain) {
        const BlockRequest request = parse_block_request(chain);
        const BlockCompletion done =
            execute_block_request(request, *backend_, options_.serial, limits_, discard_,
                                  write_zeroes_, context.stop_token());
        // Cut short by a reset: the driver forgets the request anyway.
        if (done.host_error == std::errc::operation_canceled && context.stopping()) return false;
        if (done.host_error) {
            io_errors_.warn("virtio-blk {}: {} at sector {} failed: {}; the guest gets IOERR",
                            options_.serial, done.operation, request.sector,
                            done.host_error.message());
        }
        queue->push_used(chain.head, done.used_length);
        return true;
    });
}

}  // namespace devices::virtio
