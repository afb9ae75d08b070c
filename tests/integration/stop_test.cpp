// How a VM ends: power-off, both reset paths, triple fault, an instruction
// fetch KVM cannot handle, signals to the VMM while the guest spins or
// halts or while its vCPU is stuck writing to a stdout nobody reads, a
// stdout whose reader went away, and a host error after the vCPUs started.
// Needs /dev/kvm (skipped without it).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <ostream>
#include <regex>
#include <string>

#include "base/error.hpp"
#include "tests/integration/harness.hpp"

namespace vmm::test {
namespace {

using namespace std::chrono_literals;

// How long the VMM may take to stop once told to: it answers in
// milliseconds; this only absorbs a loaded machine.
constexpr auto kStopBound = 20s;

std::vector<std::string> vmm_argv(std::vector<std::string> args) {
    args.insert(args.begin(), vmm_binary().string());
    return args;
}

// Fills the pipe that `write_end` feeds until a write would block, leaving
// the fd blocking: whatever the child writes to it next blocks.
void fill_pipe(const base::UniqueFd& write_end) {
    const int flags = ::fcntl(write_end.get(), F_GETFL);
    if (flags < 0 || ::fcntl(write_end.get(), F_SETFL, flags | O_NONBLOCK) < 0) {
        base::throw_errno("fcntl on the pipe");
    }
    const std::string chunk(4096, '.');
    while (::write(write_end.get(), chunk.data(), chunk.size()) > 0) {
    }
    if (errno != EAGAIN) base::throw_errno("filling the pipe");
    if (::fcntl(write_end.get(), F_SETFL, flags) < 0) base::throw_errno("fcntl on the pipe");
}

class Stop : public KvmTest {};

TEST_F(Stop, I8042ResetIsACleanStop) {
    const auto result = run_vmm(run_args("reset_kbd"));
    EXPECT_EQ(result.exit_code(), 0) << result.describe();
    EXPECT_TRUE(has_line(result.out, "reset_kbd: writing fe to port 64")) << result.describe();
    EXPECT_EQ(result.out.find("ignored"), std::string::npos) << result.describe();
    EXPECT_FALSE(mentions_rip(result.err)) << result.describe();
}

TEST_F(Stop, AcpiResetRegisterIsACleanStop) {
    const auto result = run_vmm(run_args("reset_acpi"));
    EXPECT_EQ(result.exit_code(), 0) << result.describe();
    EXPECT_TRUE(has_line(result.out, "reset_acpi: writing 01 to port 600")) << result.describe();
    EXPECT_EQ(result.out.find("ignored"), std::string::npos) << result.describe();
    EXPECT_FALSE(mentions_rip(result.err)) << result.describe();
}

TEST_F(Stop, TripleFaultExitsTwoWithARegisterDump) {
    const auto result = run_vmm(run_args("triplefault"));
    EXPECT_EQ(result.exit_code(), 2) << result.describe();
    EXPECT_FALSE(lines_starting_with(result.out, "triplefault: ud2 with an empty IDT at ").empty())
        << "the guest did not run\n"
        << result.describe();
    EXPECT_TRUE(std::regex_search(result.err, std::regex("triple[ -]?fault", std::regex::icase)))
        << "stderr must name the triple fault\n"
        << result.describe();
    EXPECT_TRUE(mentions_rip(result.err)) << "stderr must show RIP\n" << result.describe();
}

TEST_F(Stop, InstructionFetchFromMmioExitsTwoWithARegisterDump) {
    const auto result = run_vmm(run_args("badfetch"));
    EXPECT_EQ(result.exit_code(), 2) << result.describe();
    EXPECT_TRUE(has_line(result.out, "badfetch: jumping to d0000000")) << result.describe();
    EXPECT_TRUE(mentions_rip(result.err)) << result.describe();
}

// The vCPU blocks in the VMM's write to a full stdout pipe that nobody
// reads; SIGTERM must still stop the VM, so the stop path must get the vCPU
// out of that write. (Should SIGTERM arrive before the vCPU blocks, the test
// passes without proving much; it cannot fail because of that.)
TEST_F(Stop, SigtermStopsAVcpuBlockedOnAStdoutNobodyReads) {
    const auto deadline = Clock::now() + scaled(kGuestTimeout);
    auto stdout_pipe = make_pipe();
    fill_pipe(stdout_pipe.write);
    Subprocess vmm(vmm_argv(run_args("flood", {"--log-level", "debug"})),
                   {.stdout_fd = stdout_pipe.write.get()});
    stdout_pipe.write.reset();  // the child's copy is the only writer now
    // Just before its first byte to the (full) COM1 sink.
    ASSERT_TRUE(vmm.wait_for_output(Stream::Stderr, "unclaimed port write at 0x80", deadline))
        << vmm.wait(deadline).describe();
    vmm.send_signal(SIGTERM);
    const auto result = vmm.wait(std::min(deadline, Clock::now() + scaled(kStopBound)));
    EXPECT_FALSE(result.timed_out) << "the VMM hung on the vCPU blocked in write\n"
                                   << result.describe();
    EXPECT_EQ(result.exit_code(), 128 + SIGTERM) << result.describe();
}

// `vmm run ... | head`: once head is gone, COM1's writes fail with EPIPE.
// The VMM says so once and the guest runs on, to its power-off here.
TEST_F(Stop, AStdoutWhoseReaderIsGoneIsReportedOnceAndTheGuestRunsOn) {
    auto stdout_pipe = make_pipe();
    stdout_pipe.read.reset();
    const auto result =
        run_vmm(run_args("cmdline"), kGuestTimeout, {.stdout_fd = stdout_pipe.write.get()});
    EXPECT_EQ(result.exit_code(), 0) << "SIGPIPE must not kill the VMM\n" << result.describe();
    std::size_t reports = 0;
    for (const auto& line : split_lines(result.err)) {
        if (line.find("serial output to stdout failed") != std::string::npos) ++reports;
    }
    EXPECT_EQ(reports, 1u) << result.describe();
    EXPECT_TRUE(contains_icase(result.err, "broken pipe")) << result.describe();
}

// A host error after vCPU 0 runs: creating vCPU 1's thread fails (made to,
// by an LD_PRELOAD shim). The VMM must stop vCPU 0, which requested no stop
// itself, and exit 1 with one line, instead of joining it forever.
TEST_F(Stop, AHostErrorAfterTheFirstVcpuStartedStopsItAndExitsOne) {
    const auto result = run_vmm(run_args("spin", {"--cpus", "2", "--log-level", "error"}),
                                kStopBound, {.environment = fail_thread_create_environment(2)});
    EXPECT_FALSE(result.timed_out) << "the VMM hung joining vCPU 0\n" << result.describe();
    EXPECT_EQ(result.exit_code(), 1) << result.describe();
    EXPECT_EQ(split_lines(result.err).size(), 1u) << result.describe();
    EXPECT_NE(result.err.find("thread of vCPU 1"), std::string::npos) << result.describe();
    EXPECT_FALSE(mentions_rip(result.err)) << result.describe();
}

struct SignalCase {
    int signal;
    bool halt;  // the guest halts with interrupts off instead of spinning
    int cpus;
    const char* name;
};

// Names the case in test listings (the default prints the struct's bytes).
void PrintTo(const SignalCase& signal_case, std::ostream* os) {
    *os << signal_case.name;
}

class StopBySignal : public KvmTestWithParam<SignalCase> {};

TEST_P(StopBySignal, ExitsWith128PlusTheSignal) {
    const auto& param = GetParam();
    const auto deadline = Clock::now() + scaled(kGuestTimeout);
    std::vector<std::string> argv{vmm_binary().string()};
    for (auto& arg : run_args("spin", {"--cpus", std::to_string(param.cpus), "--cmdline",
                                       param.halt ? "halt=1" : "halt=0"})) {
        argv.push_back(std::move(arg));
    }
    Subprocess vmm(argv);
    const char* ready = param.halt ? "spin: halting with interrupts off\n" : "spin: spinning\n";
    ASSERT_TRUE(vmm.wait_for_output(Stream::Stdout, ready, deadline))
        << vmm.wait(deadline).describe();
    vmm.send_signal(param.signal);
    const auto result = vmm.wait(deadline);
    EXPECT_FALSE(result.timed_out) << "the VMM ignored the signal\n" << result.describe();
    EXPECT_EQ(result.exit_code(), 128 + param.signal) << result.describe();
    EXPECT_FALSE(mentions_rip(result.err)) << "a signal is a clean stop\n" << result.describe();
}

INSTANTIATE_TEST_SUITE_P(Cases, StopBySignal,
                         ::testing::Values(SignalCase{SIGTERM, false, 1, "SigtermWhileSpinning"},
                                           SignalCase{SIGTERM, true, 1, "SigtermWhileHalted"},
                                           SignalCase{SIGINT, false, 1, "SigintWhileSpinning"},
                                           SignalCase{SIGTERM, false, 4,
                                                      "SigtermWhileApsWaitForSipi"}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace vmm::test
