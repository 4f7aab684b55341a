// parity_dump: our side of the Hugging Face parity check. Builds a model (a preset at random init,
// or a checkpoint), exports it to --out as model.safetensors + config.json, runs one
// forward/backward on fixed token ids and writes what we computed to --out/reference.json.
// tools/hf_parity.py then loads the same directory in transformers' LlamaForCausalLM and compares.
//
//   parity_dump --preset llama_100m --out /tmp/parity --dtype f32 --seq 128
//   python3 tools/hf_parity.py /tmp/parity
//
// --device cpu (the default) computes on the CPU reference backend in fp32: the truth the other
// comparisons are measured against. --device cuda computes on the CUDA backend the way training
// does (bf16 activations and GEMM inputs, fp32 accumulation, fp32 master weights and gradients)
// and needs --dtype bf16 (its default there), since every op reads a bf16 copy of the weights.
//
// With --dtype bf16 the weights are rounded to bf16 before the forward, so both sides compute
// with the very weights in the file and only the arithmetic differs. The same --preset and --seed
// give the same weights and ids on either device, so a cpu and a cuda dump of one model can be
// compared with each other and with HF.
//
// reference.json: {"format": "slm-parity-1", "config", "backend" ("cpu fp32, attention flash" or
//   "cuda"), "compute" ("fp32" or "bf16"), "attention", "dtype", "seq", "input_ids": [seq],
//   "target_ids": [seq] (input shifted by one), "loss": mean cross-entropy,
//   "logits": {"positions": [p...], "values": [[vocab]...]} (the first --positions positions and
//   the last; on cuda the bf16 logits our LM head GEMM writes, widened to fp32),
//   "gradients": {tensor: {"norm": ‖g‖, "weight_norm": ‖w‖, "dot_weight": g·w}}}
// where g is the gradient of the mean loss with respect to the tensor (a tied embedding's holds
// both uses; on cuda the fp32 gradient the backend accumulates, downloaded).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli.hpp"
#include "device_choice.hpp"
#include "slm/core/config_io.hpp"
#include "slm/core/file_io.hpp"
#include "slm/core/presets.hpp"
#include "slm/data/hf_config.hpp"
#include "slm/data/safetensors.hpp"
#include "slm/slm.hpp"
#include "slm/train/checkpoint.hpp"
#if defined(__CUDACC__)  // built by nvcc when the CUDA toolkit is there: the GPU backend too
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "slm/cuda/attention.cuh"
#include "slm/cuda/backend.cuh"
#endif

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

// A backend's logits element, widened for JSON.
inline float widen(float x) { return x; }
#if defined(__CUDACC__)
inline float widen(__nv_bfloat16 x) { return __bfloat162float(x); }
#endif

// What one backend computed on the fixed ids.
struct Computed {
    double loss = 0;
    std::vector<int64_t> positions;
    Json logits = Json::array();  // one [vocab] array per position
    Json gradients = Json::object();
    double last_norm = 0;  // ‖logits‖ at the last position
};

