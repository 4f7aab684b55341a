#pragma once
// sweep's flags, their defaults and help texts, and how it prints a duration.
#include <cmath>
#include <cstdio>
#include <string>

#include "../cli.hpp"
#include "slm/cost/scaling_law.hpp"
#include "slm/names.hpp"
#include "slm/study/grid.hpp"

namespace sweep {

inline slm::cli::Flags make_flags() {
    return slm::cli::Flags(
        "sweep", "measure the study's grid on this GPU (or CPU), predict the rest, rank by cost",
        {{"--device", "auto", "auto|cpu|cuda"},
         {"--presets", "", "comma list of " + slm::names::joined(slm::names::preset_names(), ", ") +
                           " (default: both families on a GPU, llama_* at seq 2048 and paper_* at 1024; tiny on a CPU)"},
         {"--micro-batches", "", "comma list (default 4,8,16,32,64 on a GPU, 1,2 on a CPU)"},
         {"--attention", "naive,flash", "comma list of attention policies: " +
                                             slm::names::joined(sweep::Attention::names(), ", ")},
         {"--precision", "bf16", "comma list of precision policies: " +
                                     slm::names::joined(slm::names::precision_names(), ", ") +
                                     " (fp8 points are measured beside bf16; the throughput model "
                                     "learns the FP8 GEMM rate from them and predicts fp8 only on GPUs "
                                     "with FP8 tensor cores)"},
         {"--seq", "", "tokens per sequence (default on a GPU: the preset's, 2048 for llama_*, 1024 for "
                         "paper_*; on a CPU 128)"},
         {"--steps", "10", "timed optimizer steps per repeat (each repeat's median step gives its tokens/s)"},
         {"--repeats", "3", "timed repeats per point, one after another: tokens/s is their mean, "
                            "their spread is kept"},
         {"--warmup", "2", "untimed steps before them"},
         {"--calibrate-on", "", "presets the throughput model is fitted on before the others run "
                                "(default llama_100m,llama_1b,paper_100m,paper_500m: head_dim 64, 96 "
                                "and 128, and a misaligned FFN; on a CPU every preset)"},
         {"--out", "runs/sweep/sweep.jsonl", "JSON-lines output; an existing file is resumed"},
         {"--time-limit", "0", "seconds; stop before a point that would end past it (0: none)"},
         {"--catalog", "", "JSON file overriding GPU prices, peaks and links (README shows the format)"},
         {"--gpu", "", "catalog name of this GPU when its device name is not recognised"},
         {"--loss-data", "", "token shards for the loss curves (tools/corpus.sh); empty: no curves"},
         {"--loss-seconds", "", "training time per loss curve (default 60 on a GPU, 20 on a CPU)"},
         {"--loss-global-batch", "", "comma list: sequences per optimizer step of the loss-curve runs, one curve "
                                     "each (default 16,64 on a GPU, 16 on a CPU)"},
         {"--predict-counts", "1,2,4,8,16,32,64", "GPU counts to predict for every catalog GPU"},
         {"--budget-dollars", "0", "loss reached for this budget (0: chosen from the curves)"},
         {"--target-loss", "0", "dollars to reach this validation loss (0: chosen from the curves)"},
         {"--scaling-law", "besiroglu2024", "the loss a configuration's tokens buy: " +
                                                slm::cost::known_scaling_laws() +
                                                ", or a JSON file naming one with overrides "
                                                "({\"law\": \"hoffmann2022\", \"E\": 1.7})"},
         {"--tokens-per-parameter", "20", "the training target: this many tokens per parameter"},
         {"--budgets", "10,100,1000", "comma list of dollars: the law's loss at each"},
         {"--seed", "1234", "seed of the loss-curve runs"},
         {"--parallel", "single", "comma list of " + slm::names::joined(slm::names::parallel_names()) +
                                  ": single measures one process alone "
                                  "(only without other ranks); each other policy is measured data-parallel at "
                                  "gpus = the ranks this job has (CPU: over MPI, GPU: over NCCL)"},
         {"--nproc", "1", "start this many ranks on this machine (GPU: one per GPU; CPU: under mpirun); "
                          "not under another launcher"},
         {"--derive-only", "false", "measure nothing: recompute predictions, costs and best lines from the file "
                                    "(after a --catalog change, say); give the --presets the sweep ran", true}});
}

inline std::string duration_text(double seconds) {
    char buf[32];
    if (seconds < 90) std::snprintf(buf, sizeof buf, "%.0fs", seconds);
    else std::snprintf(buf, sizeof buf, "%.0fm%02.0fs", std::floor(seconds / 60), std::fmod(seconds, 60));
    return buf;
}

}  // namespace sweep
