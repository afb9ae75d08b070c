// Guests that boot and power off: serial output and its targets, the PVH
// start info (command line, memmap, initrd), long mode and RAM above 4 GiB,
// ACPI tables and serial input. Need /dev/kvm (skipped without it).
#include <gtest/gtest.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/harness.hpp"

namespace vmm::test {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t MiB = 1024 * 1024;
constexpr std::uint64_t GiB = 1024 * MiB;
constexpr std::uint64_t kMmioHoleStart = 0xc000'0000;
constexpr std::uint64_t k4GiB = 4 * GiB;

// Where RAM ends for --memory: below the 32-bit MMIO hole, or continued
// at 4 GiB for what does not fit below it.
constexpr std::uint64_t ram_top_for(std::uint64_t memory) {
    return memory > kMmioHoleStart ? k4GiB + (memory - kMmioHoleStart) : memory;
}

constexpr const char* kHelloLine = "Hello from the hello guest\n";

class Boot : public KvmTest {
  protected:
    ScratchDir scratch_;
};

TEST_F(Boot, HelloPrintsExactlyItsLineAndPowersOffWithExitZero) {
    const auto result = run_vmm(run_args("hello"));
    EXPECT_EQ(result.exit_code(), 0) << result.describe();
    EXPECT_EQ(result.out, kHelloLine) << result.describe();
    EXPECT_FALSE(mentions_rip(result.err)) << result.describe();
}

// What /proc/cpuinfo says, read here independently of the VMM's own check.
bool host_cpu_has_vmx_or_svm() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
        if (!line.starts_with("flags")) continue;
        std::istringstream words(line);
        std::string word;
        while (words >> word) {
            if (word == "vmx" || word == "svm") return true;
        }
        return false;
    }
    return false;
}

// On a KVM without hardware virtualization (PVM), `vmm run` warns exactly
// once that a stock kernel runs emulated; with vmx/svm (the lab) it is quiet.
TEST_F(Boot, WarnsOnceAboutPvmExactlyWhenTheHostHasNoVmxOrSvm) {
    const auto result = run_vmm(run_args("hello"));
    EXPECT_EQ(result.exit_code(), 0) << result.describe();
    const bool pvm = !host_cpu_has_vmx_or_svm();
    std::size_t warnings = 0;
    for (const auto& line : split_lines(result.err)) {
        if (line.find("no hardware virtualization") != std::string::npos) {
            ++warnings;
            EXPECT_TRUE(line.starts_with("vmm: warn: ")) << line;
            EXPECT_NE(line.find("docs/LAB.md"), std::string::npos) << "must point at the lab";
        }
    }
    EXPECT_EQ(warnings, pvm ? 1u : 0u) << (pvm ? "PVM host" : "host with vmx/svm") << "\n"
                                       << result.describe();
}

TEST_F(Boot, HelloWithStdinFromDevNull) {
    const auto result =
        run_vmm(run_args("hello"), kGuestTimeout, {.stdin_mode = SpawnOptions::Stdin::DevNull});
    EXPECT_EQ(result.exit_code(), 0) << result.describe();
    EXPECT_EQ(result.out, kHelloLine) << result.describe();
}

TEST_F(Boot, SerialToAFileWritesTheGuestOutputThere) {
    const auto log = scratch_ / "serial.log";
    const auto result = run_vmm(run_args("hello", {"--serial", "file:" + log.string()}));
    EXPECT_EQ(result.exit_code(), 0) << result.describe();
    EXPECT_EQ(read_file(log), kHelloLine);
    EXPECT_EQ(result.out.find("Hello from"), std::string::npos) << result.describe();
}

TEST_F(Boot, SerialNoneDropsTheGuestOutput) {
    const auto result = run_vmm(run_args("hello", {"--serial", "none"}));
    EXPECT_EQ(result.exit_code(), 0) << result.describe();
    EXPECT_EQ(result.out.find("Hello from"), std::string::npos) << result.describe();
    EXPECT_EQ(result.err.find("Hello from"), std::string::npos) << result.describe();
}

TEST_F(Boot, SerialFileInAMissingDirectoryIsAHostError) {
    const auto log = (scratch_ / "missing-dir" / "serial.log").string();
    const auto result = run_vmm(run_args("hello", {"--serial", "file:" + log}));
    EXPECT_EQ(result.exit_code(), 1) << result.describe();
    EXPECT_EQ(split_lines(result.err).size(), 1u) << result.describe();
    EXPECT_NE(result.err.find(log), std::string::npos) << result.describe();
}

TEST_F(Boot, EveryLogLevelStillBootsAndKeepsLogsOffStdout) {
    for (const char* level : {"trace", "debug", "info", "warn", "error"}) {
        SCOPED_TRACE(level);
        const auto result = run_vmm(run_args("hello", {"--log-level", level}));
        EXPECT_EQ(result.exit_code(), 0) << result.describe();
        EXPECT_EQ(result.out, kHelloLine) << result.describe();
    }
}

