// Per-rank bytes of parameters, gradients and optimizer state, read from the buffers each policy
// actually allocated (Trainer::state_bytes), after one training step, at 4 ranks (mpirun -np 4):
// they fall as ZeRO says — Single = Ddp > Zero<1> > Zero<2> > Zero<3> — and every category is
// within 5% of expected_state_bytes (core/accounting.hpp), the formula written beside each policy.
// The model has 8 blocks, so one unit (what Zero<3> gathers) is about an eighth of it: the gather
// buffers are counted but do not dominate.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/temp_dir.hpp"
#include "slm/data/loader.hpp"
#include "slm/parallel/ddp.hpp"
#include "slm/parallel/transport/mpi.hpp"
#include "slm/parallel/zero.hpp"
#include "slm/slm.hpp"
#include "slm/train/trainer.hpp"

namespace {

namespace fs = std::filesystem;
using Model = slm::Llama<slm::cpu::Backend<float>, slm::attention::Flash>;
using slm::parallel::Mpi;
constexpr double allowed = 0.05;

slm::ModelConfig medium() {
    slm::ModelConfig c;
    c.name = "zero-memory-test";
    c.vocab = 512;
    c.hidden = 128;
    c.layers = 8;
    c.heads = 4;
    c.kv_heads = 2;
    c.ffn = 384;
    c.max_seq = 16;
    return c;
}

slm::RunConfig run(const fs::path& out) {
    slm::RunConfig r;
    r.batch = 1;
    r.seq = 16;
    r.steps = 1;
    r.out_dir = out;
    return r;
}

struct Checker {
    int rank;
    int failures = 0;
    void operator()(bool ok, const std::string& what) {
        if (rank == 0 || !ok) std::printf("rank %d: %s: %s\n", rank, ok ? "ok" : "FAILED", what.c_str());
        failures += !ok;
    }
};

std::string mib(int64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return buf;
}

// Trains one step under Policy and returns this rank's measured bytes, checked against the
// formula for `stage` (0: nothing sharded).
template <class Policy>
slm::StateBytes measure(Policy policy, int stage, const std::vector<fs::path>& shards,
                        const fs::path& out, const Mpi& comm, Checker& check) {
    slm::Trainer<Model, Policy> t(medium(), run(out), std::move(policy));
    slm::data::Loader data(shards, {1, 16, 3, comm.rank(), comm.world_size()});
    t.train_step(data);
    const slm::StateBytes got = t.state_bytes();
    const slm::ModelConfig c = medium();
    const slm::StateBytes want = slm::expected_state_bytes(
        stage, slm::parameter_count(c), comm.world_size(),
        slm::model::ParameterUnits(c, slm::ParameterLayout(c)).largest(), Model::BackendType::precision());
    const std::string name(Policy::name);
    auto close = [&](const char* what, int64_t a, int64_t b) {
        const double off = std::abs(static_cast<double>(a - b)) / static_cast<double>(b);
        check(off < allowed, name + " " + what + ": " + mib(a) + " held, formula " + mib(b) +
                                 " (off by " + std::to_string(100 * off) + "%)");
    };
    close("parameters", got.parameters, want.parameters);
    close("gradients", got.gradients, want.gradients);
    close("optimizer state", got.optimizer_state, want.optimizer_state);
    close("total", got.total(), want.total());
    return got;
}

int check_memory(const std::vector<fs::path>& shards, const fs::path& out, const Mpi& comm) {
    Checker check{comm.rank()};
    const auto single = measure(slm::parallel::Single{}, 0, shards, out / "single", comm, check);
    const auto ddp = measure(slm::parallel::Ddp<Mpi>(comm), 0, shards, out / "ddp", comm, check);
    const auto z1 = measure(slm::parallel::Zero<1, Mpi>(comm), 1, shards, out / "z1", comm, check);
    const auto z2 = measure(slm::parallel::Zero<2, Mpi>(comm), 2, shards, out / "z2", comm, check);
    const auto z3 = measure(slm::parallel::Zero<3, Mpi>(comm), 3, shards, out / "z3", comm, check);
    check(single.total() == ddp.total() && ddp.total() > z1.total() && z1.total() > z2.total() &&
              z2.total() > z3.total(),
          "totals fall: single " + mib(single.total()) + " = ddp " + mib(ddp.total()) +
              " > zero1 " + mib(z1.total()) + " > zero2 " + mib(z2.total()) + " > zero3 " +
              mib(z3.total()));
    return check.failures;
}

}  // namespace

// argv[1]: the number of ranks mpirun was asked for.
int main(int argc, char** argv) {
    Mpi comm;
    const int rank = comm.rank();
    const int expected = argc > 1 ? std::atoi(argv[1]) : 4;
    int failures = comm.world_size() == expected ? 0 : 1;
    if (failures) std::printf("rank %d: FAILED: %d ranks, expected %d\n", rank, comm.world_size(), expected);
    try {
        slm::test::TempDir dir("zero-memory-rank" + std::to_string(rank));
        std::vector<int32_t> tokens(20000);
        for (size_t i = 0; i < tokens.size(); ++i)
            tokens[i] = static_cast<int32_t>((i * 31 + (i / 7) * 3) % 512);
        slm::data::write_shard(dir.path / "tokens.bin", tokens, 512);
        failures += check_memory({dir.path / "tokens.bin"}, dir.path, comm);
    } catch (const slm::Error& e) {
        std::printf("rank %d: FAILED with error: %s\n", rank, e.what());
        failures += 1;
    }
    return failures == 0 ? 0 : 1;
}
