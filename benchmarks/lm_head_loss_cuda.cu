// The fused LM head + cross-entropy (cuda/cross_entropy.cuh) on one GPU, forward and backward,
// at two study shapes: llama_100m at micro-batch 32 (65536 rows, hidden 768) and llama_2b at
// micro-batch 8 (16384 rows, hidden 2560), vocab 32000.
//
//   lm_head_loss/<shape>/chunk:C/rows:{registers,three_passes}/gemm:{heuristic,tuned}
//       the whole op over all rows, in chunks of C rows; the row kernel that holds a row in
//       registers or reads it three times; cuBLASLt's first choice of algorithm or the fastest
//       of its first 8 candidates
//   lm_head_loss_part/<shape>/chunk:4096/<part>
//       one chunk's pieces alone: logits_gemm, rows_registers, rows_three_passes, dx_gemm,
//       dw_gemm (heuristic algorithms)
//
// Counters: median_ms (median iteration, CUDA events), TFLOPs (6·rows·hidden·vocab for the whole
// op, 2·chunk·hidden·vocab for a GEMM; none for a row kernel), GBps for the row kernels (the
// bytes one read and one write of the chunk's logits move; the three-pass kernel reads more).
// Inputs are uniform random bf16 (logits of a few units), targets uniform over the vocabulary.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "slm/cuda/backend.cuh"
#include "slm/cuda/cross_entropy.cuh"
#include "slm/cuda/stream_timer.cuh"
#include "median_time.hpp"
#include "random_bf16.hpp"