// The PVH start info and the boot ABI's register state.
class BootInfo : public Boot {
  protected:
    RunResult run_cmdline_guest(std::vector<std::string> extra, std::string_view memory = "64M") {
        return run_vmm(run_args("cmdline", std::move(extra), memory));
    }

    static void expect_clean_run(const RunResult& result) {
        EXPECT_EQ(result.exit_code(), 0) << result.describe();
        EXPECT_TRUE(has_line(result.out, "abi ok")) << result.describe();
        EXPECT_TRUE(lines_starting_with(result.out, "abi FAIL").empty()) << result.describe();
        EXPECT_TRUE(has_line(result.out, "cmdline guest done")) << result.describe();
    }
};

TEST_F(BootInfo, StartInfoIsValidAndTheAbiStateIsFlatProtectedMode) {
    const auto result = run_cmdline_guest({"--cmdline", "x"});
    expect_clean_run(result);
    const auto version = value_after(result.out, "start_info: magic ok version ");
    ASSERT_TRUE(version) << result.describe();
    EXPECT_GE(std::stoi(*version), 1) << "memmap fields need start info version 1";
}

TEST_F(BootInfo, CommandLineArrivesIntact) {
    const std::string cmdline =
        "console=ttyS0 root=/dev/vda rw quoted=\"a b\" symbols=~!@#$%^&*()_+{}|:<>? last";
    const auto result = run_cmdline_guest({"--cmdline", cmdline});
    expect_clean_run(result);
    EXPECT_TRUE(has_line(result.out, "cmdline: [" + cmdline + "]")) << result.describe();
}

TEST_F(BootInfo, LongCommandLineArrivesIntact) {
    std::string cmdline;
    for (int i = 0; cmdline.size() < 2000; ++i) cmdline += "option" + std::to_string(i) + "=v ";
    cmdline += "end";
    const auto result = run_cmdline_guest({"--cmdline", cmdline});
    expect_clean_run(result);
    EXPECT_TRUE(has_line(result.out, "cmdline: [" + cmdline + "]")) << result.describe();
}

TEST_F(BootInfo, EmptyCommandLineArrivesEmpty) {
    const auto result = run_cmdline_guest({"--cmdline", ""});
    expect_clean_run(result);
    EXPECT_TRUE(has_line(result.out, "cmdline: []")) << result.describe();
}

struct MemmapEntry {
    std::uint64_t addr;
    std::uint64_t size;
    std::uint32_t type;
};

std::vector<MemmapEntry> parse_memmap(const std::string& out) {
    std::vector<MemmapEntry> entries;
    for (const auto& line : lines_starting_with(out, "memmap: ")) {
        MemmapEntry entry{};
        if (std::sscanf(line.c_str(), "memmap: %" SCNx64 " %" SCNx64 " %" SCNu32, &entry.addr,
                        &entry.size, &entry.type) == 3) {
            entries.push_back(entry);
        }
    }
    return entries;
}

class BootMemmap : public BootInfo, public ::testing::WithParamInterface<std::uint64_t> {};

TEST_P(BootMemmap, DescribesTheRequestedRam) {
    const std::uint64_t memory = GetParam();
    const auto result = run_cmdline_guest({}, std::to_string(memory / MiB) + "M");
    expect_clean_run(result);
    const auto entries = parse_memmap(result.out);
    const auto count = value_after(result.out, "memmap entries: ");
    ASSERT_TRUE(count) << result.describe();
    ASSERT_EQ(std::stoul(*count), entries.size()) << result.describe();
    ASSERT_FALSE(entries.empty()) << result.describe();

    std::uint64_t ram = 0;
    std::uint64_t ram_top = 0;
    bool image_in_ram = false;  // the guest itself runs at 1 MiB
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        SCOPED_TRACE(i);
        EXPECT_GT(e.size, 0u);
        EXPECT_GE(e.addr + e.size, e.addr) << "entry wraps";
        if (i > 0) {
            EXPECT_GE(e.addr, entries[i - 1].addr + entries[i - 1].size)
                << "entries must be sorted and must not overlap";
        }
        if (e.type != 1) continue;
        ram += e.size;
        ram_top = std::max(ram_top, e.addr + e.size);
        EXPECT_TRUE(e.addr + e.size <= kMmioHoleStart || e.addr >= k4GiB)
            << "RAM overlaps the MMIO hole";
        if (e.addr <= 0x100000 && e.addr + e.size >= 0x200000) image_in_ram = true;
    }
    EXPECT_TRUE(image_in_ram) << "no RAM entry covers 1 MiB..2 MiB";
    const auto total = value_after(result.out, "ram total: ");
    ASSERT_TRUE(total);
    EXPECT_EQ(*total, std::to_string(ram) + " bytes");
    EXPECT_LE(ram, memory) << "more RAM than --memory";
    EXPECT_GE(ram, memory - 2 * MiB) << "more than the legacy hole is missing";
    // RAM ends where --memory says (the VMM may keep up to 1 MiB at the top).
    const std::uint64_t expected_top = ram_top_for(memory);
    EXPECT_LE(ram_top, expected_top) << result.describe();
    EXPECT_GE(ram_top, expected_top - MiB) << result.describe();
}

