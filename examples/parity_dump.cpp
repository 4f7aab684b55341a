// parity_dump: our side of the Hugging Face parity check. Builds a model (a preset at random init,
// or a checkpoint) on the CPU reference backend in fp32, exports it to --out as model.safetensors
// + config.json, runs one forward/backward on fixed token ids and writes what we computed to
// --out/reference.json. tools/hf_parity.py then loads the same directory in transformers'
// LlamaForCausalLM and compares.
//
//   parity_dump --preset llama_100m --out /tmp/parity --dtype f32 --seq 128
//   python3 tools/hf_parity.py /tmp/parity
//
// With --dtype bf16 the weights are rounded to bf16 before the forward, so both sides compute
// with the very weights in the file and only the arithmetic differs.
//
// reference.json: {"format": "slm-parity-1", "config", "dtype", "seq", "input_ids": [seq],
//   "target_ids": [seq] (input shifted by one), "loss": mean cross-entropy,
//   "logits": {"positions": [p...], "values": [[vocab]...]} (the first --positions positions and
//   the last), "gradients": {tensor: {"norm": ‖g‖, "weight_norm": ‖w‖, "dot_weight": g·w}}}
// where g is the gradient of the mean loss with respect to the tensor (a tied embedding's holds
// both uses).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli.hpp"
#include "slm/core/config_io.hpp"
#include "slm/core/file_io.hpp"
#include "slm/core/presets.hpp"
#include "slm/data/hf_config.hpp"
#include "slm/data/safetensors.hpp"
#include "slm/slm.hpp"
#include "slm/train/checkpoint.hpp"

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

