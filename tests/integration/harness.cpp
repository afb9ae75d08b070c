#include "tests/integration/harness.hpp"

#include <elf.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

#include "base/error.hpp"

#if !defined(VMM_TEST_VMM_BINARY) || !defined(VMM_TEST_GUEST_DIR) || \
    !defined(VMM_TEST_BUILD_DIR) || !defined(VMM_TEST_SELF_DIR) ||   \
    !defined(VMM_TEST_FAIL_THREAD_CREATE_LIB)
#error "tests/integration/CMakeLists.txt defines the VMM_TEST_* paths"
#endif

namespace vmm::test {

namespace fs = std::filesystem;

namespace {

// A path from the build, moved along with the build tree when the build
// tree is not where it was built (the test binary finds itself through
// /proc/self/exe and knows where it sat in the tree).
fs::path relocate(const fs::path& built) {
    std::error_code error;
    if (fs::exists(built, error)) return built;
    const fs::path build_dir = VMM_TEST_BUILD_DIR;
    const fs::path inside = built.lexically_relative(build_dir);
    const fs::path self_inside = fs::path(VMM_TEST_SELF_DIR).lexically_relative(build_dir);
    if (inside.empty() || *inside.begin() == ".." || self_inside.empty() ||
        *self_inside.begin() == "..") {
        return built;
    }
    fs::path root = fs::read_symlink("/proc/self/exe", error).parent_path();
    if (error) return built;
    for (const auto& part : self_inside) {
        if (part != ".") root = root.parent_path();
    }
    const fs::path moved = root / inside;
    return fs::exists(moved, error) ? moved : built;
}

fs::path from_env_or(const char* variable, const fs::path& built) {
    if (const char* value = std::getenv(variable); value != nullptr && *value != '\0') {
        return value;
    }
    return relocate(built);
}

}  // namespace

fs::path vmm_binary() {
    static const fs::path path = from_env_or("VMM_TEST_VMM_BINARY", VMM_TEST_VMM_BINARY);
    return path;
}

fs::path guest_path(std::string_view name) {
    static const fs::path dir = from_env_or("VMM_TEST_GUEST_DIR", VMM_TEST_GUEST_DIR);
    fs::path path = dir / (std::string(name) + ".elf");
    std::error_code error;
    if (!fs::exists(path, error)) {
        ADD_FAILURE() << "test guest " << path
                      << " is missing: build the vmm_test_guests target or set "
                         "VMM_TEST_GUEST_DIR";
    }
    return path;
}

fs::path fail_thread_create_library() {
    static const fs::path path = relocate(VMM_TEST_FAIL_THREAD_CREATE_LIB);
    return path;
}

std::vector<std::string> fail_thread_create_environment(int nth_call) {
    // An ASan build's runtime insists on coming first among the loaded
    // libraries; the shim, loaded before it, needs none of its own.
    std::string asan_options = "verify_asan_link_order=0";
    if (const char* value = std::getenv("ASAN_OPTIONS"); value != nullptr && *value != '\0') {
        asan_options = std::string(value) + ":" + asan_options;
    }
    return {"LD_PRELOAD=" + fail_thread_create_library().string(),
            "VMM_TEST_FAIL_THREAD_CREATE=" + std::to_string(nth_call),
            "ASAN_OPTIONS=" + asan_options};
}

std::string kvm_unavailable_reason() {
    static const std::string reason = [] {
        // For checking the tests themselves against a stand-in for vmm.
        if (const char* ignore = std::getenv("VMM_TEST_IGNORE_KVM_CHECK");
            ignore != nullptr && std::string_view(ignore) == "1") {
            return std::string();
        }
        const base::UniqueFd fd(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
        if (!fd) {
            return std::string("no usable /dev/kvm on this host (") + std::strerror(errno) + ")";
        }
        // KVM_GET_API_VERSION takes no argument and only reads a constant.
        const int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
        if (version != KVM_API_VERSION) {
            return "/dev/kvm reports API version " + std::to_string(version) + ", not " +
                   std::to_string(KVM_API_VERSION);
        }
        return std::string();
    }();
    return reason;
}

std::chrono::milliseconds scaled(std::chrono::milliseconds timeout) {
    double factor = 1.0;
    if (const char* value = std::getenv("VMM_TEST_TIMEOUT_SCALE"); value != nullptr) {
        char* end = nullptr;
        const double parsed = std::strtod(value, &end);
        if (end != value && parsed > 0) factor = parsed;
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(timeout.count() * factor));
}

RunResult run_vmm(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                  SpawnOptions options) {
    std::vector<std::string> argv{vmm_binary().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, scaled(timeout), options);
}

std::vector<std::string> run_args(std::string_view guest, std::vector<std::string> extra,
                                  std::string_view memory) {
    std::vector<std::string> args{"run", "--kernel", guest_path(guest).string(), "--memory",
                                  std::string(memory)};
    args.insert(args.end(), std::make_move_iterator(extra.begin()),
                std::make_move_iterator(extra.end()));
    return args;
}

std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> lines;
    while (!text.empty()) {
        const auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        lines.emplace_back(line);
        if (end == std::string_view::npos) break;
        text.remove_prefix(end + 1);
    }
    return lines;
}

std::size_t count_lines(std::string_view text, std::string_view line) {
    const auto lines = split_lines(text);
    return static_cast<std::size_t>(std::count(lines.begin(), lines.end(), line));
}

bool has_line(std::string_view text, std::string_view line) {
    return count_lines(text, line) > 0;
}

std::vector<std::string> lines_starting_with(std::string_view text, std::string_view prefix) {
    std::vector<std::string> matches;
    for (auto& line : split_lines(text)) {
        if (std::string_view(line).starts_with(prefix)) matches.push_back(std::move(line));
    }
    return matches;
}

std::optional<std::string> value_after(std::string_view text, std::string_view prefix) {
    for (const auto& line : split_lines(text)) {
        if (std::string_view(line).starts_with(prefix)) return line.substr(prefix.size());
    }
    return std::nullopt;
}

bool contains_icase(std::string_view haystack, std::string_view needle) {
    const auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                                [](char a, char b) {
                                    return std::tolower(static_cast<unsigned char>(a)) ==
                                           std::tolower(static_cast<unsigned char>(b));
                                });
    return needle.empty() || it != haystack.end();
}

