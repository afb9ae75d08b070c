// The host end of a virtio-console port: a byte stream that guest output goes
// to and host input comes from (a unix socket, a file, a pty). The device
// owns the virtqueues; a backend owns its host fds and says when they are
// ready. Every call comes from the device's worker thread, except
// construction and destruction.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <string>

#include "devices/virtio/virtio_device.hpp"

namespace devices::virtio {

class ConsoleBackend {
  public:
    // What a backend tells the device (VirtioConsole implements it). Called
    // only from the handlers the backend registered with watch_fd, never from
    // inside read() or write(), so the device is never re-entered.
    class Events {
      public:
        virtual void input_ready() = 0;   // read() may have bytes now
        virtual void output_ready() = 0;  // retry a write that would have blocked

      protected:
        ~Events() = default;
    };

    enum class WriteStatus {
        Written,     // `bytes` (> 0) were taken; the caller retries the rest
        WouldBlock,  // nothing taken; output_ready() follows want_output()
        Dropped,     // nobody takes output now: the caller drops what it has
    };
    struct WriteResult {
        WriteStatus status;
        std::size_t bytes;
    };

    virtual ~ConsoleBackend() = default;

    // For logs: "socket /run/vm.sock".
    virtual std::string describe() const = 0;
    // The device was activated: watch host fds through `context`. A backend
    // keeps its connections across a detach()/attach() (a guest driver reset).
    virtual void attach(VirtioContext& context, Events& events) = 0;
    // The device was reset: its worker, and with it every fd watch, is gone.
    virtual void detach() = 0;
    // Host input into `buffers`; 0 when there is none now (or ever: a file).
    virtual std::size_t read(std::span<const iovec> buffers) = 0;
    virtual WriteResult write(std::span<const iovec> buffers) = 0;
    // Whether the device has guest receive buffers to read into. While it has
    // none the backend stops watching its input, so a host that keeps sending
    // fills its own socket buffer instead of waking the worker.
    virtual void want_input(bool wanted) = 0;
    // After WouldBlock: call output_ready() once writing may make progress.
    virtual void want_output() = 0;
};

}  // namespace devices::virtio
