// vmm::StopController: the first stop reason wins, the event fd becomes
// readable exactly once, and concurrent requests from many threads agree.
#include "vmm/stop_controller.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

namespace {

bool readable(int fd) {
    pollfd entry{fd, POLLIN, 0};
    return ::poll(&entry, 1, 0) == 1 && (entry.revents & POLLIN);
}

TEST(StopController, StartsRunningWithAQuietEventFd) {
    vmm::StopController controller;
    EXPECT_FALSE(controller.stopping());
    EXPECT_FALSE(controller.outcome().has_value());
    ASSERT_GE(controller.event_fd(), 0);
    EXPECT_FALSE(readable(controller.event_fd()));
    std::uint64_t value = 0;
    EXPECT_EQ(::read(controller.event_fd(), &value, sizeof(value)), -1);
    EXPECT_EQ(errno, EAGAIN);  // non-blocking: the main loop never hangs on it
}

TEST(StopController, EventFdIsNonBlockingAndCloseOnExec) {
    vmm::StopController controller;
    const int status_flags = ::fcntl(controller.event_fd(), F_GETFL);
    const int fd_flags = ::fcntl(controller.event_fd(), F_GETFD);
    EXPECT_TRUE(status_flags & O_NONBLOCK);
    EXPECT_TRUE(fd_flags & FD_CLOEXEC);
}

TEST(StopController, RequestRecordsTheOutcomeAndWakesTheLoop) {
    vmm::StopController controller;
    controller.request(vmm::StopReason::PowerOff, "the guest entered S5");
    EXPECT_TRUE(controller.stopping());
    ASSERT_TRUE(controller.outcome().has_value());
    EXPECT_EQ(controller.outcome()->reason, vmm::StopReason::PowerOff);
    EXPECT_EQ(controller.outcome()->detail, "the guest entered S5");
    EXPECT_TRUE(readable(controller.event_fd()));
    std::uint64_t value = 0;
    ASSERT_EQ(::read(controller.event_fd(), &value, sizeof(value)), 8);
    EXPECT_EQ(value, 1u);
}

TEST(StopController, FirstReasonWins) {
    vmm::StopController controller;
    controller.request(vmm::StopReason::Reboot, "i8042");
    controller.request(vmm::StopReason::GuestFailure, "triple fault");
    controller.request(vmm::StopReason::Signal, "SIGTERM");
    ASSERT_TRUE(controller.outcome().has_value());
    EXPECT_EQ(controller.outcome()->reason, vmm::StopReason::Reboot);
    EXPECT_EQ(controller.outcome()->detail, "i8042");
    // Only the winning request signalled the event fd.
    std::uint64_t value = 0;
    ASSERT_EQ(::read(controller.event_fd(), &value, sizeof(value)), 8);
    EXPECT_EQ(value, 1u);
    EXPECT_FALSE(readable(controller.event_fd()));
    EXPECT_TRUE(controller.stopping());
}

TEST(StopController, CallbackForwardsToRequest) {
    vmm::StopController controller;
    vmm::StopRequest stop = controller.callback();
    stop(vmm::StopReason::HostError, "disk image vanished");
    ASSERT_TRUE(controller.outcome().has_value());
    EXPECT_EQ(controller.outcome()->reason, vmm::StopReason::HostError);
    EXPECT_EQ(controller.outcome()->detail, "disk image vanished");
    EXPECT_TRUE(readable(controller.event_fd()));
}

TEST(StopController, ConcurrentRequestsAgreeOnOneWinner) {
    constexpr int kThreads = 8;
    constexpr vmm::StopReason kReasons[] = {vmm::StopReason::PowerOff, vmm::StopReason::Reboot,
                                            vmm::StopReason::GuestFailure,
                                            vmm::StopReason::HostError, vmm::StopReason::Signal};
    for (int round = 0; round < 200; ++round) {
        vmm::StopController controller;
        std::atomic<int> ready{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                ready.fetch_add(1);
                while (ready.load() < kThreads) std::this_thread::yield();
                controller.request(kReasons[t % 5], "thread " + std::to_string(t));
            });
        }
        for (auto& thread : threads) thread.join();

        ASSERT_TRUE(controller.stopping());
        const auto outcome = controller.outcome();
        ASSERT_TRUE(outcome.has_value());
        // Reason and detail come from the same request.
        ASSERT_EQ(outcome->detail.rfind("thread ", 0), 0u) << outcome->detail;
        const int winner = std::stoi(outcome->detail.substr(7));
        ASSERT_EQ(outcome->reason, kReasons[winner % 5]) << outcome->detail;
        std::uint64_t value = 0;
        ASSERT_EQ(::read(controller.event_fd(), &value, sizeof(value)), 8);
        ASSERT_EQ(value, 1u) << "more than one request signalled the event fd";
    }
}

TEST(StopController, StoppingIsVisibleToAPollingThread) {
    vmm::StopController controller;
    std::atomic<bool> saw_stop{false};
    std::thread vcpu([&] {
        while (!controller.stopping()) std::this_thread::yield();
        // stopping() is published after the outcome: it must be there.
        saw_stop = controller.outcome().has_value();
    });
    controller.request(vmm::StopReason::Signal, "SIGINT");
    vcpu.join();
    EXPECT_TRUE(saw_stop);
}

TEST(StopReason, HasReadableNames) {
    EXPECT_STREQ(vmm::to_string(vmm::StopReason::PowerOff), "power off");
    EXPECT_STREQ(vmm::to_string(vmm::StopReason::Reboot), "reboot");
    EXPECT_STREQ(vmm::to_string(vmm::StopReason::GuestFailure), "guest failure");
    EXPECT_STREQ(vmm::to_string(vmm::StopReason::HostError), "host error");
    EXPECT_STREQ(vmm::to_string(vmm::StopReason::Signal), "signal");
}

}  // namespace
