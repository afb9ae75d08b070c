#include "vmm/cli/size_parser.hpp"

#include <cctype>

#include "base/checked_math.hpp"

namespace vmm::cli {

std::optional<std::uint64_t> parse_size(std::string_view text) {
    std::uint64_t value = 0;
    std::size_t i = 0;
    for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
        auto next = base::checked_mul(value, 10);
        if (next) next = base::checked_add(*next, static_cast<std::uint64_t>(text[i] - '0'));
        if (!next) return std::nullopt;
        value = *next;
    }
    if (i == 0) return std::nullopt;
    std::uint64_t unit = 1ull << 20;  // bare number: MiB
    if (i < text.size()) {
        if (i + 1 != text.size()) {
            // Accept "512MiB"/"512MB" spellings too.
            const auto suffix = text.substr(i + 1);
            if (suffix != "iB" && suffix != "B") return std::nullopt;
        }
        switch (std::toupper(static_cast<unsigned char>(text[i]))) {
            case 'B': unit = 1; if (i + 1 != text.size()) return std::nullopt; break;
            case 'K': unit = 1ull << 10; break;
            case 'M': unit = 1ull << 20; break;
            case 'G': unit = 1ull << 30; break;
            case 'T': unit = 1ull << 40; break;
            default: return std::nullopt;
        }
    }
    return base::checked_mul(value, unit);
}

}  // namespace vmm::cli
