// Tests that need no KVM: the command line and host-side errors of `vmm`
// (it must reject bad input before it opens /dev/kvm), and the shape of the
// test guests themselves. These run on every host.
#include <elf.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <csignal>
#include <cstring>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "tests/integration/harness.hpp"

namespace vmm::test {
namespace {

namespace fs = std::filesystem;

// stderr of a host-side or usage error: exactly one non-empty line.
::testing::AssertionResult is_one_line(const std::string& text) {
    if (text.empty()) return ::testing::AssertionFailure() << "stderr is empty";
    if (text.back() != '\n') return ::testing::AssertionFailure() << "no final newline";
    const auto lines = split_lines(text);
    if (lines.size() != 1 || lines[0].empty()) {
        return ::testing::AssertionFailure() << lines.size() << " lines, expected one";
    }
    return ::testing::AssertionSuccess();
}

class VmmCli : public ::testing::Test {
  protected:
    void SetUp() override { require_vmm_binary(); }

    // Runs vmm and checks the common shape of a usage error: exit 1, one line
    // on stderr that mentions `topic` (case-insensitive), nothing on stdout.
    void expect_usage_error(const std::vector<std::string>& args, std::string_view topic) {
        const auto result = run_vmm(args, kCliTimeout);
        EXPECT_EQ(result.exit_code(), 1) << result.describe();
        EXPECT_TRUE(is_one_line(result.err)) << result.describe();
        EXPECT_TRUE(contains_icase(result.err, topic))
            << "stderr should mention \"" << topic << "\"\n"
            << result.describe();
        EXPECT_EQ(result.out, "") << result.describe();
        EXPECT_FALSE(mentions_rip(result.err)) << "a usage error has no register dump\n"
                                               << result.describe();
    }