INSTANTIATE_TEST_SUITE_P(Sizes, BootMemmap,
                         ::testing::Values(64 * MiB, 512 * MiB, 3 * GiB, 5 * GiB),
                         [](const auto& info) { return std::to_string(info.param / MiB) + "M"; });

TEST_F(BootInfo, InitrdArrivesAsModuleZero) {
    std::mt19937 generator(7);
    std::string initrd(300 * 1024 + 123, '\0');
    for (auto& byte : initrd) byte = static_cast<char>(generator() & 0xff);
    const auto path = scratch_ / "initrd.img";
    write_file(path, initrd);

    const auto result = run_cmdline_guest({"--initrd", path.string()});
    expect_clean_run(result);
    EXPECT_TRUE(has_line(result.out, "modules: 1")) << result.describe();
    const auto module = value_after(result.out, "module 0: paddr ");
    ASSERT_TRUE(module) << result.describe();
    std::uint64_t paddr = 0;
    std::uint64_t size = 0;
    unsigned hash = 0;
    ASSERT_EQ(
        std::sscanf(module->c_str(), "%" SCNx64 " size %" SCNu64 " fnv1a %x", &paddr, &size, &hash),
        3)
        << *module;
    EXPECT_EQ(size, initrd.size());
    EXPECT_EQ(hash, fnv1a32(initrd)) << "the initrd content differs";
    EXPECT_GE(paddr, 0x100000u) << "initrd below 1 MiB";
    EXPECT_LE(paddr + size, 64 * MiB) << "initrd outside RAM";
    const auto image = elf_load_ranges(read_file(guest_path("cmdline")));
    ASSERT_FALSE(image.empty());
    for (const auto& range : image) {
        EXPECT_TRUE(paddr + size <= range.start || paddr >= range.end)
            << "initrd overlaps the kernel image at " << std::hex << range.start;
    }
}

TEST_F(BootInfo, NoInitrdMeansNoModules) {
    const auto result = run_cmdline_guest({});
    expect_clean_run(result);
    EXPECT_TRUE(has_line(result.out, "modules: 0")) << result.describe();
}

TEST_F(BootInfo, MissingInitrdIsAHostErrorNamingTheFile) {
    const auto missing = (scratch_ / "no-such-initrd").string();
    const auto result = run_cmdline_guest({"--initrd", missing});
    EXPECT_EQ(result.exit_code(), 1) << result.describe();
    EXPECT_EQ(split_lines(result.err).size(), 1u) << result.describe();
    EXPECT_NE(result.err.find(missing), std::string::npos) << result.describe();
    EXPECT_EQ(result.out, "") << "the guest must not run\n" << result.describe();
}

// Long mode with the guest's own page tables and RAM above 4 GiB.
class LongMode : public KvmTestWithParam<std::uint64_t> {};

TEST_P(LongMode, RunsAtTheKernelAliasAndUsesAllRam) {
    const std::uint64_t memory = GetParam();
    const auto result = run_vmm(run_args("longmode", {}, std::to_string(memory / MiB) + "M"));
    EXPECT_EQ(result.exit_code(), 0) << result.describe();
    const auto rip = value_after(result.out, "long mode: rip ");
    ASSERT_TRUE(rip) << result.describe();
    EXPECT_TRUE(rip->starts_with("ffffffff8")) << *rip;
    EXPECT_TRUE(has_line(result.out, "long mode: efer.lma 1")) << result.describe();
    EXPECT_TRUE(has_line(result.out, "long mode guest done")) << result.describe();

    const auto top_text = value_after(result.out, "longmode: ram top ");
    ASSERT_TRUE(top_text) << result.describe();
    const std::uint64_t top = std::stoull(*top_text, nullptr, 16);
    const std::uint64_t expected_top = ram_top_for(memory);
    EXPECT_LE(top, expected_top) << result.describe();
    EXPECT_GE(top, expected_top - MiB) << result.describe();
    if (memory > kMmioHoleStart) {
        char last[32];
        std::snprintf(last, sizeof last, "%016" PRIx64, top - 8);
        EXPECT_TRUE(has_line(result.out, std::string("high memory ok: 3 addresses up to ") + last))
            << result.describe();
    } else {
        EXPECT_TRUE(has_line(result.out, "high memory: none")) << result.describe();
    }
}

