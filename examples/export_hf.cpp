// export_hf: a train_llama checkpoint → a Hugging Face LlamaForCausalLM directory
// (model.safetensors + config.json, and the tokenizer when given), loadable with
// transformers' LlamaForCausalLM.from_pretrained(DIR).
//
//   export_hf --checkpoint runs/tiny/checkpoint.bin --out runs/tiny/hf --dtype bf16 \
//             --tokenizer data/kjv/tokenizer.model
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "cli.hpp"
#include "slm/core/file_io.hpp"
#include "slm/core/parameter_layout.hpp"
#include "slm/data/hf_config.hpp"
#include "slm/data/safetensors.hpp"
#include "slm/data/tokenizer.hpp"
#include "slm/train/checkpoint.hpp"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
    slm::cli::Flags flags(
        "export_hf", "write a checkpoint as a Hugging Face LLaMA (model.safetensors + config.json)",
        {{"--checkpoint", "", "checkpoint from train_llama (required)"},
         {"--out", "", "directory to write (created if missing; required)"},
         {"--dtype", "bf16", "weight dtype in the file: bf16|f32 (f32 is lossless)"},
         {"--tokenizer", "", "SentencePiece model to copy as DIR/tokenizer.model (optional)"}});
    try {
        if (!flags.parse(argc, argv)) return 0;
        if (flags.text("--checkpoint").empty()) throw slm::cli::UsageError("--checkpoint is required");
        if (flags.text("--out").empty()) throw slm::cli::UsageError("--out is required");
        const auto dtype = flags.choice("--dtype", {"bf16", "f32"}) == "f32" ? slm::data::Dtype::F32
                                                                          : slm::data::Dtype::BF16;
        const fs::path out = flags.text("--out");
        const std::string tokenizer = flags.text("--tokenizer");

        const auto ckpt = slm::load_checkpoint<float>(flags.text("--checkpoint"));
        const slm::ParameterLayout layout(ckpt.config);
        slm::require(static_cast<int64_t>(ckpt.params.size()) == layout.total(),
                     "checkpoint holds " + std::to_string(ckpt.params.size()) +
                         " parameters but its config needs " + std::to_string(layout.total()));
        if (!tokenizer.empty()) {  // check it before writing anything
            const slm::data::Tokenizer t(tokenizer);
            slm::require(t.vocab_size() <= ckpt.config.vocab,
                         "tokenizer vocabulary (" + std::to_string(t.vocab_size()) +
                             ") is larger than the model's (" + std::to_string(ckpt.config.vocab) +
                             "): use the tokenizer the model was trained with");
        }
        std::error_code ec;
        fs::create_directories(out, ec);
        slm::require(!ec, "cannot create '" + out.string() + "': " + ec.message());

        slm::data::write_safetensors(out / "model.safetensors", ckpt.config, layout,
                                     ckpt.params.data(), dtype);
        slm::data::write_hf_config(out / "config.json", ckpt.config, dtype);
        if (!tokenizer.empty()) {
            std::ifstream in(tokenizer, std::ios::binary);
            const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
            slm::AtomicFile file(out / "tokenizer.model");
            file.write(bytes.data(), bytes.size());
            file.commit();
        }
        std::printf("export_hf: %s (step %lld, %lld parameters) → %s/model.safetensors (%s, %.1f MB), "
                    "config.json%s\n",
                    ckpt.config.name.c_str(), static_cast<long long>(ckpt.state.step),
                    static_cast<long long>(layout.parameter_count()), out.string().c_str(),
                    slm::data::dtype_name(dtype),
                    static_cast<double>(fs::file_size(out / "model.safetensors")) / 1e6,
                    tokenizer.empty() ? "" : ", tokenizer.model");
        return 0;
    } catch (const slm::cli::UsageError& e) {
        std::fprintf(stderr, "export_hf: %s\n\n%s", e.what(), flags.usage().c_str());
        return 2;
    } catch (const std::exception& e) {  // slm::Error, and what the standard library throws
        std::fprintf(stderr, "export_hf: error: %s\n", e.what());
        return 1;
    }
}