    ScratchDir scratch_;
};

TEST_F(VmmCli, VersionPrintsTheVersionAndExitsZero) {
    const auto result = run_vmm({"--version"}, kCliTimeout);
    EXPECT_EQ(result.exit_code(), 0) << result.describe();
    EXPECT_TRUE(std::regex_search(result.out, std::regex("[0-9]+\\.[0-9]+\\.[0-9]+")))
        << result.describe();
    EXPECT_EQ(result.err, "") << result.describe();
}

TEST_F(VmmCli, RunHelpListsEveryOptionAndExitsZero) {
    const auto result = run_vmm({"run", "--help"}, kCliTimeout);
    EXPECT_EQ(result.exit_code(), 0) << result.describe();
    for (const char* option :
         {"--kernel", "--initrd", "--cmdline", "--memory", "--cpus", "--serial", "--log-level"}) {
        EXPECT_NE(result.out.find(option), std::string::npos)
            << "help does not mention " << option << "\n"
            << result.describe();
    }
    EXPECT_EQ(result.err, "") << result.describe();
}

TEST_F(VmmCli, MissingKernelFileIsOneLineNamingTheFile) {
    const auto missing = (scratch_ / "no-such-kernel.bin").string();
    const auto result = run_vmm({"run", "--kernel", missing}, kCliTimeout);
    EXPECT_EQ(result.exit_code(), 1) << result.describe();
    EXPECT_TRUE(is_one_line(result.err)) << result.describe();
    EXPECT_NE(result.err.find(missing), std::string::npos)
        << "stderr should name " << missing << "\n"
        << result.describe();
    EXPECT_EQ(result.out, "") << result.describe();
}

TEST_F(VmmCli, KernelThatIsADirectoryIsOneLineNamingIt) {
    const auto directory = scratch_.path().string();
    const auto result = run_vmm({"run", "--kernel", directory}, kCliTimeout);
    EXPECT_EQ(result.exit_code(), 1) << result.describe();
    EXPECT_TRUE(is_one_line(result.err)) << result.describe();
    EXPECT_NE(result.err.find(directory), std::string::npos) << result.describe();
}

TEST_F(VmmCli, RandomBytesKernelIsRejectedWithoutARegisterDump) {
    std::mt19937 generator(20240229);
    std::string bytes(64 * 1024, '\0');
    for (auto& byte : bytes) byte = static_cast<char>(generator() & 0xff);
    ASSERT_NE(bytes.substr(0, 4),
              "\x7f"
              "ELF");
    ASSERT_NE(bytes.substr(0x202, 4), "HdrS");
    const auto kernel = scratch_ / "random.bin";
    write_file(kernel, bytes);

    const auto result = run_vmm({"run", "--kernel", kernel.string()}, kCliTimeout);
    EXPECT_EQ(result.exit_code(), 1) << result.describe();
    EXPECT_TRUE(is_one_line(result.err)) << result.describe();
    EXPECT_TRUE(result.err.find(kernel.string()) != std::string::npos ||
                contains_icase(result.err, "kernel"))
        << "the error should be about the kernel image\n"
        << result.describe();
    EXPECT_FALSE(mentions_rip(result.err)) << result.describe();
    EXPECT_FALSE(contains_icase(result.err, "/dev/kvm"))
        << "the kernel must be checked before KVM is needed\n"
        << result.describe();
}

// hello.elf cut short: inside the ELF header, inside the program headers,
// and inside the loadable segment.
class VmmCliTruncatedElf : public VmmCli, public ::testing::WithParamInterface<std::size_t> {};

TEST_P(VmmCliTruncatedElf, IsRejectedWithOneLine) {
    const auto full = read_file(guest_path("hello"));
    ASSERT_GT(full.size(), GetParam());
    const auto kernel = scratch_ / "truncated.elf";
    write_file(kernel, std::string_view(full).substr(0, GetParam()));

    const auto result = run_vmm({"run", "--kernel", kernel.string()}, kCliTimeout);
    EXPECT_EQ(result.exit_code(), 1) << result.describe();
    EXPECT_TRUE(is_one_line(result.err)) << result.describe();
    EXPECT_FALSE(mentions_rip(result.err)) << result.describe();
}

INSTANTIATE_TEST_SUITE_P(Sizes, VmmCliTruncatedElf,
                         ::testing::Values(std::size_t{20}, std::size_t{100}, std::size_t{0x1010}));

TEST_F(VmmCli, ElfWithoutAPvhNoteIsRejected) {
    const auto result = run_vmm({"run", "--kernel", guest_path("nonote").string()}, kCliTimeout);
    EXPECT_EQ(result.exit_code(), 1) << result.describe();
    EXPECT_TRUE(is_one_line(result.err)) << result.describe();
    EXPECT_TRUE(contains_icase(result.err, "pvh")) << result.describe();
}

class VmmCliBadMemory : public VmmCli, public ::testing::WithParamInterface<const char*> {};

TEST_P(VmmCliBadMemory, IsOneLineAboutMemory) {
    expect_usage_error(run_args("hello", {}, GetParam()), "memory");
}

INSTANTIATE_TEST_SUITE_P(Values, VmmCliBadMemory,
                         ::testing::Values("0", "12Q", "abc", "-64M", "", "99999999999999G",
                                           // RAM would reach the 64-bit PCI window at 256 GiB
                                           "256G", "1T"));

class VmmCliBadCpus : public VmmCli, public ::testing::WithParamInterface<const char*> {};

TEST_P(VmmCliBadCpus, IsOneLineAboutCpus) {
    expect_usage_error(run_args("hello", {"--cpus", GetParam()}), "cpus");
}

INSTANTIATE_TEST_SUITE_P(Values, VmmCliBadCpus, ::testing::Values("0", "65", "-1", "two"));

TEST_F(VmmCli, BadSerialTargetIsOneLine) {
    expect_usage_error(run_args("hello", {"--serial", "tcp:1234"}), "serial");
    expect_usage_error(run_args("hello", {"--serial", "file:"}), "serial");
}

TEST_F(VmmCli, HostErrorsArePrintedEvenWithLogLevelOff) {
    const auto missing = (scratch_ / "no-such-kernel.bin").string();
    const auto result = run_vmm({"run", "--kernel", missing, "--log-level", "off"}, kCliTimeout);
    EXPECT_EQ(result.exit_code(), 1) << result.describe();
    EXPECT_TRUE(is_one_line(result.err)) << "off silences logs, not the reason for exit 1\n"
                                         << result.describe();
    EXPECT_NE(result.err.find(missing), std::string::npos) << result.describe();
}

// open() of a FIFO for writing waits for a reader; the VMM must not wait
// (forever, if nobody comes) but refuse it with one line, before KVM.
TEST_F(VmmCli, SerialFifoWithoutAReaderIsOneLineInsteadOfAHang) {
    const auto fifo = (scratch_ / "serial.fifo").string();
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    const auto result = run_vmm(run_args("hello", {"--serial", "file:" + fifo}), kCliTimeout);
    EXPECT_FALSE(result.timed_out) << result.describe();
    EXPECT_EQ(result.exit_code(), 1) << result.describe();
    EXPECT_TRUE(is_one_line(result.err)) << result.describe();
    EXPECT_NE(result.err.find(fifo), std::string::npos) << result.describe();
    EXPECT_TRUE(contains_icase(result.err, "no reader")) << result.describe();
}

// SIGPIPE is ignored from the start: a stdout whose reader is gone gives
// EPIPE (handled) instead of a silent death by signal.
TEST_F(VmmCli, AStdoutWithoutAReaderDoesNotKillTheVmmBySigpipe) {
    auto stdout_pipe = make_pipe();
    stdout_pipe.read.reset();
    const auto result = run_vmm({"--version"}, kCliTimeout, {.stdout_fd = stdout_pipe.write.get()});
    EXPECT_TRUE(result.status.exited) << result.describe();
    EXPECT_NE(result.status.signal, SIGPIPE) << result.describe();
}

TEST_F(VmmCli, BadLogLevelIsOneLine) {
    expect_usage_error(run_args("hello", {"--log-level", "loud"}), "log-level");
}

TEST_F(VmmCli, RunWithoutKernelIsOneLine) {
    expect_usage_error({"run"}, "kernel");
}

TEST_F(VmmCli, UnknownOptionIsOneLineNamingIt) {
    expect_usage_error(run_args("hello", {"--bogus-option"}), "--bogus-option");
}

TEST_F(VmmCli, NoSubcommandIsAUsageError) {
    const auto result = run_vmm({}, kCliTimeout);
    EXPECT_EQ(result.exit_code(), 1) << result.describe();
    EXPECT_FALSE(result.err.empty()) << result.describe();
}

// The guests are valid PVH kernels: a PT_NOTE with Xen's PHYS32_ENTRY whose
// address lies in a loadable segment, and an ELF e_entry that differs from
// it (so a loader that ignores the note fails visibly).
struct PvhInfo {
    bool has_note = false;
    std::uint32_t entry = 0;
    bool entry_in_segment = false;
    std::uint64_t elf_entry = 0;
};

PvhInfo inspect_pvh(const std::string& image) {
    PvhInfo info;
    Elf64_Ehdr header;
    if (image.size() < sizeof header) return info;
    std::memcpy(&header, image.data(), sizeof header);
    info.elf_entry = header.e_entry;
    std::vector<Elf64_Phdr> segments;
    for (unsigned i = 0; i < header.e_phnum; ++i) {
        const std::size_t offset = header.e_phoff + std::size_t{i} * header.e_phentsize;
        if (offset + sizeof(Elf64_Phdr) > image.size()) return info;
        Elf64_Phdr segment;
        std::memcpy(&segment, image.data() + offset, sizeof segment);
        segments.push_back(segment);
    }
    for (const auto& segment : segments) {
        if (segment.p_type != PT_NOTE) continue;
        std::size_t at = segment.p_offset;
        const std::size_t end = segment.p_offset + segment.p_filesz;
        while (at + sizeof(Elf64_Nhdr) <= end && end <= image.size()) {
            Elf64_Nhdr note;
            std::memcpy(&note, image.data() + at, sizeof note);
            const std::size_t name_at = at + sizeof note;
            const std::size_t desc_at = name_at + ((note.n_namesz + 3) & ~3u);
            if (note.n_type == 18 && note.n_namesz == 4 &&
                image.compare(name_at, 4, std::string("Xen\0", 4)) == 0 && note.n_descsz >= 4) {
                info.has_note = true;
                std::memcpy(&info.entry, image.data() + desc_at, 4);
            }
            at = desc_at + ((note.n_descsz + 3) & ~3u);
        }
    }
    for (const auto& segment : segments) {
        if (segment.p_type == PT_LOAD && info.entry >= segment.p_paddr &&
            info.entry < segment.p_paddr + segment.p_filesz) {
            info.entry_in_segment = true;
        }
    }
    return info;
}

class GuestImages : public ::testing::TestWithParam<const char*> {};

TEST_P(GuestImages, HaveAPvhEntryNoteInsideTheImage) {
    const auto image = read_file(guest_path(GetParam()));
    ASSERT_FALSE(image.empty());
    const auto info = inspect_pvh(image);
    EXPECT_TRUE(info.has_note);
    EXPECT_TRUE(info.entry_in_segment) << std::hex << info.entry;
    EXPECT_NE(info.entry, info.elf_entry) << "e_entry must not be the PVH entry";
}

INSTANTIATE_TEST_SUITE_P(All, GuestImages,
                         ::testing::Values("hello", "cmdline", "longmode", "smp", "io", "reset_kbd",
                                           "reset_acpi", "triplefault", "spin", "badfetch", "echo",
                                           "serial_irq", "acpi", "flood"));

TEST(GuestImagesNoNote, HasNoPvhNote) {
    const auto image = read_file(guest_path("nonote"));
    ASSERT_FALSE(image.empty());
    EXPECT_FALSE(inspect_pvh(image).has_note);
}

}  // namespace
}  // namespace vmm::test
