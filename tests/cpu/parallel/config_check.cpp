// The start-up config check: summaries round-trip, equal configs pass, and a difference names
// the rank, the field and both values — over a real BlobExchange (the TCP rendezvous, ranks as
// threads) as well as on encoded summaries. The mpirun version is tests/mpi/launch_checks.cpp.
#include "slm/parallel/transport/config_check.hpp"

#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "common/error_text.hpp"
#include "common/temp_dir.hpp"
#include "cpu/parallel/free_port.hpp"
#include "slm/core/presets.hpp"
#include "slm/parallel/transport/data_fingerprint.hpp"
#include "slm/parallel/transport/rendezvous.hpp"
#include "slm/train/run_summary.hpp"

namespace {

using slm::parallel::config_differences;
using slm::parallel::ConfigSummary;
using slm::test::contains;
using slm::test::error_of;

slm::RunConfig run_with_seq(int64_t seq) {
    slm::RunConfig r;
    r.seq = seq;
    r.lr = 3e-3;
    return r;
}

}  // namespace

TEST_CASE("config check: a summary survives encoding, odd characters included") {
    ConfigSummary s = slm::run_summary(slm::presets::tiny(), run_with_seq(256), "a=b\nc\\d");
    s.add("attention", "flash");
    const ConfigSummary back = ConfigSummary::decode(s.encode(), 0);
    REQUIRE(back.fields().size() == s.fields().size());
    for (size_t i = 0; i < s.fields().size(); ++i) {
        CHECK(back.fields()[i].name == s.fields()[i].name);
        CHECK(back.fields()[i].value == s.fields()[i].value);
    }
    CHECK(back.fields().back().value == "flash");
    // Doubles in their shortest exact form, so a message reads "lr 0.003".
    CHECK(contains(s.encode(), "\nlr=0.003\n"));
}

TEST_CASE("config check: equal configs pass, a difference names rank, field and values") {
    const auto model = slm::presets::tiny();
    const std::string r0 = slm::run_summary(model, run_with_seq(256), "d").encode();
    const std::string r1 = slm::run_summary(model, run_with_seq(128), "d").encode();
    CHECK(config_differences({r0, r0, r0}) == "");
    CHECK(config_differences({r0, r1}) == "rank 1: seq 128 vs rank 0: 256");

    auto other_model = model;
    other_model.layers += 1;
    const std::string r2 = slm::run_summary(other_model, run_with_seq(256), "other data").encode();
    const std::string d = config_differences({r0, r0, r2});
    CHECK(contains(d, "rank 2: layers"));
    CHECK(contains(d, "rank 2: data other data vs rank 0: d"));
    CHECK(!contains(d, "rank 1"));

    ConfigSummary extra = slm::run_summary(model, run_with_seq(256), "d");
    extra.add("policy", "ddp");
    CHECK(contains(config_differences({r0, extra.encode()}), "same build"));
    CHECK(contains(error_of([] { config_differences({"model=x\n", "garbage"}); }),
                   "rank 1 sent an unreadable config summary"));
}

TEST_CASE("config check: over the rendezvous every rank gets the same error") {
    const slm::parallel::Endpoint master{"127.0.0.1", slm::test::free_local_port()};
    std::vector<std::string> errors(2);
    std::vector<std::thread> ranks;
    for (int rank = 0; rank < 2; ++rank)
        ranks.emplace_back([&, rank] {
            errors[static_cast<size_t>(rank)] = error_of([&] {
                slm::parallel::Rendezvous rv(master, rank, 2, std::chrono::seconds(10));
                const auto model = slm::presets::tiny();
                // Equal: passes; then rank 1 differs in seq.
                slm::parallel::check_same_config(rv, slm::run_summary(model, run_with_seq(256), "d"));
                slm::parallel::check_same_config(
                    rv, slm::run_summary(model, run_with_seq(rank == 0 ? 256 : 128), "d"));
            });
        });
    for (auto& t : ranks) t.join();
    for (const auto& e : errors) {
        CHECK(contains(e, "start-up check: the ranks were not started with the same configuration"));
        CHECK(contains(e, "rank 1: seq 128 vs rank 0: 256"));
    }
}

TEST_CASE("config check: the data fingerprint follows names, sizes and contents, not folders") {
    slm::test::TempDir dir("fingerprint");
    auto write = [](const std::filesystem::path& p, size_t n, char fill) {
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << std::string(n, fill);
    };
    write(dir.path / "a" / "tokens0.bin", 200000, 'x');
    write(dir.path / "b" / "tokens0.bin", 200000, 'x');
    write(dir.path / "c" / "tokens0.bin", 200000, 'y');
    write(dir.path / "d" / "tokens0.bin", 100, 'x');
    using slm::parallel::data_fingerprint;
    const std::string a = data_fingerprint({dir.path / "a" / "tokens0.bin"});
    CHECK(a == data_fingerprint({dir.path / "b" / "tokens0.bin"}));
    CHECK(a != data_fingerprint({dir.path / "c" / "tokens0.bin"}));
    CHECK(a != data_fingerprint({dir.path / "d" / "tokens0.bin"}));
    CHECK(contains(a, "1 shard(s), 200000 bytes"));
    CHECK(contains(error_of([&] { data_fingerprint({dir.path / "missing.bin"}); }),
                   "cannot open token shard"));
}
