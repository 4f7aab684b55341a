#pragma once
// The one table of the names a user types, each mapped to the type it selects:
//   presets             core/presets.hpp's table (a ModelConfig each)
//   attention policies  Attention below: the tag types; a tag's `name` is what --attention takes
//   parallel policies   "single" (parallel::Single) and DataParallel<Comm> below; a policy's
//                       `name` is what --parallel takes
//   precision policies  Precisions below (precision/policy.hpp); `name` is what --precision takes
// Programs, benchmarks, the throughput model and help texts read these lists; an unknown name is
// an slm::Error listing the known ones, never a default. Adding a policy is one entry here and
// the policy's own files (docs/architecture.md).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "slm/attention/flash.hpp"
#include "slm/attention/naive.hpp"
#include "slm/core/error.hpp"
#include "slm/core/presets.hpp"
#include "slm/parallel/ddp.hpp"
#include "slm/parallel/single.hpp"
#include "slm/parallel/zero.hpp"
#include "slm/precision/policy.hpp"

namespace slm::names {

template <class... Types>
struct TypeList {
    static std::vector<std::string_view> names() { return {Types::name...}; }
};

// "a|b|c", for help texts and messages.
inline std::string joined(const std::vector<std::string_view>& names, std::string_view sep = "|") {
    std::string out;
    for (auto n : names) out += (out.empty() ? "" : std::string(sep)) + std::string(n);
    return out;
}

// Calls fn(std::type_identity<T>{}) for the T in the list whose name is `name` (every T must
// give fn's result the same type); otherwise throws, naming `what` and the known names.
template <class... Types, class Fn>
decltype(auto) with_named_in(TypeList<Types...>, std::string_view what, std::string_view name, Fn&& fn) {
    using Result = std::invoke_result_t<Fn, std::type_identity<std::tuple_element_t<0, std::tuple<Types...>>>>;
    if constexpr (std::is_void_v<Result>) {
        bool found = false;
        ((!found && Types::name == name ? (fn(std::type_identity<Types>{}), found = true) : false), ...);
        if (!found)
            fail("unknown " + std::string(what) + " '" + std::string(name) + "'; choose one of: " +
                 joined(TypeList<Types...>::names(), ", "));
    } else {
        std::optional<Result> out;
        ((!out && Types::name == name ? (out.emplace(fn(std::type_identity<Types>{})), true) : false), ...);
        if (!out)
            fail("unknown " + std::string(what) + " '" + std::string(name) + "'; choose one of: " +
                 joined(TypeList<Types...>::names(), ", "));
        return Result(std::move(*out));
    }
}

// The same for a TypeList type: with_named<Attention>("attention policy", name, fn).
template <class List, class Fn>
decltype(auto) with_named(std::string_view what, std::string_view name, Fn&& fn) {
    return with_named_in(List{}, what, name, std::forward<Fn>(fn));
}

// ---- attention policies ----
using Attention = TypeList<attention::Naive, attention::Flash, attention::FlashDeterministic>;

inline std::vector<std::string_view> attention_names() { return Attention::names(); }

// fn(std::type_identity<Tag>{}) for --attention `name`.
template <class Fn>
decltype(auto) with_attention(std::string_view name, Fn&& fn) {
    return with_named<Attention>("attention policy", name, std::forward<Fn>(fn));
}

// ---- precision policies ----
using Precisions = TypeList<precision::Bf16, precision::Fp8>;

inline std::vector<std::string_view> precision_names() { return Precisions::names(); }

// fn(std::type_identity<Policy>{}) for --precision `name`.
template <class Fn>
decltype(auto) with_precision(std::string_view name, Fn&& fn) {
    return with_named<Precisions>("precision policy", name, std::forward<Fn>(fn));
}

// ---- parallel policies ----
namespace detail {
// A communicator type that exists only to spell the data-parallel policies' types when reading
// their names: its functions are declared and never defined, so any other use fails to link.
struct NameOnlyCommunicator {
    int rank() const;
    int world_size() const;
    template <class T> void all_reduce_sum(T*, int64_t) const;
    void reduce_scatter_sum(float*, int64_t, int64_t) const;
    void all_gather(float*, int64_t, int64_t) const;
    void broadcast(float*, int64_t, int) const;
    void barrier() const;
};
}  // namespace detail

// The data-parallel policies over communicator Comm (Mpi on the CPU, Nccl on GPUs).
template <class Comm>
using DataParallel = TypeList<parallel::Ddp<Comm>, parallel::Zero<1, Comm>, parallel::Zero<2, Comm>,
                              parallel::Zero<3, Comm>>;

inline std::vector<std::string_view> data_parallel_names() {
    return DataParallel<detail::NameOnlyCommunicator>::names();
}
// Every --parallel name: one process alone, then the data-parallel policies.
inline std::vector<std::string_view> parallel_names() {
    auto all = data_parallel_names();
    all.insert(all.begin(), parallel::Single::name);
    return all;
}

// fn(policy) with the data-parallel policy called `name` over `comm`.
template <class Comm, class Fn>
decltype(auto) with_data_parallel(std::string_view name, Comm comm, Fn&& fn) {
    return with_named<DataParallel<Comm>>("data-parallel policy", name, [&](auto type) -> decltype(auto) {
        using Policy = typename decltype(type)::type;
        return fn(Policy(std::move(comm)));
    });
}

// ---- presets ----
inline std::vector<std::string_view> preset_names() {
    std::vector<std::string_view> out;
    for (const auto& p : presets::table) out.push_back(p.name);
    return out;
}

}  // namespace slm::names