int main(int argc, char** argv) {
    slm::cli::Flags flags(
        "parity_dump", "export a model and our fp32 CPU logits/loss/gradients for tools/hf_parity.py",
        {{"--preset", "tiny", "model at random init: tiny, llama_100m, llama_500m, llama_1b, llama_2b"},
         {"--tie-embeddings", "false", "tie the preset's LM head to its embedding", true},
         {"--checkpoint", "", "use this train_llama checkpoint instead of a preset"},
         {"--out", "", "directory for model.safetensors, config.json, reference.json (required)"},
         {"--dtype", "f32", "weights in the file (and in our forward): f32|bf16"},
         {"--seq", "128", "tokens in the one sequence"},
         {"--positions", "4", "positions from the start whose full logits are written (plus the last)"},
         {"--seed", "1234", "seed for the random init and the token ids"}});
    try {
        if (!flags.parse(argc, argv)) return 0;
        if (flags.text("--out").empty()) throw slm::cli::UsageError("--out is required");
        const bool bf16 = flags.choice("--dtype", {"f32", "bf16"}) == "bf16";
        const int64_t seq = flags.integer("--seq", 1);
        const int64_t first_positions = flags.integer("--positions", 0);
        const auto seed = static_cast<uint64_t>(flags.integer("--seed", 0));
        const fs::path out = flags.text("--out");
        const std::string checkpoint = flags.text("--checkpoint");
        if (!checkpoint.empty() && (flags.given("--preset") || flags.on("--tie-embeddings")))
            throw slm::cli::UsageError("--preset and --tie-embeddings build a model; --checkpoint loads one");

        std::vector<float> loaded;
        slm::ModelConfig config;
        if (checkpoint.empty()) {
            config = slm::presets::by_name(flags.text("--preset"));
            config.tied_embeddings = flags.on("--tie-embeddings");
        } else {
            auto ckpt = slm::load_checkpoint<float>(checkpoint);
            config = ckpt.config;
            loaded = std::move(ckpt.params);
        }
        if (seq > config.max_seq)
            throw slm::cli::UsageError("--seq " + std::to_string(seq) + " is longer than " +
                                       config.name + "'s max_seq " + std::to_string(config.max_seq));
        std::error_code ec;
        fs::create_directories(out, ec);
        slm::require(!ec, "cannot create '" + out.string() + "': " + ec.message());

        const auto start = std::chrono::steady_clock::now();
        slm::cpu::Backend<float> backend;
        slm::Llama<slm::cpu::Backend<float>, slm::attention::Flash> model(config, backend, seed);
        const auto& layout = model.layout();
        std::vector<float> weights(static_cast<size_t>(layout.total()));
        if (loaded.empty()) model.get_parameters(weights.data());
        else weights = loaded;
        slm::require(static_cast<int64_t>(weights.size()) == layout.total(),
                     "checkpoint parameter count does not match its config");
        if (bf16)
            for (auto& w : weights) w = slm::data::round_to_bf16(w);
        model.set_parameters(weights.data());
        const auto dtype = bf16 ? slm::data::Dtype::BF16 : slm::data::Dtype::F32;
        slm::data::write_safetensors(out / "model.safetensors", config, layout, weights.data(), dtype);
        slm::data::write_hf_config(out / "config.json", config, dtype);

        // Fixed ids from the counter-based generator; the targets are the next ids.
        std::vector<int32_t> ids(static_cast<size_t>(seq + 1));
        for (size_t i = 0; i < ids.size(); ++i)
            ids[i] = static_cast<int32_t>(slm::splitmix64(seed ^ slm::splitmix64(i)) %
                                          static_cast<uint64_t>(config.vocab));
        const std::vector<int32_t> input(ids.begin(), ids.end() - 1), target(ids.begin() + 1, ids.end());

        model.zero_gradients();
        const double loss = model.forward_backward(input.data(), target.data(), 1, seq).mean;
        std::vector<float> grads(static_cast<size_t>(layout.total()));
        model.get_gradients(grads.data());
        Json gradients = Json::object();
        for (const auto& t : layout.tensors()) {
            double gg = 0, ww = 0, gw = 0;
            for (int64_t i = t.offset; i < t.offset + t.size; ++i) {
                const double g = grads[static_cast<size_t>(i)], w = weights[static_cast<size_t>(i)];
                gg += g * g;
                ww += w * w;
                gw += g * w;
            }
            gradients[t.name] = {{"norm", std::sqrt(gg)}, {"weight_norm", std::sqrt(ww)}, {"dot_weight", gw}};
        }

        // A causal model's logits at position p depend only on ids[0..p], so position p's logits
        // are the last logits of the prefix of length p + 1.
        std::vector<int64_t> positions;
        for (int64_t p = 0; p < std::min(first_positions, seq - 1); ++p) positions.push_back(p);
        positions.push_back(seq - 1);
        Json values = Json::array();
        std::vector<float> logits(static_cast<size_t>(config.vocab));
        double last_norm = 0;
        for (int64_t p : positions) {
            model.last_logits(input.data(), 1, p + 1, logits.data());
            values.push_back(logits);
            last_norm = 0;
            for (float v : logits) last_norm += static_cast<double>(v) * v;
        }
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        Json ref;
        ref["format"] = "slm-parity-1";
        ref["config"] = slm::to_text(config);
        ref["backend"] = "cpu fp32, attention flash";
        ref["dtype"] = bf16 ? "bf16" : "f32";
        ref["seq"] = seq;
        ref["input_ids"] = input;
        ref["target_ids"] = target;
        ref["loss"] = loss;
        ref["logits"] = {{"positions", positions}, {"values", std::move(values)}};
        ref["gradients"] = std::move(gradients);
        const std::string text = ref.dump() + "\n";
        slm::AtomicFile file(out / "reference.json");
        file.write(text.data(), text.size());
        file.commit();
        std::printf("parity_dump: %s (%lld parameters, %s) seq %lld: loss %.6f, |last logits| %.6f, "
                    "%zu gradient tensors, %.1f s → %s/{model.safetensors,config.json,reference.json}\n",
                    config.name.c_str(), static_cast<long long>(layout.parameter_count()),
                    bf16 ? "bf16 weights" : "f32 weights", static_cast<long long>(seq), loss,
                    std::sqrt(last_norm), layout.tensors().size(), seconds, out.string().c_str());
        return 0;
    } catch (const slm::cli::UsageError& e) {
        std::fprintf(stderr, "parity_dump: %s\n\n%s", e.what(), flags.usage().c_str());
        return 2;
    } catch (const slm::Error& e) {
        std::fprintf(stderr, "parity_dump: error: %s\n", e.what());
        return 1;
    }
}
