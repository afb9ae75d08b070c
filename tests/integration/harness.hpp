// What every integration test needs: where the `vmm` binary and the test
// guests are, whether this host has a usable /dev/kvm, timeouts, scratch
// directories and output parsing.
//
// Paths come from the build (compile definitions) and may be overridden by
// the environment, for runs where the build tree moved (the lab mounts the
// checkout elsewhere):
//   VMM_TEST_VMM_BINARY   path of the vmm executable
//   VMM_TEST_GUEST_DIR    directory of the *.elf test guests
//   VMM_TEST_TIMEOUT_SCALE  multiplies every timeout (e.g. 3 on slow hosts)
//   VMM_TEST_IGNORE_KVM_CHECK=1  runs the KVM suites without /dev/kvm, to
//                         check the tests against a stand-in VMM (e.g. a
//                         script around QEMU/TCG); never set it in CI
// When the built-in paths do not exist, they are looked up relative to this
// test binary's own location in the build tree.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/integration/subprocess.hpp"

namespace vmm::test {

std::filesystem::path vmm_binary();
std::filesystem::path guest_path(std::string_view name);  // name without ".elf"
// The LD_PRELOAD shim that makes the Nth pthread_create fail (SpawnOptions
// environment for it: fail_thread_create_environment).
std::filesystem::path fail_thread_create_library();
std::vector<std::string> fail_thread_create_environment(int nth_call);

// Empty when /dev/kvm opens read-write and reports API version 12;
// otherwise the reason it cannot be used.
std::string kvm_unavailable_reason();

// `timeout` multiplied by VMM_TEST_TIMEOUT_SCALE.
std::chrono::milliseconds scaled(std::chrono::milliseconds timeout);

inline constexpr std::chrono::seconds kCliTimeout{30};
inline constexpr std::chrono::seconds kGuestTimeout{60};

// Runs `vmm ARGS...` to completion.
RunResult run_vmm(const std::vector<std::string>& args,
                  std::chrono::milliseconds timeout = kGuestTimeout, SpawnOptions options = {});

// `run --kernel GUEST.elf --memory MEMORY` followed by `extra`.
std::vector<std::string> run_args(std::string_view guest, std::vector<std::string> extra = {},
                                  std::string_view memory = "64M");

// Lines of `text` without their terminators ("\n" or "\r\n"); a final
// unterminated line counts.
std::vector<std::string> split_lines(std::string_view text);
std::size_t count_lines(std::string_view text, std::string_view line);
bool has_line(std::string_view text, std::string_view line);
// Lines that start with `prefix`.
std::vector<std::string> lines_starting_with(std::string_view text, std::string_view prefix);
// The rest of the first line that starts with `prefix`.
std::optional<std::string> value_after(std::string_view text, std::string_view prefix);
bool contains_icase(std::string_view haystack, std::string_view needle);
// A register dump: "rip" (any case) followed by a hex number.
bool mentions_rip(std::string_view text);

std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, std::string_view data);
std::uint32_t fnv1a32(std::string_view data);

// Physical [start, end) of each PT_LOAD segment of an ELF64 image (memsz).
struct LoadRange {
    std::uint64_t start;
    std::uint64_t end;
};
std::vector<LoadRange> elf_load_ranges(const std::string& image);

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class ScratchDir {
  public:
    ScratchDir();
    ~ScratchDir();
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

// Base of every test that boots a guest: skips without a usable /dev/kvm
// and fails when the vmm binary or the guests are missing.
class KvmTest : public ::testing::Test {
  protected:
    void SetUp() override;
};

template <typename Param>
class KvmTestWithParam : public KvmTest, public ::testing::WithParamInterface<Param> {};

// Fails the current test when the vmm binary is missing.
void require_vmm_binary();

}  // namespace vmm::test