namespace {

using bf16 = slm::cuda::bf16;
namespace cu = slm::cuda;

struct Shape {
    const char* name;
    int64_t rows, hidden, vocab;
};
constexpr Shape shapes[] = {{"llama_100m_mb32", 65536, 768, 32000},
                            {"llama_2b_mb8", 16384, 2560, 32000}};


// Device inputs of one shape: x (rows, hidden), W (vocab, hidden), targets, dx, dW, logits
// scratch for `chunk` rows.
struct Operands {
    cu::Backend backend;
    cu::DeviceBuffer<bf16> x, w, dx;
    cu::DeviceBuffer<float> dw;
    cu::DeviceBuffer<int32_t> targets;
    cu::DeviceBuffer<std::byte> scratch;
    cu::DeviceBuffer<cu::DeviceReport> report;
    Operands(const Shape& s, int64_t chunk)
        : x(backend.allocate<bf16>(s.rows * s.hidden)),
          w(backend.allocate<bf16>(s.vocab * s.hidden)),
          dx(backend.allocate<bf16>(s.rows * s.hidden)),
          dw(backend.allocate<float>(s.vocab * s.hidden)),
          targets(backend.allocate<int32_t>(s.rows)),
          scratch(backend.allocate<std::byte>(chunk * s.vocab * 2)),
          report(backend.allocate<cu::DeviceReport>(1)) {
        // x ~ U(-1, 1), W ~ U(-0.1, 0.1): logits of standard deviation ~ 0.05·sqrt(hidden).
        constexpr uint64_t golden = 0x9e3779b97f4a7c15ull;  // two distinct xorshift starts
        backend.upload(x.data(), slm::bench::random_bf16(x.size(), golden + 1).data(), x.size());
        backend.upload(w.data(), slm::bench::random_bf16(w.size(), 2 * golden + 1, 0.1f).data(),
                       w.size());
        std::vector<int32_t> t(static_cast<size_t>(s.rows));
        for (size_t i = 0; i < t.size(); ++i)
            t[i] = static_cast<int32_t>((i * 2654435761u) % static_cast<uint64_t>(s.vocab));
        backend.upload(targets.data(), t.data(), s.rows);
        backend.synchronize();
    }
};

using slm::bench::time_median;

void whole_op(benchmark::State& state, const Shape& s, int64_t chunk, bool three_passes, bool tuned) {
    Operands o(s, chunk);
    if (tuned) o.backend.gemm().set_timed_candidates(8);
    const double median = time_median(state, o.backend.stream(), [&] {
        cu::lm_head_cross_entropy(o.backend.gemm(), o.x.data(), o.w.data(), o.targets.data(), s.rows,
                                  s.hidden, s.vocab, o.scratch.data(), chunk, 1.0, o.dx.data(),
                                  o.dw.data(), o.report.data(), o.backend.workspace(),
                                  o.backend.stream(), three_passes);
    });
    state.counters["TFLOPs"] = 6.0 * static_cast<double>(s.rows * s.hidden * s.vocab) / median / 1e12;
}

enum class Part { logits_gemm, rows_registers, rows_three_passes, dx_gemm, dw_gemm };
const char* part_name(Part p) {
    switch (p) {
        case Part::logits_gemm: return "logits_gemm";
        case Part::rows_registers: return "rows_registers";
        case Part::rows_three_passes: return "rows_three_passes";
        case Part::dx_gemm: return "dx_gemm";
        case Part::dw_gemm: return "dw_gemm";
    }
    return "?";
}

void one_part(benchmark::State& state, const Shape& s, int64_t chunk, Part part) {
    Operands o(s, chunk);
    auto& gemm = o.backend.gemm();
    cudaStream_t stream = o.backend.stream();
    auto* logits = reinterpret_cast<bf16*>(o.scratch.data());
    const int64_t d = s.hidden, v = s.vocab;
    // Real logits in the scratch: the row kernels then see a realistic row. They overwrite it
    // with dlogits, which the next iteration reads as its logits; with grad_scale = counted the
    // gradient is softmax − onehot itself, values in (−1, 1) like the logits'.
    gemm(stream, cu::Trans::N, cu::Trans::T, chunk, v, d, 1.0f, o.x.data(), d, o.w.data(), d, 0.0f,
         logits, v);
    const unsigned rows = static_cast<unsigned>(chunk);
    cu::DeviceReport counted{};
    counted.counted = static_cast<int>(chunk);
    o.backend.upload(o.report.data(), &counted, 1);
    const float grad_scale = static_cast<float>(chunk);
    std::function<void()> work;
    switch (part) {
        case Part::logits_gemm:
            work = [&] { gemm(stream, cu::Trans::N, cu::Trans::T, chunk, v, d, 1.0f, o.x.data(), d, o.w.data(), d, 0.0f, logits, v); };
            break;
        case Part::rows_registers:
            work = [&] { cu::launch_rows_in_registers(rows, logits, o.targets.data(), v, o.report.data(), grad_scale, o.dw.data(), true, stream); };
            break;
        case Part::rows_three_passes:
            work = [&] {
                cu::ce_rows_kernel<8><<<rows, 512, 0, stream>>>(logits, o.targets.data(), v, o.report.data(), grad_scale, o.dw.data(), true);
            };
            break;
        case Part::dx_gemm:
            work = [&] { gemm(stream, cu::Trans::N, cu::Trans::N, chunk, d, v, 1.0f, logits, v, o.w.data(), d, 0.0f, o.dx.data(), d); };
            break;
        case Part::dw_gemm:
            work = [&] { gemm(stream, cu::Trans::T, cu::Trans::N, v, d, chunk, 1.0f, logits, v, o.x.data(), d, 1.0f, o.dw.data(), d); };
            break;
    }
    const double median = time_median(state, stream, work);
    const bool rows_kernel = part == Part::rows_registers || part == Part::rows_three_passes;
    if (rows_kernel)
        state.counters["GBps"] = 2.0 * static_cast<double>(chunk * v * 2) / median / 1e9;
    else
        state.counters["TFLOPs"] = 2.0 * static_cast<double>(chunk * d * v) / median / 1e12;
}

void register_all() {
    for (const Shape& s : shapes) {
        for (int64_t chunk : {2048, 4096, 8192})
            for (bool three_passes : {false, true})
                for (bool tuned : {false, true}) {
                    const std::string name = std::string("lm_head_loss/") + s.name + "/chunk:" +
                                             std::to_string(chunk) + "/rows:" +
                                             (three_passes ? "three_passes" : "registers") +
                                             "/gemm:" + (tuned ? "tuned" : "heuristic");
                    benchmark::RegisterBenchmark(name.c_str(), [s, chunk, three_passes, tuned](benchmark::State& st) {
                        whole_op(st, s, chunk, three_passes, tuned);
                    })->UseManualTime()->Iterations(10)->Unit(benchmark::kMillisecond);
                }
        for (Part part : {Part::logits_gemm, Part::rows_registers, Part::rows_three_passes,
                          Part::dx_gemm, Part::dw_gemm}) {
            const std::string name = std::string("lm_head_loss_part/") + s.name + "/chunk:4096/" + part_name(part);
            benchmark::RegisterBenchmark(name.c_str(), [s, part](benchmark::State& st) {
                one_part(st, s, 4096, part);
            })->UseManualTime()->Iterations(20)->Unit(benchmark::kMillisecond);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