INSTANTIATE_TEST_SUITE_P(Sizes, LongMode, ::testing::Values(64 * MiB, 5 * GiB),
                         [](const auto& info) { return std::to_string(info.param / MiB) + "M"; });

// ACPI: RSDP, checksums, MADT, FADT.
class Acpi : public KvmTestWithParam<int> {};

TEST_P(Acpi, TablesAreValidAndTheMadtListsEveryCpu) {
    const int cpus = GetParam();
    const auto result = run_vmm(run_args("acpi", {"--cpus", std::to_string(cpus)}));
    EXPECT_EQ(result.exit_code(), 0) << result.describe();
    EXPECT_TRUE(has_line(result.out, "acpi ok")) << result.describe();
    EXPECT_TRUE(lines_starting_with(result.out, "acpi FAIL").empty()) << result.describe();

    const auto rsdp = value_after(result.out, "acpi: rsdp scan ");
    ASSERT_TRUE(rsdp) << result.describe();
    unsigned scanned = 0;
    unsigned from_start_info = 0;
    ASSERT_EQ(std::sscanf(rsdp->c_str(), "%x start_info %x", &scanned, &from_start_info), 2);
    EXPECT_GE(scanned, 0xe0000u);
    EXPECT_LT(scanned, 0x100000u);
    EXPECT_EQ(scanned, from_start_info) << "start_info.rsdp_paddr and the scan disagree";

    for (int id = 0; id < cpus; ++id) {
        std::size_t found = 0;
        for (const auto& line : lines_starting_with(result.out, "madt: lapic uid ")) {
            unsigned uid = 0;
            unsigned apic_id = 0;
            unsigned flags = 0;
            if (std::sscanf(line.c_str(), "madt: lapic uid %u id %u flags %x", &uid, &apic_id,
                            &flags) == 3 &&
                apic_id == static_cast<unsigned>(id)) {
                ++found;
                EXPECT_EQ(flags & 1u, 1u) << line;
            }
        }
        EXPECT_EQ(found, 1u) << "APIC ID " << id << "\n" << result.describe();
    }
    EXPECT_EQ(lines_starting_with(result.out, "madt: lapic uid ").size(),
              static_cast<std::size_t>(cpus))
        << result.describe();
    EXPECT_TRUE(has_line(result.out, "madt: enabled lapics " + std::to_string(cpus)))
        << result.describe();
    EXPECT_TRUE(has_line(result.out, "madt: lapic base fee00000")) << result.describe();
    const auto ioapics = lines_starting_with(result.out, "madt: ioapic id ");
    EXPECT_EQ(std::count_if(
                  ioapics.begin(), ioapics.end(),
                  [](const std::string& line) { return line.ends_with(" addr fec00000 gsi 0"); }),
              1)
        << "the IOAPIC at fec00000 with GSI base 0\n"
        << result.describe();
}

INSTANTIATE_TEST_SUITE_P(Cpus, Acpi, ::testing::Values(1, 3, 8));

TEST_F(Boot, AcpiFadtPointsAtTheVmmPowerPorts) {
    const auto result = run_vmm(run_args("acpi"));
    EXPECT_EQ(result.exit_code(), 0) << result.describe();
    const auto flags = value_after(result.out, "fadt: flags ");
    ASSERT_TRUE(flags) << result.describe();
    EXPECT_TRUE(flags->ends_with(" hw-reduced 1")) << *flags;
    EXPECT_TRUE(has_line(result.out, "fadt: reset reg space 1 addr 0000000000000600 value 01"))
        << result.describe();
    EXPECT_TRUE(has_line(result.out, "fadt: sleep control space 1 addr 0000000000000600"))
        << result.describe();
    EXPECT_TRUE(has_line(result.out, "fadt: sleep status space 1 addr 0000000000000601"))
        << result.describe();
    EXPECT_EQ(lines_starting_with(result.out, "fadt: dsdt ").size(), 1u) << result.describe();
}

TEST_F(Boot, SerialInputReachesTheGuest) {
    const auto deadline = Clock::now() + scaled(kGuestTimeout);
    Subprocess vmm(
        {vmm_binary().string(), "run", "--kernel", guest_path("echo").string(), "--memory", "64M"});
    ASSERT_TRUE(vmm.wait_for_output(Stream::Stdout, "echo: ready\n", deadline))
        << vmm.wait(deadline).describe();
    ASSERT_TRUE(vmm.write_stdin("hello vmm\n", deadline));
    const auto result = vmm.wait(deadline);
    EXPECT_EQ(result.exit_code(), 0) << result.describe();
    EXPECT_TRUE(has_line(result.out, "HELLO VMM")) << result.describe();
    EXPECT_TRUE(has_line(result.out, "echo: done")) << result.describe();
}

}  // namespace
}  // namespace vmm::test