// Builds the model on `backend` with `weights` (empty: the seed's random init, which is written
// back into it; bf16: rounded first), exports what it computes with, and runs the forward/backward
// and the logits of the dumped positions.
template <class Residual, class B>
Computed compute(B& backend, const slm::ModelConfig& config, uint64_t seed,
                 std::vector<float>& weights, bool bf16, const fs::path& out,
                 const std::vector<int32_t>& input, const std::vector<int32_t>& target,
                 int64_t first_positions) {
    using Act = typename B::Act;
    const auto seq = static_cast<int64_t>(input.size());
    slm::Llama<B, slm::attention::Flash, slm::model::WholeParameters, Residual> model(config, backend,
                                                                                     seed);
    const auto& layout = model.layout();
    if (weights.empty()) {
        weights.resize(static_cast<size_t>(layout.total()));
        model.get_parameters(weights.data());
    }
    slm::require(static_cast<int64_t>(weights.size()) == layout.total(),
                 "checkpoint parameter count does not match its config");
    if (bf16)
        for (auto& w : weights) w = slm::data::round_to_bf16(w);
    model.set_parameters(weights.data());
    const auto dtype = bf16 ? slm::data::Dtype::BF16 : slm::data::Dtype::F32;
    slm::data::write_safetensors(out / "model.safetensors", config, layout, weights.data(), dtype);
    slm::data::write_hf_config(out / "config.json", config, dtype);

    Computed r;
    model.zero_gradients();
    r.loss = model.forward_backward(input.data(), target.data(), 1, seq).mean;
    std::vector<float> grads(static_cast<size_t>(layout.total()));
    model.get_gradients(grads.data());
    for (const auto& t : layout.tensors()) {
        double gg = 0, ww = 0, gw = 0;
        for (int64_t i = t.offset; i < t.offset + t.size; ++i) {
            const double g = grads[static_cast<size_t>(i)], w = weights[static_cast<size_t>(i)];
            gg += g * g;
            ww += w * w;
            gw += g * w;
        }
        r.gradients[t.name] = {{"norm", std::sqrt(gg)}, {"weight_norm", std::sqrt(ww)}, {"dot_weight", gw}};
    }

    // A causal model's logits at position p depend only on ids[0..p], so position p's logits
    // are the last logits of the prefix of length p + 1.
    for (int64_t p = 0; p < std::min(first_positions, seq - 1); ++p) r.positions.push_back(p);
    r.positions.push_back(seq - 1);
    std::vector<Act> logits(static_cast<size_t>(config.vocab));
    std::vector<float> wide(logits.size());
    for (int64_t p : r.positions) {
        model.last_logits(input.data(), 1, p + 1, logits.data());
        r.last_norm = 0;
        for (size_t i = 0; i < logits.size(); ++i) {
            wide[i] = widen(logits[i]);
            r.last_norm += static_cast<double>(wide[i]) * wide[i];
        }
        r.logits.push_back(wide);
    }
    r.last_norm = std::sqrt(r.last_norm);
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    slm::cli::Flags flags(
        "parity_dump", "export a model and our logits/loss/gradients for tools/hf_parity.py",
        {{"--preset", "tiny", "model at random init: tiny, llama_100m, llama_500m, llama_1b, llama_2b"},
         {"--tie-embeddings", "false", "tie the preset's LM head to its embedding", true},
         {"--checkpoint", "", "use this train_llama checkpoint instead of a preset"},
         {"--out", "", "directory for model.safetensors, config.json, reference.json (required)"},
         {"--device", "cpu", "cpu (fp32 reference) | cuda (bf16 activations, fp32 master)"},
         {"--dtype", "", "weights in the file (and in our forward): f32|bf16 (default: f32 on "
                         "cpu, bf16 on cuda, which only takes bf16)"},
         {"--residual", "", "the residual stream on cuda: bf16 (default, as train_llama) | fp32 "
                            "(as PyTorch autocast keeps it)"},
         {"--seq", "128", "tokens in the one sequence"},
         {"--positions", "4", "positions from the start whose full logits are written (plus the last)"},
         {"--seed", "1234", "seed for the random init and the token ids"}});
    try {
        if (!flags.parse(argc, argv)) return 0;
        if (flags.text("--out").empty()) throw slm::cli::UsageError("--out is required");
        const bool on_gpu = flags.choice("--device", {"cpu", "cuda"}) == "cuda";
        if (on_gpu && !slm::cli::built_with_cuda())
            throw slm::cli::UsageError(
                "--device cuda: this build of parity_dump has no CUDA backend (build with the "
                "cuda preset on a machine with nvcc), or use --device cpu");
        if (on_gpu && !slm::cli::gpu_present())
            throw slm::cli::UsageError("--device cuda: no GPU is visible (check nvidia-smi and "
                                       "CUDA_VISIBLE_DEVICES), or use --device cpu");
        const bool bf16 = flags.text("--dtype").empty()
                              ? on_gpu
                              : flags.choice("--dtype", {"f32", "bf16"}) == "bf16";
        if (on_gpu && !bf16)
            throw slm::cli::UsageError(
                "--device cuda --dtype f32: the CUDA backend reads bf16 copies of the weights, so "
                "HF would compute with other weights than ours; use --dtype bf16 (or --device cpu)");
        const bool fp32_residual =
            flags.given("--residual") && flags.choice("--residual", {"bf16", "fp32"}) == "fp32";
        if (!on_gpu && flags.given("--residual") && !fp32_residual)
            throw slm::cli::UsageError(
                "--residual bf16 needs --device cuda: the CPU reference computes everything, its "
                "residual stream included, in fp32");
        const int64_t seq = flags.integer("--seq", 1);
        const int64_t first_positions = flags.integer("--positions", 0);
        const auto seed = static_cast<uint64_t>(flags.integer("--seed", 0));
        const fs::path out = flags.text("--out");
        const std::string checkpoint = flags.text("--checkpoint");
        if (!checkpoint.empty() && (flags.given("--preset") || flags.on("--tie-embeddings")))
            throw slm::cli::UsageError("--preset and --tie-embeddings build a model; --checkpoint loads one");

        std::vector<float> weights;  // empty: the random init
        slm::ModelConfig config;
        if (checkpoint.empty()) {
            config = slm::presets::by_name(flags.text("--preset"));
            config.tied_embeddings = flags.on("--tie-embeddings");
        } else {
            auto ckpt = slm::load_checkpoint<float>(checkpoint);
            config = ckpt.config;
            weights = std::move(ckpt.params);
        }
        if (seq > config.max_seq)
            throw slm::cli::UsageError("--seq " + std::to_string(seq) + " is longer than " +
                                       config.name + "'s max_seq " + std::to_string(config.max_seq));
        std::error_code ec;
        fs::create_directories(out, ec);
        slm::require(!ec, "cannot create '" + out.string() + "': " + ec.message());

        // Fixed ids from the counter-based generator; the targets are the next ids.
        std::vector<int32_t> ids(static_cast<size_t>(seq + 1));
        for (size_t i = 0; i < ids.size(); ++i)
            ids[i] = static_cast<int32_t>(slm::splitmix64(seed ^ slm::splitmix64(i)) %
                                          static_cast<uint64_t>(config.vocab));
        const std::vector<int32_t> input(ids.begin(), ids.end() - 1), target(ids.begin() + 1, ids.end());

        const auto start = std::chrono::steady_clock::now();
        Computed r;
#if defined(__CUDACC__)
        if (on_gpu) {
            slm::cuda::Backend backend;
            r = fp32_residual ? compute<float>(backend, config, seed, weights, bf16, out, input,
                                               target, first_positions)
                              : compute<slm::cuda::bf16>(backend, config, seed, weights, bf16, out,
                                                         input, target, first_positions);
        }
#endif
        if (!on_gpu) {
            slm::cpu::Backend<float> backend;
            r = compute<float>(backend, config, seed, weights, bf16, out, input, target,
                               first_positions);
        }
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        Json ref;
        ref["format"] = "slm-parity-1";
        ref["config"] = slm::to_text(config);
        ref["backend"] = on_gpu ? "cuda" : "cpu fp32, attention flash";
        ref["compute"] = on_gpu ? "bf16" : "fp32";
        ref["residual"] = on_gpu && !fp32_residual ? "bf16" : "fp32";
        ref["attention"] = "flash";
        ref["dtype"] = bf16 ? "bf16" : "f32";
        ref["seq"] = seq;
        ref["input_ids"] = input;
        ref["target_ids"] = target;
        ref["loss"] = r.loss;
        ref["logits"] = {{"positions", r.positions}, {"values", std::move(r.logits)}};
        const size_t gradient_tensors = r.gradients.size();
        ref["gradients"] = std::move(r.gradients);
        const std::string text = ref.dump() + "\n";
        slm::AtomicFile file(out / "reference.json");
        file.write(text.data(), text.size());
        file.commit();
        std::printf("parity_dump: %s (%lld parameters, %s) on %s, seq %lld: loss %.6f, "
                    "|last logits| %.6f, %zu gradient tensors, %.1f s → "
                    "%s/{model.safetensors,config.json,reference.json}\n",
                    config.name.c_str(), static_cast<long long>(slm::ParameterLayout(config).parameter_count()),
                    bf16 ? "bf16 weights" : "f32 weights", on_gpu ? "cuda (bf16 compute)" : "cpu (fp32)",
                    static_cast<long long>(seq), r.loss, r.last_norm, gradient_tensors, seconds,
                    out.string().c_str());
        return 0;
    } catch (const slm::cli::UsageError& e) {
        std::fprintf(stderr, "parity_dump: %s\n\n%s", e.what(), flags.usage().c_str());
        return 2;
    } catch (const std::exception& e) {  // slm::Error, and what the standard library throws
        std::fprintf(stderr, "parity_dump: error: %s\n", e.what());
        return 1;
    }
}