bool mentions_rip(std::string_view text) {
    static const std::regex pattern("rip[^0-9a-f\\n]{0,8}(0x)?[0-9a-f]{4,}",
                                    std::regex::icase | std::regex::ECMAScript);
    return std::regex_search(text.begin(), text.end(), pattern);
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream content;
    content << in.rdbuf();
    return content.str();
}

void write_file(const fs::path& path, std::string_view data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) throw base::Error("cannot write {}", path.string());
}

std::uint32_t fnv1a32(std::string_view data) {
    std::uint32_t hash = 0x811c9dc5;
    for (const char c : data) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 0x01000193;
    }
    return hash;
}

std::vector<LoadRange> elf_load_ranges(const std::string& image) {
    std::vector<LoadRange> ranges;
    Elf64_Ehdr header;
    if (image.size() < sizeof header) return ranges;
    std::memcpy(&header, image.data(), sizeof header);
    for (unsigned i = 0; i < header.e_phnum; ++i) {
        const std::size_t offset = header.e_phoff + std::size_t{i} * header.e_phentsize;
        if (offset + sizeof(Elf64_Phdr) > image.size()) break;
        Elf64_Phdr segment;
        std::memcpy(&segment, image.data() + offset, sizeof segment);
        if (segment.p_type == PT_LOAD) {
            ranges.push_back({segment.p_paddr, segment.p_paddr + segment.p_memsz});
        }
    }
    return ranges;
}

ScratchDir::ScratchDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/vmm-integration.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
        base::throw_errno("mkdtemp {}", pattern);
    }
    path_ = pattern;
}

ScratchDir::~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
}

void require_vmm_binary() {
    std::error_code error;
    const auto path = vmm_binary();
    ASSERT_TRUE(fs::is_regular_file(path, error) && ::access(path.c_str(), X_OK) == 0)
        << "the vmm binary " << path
        << " is missing or not executable: build the vmm target or set VMM_TEST_VMM_BINARY";
}

void KvmTest::SetUp() {
    if (const auto reason = kvm_unavailable_reason(); !reason.empty()) {
        GTEST_SKIP() << reason
                     << "; the KVM integration tests run in the lab "
                        "(tests/lab/scenarios/boot-kvm-integration.sh)";
    }
    require_vmm_binary();
}

}  // namespace vmm::test
