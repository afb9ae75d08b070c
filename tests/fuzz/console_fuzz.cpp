// libFuzzer target: virtio-console's request path. Both queues come from
// arbitrary guest memory (receiveq from header bytes 2-7, transmitq from
// 10-15) and the device runs over an in-memory backend whose answers the
// input picks: host input of some length or none, output taken whole, in
// part, refused (WouldBlock, then ready again) or dropped. The test drives
// what the worker would: kicks of both queues, the device's own resume
// eventfd and the backend's readiness callbacks, a bounded number of
// rounds, then a reset. Valid ends: used chains, a DeviceError or a
// VirtqueueError; ASan/UBSan catch anything else.
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "devices/virtio/console/virtio_console.hpp"
#include "tests/fuzz/fuzz_guest.hpp"
#include "tests/unit/virtio/fake_context.hpp"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

namespace {

using namespace devices::virtio;

// A ConsoleBackend whose behaviour is a script of bytes from the input.
class ScriptedBackend : public ConsoleBackend {
  public:
    explicit ScriptedBackend(std::span<const std::uint8_t> script) : script_(script) {}

    std::string describe() const override { return "fuzz"; }
    void attach(VirtioContext& /*context*/, Events& events) override { events_ = &events; }
    void detach() override { events_ = nullptr; }
    std::size_t read(std::span<const iovec> buffers) override {
        // Fills the guest's receive buffers: each one must be writable RAM.
        std::size_t left = next() * 97u;
        std::size_t done = 0;
        for (const auto& buffer : buffers) {
            const std::size_t n = std::min(left, buffer.iov_len);
            std::memset(buffer.iov_base, 0x5a, n);
            done += n;
            left -= n;
            if (left == 0) break;
        }
        return done;
    }
    WriteResult write(std::span<const iovec> buffers) override {
        // Reads every byte offered, as sendmsg would.
        std::size_t total = 0;
        for (const auto& buffer : buffers) {
            const auto* bytes = static_cast<const std::uint8_t*>(buffer.iov_base);
            for (std::size_t i = 0; i < buffer.iov_len; ++i) sink_ = sink_ + bytes[i];
            total += buffer.iov_len;
        }
        const std::uint8_t choice = next();
        switch (choice % 4) {
            case 0:
                return {WriteStatus::Written, total};
            case 1:
                if (total == 0) return {WriteStatus::Written, 0};
                return {WriteStatus::Written, 1 + choice % total};  // partial
            case 2:
                return {WriteStatus::WouldBlock, 0};
            default:
                return {WriteStatus::Dropped, 0};
        }
    }
    void want_input(bool wanted) override { input_wanted = wanted; }
    void want_output() override { output_wanted = true; }

    Events* events() const { return events_; }
    std::uint8_t next() { return script_.empty() ? 0 : script_[at_++ % script_.size()]; }

    bool input_wanted = false;
    bool output_wanted = false;

  private:
    std::span<const std::uint8_t> script_;
    std::size_t at_ = 0;
    Events* events_ = nullptr;
    volatile std::uint8_t sink_ = 0;
};

}  // namespace

extern "C" int FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
    const auto setup = fuzz::load(data, size);
    // The backend's script: the first 64 bytes of guest memory's input.
    const std::span<const std::uint8_t> script =
        size > 16 ? std::span(data + 16, std::min<std::size_t>(size - 16, 64))
                  : std::span<const std::uint8_t>();
    auto owned = std::make_unique<ScriptedBackend>(script);
    auto& backend = *owned;
    VirtioConsole console(std::move(owned));
    try {
        std::vector<std::optional<Virtqueue>> queues(2);
        // selector bit 0 / 1: the driver did not enable receiveq / transmitq.
        if (!(setup.selector & 1)) {
            queues[VirtioConsole::kReceiveq].emplace(fuzz::guest_memory(), setup.queue,
                                                     setup.event_idx, setup.indirect);
        }
        if (!(setup.selector & 2)) {
            queues[VirtioConsole::kTransmitq].emplace(fuzz::guest_memory(), setup.second_queue,
                                                      setup.event_idx, setup.indirect);
        }
        testing::FakeContext context(fuzz::guest_memory(), feature_bit(kFeatureVersion1),
                                     std::move(queues));
        try {
            console.activate(context);
            for (unsigned round = 0; round < 8; ++round) {
                switch (backend.next() % 4) {
                    case 0:
                        console.queue_notified(context, VirtioConsole::kReceiveq);
                        break;
                    case 1:
                        console.queue_notified(context, VirtioConsole::kTransmitq);
                        break;
                    case 2:
                        // The device's resume eventfd (its budget ran out).
                        for (auto& [fd, handler] : context.handlers) handler(1);
                        break;
                    default:
                        if (backend.events() == nullptr) break;
                        if (backend.input_wanted) backend.events()->input_ready();
                        if (backend.output_wanted) {
                            backend.output_wanted = false;
                            backend.events()->output_ready();
                        }
                        break;
                }
            }
        } catch (const DeviceError&) {
            // NEEDS_RESET: the worker stops and waits for the reset.
        } catch (const VirtqueueError&) {
        }
        console.reset();
    } catch (const VirtqueueError&) {
        // Rings outside RAM or misaligned: refused at DRIVER_OK.
    }
    return 0;
}
